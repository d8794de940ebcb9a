"""Decayed statistics of what each model did, per (alias, intent).

Two kinds of forgetting keep the router adaptive:

- per observation: each new outcome multiplies the older outcome counts by
  ``gamma`` (0.97: the last ~33 outcomes dominate), each new feedback score
  does the same to the feedback counts;
- per time: counts halve every ``half_life_s`` seconds (6 hours) without
  observations, and failures in a row every ``failure_half_life_s`` (10 minutes):
  what a model is (how it answers, what it refuses, what callers think of it, how
  often it fails between answers) is kept through a quiet night, while a run of
  failures is soon forgotten (outages end), so a model that failed for a while is
  tried again. A failure that came alone, an answer after it, is what the model is
  (``lasting``): it fades on the long clock (when every failure faded in minutes, a
  model failing one call in five read 99.96% successful at a call every 15 minutes,
  and kept most first attempts). Its latency averages fade the same
  way, for what a new measure replaces: one after a quiet spell replaces most of the
  old average (scoring still trusts the average by ``n``: a model slow every time stays
  slow between its calls). ``decayed`` applies this when
  reading; ``observe`` and ``observe_feedback`` apply it before adding the new
  observation. (One half-life of 10 minutes for everything left a gateway calling
  a few times an hour knowing nothing: every model back at the prior, explored
  again and again.)

Latency and TTFT are EWMAs (``ewma_alpha``); their confidence is carried by
``n`` (scoring blends them toward a neutral prior as ``n`` decays), their spread by
the deviations beside them (the ranking's draws of speed). A measure taken because the
ranking looked again at a model it had not heard from (``fresh_look``) counts for half.

Pure functions over frozen ``ModelStats``; ``now`` is any monotonic clock in
seconds (the dispatcher passes ``trio.current_time()``).
"""

from __future__ import annotations

from typing import Final

import attrs

#: outcomes that say something about the model itself
SUCCESS_OUTCOMES: Final = frozenset({"success"})
REFUSAL_OUTCOMES: Final = frozenset({"refused", "content_filtered"})
FAILURE_OUTCOMES: Final = frozenset({"timeout", "error"})
#: outcomes that say the model cannot take calls now (its provider turned it away): a
#: failure in a row, on the short clock, never what the model is (see ``observe``)
BUSY_OUTCOMES: Final = frozenset({"rate_limited"})
#: ``ModelStats.streak`` when the last outcome was a 429
AFTER_429: Final = -1
#: the weight a fresh look's measure of speed gets (``observe``): half, not a fifth (a
#: recovered model took a thousand calls to show it), nor all (a model slow one answer in
#: five, its one fast answer replacing its average, took 8-10% of the calls, not 1.5%)
FRESH_LOOK_ALPHA: Final = 0.5
#: outcomes whose latency says nothing about the model's speed (a fast error)
_NO_LATENCY_OUTCOMES: Final = frozenset({"error"})


@attrs.frozen(kw_only=True)
class ModelStats:
    """Decayed counts and EWMAs for one (alias, intent).

    ``n`` = successes + failures + refusals. ``lasting`` is the part of ``failures``
    that came alone, between answers (it decays as successes do; the rest as failures
    do), ``streak`` the failures since the last answer or refusal (``AFTER_429`` after a
    429). Latencies in
    milliseconds, ``None`` until observed. ``updated_at`` is the ``now`` up to
    which the counts are decayed.
    """

    n: float = 0.0
    successes: float = 0.0
    failures: float = 0.0
    refusals: float = 0.0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    feedback_sum: float = 0.0
    feedback_n: float = 0.0
    updated_at: float = 0.0
    lasting: float = 0.0
    streak: int = 0
    #: the outcomes seen, faded on the long clock only (no ``gamma``): how sure the
    #: ranking's draws are of the rates, where ``n`` (the last ~33) says what they are
    seen: float = 0.0
    #: how far a measure falls from the average before it, averaged as the averages are
    #: (mean absolute deviation, ms; ``None`` until two measures): how sure the ranking's
    #: draws are of the model's speed
    latency_dev: float | None = None
    ttft_dev: float | None = None


@attrs.frozen(kw_only=True)
class LearningConfig:
    gamma: float = 0.97
    half_life_s: float = 21_600.0
    failure_half_life_s: float = 600.0
    ewma_alpha: float = 0.2

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1]; got {self.gamma!r}")
        if not self.half_life_s > 0.0:
            raise ValueError(f"half_life_s must be positive; got {self.half_life_s!r}")
        if not self.failure_half_life_s > 0.0:
            raise ValueError(
                f"failure_half_life_s must be positive; got {self.failure_half_life_s!r}"
            )
        if not 0.0 < self.ewma_alpha <= 1.0:
            raise ValueError(f"ewma_alpha must be in (0, 1]; got {self.ewma_alpha!r}")


