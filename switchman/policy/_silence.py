"""A provider that accepts requests and stays silent (pure; times on trio's clock).

A hung provider (connections accepted, no first token) fails no attempt until the
attempt's first-token limit runs out, so its breaker sees nothing for that long, and
every call routed to it meanwhile waits the whole limit before falling back. The
provider actor knows sooner: its attempts in flight on a model that have had no text.

``silence`` says a model is suspect when its oldest attempt still waiting for a first
token has waited past the model's expected time (``SILENT_FACTOR`` times its learned
time to first token, at least ``SILENT_MIN_S``), or past half that attempt's own limit
when nothing is learned, and no text came from the model since that attempt began.
The actor then turns away new attempts that have another model to go to, until the
model speaks again or its waiting attempts end (their timeouts trip the breaker). A
call with nowhere else to go is still sent: waiting may yet be answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from switchman.policy._learning import ModelStats

#: a model is suspect once its first token is this many times later than learned
SILENT_FACTOR: Final = 4.0
#: ... and never sooner than this (a model learned at 50 ms is not hung at 200 ms)
SILENT_MIN_S: Final = 2.0


#: an attempt in flight that has had no text yet: its upstream model id, when it started,
#: and its own first-token limit in seconds (a plain tuple: one is made per attempt)
Waiting = tuple[str, float, float]


def silence(
    waiting: Iterable[Waiting],
    model_id: str,
    *,
    heard_at: float | None,
    learned_ttft_ms: float | None,
    now: float,
) -> str | None:
    """Why ``model_id`` looks hung at ``now`` (see the module doc), or None.

    ``heard_at``: when the model last gave text (or answered at all), None if never;
    ``learned_ttft_ms``: its learned time to first token, None when unknown.
    """
    oldest: Waiting | None = None
    for w in waiting:
        if w[0] == model_id and (oldest is None or w[1] < oldest[1]):
            oldest = w
    if oldest is None or (heard_at is not None and heard_at >= oldest[1]):
        return None
    _, started, ttft_s = oldest
    limit = ttft_s / 2
    if learned_ttft_ms is not None:
        limit = min(limit, max(SILENT_MIN_S, SILENT_FACTOR * learned_ttft_ms / 1000.0))
    waited = now - started
    if waited < limit:
        return None
    return (
        f"silent: an attempt sent {waited:.1f} s ago has had no answer yet (the provider may"
        " be hanging); another model is tried"
    )


def model_silence(
    alias: str,
    model_id: str,
    waiting: Mapping[int, Waiting],
    heard: Mapping[str, float],
    stats: Mapping[tuple[str, str], ModelStats],
    now: float,
) -> str | None:
    """``silence`` of the model ``alias`` (upstream ``model_id``) from a provider's own
    tables: its attempts waiting, when each model last spoke, what it learned (the actor's
    admission, and the status its snapshot shows, read the same)."""
    learned = stats.get((alias, "*"))
    return silence(
        waiting.values(),
        model_id,
        heard_at=heard.get(model_id),
        learned_ttft_ms=learned.ttft_ms if learned is not None else None,
        now=now,
    )
