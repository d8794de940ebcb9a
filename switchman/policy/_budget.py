"""Budget arithmetic: reserve before an attempt, settle after, release on failure.

Money is held as integer nano-dollars (no float drift); USD floats appear only
at the boundary. Spend is kept per ``(scope, window key)``: a scope is
``"global"``, ``"provider:<name>"`` or ``"caller:<handle>"``; a window key is a
UTC calendar bucket such as ``"hour:2026-11-25T17"``, ``"day:2026-11-25"`` or
``"month:2026-11"`` (see :func:`window_key`).

A reservation charges every scope it names in the hour, day and month windows
current when it was made, so spend stays visible per scope even without a limit
on it; it is settled into those same windows even if the clock has since rolled
over. A limit admits a reservation only if spent + reserved + amount fits in its
current window, so with one owner applying these functions in turn (the ledger
actor) concurrent calls can never overspend by their estimates.

Nothing here blocks or can be cancelled midway.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final, Literal

import attrs

Period = Literal["hour", "day", "month"]
PERIODS: tuple[Period, ...] = ("hour", "day", "month")

#: spend is kept in whole nano-dollars: exact sums, and a call costing a fraction of a
#: micro-dollar (a few tokens of a cheap model) still counts
_NANOS_PER_USD = 1_000_000_000
#: what an older snapshot's integers were in
_NANOS_PER_MICRO = 1_000


@attrs.frozen(kw_only=True)
class Limit:
    """At most ``limit_usd`` of spend in ``scope`` per calendar ``period`` (UTC)."""

    scope: str
    period: Period
    limit_usd: float


@attrs.frozen(kw_only=True)
class Refusal:
    """Why a reservation was refused: ``limit``, with ``available_usd`` left in its window
    (after spend and after ``held_usd`` held for calls in flight)."""

    limit: Limit
    available_usd: float
    held_usd: float
    #: what is left is kept for a call that has waited for it since before this one
    kept: bool = False

    @property
    def kept_for_any(self) -> bool:
        """Kept, on a budget every model of a call shares (not a provider's): another
        model would be refused as well, so the call waits for this one."""
        return self.kept and not self.limit.scope.startswith("provider:")


def refusal(ledger: Ledger, limit: Limit, *, wall_now: float) -> Refusal:
    """The refusal ``limit`` makes, with what is left of it and what is held, as of now."""
    return Refusal(
        limit=limit,
        available_usd=max(0.0, remaining_usd(ledger, limit, wall_now=wall_now)),
        held_usd=reserved_usd(ledger, limit.scope, limit.period, wall_now=wall_now),
    )


def _plain(usd: float) -> str:
    """A configured limit as written in a config, never in an exponent: ``50``, ``0.5``,
    ``0.00001`` (``:g`` gave ``1e-05``)."""
    return f"{usd:.9f}".rstrip("0").rstrip(".") or "0"


#: the scope of the refusal a caller reads when the ledger never answered its reserve (it
#: failed or stopped): no budget was checked, so the attempt is not sent (fail closed)
NO_LEDGER = "ledger"


def refusal_message(refused: Refusal, *, cost: str, figures: bool, wall_now: float) -> str:
    """Why ``refused`` stops a call that ``cost`` describes ("the $0.002 gpt could cost").

    With ``figures``: the limit, what is left and what calls in flight hold. Without (a
    gateway key told of a budget it shares with other teams, the global or a provider's):
    the budget and when its window ends, since its figures would show the other teams'
    spend and calls in flight."""
    limit = refused.limit
    if limit.scope == NO_LEDGER:
        return f"the budgets could not be checked (their ledger failed): {cost} was not sent"
    if not figures:
        end = window_end(limit.period, wall_now)
        return (
            f"the {limit.scope} {limit.period} budget cannot cover {cost}; "
            f"it resets at {end:%Y-%m-%d %H:%M} UTC"
        )
    held = (
        f" (${refused.held_usd:.6f} more is held for calls in flight)" if refused.held_usd else ""
    )
    kept = ", kept for a call waiting for it since before this one" if refused.kept else ""
    return (
        f"{limit.scope} {limit.period} budget of ${_plain(limit.limit_usd)} has "
        f"${refused.available_usd:.6f} left{held}{kept}: it cannot cover {cost}"
    )


@attrs.frozen(kw_only=True)
class Reservation:
    """An open reservation: ``amount_nanos`` held in each of ``windows``; ``owner``: the
    job it is for, when it is one's (what a restart bills a killed job for), and
    ``attempt`` which of its attempts (``AttemptRecord.n``; 0: not said)."""

    id: str
    scopes: tuple[str, ...]
    amount_nanos: int
    windows: tuple[tuple[str, str], ...]  # (scope, window key) charged
    owner: str = ""
    attempt: int = 0


@attrs.frozen(kw_only=True)
class Ledger:
    """Settled spend per ``(scope, window key)`` in nano-dollars, and open reservations.

    Treat both mappings as read-only: every function returns a new ``Ledger``.
    """

    spent: Mapping[tuple[str, str], int] = attrs.field(factory=dict)
    reservations: Mapping[str, Reservation] = attrs.field(factory=dict)
    #: what the open reservations hold in each window (a sum of ``reservations``, kept as
    #: they open and close: a reservation read every hold for each window it checked)
    held: Mapping[tuple[str, str], int] = attrs.field(factory=dict)


def to_nanos(usd: float) -> int:
    """USD as integer nano-dollars, rounded to the nearest."""
    return round(usd * _NANOS_PER_USD)


def from_nanos(nanos: int) -> float:
    return nanos / _NANOS_PER_USD


def window_key(period: Period, wall_now: float) -> str:
    """The UTC calendar bucket of ``wall_now`` (Unix seconds) for ``period``."""
    keys = _window_keys(math.floor(wall_now / 3600.0))
    if period not in keys:
        raise ValueError(f"unknown period {period!r}")
    return keys[period]


def window_end(period: Period, wall_now: float) -> dt.datetime:
    """When the UTC calendar bucket of ``wall_now`` for ``period`` ends (the next one begins)."""
    t = dt.datetime.fromtimestamp(math.floor(wall_now / 3600.0) * 3600.0, tz=dt.UTC)
    if period == "hour":
        return t + dt.timedelta(hours=1)
    if period == "day":
        return t.replace(hour=0) + dt.timedelta(days=1)
    if period == "month":
        return t.replace(year=t.year + t.month // 12, month=t.month % 12 + 1, day=1, hour=0)
    raise ValueError(f"unknown period {period!r}")


@functools.lru_cache(maxsize=8)
def _window_keys(hour: int) -> dict[str, str]:
    """Every period's window key for a UTC hour (days and months begin on an hour, so
    the hour decides them all): formatted once an hour, not on every reservation."""
    t = dt.datetime.fromtimestamp(hour * 3600.0, tz=dt.UTC)
    return {
        "hour": f"hour:{t:%Y-%m-%dT%H}",
        "day": f"day:{t:%Y-%m-%d}",
        "month": f"month:{t:%Y-%m}",
    }


def reserve(
    ledger: Ledger,
    limits: Sequence[Limit],
    *,
    scopes: Sequence[str],
    amount_usd: float,
    reservation_id: str,
    wall_now: float,
    owner: str = "",
    attempt: int = 0,
) -> tuple[Ledger, Limit | None]:
    """Hold ``amount_usd`` against every scope in ``scopes``.

    Every limit whose scope is in ``scopes`` must fit spent + reserved + amount
    in its current window. If one does not, returns the ledger unchanged and the
    first failing limit (in the order of ``limits``); otherwise the ledger with
    the reservation and ``None``.

    Raises ``ValueError`` for a negative amount or an id already open.
    """
    if amount_usd < 0:
        raise ValueError(f"amount_usd must be >= 0, got {amount_usd}")
    if reservation_id in ledger.reservations:
        raise ValueError(f"reservation {reservation_id!r} is already open")
    amount = to_nanos(amount_usd)
    wanted = set(scopes)
    for limit in limits:
        if limit.scope not in wanted:
            continue
        window = (limit.scope, window_key(limit.period, wall_now))
        if _used(ledger, window) + amount > to_nanos(limit.limit_usd):
            return ledger, limit
    unique_scopes = tuple(dict.fromkeys(scopes))
    windows = tuple(
        (scope, window_key(period, wall_now)) for scope in unique_scopes for period in PERIODS
    )
    reservation = Reservation(
        id=reservation_id,
        scopes=unique_scopes,
        amount_nanos=amount,
        windows=windows,
        owner=owner,
        attempt=attempt,
    )
    held = dict(ledger.held)
    for window in windows:
        held[window] = held.get(window, 0) + amount
    return attrs.evolve(
        ledger, reservations={**ledger.reservations, reservation_id: reservation}, held=held
    ), None


def settle(ledger: Ledger, reservation_id: str, *, actual_usd: float) -> Ledger:
    """Turn a reservation into spend of ``actual_usd`` in the windows it was reserved in.

    ``actual_usd`` may exceed the reservation (it is real spend). An unknown or
    already settled / released id leaves the ledger unchanged.
    """
    if actual_usd < 0:
        raise ValueError(f"actual_usd must be >= 0, got {actual_usd}")
    reservation = ledger.reservations.get(reservation_id)
    if reservation is None:
        return ledger
    actual = to_nanos(actual_usd)
    spent = dict(ledger.spent)
    for window in reservation.windows:
        spent[window] = spent.get(window, 0) + actual
    return Ledger(
        spent=spent,
        reservations=_without(ledger.reservations, reservation_id),
        held=_unheld(ledger.held, reservation),
    )


def record(ledger: Ledger, scopes: Sequence[str], *, actual_usd: float, wall_now: float) -> Ledger:
    """Spend of ``actual_usd`` in the current windows of ``scopes``, without a reservation:
    for scopes no limit covers, whose spend is kept only to be seen."""
    if actual_usd < 0:
        raise ValueError(f"actual_usd must be >= 0, got {actual_usd}")
    actual = to_nanos(actual_usd)
    spent = dict(ledger.spent)
    for scope in dict.fromkeys(scopes):
        for period in PERIODS:
            window = (scope, window_key(period, wall_now))
            spent[window] = spent.get(window, 0) + actual
    return attrs.evolve(ledger, spent=spent)


def release(ledger: Ledger, reservation_id: str) -> Ledger:
    """Drop a reservation without spend (a failed attempt costs nothing); unknown id: unchanged."""
    reservation = ledger.reservations.get(reservation_id)
    if reservation is None:
        return ledger
    return attrs.evolve(
        ledger,
        reservations=_without(ledger.reservations, reservation_id),
        held=_unheld(ledger.held, reservation),
    )


def remaining_usd(ledger: Ledger, limit: Limit, *, wall_now: float) -> float:
    """What ``limit`` still allows in its current window (spent and reserved deducted; >= 0)."""
    window = (limit.scope, window_key(limit.period, wall_now))
    return from_nanos(max(0, to_nanos(limit.limit_usd) - _used(ledger, window)))


def spent_usd(ledger: Ledger, scope: str, period: Period, *, wall_now: float) -> float:
    """Settled spend of ``scope`` in the current ``period`` window (reservations excluded)."""
    return from_nanos(ledger.spent.get((scope, window_key(period, wall_now)), 0))


def reserved_usd(ledger: Ledger, scope: str, period: Period, *, wall_now: float) -> float:
    """Held by open reservations of ``scope`` in the current ``period`` window."""
    return from_nanos(_reserved(ledger, (scope, window_key(period, wall_now))))


#: the longest each period's window lasts: one seen this long ago has surely ended
PERIOD_LONGEST_S: Final[Mapping[str, float]] = {
    "hour": 3600.0,
    "day": 86_400.0,
    "month": 31 * 86_400.0,
}


def prune(ledger: Ledger, *, wall_now: float, keep: Collection[str] = ()) -> Ledger:
    """Drop spend of windows that ended before the current hour / day / month, but for
    the window keys in ``keep`` (ones the wall clock may yet step back into: the ledger
    actor keeps each until its period's longest has passed on trio's clock since it was
    current, so a clock stepped forward and back again finds its spend still counted).

    Open reservations are kept; settling one into an old window later records
    that spend again, to be pruned the next time.
    """
    current: dict[str, str] = {period: window_key(period, wall_now) for period in PERIODS}
    spent = {
        (scope, key): nanos
        for (scope, key), nanos in ledger.spent.items()
        if key >= current.get(key.partition(":")[0], "") or key in keep
    }
    if len(spent) == len(ledger.spent):
        return ledger
    return attrs.evolve(ledger, spent=spent)


def ledger_snapshot(ledger: Ledger) -> dict[str, Any]:
    """Settled spend as JSON-able ``{"nano_usd": {scope: {window key: nanos}}}``, and
    the open reservations as ``"held"``: ``[{"id": id, "nanos": n, "windows": [[scope,
    key], ...]}]`` (attempts in flight, whose bills a process stopped outright never
    learns; :func:`hold_entry`)."""
    snap = settled_snapshot(ledger)
    if ledger.reservations:
        snap["held"] = [hold_entry(r) for _, r in sorted(ledger.reservations.items())]
    return snap


def settled_snapshot(ledger: Ledger) -> dict[str, Any]:
    """:func:`ledger_snapshot` without the reservations: the settled spend alone."""
    out: dict[str, dict[str, int]] = {}
    for (scope, key), nanos in sorted(ledger.spent.items()):
        out.setdefault(scope, {})[key] = nanos
    return {"nano_usd": out}


def hold_entry(r: Reservation) -> dict[str, Any]:
    """One open reservation as a snapshot keeps it, with the job and attempt it is for."""
    entry = {"id": r.id, "nanos": r.amount_nanos, "windows": [list(w) for w in r.windows]}
    return entry | ({"job": r.owner, "attempt": r.attempt} if r.owner else {})


def unclaimed_spend(
    ledger: Ledger, claimed: frozenset[str], *, wall_now: float
) -> dict[str, float]:
    """This month's spend of each caller or provider scope (``caller:HANDLE``,
    ``provider:NAME``) not in ``claimed``: a handle no key or budget names any more, a
    provider the config no longer has (renamed or removed), whose spend no budget of the
    new name counts. Sorted by scope."""
    month = window_key("month", wall_now)
    out: dict[str, float] = {}
    for (scope, key), nanos in sorted(ledger.spent.items()):
        named = scope.startswith(("caller:", "provider:"))
        if key == month and named and scope not in claimed and nanos:
            out[scope] = from_nanos(nanos)
    return out


@attrs.frozen(kw_only=True)
class Held:
    """What a job's attempts in flight held: USD, and the providers they were sent to."""

    usd: float
    providers: tuple[str, ...] = ()


