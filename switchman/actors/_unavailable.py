"""Which models the providers' published snapshots say cannot serve now, and why: the
dispatcher's view of breakers, rate budgets and holds at the moment it ranks a call."""

from __future__ import annotations

from collections.abc import Collection

from switchman.actors._env import DispatchEnv
from switchman.actors._provider import PROBE_POLL_S
from switchman.policy._breaker import breaker_retry_at
from switchman.policy._ratelimit import own_limits, rate_blocked_until


def unavailable_models(
    env: DispatchEnv,
    now: float,
    only: Collection[str] | None = None,
    back_at: dict[str, float] | None = None,
) -> dict[str, str]:
    """Aliases the published snapshots say cannot serve now, with the reason (among
    ``only``, when given). ``back_at`` is filled with when each one that is only paused
    (breaker open, rate budget empty, rate limited) can serve again."""
    out: dict[str, str] = {}
    for name, snap in env.board.snapshots().items():
        if snap.spec.disabled_reason:
            continue  # never candidates: ``env.out_of_service`` carries their reason
        if only is not None and not any(m.alias in only for m in snap.models):
            continue
        if snap.misconfigured and now < snap.misconfigured_until:
            for m in snap.models:
                out[m.alias] = f"provider {name} held out: {snap.misconfigured}"
            continue
        blocked = rate_blocked_until(snap.rate, now) - now
        model_rates = snap.model_rates
        holds = snap.model_holds
        for m in snap.models:
            if holds and (hold := snap.held_at(m.alias, now)) is not None:
                out[m.alias] = f"{hold.reason} (held out {hold.until - now:.0f}s more)"
                continue
            b = snap.breakers.get(m.alias)
            if b is not None and b.state != "closed":
                retry_at = breaker_retry_at(b)
                if b.state == "open" and retry_at is not None and retry_at > now:
                    out[m.alias] = f"breaker open for {retry_at - now:.1f}s more" + (
                        f" ({b.opened_by})" if b.opened_by else ""
                    )
                    if back_at is not None:
                        back_at[m.alias] = retry_at
                elif b.probe_in_flight:
                    out[m.alias] = "breaker half-open: probe in flight"
                    if back_at is not None:  # its outcome is due any moment: ask again
                        back_at[m.alias] = now + PROBE_POLL_S
            if blocked > 0 and m.alias not in out:
                said = own_limits(name, snap.spec.rpm, snap.spec.tpm)
                out[m.alias] = f"rate budget empty for {blocked:.1f}s{said}"
                if back_at is not None:
                    back_at[m.alias] = now + blocked
            if model_rates and m.alias not in out:
                rate = model_rates.get(m.alias)
                if rate is not None and (until := rate_blocked_until(rate, now)) > now:
                    out[m.alias] = f"rate limited for {until - now:.1f}s"
                    if back_at is not None:
                        back_at[m.alias] = until
    return out