def time_decay(cfg: LearningConfig, elapsed_s: float) -> float:
    """The factor counts other than failures are multiplied by after ``elapsed_s``
    seconds (1 if none passed)."""
    if elapsed_s <= 0.0:
        return 1.0
    return float(0.5 ** (elapsed_s / cfg.half_life_s))


def failure_decay(cfg: LearningConfig, elapsed_s: float) -> float:
    """The factor failure counts are multiplied by after ``elapsed_s`` seconds."""
    if elapsed_s <= 0.0:
        return 1.0
    return float(0.5 ** (elapsed_s / cfg.failure_half_life_s))


def decayed(stats: ModelStats, cfg: LearningConfig, now: float) -> ModelStats:
    """``stats`` with its counts decayed by the time passed since ``updated_at``.

    EWMAs are kept as they are; what fades is their weight ``n`` (the sum of the
    counts). Returns ``stats`` itself when no time has passed.
    """
    f = time_decay(cfg, now - stats.updated_at)
    if f == 1.0:
        return stats
    ff = failure_decay(cfg, now - stats.updated_at)
    lasting = stats.lasting * f
    successes, refusals = stats.successes * f, stats.refusals * f
    failures = lasting + (stats.failures - stats.lasting) * ff
    return ModelStats(
        n=successes + failures + refusals,
        successes=successes,
        failures=failures,
        refusals=refusals,
        latency_ms=stats.latency_ms,
        ttft_ms=stats.ttft_ms,
        feedback_sum=stats.feedback_sum * f,
        feedback_n=stats.feedback_n * f,
        updated_at=now,
        lasting=lasting,
        streak=stats.streak,
        seen=stats.seen * f,
        latency_dev=stats.latency_dev,
        ttft_dev=stats.ttft_dev,
    )


def _ewma(old: float | None, new: float | None, alpha: float, fresh: float) -> float | None:
    """``new`` folded into the average ``old`` with weight ``alpha``, more where the old
    average is stale (``fresh``, 1 for a just measured one, down to 0 for one long ago:
    it carries that much of its weight, and an answer after a quiet hour is mostly what
    counts of a model's speed)."""
    if new is None:
        return old
    if old is None:
        return new
    keep = (1.0 - alpha) * fresh
    return old * keep + new * (1.0 - keep)


def _deviation(
    dev: float | None, old: float | None, new: float | None, alpha: float, fresh: float
) -> float | None:
    """The mean absolute deviation ``dev`` with ``new``'s distance from the average
    ``old`` it is measured against folded in, as ``_ewma`` folds ``new`` in."""
    if new is None or old is None:
        return dev
    return _ewma(dev, abs(new - old), alpha, fresh)