def held_by_owner(data: Mapping[str, Any]) -> dict[str, Held]:
    """A snapshot's holds summed by the job each was for (those of no job left out), with
    the providers their windows name (``provider:NAME``)."""
    out: dict[str, Held] = {}
    held = data.get("held") or []
    for h in held if isinstance(held, list) else ():
        job = h.get("job") if isinstance(h, Mapping) else None
        nanos = h.get("nanos") if isinstance(h, Mapping) else None
        if not (isinstance(job, str) and job and isinstance(nanos, int)):
            continue
        windows = h.get("windows")
        named = [
            w[0].removeprefix("provider:")
            for w in (windows if isinstance(windows, list) else ())
            if isinstance(w, list) and w and isinstance(w[0], str) and w[0].startswith("provider:")
        ]
        before = out.get(job, Held(usd=0.0))
        out[job] = Held(
            usd=before.usd + from_nanos(nanos),
            providers=tuple(dict.fromkeys((*before.providers, *named))),
        )
    return out


def held_in_snapshot(data: Mapping[str, Any]) -> tuple[int, float]:
    """How many reservations a snapshot holds, and their sum in USD (0 and 0.0 if none)."""
    held = data.get("held") or []
    if not isinstance(held, list):
        return 0, 0.0
    amounts = [h.get("nanos", 0) for h in held if isinstance(h, Mapping)]
    return len(amounts), from_nanos(sum(a for a in amounts if isinstance(a, int)))


