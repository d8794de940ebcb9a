"""The persister: writes settled spend and learned statistics to the store, off the hot path.

The ledger hands each new ``Ledger`` value to a ``LedgerTap`` (a plain assignment,
no await); the persister saves the latest one, and the providers' published
statistics, every ``period_s`` when they changed, and once more when it is
stopped, so budgets and learning survive a restart. A store that cannot be written
for a while (disk full, locked) costs no crash: what was not saved is saved later.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import attrs
import trio

from switchman._convert import to_jsonable
from switchman._result import ErrorInfo, Result
from switchman.actors._board import StatusBoard
from switchman.actors._learned import KEPT, Placed, place_learned
from switchman.catalog import Config
from switchman.policy._budget import (
    Held,
    Ledger,
    Limit,
    Reservation,
    held_by_owner,
    held_in_snapshot,
    hold_entry,
    ledger_from_snapshot,
    ledger_snapshot,
    remaining_usd,
    settle_stored,
    settled_snapshot,
    spent_usd,
    unclaimed_spend,
    window_end,
)
from switchman.policy._learning import ModelStats
from switchman.store import StoreError

log = logging.getLogger("switchman.persister")


class Persistence(Protocol):
    async def load_spend(self) -> dict[str, Any]: ...

    async def save_spend(self, data: Mapping[str, Any]) -> None: ...

    async def load_stats(self) -> dict[str, Any]: ...

    async def save_stats(self, data: Mapping[str, Any]) -> None: ...


@runtime_checkable
class SavesHoldChanges(Protocol):
    """A store that saves what changed among the holds (``save_spend`` after a save that
    failed, or the first): a save then costs what changed, not every hold open, which a
    thousand attempts in flight made 20 ms of every save, and an attempt waits for one."""

    async def save_spend_change(
        self, settled: Mapping[str, Any], added: Mapping[str, Any], ended: Collection[str]
    ) -> None: ...


class _Job(Protocol):
    @property
    def finished(self) -> bool: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def result(self) -> Mapping[str, Any] | None: ...


@runtime_checkable
class ReadsJobs(Protocol):
    """A store that keeps the gateway's jobs (``switchman.store.JobStore``)."""

    async def get_job(self, job_id: str) -> _Job | None: ...


#: the longest an attempt under a budget waits for its reservation to be saved
HOLD_SAVE_S: Final = 1.0
#: a store whose last save of spend took longer than this is not waited for (a store
#: taking 0.3 s a save held every budgeted attempt up 0.6 s: the save under way and its own)
SLOW_SAVE_S: Final = 0.1


#: how long the persister's last save waits for the ledger to end (cancelled together)
LEDGER_STOP_WAIT_S: Final = 0.5


