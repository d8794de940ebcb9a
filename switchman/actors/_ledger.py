"""The ledger actor: budgets. Reserve before an attempt, settle to the real cost after.

One actor owns the ``Ledger`` value and handles one message at a time, so two
concurrent reservations can never both pass a limit that only covers one: the
arithmetic itself is the pure ``switchman.policy._budget``.

Spend can be persisted through ``on_change`` (called with the new ledger after
every settle, off the hot path of reservations) and restored with ``initial``.
``on_state`` sees the ledger after every change, reservations included: a ledger
restarted after a crash carries on from it, so no reservation is forgotten (one
forgotten would let its budget be spent twice) and none released comes back.

Spend of windows that have ended (an hour, a day, a month before the current ones) is
dropped the first time a message comes in each hour: the ledger, its every copy and its
saved snapshot stay the size of the current windows, not of the process's whole history.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Final

import trio

from switchman.actors._messages import LedgerMessage, Release, Reserve, Settle, SpendQuery, Spent
from switchman.catalog._spec import Config
from switchman.policy._budget import (
    PERIOD_LONGEST_S,
    PERIODS,
    Ledger,
    Limit,
    Period,
    prune,
    record,
    refusal,
    release,
    reserve,
    settle,
    spent_usd,
    window_key,
)

_PERIOD_KEYS: dict[str, Period] = {"hourly_usd": "hour", "daily_usd": "day", "monthly_usd": "month"}

log = logging.getLogger("switchman.router")
_PERIOD_ORDER: tuple[Period, ...] = ("hour", "day", "month")


def limits_from_config(config: Config) -> tuple[Limit, ...]:
    """Every budget of the config as a ``Limit`` on a scope (global, provider:X, caller:H)."""
    out: list[Limit] = []
    b = config.budgets
    for period, value in (
        ("hour", b.global_hourly_usd),
        ("day", b.global_daily_usd),
        ("month", b.global_monthly_usd),
    ):
        if value is not None:
            out.append(Limit(scope="global", period=period, limit_usd=value))  # type: ignore[arg-type]
    for scope_kind, table in (("provider", b.providers), ("caller", b.callers)):
        for name, limits in table.items():
            for key, value in limits.items():
                if key in _PERIOD_KEYS:
                    out.append(
                        Limit(
                            scope=f"{scope_kind}:{name}", period=_PERIOD_KEYS[key], limit_usd=value
                        )
                    )
    for k in config.keys:
        for key, value in (
            ("hourly_usd", k.hourly_usd),
            ("daily_usd", k.daily_usd),
            ("monthly_usd", k.monthly_usd),
        ):
            if value is not None:
                out.append(
                    Limit(scope=f"caller:{k.handle}", period=_PERIOD_KEYS[key], limit_usd=value)
                )
    return tuple(out)


def tell_odd_limits(limits: Iterable[Limit]) -> None:
    """Warn of budgets that are likely mistakes, which start silently otherwise: one of $0
    (every call it covers is refused), and one no lower than a longer period's of its
    scope (it never refuses a call that one would not: a monthly $5 under a daily $20)."""
    least: dict[str, dict[Period, float]] = {}
    for limit in limits:  # (a scope limited twice in a period: the stricter holds)
        periods = least.setdefault(limit.scope, {})
        periods[limit.period] = min(periods.get(limit.period, math.inf), limit.limit_usd)
    for scope, periods in least.items():
        shown = sorted(periods.items(), key=lambda p: _PERIOD_ORDER.index(p[0]))
        for period, usd in shown:
            if usd == 0:
                log.warning("budget %s %s is $0: every call it covers is refused", scope, period)
        for (short, low), (long, high) in itertools.pairwise(shown):
            if 0 < high <= low:
                log.warning(
                    "budget %s %s ($%g) is not below its %s budget ($%g): it never refuses a"
                    " call the %s one would not; was it meant the other way round?",
                    scope, short, low, long, high, long,
                )  # fmt: skip


def _pruned(ledger: Ledger, seen: dict[str, float], wall_now: float, clock: float) -> Ledger:
    """``ledger`` without the windows that surely ended (``prune``); ``seen`` (window key:
    when first current, on trio's ``clock``) gains the current windows and loses the rest."""
    for period in PERIODS:
        seen.setdefault(window_key(period, wall_now), clock)
    for key, since in list(seen.items()):
        if clock - since >= PERIOD_LONGEST_S[key.partition(":")[0]]:
            del seen[key]
    return prune(ledger, wall_now=wall_now, keep=seen)


def limited_scopes(limits: Iterable[Limit]) -> frozenset[str]:
    return frozenset(limit.scope for limit in limits)


async def run_ledger(
    inbox: trio.MemoryReceiveChannel[LedgerMessage],
    limits: tuple[Limit, ...],
    *,
    initial: Ledger | None = None,
    wall: Callable[[], float] = time.time,
    on_change: Callable[[Ledger], None] | None = None,
    on_state: Callable[[Ledger], None] | None = None,
    on_stop: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve budget messages until the inbox ends (``on_stop`` is called as it ends, however
    it does).

    Reservations are answered at once on their reply channel (the ``Limit`` that
    refused, or None); the reply channel is closed even when handling the message
    fails, so its caller is never left waiting (it reads the closed channel as a
    refusal). Cancelled midway, nothing is half-applied: every message is handled
    without a checkpoint, and the settles and releases waiting are applied before it ends.
    A message whose handling fails (a bug) is logged and leaves the ledger as it was, the
    hold it ends released (``_after_a_bug``).
    """
    ledger = initial if initial is not None else Ledger()
    # each window key, and when (on trio's clock) it was first current, or loaded: an
    # ended window is dropped only once its period's longest has passed since then, so a
    # wall clock stepped forward and back (NTP undoing a jump, a date put right) finds
    # the spend it made still counted, never the whole budget open again
    seen = dict.fromkeys((key for _, key in ledger.spent), trio.current_time())
    hour = -math.inf  # the wall-clock hour pruned in; at a new one (either way), again
    prune_at = -math.inf  # and on trio's clock at least hourly (a clock stepped back)
    task_status.started()
    try:
        async for msg in inbox:
            now = wall()
            if (this_hour := math.floor(now / 3600.0)) != hour or trio.current_time() >= prune_at:
                clock = trio.current_time()
                ledger = _pruned(ledger, seen, now, clock)
                hour, prune_at = this_hour, clock + 3600.0
            try:  # (one message must not crash the ledger: its state stands)
                match msg:
                    case Reserve(
                        id=rid,
                        scopes=scopes,
                        amount_usd=amount,
                        reply_to=reply,
                        owner=owner,
                        attempt=n,
                    ):
                        with reply:
                            now = wall()
                            if rid in ledger.reservations:  # (ids are new for each hold: a bug)
                                # one message must not crash the ledger, and its restart with it:
                                # the earlier hold is taken to have ended, this one stands
                                log.error(
                                    "reservation %s is open already: the earlier released", rid
                                )
                                ledger = release(ledger, rid)
                            ledger, refused = reserve(
                                ledger,
                                limits,
                                scopes=scopes,
                                amount_usd=amount,
                                reservation_id=rid,
                                wall_now=now,
                                owner=owner,
                                attempt=n,
                            )
                            answer = (
                                None if refused is None else refusal(ledger, refused, wall_now=now)
                            )
                            try:
                                reply.send_nowait(answer)
                            except (trio.BrokenResourceError, trio.WouldBlock):
                                # the caller is gone: nobody will settle this
                                ledger = release(ledger, rid)
                        if on_state is not None:
                            on_state(ledger)
                    case Settle() | Release() | Spent():
                        ledger = _applied(ledger, msg, wall)
                        if on_state is not None:
                            on_state(ledger)
                        if on_change is not None and not isinstance(msg, Release):
                            on_change(ledger)  # (spend changed)
                    case SpendQuery(scope=scope, reply_to=reply):
                        now = wall()
                        with reply:
                            try:
                                reply.send_nowait(
                                    {
                                        p: spent_usd(ledger, scope, p, wall_now=now)
                                        for p in ("hour", "day", "month")
                                    }
                                )
                            except (trio.BrokenResourceError, trio.WouldBlock):
                                pass
            except Exception as exc:
                ledger = _after_a_bug(ledger, msg, exc, wall)
                if on_state is not None:
                    on_state(ledger)
                if on_change is not None:
                    on_change(ledger)
    except trio.Cancelled:
        # the router stops now: the holds its calls end as they are cancelled wait in the
        # inbox, or come in the next scheduler passes; a store would count each at the
        # most it could cost at the next start (0.08 $ for 20 calls whose bills said 0)
        ledger, _ = _drained(inbox, ledger, wall)
        with trio.CancelScope(shield=True), trio.move_on_after(LATE_HOLDS_S):
            quiet = 0
            while quiet < QUIET_PASSES:
                await trio.lowlevel.checkpoint()
                ledger, taken = _drained(inbox, ledger, wall)
                quiet = 0 if taken else quiet + 1
        if on_change is not None:
            on_change(ledger)
        raise
    finally:
        if on_stop is not None:
            on_stop()


#: cancelled, the ledger takes the holds its calls end for this long at most, until the
#: inbox stayed empty for ``QUIET_PASSES`` scheduler passes (they come within one or two)
LATE_HOLDS_S: Final = 0.5
QUIET_PASSES: Final = 5


def _after_a_bug(
    ledger: Ledger, msg: LedgerMessage, exc: Exception, wall: Callable[[], float]
) -> Ledger:
    """Handling ``msg`` raised (a bug): the ledger as it was, but for the hold a settle or a
    release ends, released, a settle's amount counted in its scopes as spend without a
    hold (kept, the hold was counted until a restart, and then as spent at the most it
    could cost; the settle's amount was lost)."""
    log.error("budget message %s failed: %s: %s", type(msg).__name__, type(exc).__name__, exc)
    log.debug("the traceback", exc_info=exc)
    if isinstance(msg, (Settle, Release)):
        held = ledger.reservations.get(msg.id)
        try:
            ledger = release(ledger, msg.id)
            if isinstance(msg, Settle) and held is not None:
                ledger = record(ledger, held.scopes, actual_usd=msg.actual_usd, wall_now=wall())
        except Exception:  # (a bug there too: what could be done, done)
            pass
    return ledger


def _drained(
    inbox: trio.MemoryReceiveChannel[LedgerMessage], ledger: Ledger, wall: Callable[[], float]
) -> tuple[Ledger, int]:
    """``ledger`` with what waits in ``inbox`` applied, without a checkpoint (the settles,
    releases and spend; a reservation or a query asked now is answered by closing its
    reply: a refusal, its caller is being cancelled too), and how many messages it took."""
    taken = 0
    while True:
        try:
            msg = inbox.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            return ledger, taken
        taken += 1
        try:
            match msg:
                case Settle() | Release() | Spent():
                    ledger = _applied(ledger, msg, wall)
                case Reserve(reply_to=reply) | SpendQuery(reply_to=reply):
                    reply.close()
        except Exception as exc:
            ledger = _after_a_bug(ledger, msg, exc, wall)


def _applied(ledger: Ledger, msg: Settle | Release | Spent, wall: Callable[[], float]) -> Ledger:
    """``ledger`` after a message that ends a hold or counts spend (it answers no one)."""
    match msg:
        case Settle(id=rid, actual_usd=actual):
            return settle(ledger, rid, actual_usd=actual)
        case Release(id=rid):
            return release(ledger, rid)
        case Spent(scopes=scopes, actual_usd=actual, at=at):
            return record(ledger, scopes, actual_usd=actual, wall_now=wall() if at is None else at)