def ledger_from_snapshot(data: Mapping[str, Any]) -> Ledger:
    """The ledger a :func:`ledger_snapshot` describes (or an older snapshot, in whole
    micro-dollars: ``{scope: {window key: micros}}``); raises ``ValueError`` on a bad shape.

    A reservation still held when the snapshot was taken is counted as spent, all of it,
    in the windows it was held in: its attempt was in flight when the process stopped, so
    what the provider billed for it is not known, and it may have been all of it. Counting
    less could let a budget be overspent after a restart."""
    spent = _settled_from_snapshot(data)
    held = data.get("held", [])
    if not isinstance(held, list):
        raise ValueError("held is not a list")
    for h in held:
        nanos = h.get("nanos") if isinstance(h, Mapping) else None
        windows = h.get("windows") if isinstance(h, Mapping) else None
        if not isinstance(nanos, int) or isinstance(nanos, bool) or not isinstance(windows, list):
            raise ValueError(f"a held reservation is not {{nanos, windows}}: {h!r}")
        for w in windows:
            if not (isinstance(w, list) and len(w) == 2 and all(isinstance(x, str) for x in w)):
                raise ValueError(f"a held reservation's window is not [scope, key]: {w!r}")
            spent[(w[0], w[1])] = spent.get((w[0], w[1]), 0) + nanos
    return Ledger(spent=spent)