class LedgerTap:
    """The latest ledger value: ``hold`` is called by the ledger actor after every change
    (what a restarted ledger resumes from), the tap itself after every settle (spend
    changed). The persister saves it when spend or the reservations held changed: a
    process stopped outright then restarts with its attempts in flight counted as spent
    (``ledger_from_snapshot``), not forgotten."""

    def __init__(self) -> None:
        self.latest: Ledger | None = None
        self.version = 0
        self.changed = trio.Event()
        #: the version the store has (``run_persister`` says so after each save)
        self.saved_version = 0
        self._saved = trio.Event()
        #: set to have the persister save now rather than after its delay (``wait_saved``)
        self.urgent = trio.Event()
        #: the persister cannot save spend now (its store refuses): nothing waits on it
        self.failing = False
        #: set when the ledger actor ends: the persister's last save waits for it
        self.stopped = trio.Event()
        #: the last save took longer than ``SLOW_SAVE_S`` (or a wait for one, longer than
        #: ``HOLD_SAVE_S``): nothing waits on the store until a save is quick again
        self.slow = False

    def mark_saved(self, version: int | None, took: float = 0.0) -> None:
        """The persister saved ``version`` in ``took`` seconds (None: it tried, and the
        store refused)."""
        self.failing = version is None
        if version is not None:
            self.saved_version = max(self.saved_version, version)
            self.slow = took > SLOW_SAVE_S
        self._saved.set()
        self._saved = trio.Event()

    async def wait_saved(self, *, within: float) -> bool:
        """Wait, ``within`` seconds at most, until the store has what the tap holds now,
        saved at once rather than after the persister's delay; whether it has (not while
        the store refuses writes: no wait then)."""
        version = self.version
        with trio.move_on_after(within):
            while self.saved_version < version and not self.failing:
                self.urgent.set()
                await self._saved.wait()
        return self.saved_version >= version

    async def holds_saved(self) -> None:
        """Wait (``HOLD_SAVE_S`` at most) until the store has the reservations held now, as
        an attempt under a budget does before it is sent: a process killed outright then
        counts it once it restarts (saved 50 ms later, the holds of a burst killed in
        between were forgotten, 4 to 11 of 50 attempts the provider had). Not while the
        store refuses writes, nor while its saves are slow (``SLOW_SAVE_S``; a store taking
        3 s a save added a second to every attempt): attempts go on, as routing does."""
        if not self.slow and not await self.wait_saved(within=HOLD_SAVE_S):
            self.slow = not self.failing

    def ledger_stopped(self) -> None:
        """The ledger actor ended: what it had is in ``latest`` (cancelled, the settles
        and releases waiting in its inbox applied)."""
        self.stopped.set()

    def hold(self, ledger: Ledger) -> None:
        held = self.latest is None or ledger.reservations is not self.latest.reservations
        self.latest = ledger
        if held:  # a reservation made or ended: the set a restart would count changed
            self.version += 1
            self.changed.set()

    def __call__(self, ledger: Ledger) -> None:
        self.latest = ledger
        self.version += 1
        self.changed.set()