def observe(
    stats: ModelStats | None,
    cfg: LearningConfig,
    *,
    now: float,
    outcome: str,
    latency_ms: float | None,
    ttft_ms: float | None,
    fresh_look: bool = False,
) -> ModelStats:
    """Add one attempt outcome (an ``AttemptRecord.outcome``) to ``stats``.

    - ``success`` counts as a success;
    - ``refused`` / ``content_filtered`` count as refusals (not successes);
    - ``timeout`` / ``error`` count as failures (one that came alone, an answer or
      refusal next, becomes ``lasting``: it fades on the long clock);
    - ``rate_limited`` (the provider's 429) counts as a failure in a row, and stays
      one: it fades on the short clock even when it came alone (a model whose provider
      turns every call away for an hour cost each call two attempts and a wait, and kept
      most first attempts; what the model is comes back minutes after its 429s end);
    - anything else (``context_exceeded``, ``unavailable``, ``cancelled``) is not the
      model's doing and is ignored entirely: ``stats`` comes back unchanged (a fresh
      ``ModelStats()`` if None).

    Older counts are first decayed to ``now``, then multiplied by ``gamma``.
    ``latency_ms`` / ``ttft_ms`` (when given) feed the EWMAs, except for an
    ``error``, whose quick failure says nothing about speed; a ``timeout``
    does feed them, as it shows the model was slow. ``fresh_look``: the attempt was
    the ranking's look at a model it had not heard from for a while (``freshness``): its
    measures count for half the averages (``FRESH_LOOK_ALPHA``; a model ranked last for a
    slow spell gets about one call in fifty, and its averages, blended a fifth at a time,
    took a thousand calls to show it had recovered); their deviations keep the distance,
    so the ranking's draws are unsure of it until more measures come.
    """
    if stats is None:
        stats = ModelStats(updated_at=now)
    success = outcome in SUCCESS_OUTCOMES
    refusal = outcome in REFUSAL_OUTCOMES
    failure = outcome in FAILURE_OUTCOMES
    busy = outcome in BUSY_OUTCOMES
    if not (success or refusal or failure or busy):
        return stats
    tf = time_decay(cfg, now - stats.updated_at)
    g = cfg.gamma * tf
    ff = failure_decay(cfg, now - stats.updated_at)
    gf = cfg.gamma * ff
    if outcome in _NO_LATENCY_OUTCOMES or busy:
        latency_ms = ttft_ms = None
    lasting = stats.lasting * g
    # (failures in a row, 429s among them)
    running = (stats.failures - stats.lasting) * gf + (failure or busy)
    # an error next to 429s, before or after them, was not alone between answers: it fades
    # on the short clock with them, not at the next answer onto the long one (``AFTER_429``
    # marks a 429 last: a failure after it starts past one)
    if busy:
        streak = AFTER_429
    elif failure:
        streak = stats.streak + 1 if stats.streak >= 0 else 2
    else:
        streak = 0
    if stats.streak == 1 and not (failure or busy):
        # the model's last failure came alone: what it is, not an outage; it moves to
        # the long clock, at the weight it would have had there
        moved = gf if gf < running else running
        running -= moved
        lasting += g
    successes = stats.successes * g + success
    refusals = stats.refusals * g + refusal
    failures = lasting + running
    alpha = max(FRESH_LOOK_ALPHA, cfg.ewma_alpha) if fresh_look else cfg.ewma_alpha
    return ModelStats(
        n=successes + failures + refusals,
        successes=successes,
        failures=failures,
        refusals=refusals,
        # (how fast it is can change as soon as whether it fails)
        latency_ms=_ewma(stats.latency_ms, latency_ms, alpha, ff),
        ttft_ms=_ewma(stats.ttft_ms, ttft_ms, alpha, ff),
        feedback_sum=stats.feedback_sum * tf,
        feedback_n=stats.feedback_n * tf,
        updated_at=max(now, stats.updated_at),
        lasting=lasting,
        streak=streak,
        seen=stats.seen * tf + 1.0,
        latency_dev=_deviation(stats.latency_dev, stats.latency_ms, latency_ms, cfg.ewma_alpha, ff),
        ttft_dev=_deviation(stats.ttft_dev, stats.ttft_ms, ttft_ms, cfg.ewma_alpha, ff),
    )


def observe_feedback(
    stats: ModelStats | None, cfg: LearningConfig, *, now: float, score: float
) -> ModelStats:
    """Add one quality score (0..1, e.g. from ``POST /feedback``) to ``stats``.

    Older counts are first decayed to ``now``; the older feedback counts are
    then multiplied by ``gamma``. Raises ``ValueError`` for a score outside 0..1.
    """
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"feedback score must be between 0 and 1; got {score!r}")
    if stats is None:
        stats = ModelStats(updated_at=now)
    tf = time_decay(cfg, now - stats.updated_at)
    g = cfg.gamma * tf
    lasting = stats.lasting * tf
    failures = lasting + (stats.failures - stats.lasting) * failure_decay(
        cfg, now - stats.updated_at
    )
    return ModelStats(
        n=stats.successes * tf + failures + stats.refusals * tf,
        successes=stats.successes * tf,
        failures=failures,
        refusals=stats.refusals * tf,
        latency_ms=stats.latency_ms,
        ttft_ms=stats.ttft_ms,
        feedback_sum=stats.feedback_sum * g + score,
        feedback_n=stats.feedback_n * g + 1.0,
        updated_at=max(now, stats.updated_at),
        lasting=lasting,
        streak=stats.streak,
        seen=stats.seen * tf,
        latency_dev=stats.latency_dev,
        ttft_dev=stats.ttft_dev,
    )


def outage_forgotten(stats: ModelStats) -> ModelStats:
    """``stats`` of a model whose breaker closed on its probe's success: what the model did
    while it failed says nothing of it now, and would keep it ranked last until a long run
    of answers outweighed it. Its failures and its times (an outage's timeouts fed them)
    are dropped; what it was before stays: its answers and refusals, the failures that
    came alone between them, and its feedback (as a model not yet tried, it ranked below a
    model answering all along for some 25 minutes at a call every 20 seconds, until
    enough answers outweighed the prior)."""
    return ModelStats(
        n=stats.successes + stats.lasting + stats.refusals,
        successes=stats.successes,
        failures=stats.lasting,
        refusals=stats.refusals,
        feedback_sum=stats.feedback_sum,
        feedback_n=stats.feedback_n,
        updated_at=stats.updated_at,
        lasting=stats.lasting,
        # (the outage's failures were no evidence of what it is either)
        seen=max(
            stats.successes + stats.lasting + stats.refusals,
            stats.seen - (stats.failures - stats.lasting),
        ),
    )