def settle_stored(
    data: Mapping[str, Any], billed: Mapping[tuple[str, int], float]
) -> dict[str, Any]:
    """``data`` (a ``ledger_snapshot``) with each hold for attempt ``n`` of job ``j`` that
    ``billed`` has (``billed[(j, n)]``, what the job's stored result says the attempt was
    billed) settled to that: out of ``held``, the bill added to the settled spend of the
    windows it was held in. A job's result can reach the store before its last attempt's
    settlement is saved; a process stopped in between left the hold of an attempt that had
    ended. Holds of another shape are left for ``ledger_from_snapshot`` to judge."""
    held, settled = data.get("held"), data.get("nano_usd")
    if not billed or not isinstance(held, list) or not isinstance(settled, Mapping):
        return dict(data)
    spend = {s: dict(w) if isinstance(w, Mapping) else w for s, w in settled.items()}
    left: list[Any] = []
    for h in held:
        ok = isinstance(h, Mapping) and isinstance(h.get("job"), str)
        usd = billed.get((h["job"], h.get("attempt"))) if ok else None
        windows = h.get("windows") if ok else None
        if (
            usd is None
            or not isinstance(windows, list)
            or not all(_is_window(w) and isinstance(spend.get(w[0], {}), dict) for w in windows)
        ):
            left.append(h)
            continue
        for scope, window in windows:
            into = spend.setdefault(scope, {})
            into[window] = into.get(window, 0) + to_nanos(usd)
    return {**data, "nano_usd": spend, "held": left}