def stats_to_json(
    stats: Mapping[tuple[str, str], ModelStats],
    *,
    now: float,
    wall_now: float,
    upstreams: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Statistics as stored: ``updated_at`` is on trio's clock, whose origin differs in
    every process, so each one is stored as the wall-clock time it stands for; each row
    with the model its alias names (``upstreams``: ``provider/model_id``), so that a
    config that gives the alias to another model does not hand it this one's record."""
    out: dict[str, Any] = {}
    for (alias, intent), st in stats.items():
        row = attrs.asdict(st)
        row["updated_at"] = wall_now - (now - st.updated_at)
        row["clock"] = "wall"
        if upstreams is not None and alias in upstreams:
            row["upstream"] = upstreams[alias]
        out[f"{alias}\t{intent}"] = row
    return out


def stored_upstreams(data: Mapping[str, Any]) -> dict[str, str]:
    """The model each alias of stored statistics named when they were saved (rows of an
    older store name none)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        upstream = value.get("upstream") if isinstance(value, Mapping) else None
        if isinstance(upstream, str):
            out[key.partition("\t")[0]] = upstream
    return out


def stats_from_json(
    data: Mapping[str, Any], *, now: float, wall_now: float
) -> dict[tuple[str, str], ModelStats]:
    """Stored statistics on this process's trio clock: as old as they are, so they fade
    from where they were (a row stored before times were wall-clock counts as fresh)."""
    out: dict[tuple[str, str], ModelStats] = {}
    for key, value in data.items():
        alias, _, intent = key.partition("\t")
        try:
            fields = dict(value)
            fields.pop("upstream", None)
            wall = fields.pop("clock", None) == "wall"
            age = max(0.0, wall_now - float(fields["updated_at"])) if wall else 0.0
            fields["updated_at"] = now - age
            out[(alias, intent)] = ModelStats(**fields)
        except (TypeError, KeyError, ValueError):
            log.warning("ignoring stored statistics for %s: unexpected shape", key)
    return out


async def load_state(
    store: Persistence,
) -> tuple[Ledger | None, dict[tuple[str, str], ModelStats], dict[str, str], dict[str, Held]]:
    """Spend and statistics from the last run (empty when none or unreadable), the model
    each alias of those statistics named (``stored_upstreams``), and what the attempts in
    flight when it stopped held, by the job each was for (``held_by_owner``)."""
    ledger: Ledger | None = None
    held: dict[str, Held] = {}
    try:
        spend = await store.load_spend()
        if spend and isinstance(store, ReadsJobs):
            spend = await _settled_by_results(store, spend)
        if spend:
            ledger = ledger_from_snapshot(spend)
            held = held_by_owner(spend)
            count, usd = held_in_snapshot(spend)
            if count:
                log.warning(
                    "%d attempt(s) were in flight when switchman last stopped: the most they"
                    " could cost, $%.6f, is counted as spent against their budgets",
                    count,
                    usd,
                )
    except ValueError as exc:
        log.warning("stored spend unreadable, starting from zero: %s", exc)
    stored = await store.load_stats()
    stats = stats_from_json(stored, now=trio.current_time(), wall_now=time.time())
    return ledger, stats, stored_upstreams(stored), held


async def _settled_by_results(store: ReadsJobs, spend: Mapping[str, Any]) -> dict[str, Any]:
    """``spend`` with the holds of attempts whose jobs' results were stored settled to what
    those results say they were billed (``settle_stored``): the result of a job reaches the
    store before the settlement of its last attempt is saved, and a process stopped in
    between must not count that attempt at the most it could have cost."""
    billed: dict[tuple[str, int], float] = {}
    held = spend.get("held")
    for h in held if isinstance(held, list) else ():
        job = h.get("job") if isinstance(h, Mapping) else None
        n = h.get("attempt") if isinstance(h, Mapping) else None
        if not (isinstance(job, str) and job and isinstance(n, int) and n > 0):
            continue
        record = await store.get_job(job)
        if record is None or not record.finished or record.reason == "interrupted":
            continue
        trace = (record.result or {}).get("trace")
        attempts = trace.get("attempts") if isinstance(trace, Mapping) else None
        for a in attempts if isinstance(attempts, list) else ():
            cost = a.get("cost_usd") if isinstance(a, Mapping) else None
            if a.get("n") == n and isinstance(cost, (int, float)) and cost >= 0:
                billed[(job, n)] = float(cost)
    if billed:
        log.info(
            "%d attempt(s) in flight when switchman last stopped had ended, their jobs' results"
            " stored: counted at what they were billed, $%.6f",
            len(billed),
            sum(billed.values()),
        )
    return settle_stored(spend, billed)


def _all_stats(board: StatusBoard) -> dict[tuple[str, str], ModelStats]:
    out: dict[tuple[str, str], ModelStats] = {}
    for snap in board.snapshots().values():
        out.update(snap.stats)
    return out


#: what a store raises when it cannot be written now (disk full, locked, failing): the
#: persister keeps what it could not save and tries again, never crashes for it
STORE_ERRORS: Final = (sqlite3.Error, OSError, StoreError)


async def run_persister(
    store: Persistence,
    board: StatusBoard,
    tap: LedgerTap,
    *,
    period_s: float = 2.0,
    spend_delay_s: float = 0.05,
    retry_s: float = 1.0,
    kept: Mapping[tuple[str, str], ModelStats] | None = None,
    upstreams: Mapping[str, str] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Save spend ``spend_delay_s`` after it changes (settles that close together share one
    write), statistics every ``period_s``; on cancellation, one last shielded save.

    Spend is what a budget is checked against after a restart: a process killed outright
    loses at most the settles of its last ``spend_delay_s``, not of its last ``period_s``;
    and none of a gateway job whose result was stored, which waits for its spend to be
    saved first (``LedgerTap.wait_saved``, which has it saved at once).
    ``kept``: statistics of models that are not running now, saved along unchanged, so a
    run without a provider (its key unset for a day) does not forget what was learned.
    ``upstreams``: the model each alias names (``stats_to_json``), those of ``kept`` too.

    A save that fails (the store refuses it, ``STORE_ERRORS``: its disk full, its lock
    held; or a bug, logged with its traceback) is logged once per streak of failures (and
    once when saving works again); what it would have saved stays unsaved, tried again
    every ``retry_s``. A persister started again (by
    its supervisor) saves the spend it finds, whatever its predecessor saved.
    """
    kept = dict(kept or {})

    def all_stats() -> dict[tuple[str, str], ModelStats]:
        return {**kept, **_all_stats(board)}

    # a ledger already there may hold what a predecessor could not save: saved once more
    saved_version = tap.version - 1 if tap.latest is not None else tap.version
    saved_stats: dict[tuple[str, str], ModelStats] = all_stats()
    #: what cannot be saved ("spend", "learned statistics") and why, during a streak of
    #: failures of it (each its own: statistics saved again say nothing of spend)
    failing: dict[str, str] = {}

    async def saved(what: str, save: Callable[[], Awaitable[None]]) -> bool:
        try:
            await save()
        except Exception as exc:  # a bug too: saving fails, routing goes on (a crash each
            if what not in failing:  # time gave the root supervisor up within a second)
                log.error(
                    "cannot save %s: %s (kept, tried again every %gs)",
                    what,
                    str(exc) or type(exc).__name__,
                    retry_s,
                    exc_info=not isinstance(exc, STORE_ERRORS),
                )
            failing[what] = str(exc) or type(exc).__name__
            return False
        if failing.pop(what, None) is not None:
            log.warning("%s saved again", what)
        return True

    #: the holds the store has (None: not known, as before the first save or after a
    #: failed one: the next save is of them all)
    saved_holds: Mapping[str, Reservation] | None = None

    def save_spend(latest: Ledger) -> Awaitable[None]:
        nonlocal saved_holds
        # (not known while it is saved: a save cut short by a cancellation may have been
        # made, and changes from before it would leave its added holds stored for good)
        holds, saved_holds = saved_holds, None
        if holds is None or not isinstance(store, SavesHoldChanges):
            return store.save_spend(ledger_snapshot(latest))
        now = latest.reservations  # (a hold never changes: one under an id saved before is
        # another, made after a release the ledger did not get; its row is written again)
        added = {i: hold_entry(r) for i, r in now.items() if holds.get(i) is not r}
        ended = holds.keys() - now.keys()
        return store.save_spend_change(settled_snapshot(latest), added, ended)

    async def flush_spend() -> None:
        nonlocal saved_version, saved_holds
        latest = tap.latest
        if tap.version != saved_version and latest is not None:
            version = tap.version
            tap.urgent = trio.Event()  # (asked for from here on: for a later version)
            began = trio.current_time()
            if await saved("spend", lambda: save_spend(latest)):
                saved_version, saved_holds = version, latest.reservations
                tap.mark_saved(version, trio.current_time() - began)
            else:
                tap.mark_saved(None)

    async def flush() -> None:
        nonlocal saved_stats
        await flush_spend()
        stats = all_stats()
        if stats != saved_stats:
            now, wall_now = trio.current_time(), time.time()
            data = stats_to_json(stats, now=now, wall_now=wall_now, upstreams=upstreams)
            if await saved("learned statistics", lambda: store.save_stats(data)):
                saved_stats = stats

    task_status.started()
    try:
        next_stats = trio.current_time() + period_s
        while True:
            spent = False
            with trio.move_on_at(next_stats):
                if tap.version == saved_version:  # nothing unsaved yet: wait for a settle
                    tap.changed = trio.Event()
                    await tap.changed.wait()
                # let settles close together share a write (after a failed one: wait more),
                # unless a job waits to store its result (``LedgerTap.wait_saved``)
                if "spend" not in failing:
                    with trio.move_on_after(spend_delay_s):
                        await tap.urgent.wait()
                else:
                    await trio.sleep(retry_s)
                spent = True
            if spent:  # (saved outside the timer: a write is never cut in the middle)
                await flush_spend()
            if trio.current_time() >= next_stats:
                await flush()
                next_stats = trio.current_time() + period_s
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5.0):
            # (cancelled together, the ledger applies the holds its calls ended as they
            # were cancelled: saved without them, each counted at its most at the next
            # start, 90 times what 20 cut calls cost)
            with trio.move_on_after(LEDGER_STOP_WAIT_S):
                await tap.stopped.wait()
            await flush()


@runtime_checkable
class BillsInterrupted(Protocol):
    """A store of jobs that can give an interrupted job the result that says its cost."""

    async def bill_interrupted(self, results: Mapping[str, Mapping[str, Any]]) -> int: ...


async def bill_interrupted(
    store: BillsInterrupted, held: Mapping[str, Held], *, simulated: bool = False
) -> None:
    """Give each job a killed process left running the cost its attempts in flight are
    counted at (what they held: the budgets count it too), and the providers they were
    sent to, so that ``/jobs`` says where that spend went. A job id no stored job has (an
    embedded call's) changes nothing."""
    results = {
        owner: to_jsonable(
            Result(
                call_id="",
                job_id=owner,
                status="failed",
                cost_usd=h.usd,
                simulated=simulated,
                errors=(
                    ErrorInfo(
                        code="interrupted",
                        message="switchman stopped while the call ran; its attempts then in"
                        + (f" flight on {', '.join(h.providers)}" if h.providers else " flight")
                        + f" are counted at the most they could cost, ${h.usd:.6f}",
                        provider=h.providers[0] if len(h.providers) == 1 else None,
                    ),
                ),
            )
        )
        for owner, h in held.items()
    }
    await store.bill_interrupted(results)


def tell_unclaimed(ledger: Ledger, config: Config) -> None:
    """Log the spend this month of handles no gateway key or caller budget names now, and
    of providers the config no longer has or has out of service (a built-in one the file
    renamed or dropped stays, disabled): renamed in the config, they start their budgets
    from zero under the new name."""
    providers = config.providers
    limited = {f"provider:{name}" for name in config.budgets.providers}
    # (one out of service for want of its key is told so already, where the file names it:
    # its key unset today is no rename to warn of at each start)
    serving = [n for n, p in providers.items() if not _out_of_service(p.disabled_reason)]
    claimed = frozenset(
        [f"caller:{k.handle}" for k in config.keys]
        + [f"caller:{h}" for h in config.budgets.callers]
        + [f"provider:{n}" for n in serving]
        + [*limited]
    )
    for scope, usd in unclaimed_spend(ledger, claimed, wall_now=time.time()).items():
        kind, _, name = scope.partition(":")
        if kind != "provider":
            now = f"no gateway key or caller budget names {name}"
        elif name in providers:
            now = f"provider {name} is out of service ({providers[name].disabled_reason})"
        else:
            now = f"the config has no provider {name}"
        log.warning(
            "%s spent $%.6f this month, and %s now: if it was renamed, the budgets of its new"
            " name start from zero",
            scope,
            usd,
            now,
        )