def _is_window(w: Any) -> bool:
    return isinstance(w, list) and len(w) == 2 and all(isinstance(x, str) for x in w)


def _settled_from_snapshot(data: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    scale = 1
    if "nano_usd" in data:
        data = data["nano_usd"]
        if not isinstance(data, Mapping):
            raise ValueError("nano_usd is not a mapping")
    else:
        scale = _NANOS_PER_MICRO
    spent: dict[tuple[str, str], int] = {}
    for scope, windows in data.items():
        if not isinstance(windows, Mapping):
            raise ValueError(f"spend of {scope!r} is not a mapping")
        for key, amount in windows.items():
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise ValueError(f"spend of {scope!r} in {key!r} is not an integer")
            spent[(str(scope), str(key))] = amount * scale
    return spent


def _used(ledger: Ledger, window: tuple[str, str]) -> int:
    return ledger.spent.get(window, 0) + _reserved(ledger, window)


def _reserved(ledger: Ledger, window: tuple[str, str]) -> int:
    return ledger.held.get(window, 0)


def _unheld(held: Mapping[tuple[str, str], int], gone: Reservation) -> dict[tuple[str, str], int]:
    """``held`` without what ``gone`` held (a window it leaves empty dropped)."""
    out = dict(held)
    for window in gone.windows:
        left = out.get(window, 0) - gone.amount_nanos
        if left > 0:
            out[window] = left
        else:
            out.pop(window, None)
    return out


def _without(reservations: Mapping[str, Reservation], rid: str) -> dict[str, Reservation]:
    out = dict(reservations)  # (a copy in C: a comprehension read every hold in Python)
    out.pop(rid, None)
    return out