def _out_of_service(reason: str | None) -> bool:
    """Whether a provider ``reason`` disabled is out of service for more than its key."""
    return reason is not None and not reason.startswith(("missing API key", "the API key in"))


def learned_for(
    now: Mapping[str, str],
    stats: Mapping[tuple[str, str], ModelStats],
    stored: Mapping[str, str],
) -> Placed:
    """Stored statistics placed under the config's aliases (``now``: each alias's model,
    ``upstreams``) by the model each was learned of (``place_learned``), saying what moved
    to another alias and what starts afresh."""
    placed = place_learned(stats, stored, now)
    # (an alias given a model starts from any record of it: one kept, or a sibling's)
    found = {alias for alias, _ in placed.stats}
    for old, new in sorted(placed.moved.items()):
        if old.startswith(KEPT):
            if new not in placed.reassigned:
                log.warning("what was learned of %s counts again, for %s", stored[old], new)
            continue
        log.warning(
            "what was learned of %s (%s) now counts for %s, which names that model now",
            old,
            stored[old],
            new,
        )
    for alias, was in sorted(placed.reassigned.items()):
        log.warning(
            "%s names %s now, %s: what was learned of it when it named %s is kept for an"
            " alias that names that model again",
            alias,
            now[alias],
            "with what was learned of that model before" if alias in found else "learned afresh",
            was,
        )
    return placed


def tell_spent_out(ledger: Ledger, limits: Sequence[Limit]) -> None:
    """Log each budget whose window was spent out before this start (a limit lowered in
    the config below what was spent): every call it covers is refused until it resets."""
    now = time.time()
    for limit in limits:
        if limit.limit_usd <= 0 or remaining_usd(ledger, limit, wall_now=now) > 0:
            continue  # (a zero budget is a door kept shut on purpose: nothing to tell)
        log.warning(
            "budget %s %s: $%.6f spent already of its $%g: the calls it covers are refused"
            " until %s",
            limit.scope,
            limit.period,
            spent_usd(ledger, limit.scope, limit.period, wall_now=now),
            limit.limit_usd,
            window_end(limit.period, now).strftime("%Y-%m-%d %H:%M UTC"),
        )
