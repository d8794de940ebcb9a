"""Ranking eligible models for a call: a weighted sum of explainable factors.

Each factor is first normalised to 0..1 (1 = best), then multiplied by its
weight; ``Ranked.factors`` keeps every weighted contribution, so the trace
shows why a model ranked where it did. The factors:

- ``trust``: untrusted 0, standard 0.5, trusted 1;
- ``capability``: 1 when the call's intent is one the model specialises in
  (listed in its ``intents`` or ``capabilities``), else the share of the
  model's capability tags the call asks for (a model whose tags are all
  wanted beats a generalist that has them among many);
- ``cost``: estimated cost of the call (input plus output room at list
  price) on a log scale relative to the cheapest candidate: 1 for the
  cheapest, 0 for 1000 times dearer or more. A free model (below $0.000001)
  scores 1 and the paid ones are scored against the cheapest paid one, so a
  free model does not make every paid one worthless;
- ``context``: share of the context window left after input and output room;
- ``latency`` / ``ttft``: the fastest candidate's learned EWMA divided by
  this model's, each plus ``LATENCY_FLOOR_MS`` (``TTFT_FLOOR_MS``) so that a few
  milliseconds either way count for little, blended toward an optimistic 1.0 by
  confidence ``n / (n + 2)`` (unknown = 1.0, as fast as the best, so an untried
  model can still win);
- ``success``: success rate for the intent, Beta(1, 1) prior (mean 0.5);
- ``refusal``: 1 - refusal rate, Beta(0.5, 4.5) prior (mean rate 0.1);
- ``feedback``: mean feedback score, Beta(1, 1) prior (mean 0.5).

- ``freshness``: only on a model put first to be heard from again (below).

``latency``, ``ttft`` and ``feedback`` describe answers that arrive, so
their contributions are multiplied by the success rate: a model that is fast
and liked when it works, but rarely works, does not stay on top.

Learned statistics are looked up under ``(alias, call.intent)`` and, when
missing, under ``(alias, "*")``: the dispatcher may keep such an aggregate
over all intents (observe each outcome under both keys), which then serves
intents a model has not been seen on. Counts are time-decayed to ``now``
(see ``switchman.policy._learning``).

Exploration (Thompson sampling): given an ``rng``, the success, refusal and
feedback rates are drawn around their posterior means instead of taking the
means: a Gaussian draw with the Beta posterior's standard deviation, clipped to
0..1 (a cheap stand-in for a Beta draw on the hot path, with real tails so an
untried model keeps a fair chance); ``exploration`` scales the spread (0 = the
means). So are the latency and TTFT averages, by how far their measures stray
(``ModelStats.latency_dev``, ``SPEED_SD``), each against the fastest drawn, for the
models that cost about what the leader costs (``SPEED_DRAW_COST``). Only a
model costing at most ``EXPLORE_COST`` times the model the means put first is drawn,
save in ``DEAR_SHARE`` of rankings (times ``exploration``) and where callers rate the
answers (feedback): untried models all look alike, and with some sixty of them in a
catalog one's draw came out on top in most rankings, so ``auto`` kept trying the dearest
at random (25-35 times the cost of its best choice at a call a minute), with nothing to
learn from it that callers had asked for.
The feedback rate is drawn only for a model that has been rated: calls
teach success and refusal rates, so their spread narrows as traffic flows, but
feedback comes only when callers send it, and a draw from its prior alone would
add the same noise to every score for ever where nobody rates (a dearer twin of
the best model took over a quarter of the calls). And in ``FRESHEN_SHARE`` of
rankings (times ``exploration``, up to 1) the model heard from least recently (one
never tried first), ``STALE_S`` ago or more and at most ``FRESHEN_COST`` times the cost
of the model ranked first, is put first (its ``freshness`` factor lifting its score just above
the best): estimates of a model that failed or slowed down for a while would
otherwise stay as they were for as long as it is not tried, and a recovered model
never be seen to recover.
With ``rng`` None the ranking is deterministic. Ties keep the order of ``models``.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from typing import Final

from switchman._call import Call
from switchman._result import Ranked
from switchman.catalog._spec import ModelSpec
from switchman.catalog._spec import Weights as Weights
from switchman.policy._eligibility import VERBOSITY_OUTPUT_TOKENS, output_tokens
from switchman.policy._learning import LearningConfig, ModelStats

TRUST_SCORE: Final = {"untrusted": 0.0, "standard": 0.5, "trusted": 1.0}
#: Beta prior pseudo-counts (successes, non-successes) etc.
SUCCESS_PRIOR: Final = (1.0, 1.0)
REFUSAL_PRIOR: Final = (0.5, 4.5)
FEEDBACK_PRIOR: Final = (1.0, 1.0)
#: pseudo-observations behind the neutral latency prior
LATENCY_PRIOR_N: Final = 2.0
NEUTRAL: Final = 0.5
#: an untried model is assumed as fast as the fastest until seen (optimism keeps
#: exploration alive: a model never tried must be able to outrank a known one)
UNKNOWN_SPEED: Final = 1.0
COST_FLOOR_USD: Final = 1e-6
#: a draw of a model's speed spreads by this many mean absolute deviations of its
#: measures, over the square root of the measures its average stands for: about half the
#: average's own error (1.25). Models alike in speed share the calls they are alike for
#: (the one whose average was a few milliseconds lower took every call until it rose:
#: runs of up to 51-220 calls to one of three noisy models), and a model slow one answer
#: in five does not win by luck (at 1.25 it took 8-10% of the calls)
SPEED_SD: Final = 0.6
#: the deviation assumed, per millisecond of the average, before a second measure
UNSEEN_DEV: Final = 0.25
#: speeds are drawn for the models that cost at most this many times the model the
#: averages put first: a dearer model comes first by being faster, not by a draw (drawn,
#: a twin at 1.5 times the price of one as fast took 28 to 36% of first attempts, and one
#: at 1.1 times 42 to 43%, against 33 to 35%)
SPEED_DRAW_COST: Final = 1.05
#: added to both sides of a latency (TTFT) ratio: differences far below this many
#: milliseconds are not worth a dearer model, and one slow answer of a model that answers
#: in 1 ms (against 0.7 ms) must not look like a 7x slower model for ever
LATENCY_FLOOR_MS: Final = 100.0
TTFT_FLOOR_MS: Final = 50.0
COST_SPAN: Final = math.log(1000.0)
#: with exploration on, the share of rankings (times ``exploration``, up to 1) that put
#: first the model heard from least recently, when that was ``STALE_S`` ago or more: a
#: model that slowed down or failed for a while keeps the estimates it earned then, as
#: nothing but a call to it shows its recovery, and would rank last for tens of minutes
#: (its breaker, half-open, waits for a call to try it)
FRESHEN_SHARE: Final = 0.02
STALE_S: Final = 5.0
#: a Thompson draw may put first only a model that costs at most this many times the
#: model the learned means put first: exploring the catalog's dearest models by luck made
#: ``auto`` cost 25-35 times its best choice, every model looking alike untried
EXPLORE_COST: Final = 2.0
#: ... except in this share of rankings (times ``exploration``, up to 1), where every
#: model's rates are drawn: a dearer model that answers better is found, at that cost
DEAR_SHARE: Final = 0.05
#: ... and where callers rate the answers: at least this share of what the model the
#: means put first answered was rated (and ``RATED_MIN`` ratings, faded). What a model's
#: answers are worth shows only once it is tried, so every model is drawn (a better model
#: at three times the price was never tried otherwise); one stray rating is not enough
#: (it made an intent's calls cost 13-22 times the cheapest model's for a day)
RATED_SHARE: Final = 0.25
RATED_MIN: Final = 3.0
#: a model put first so costs at most this many times the model ranked first
FRESHEN_COST: Final = EXPLORE_COST
_LIFT: Final = 1e-9

FACTORS: Final = (
    "trust",
    "capability",
    "cost",
    "context",
    "latency",
    "ttft",
    "success",
    "refusal",
    "feedback",
)


#: the ranking keeps each model's score, and the factors of the first this many: a whole
#: catalog's (87 models for ``auto``) made a result's trace 27 KB, in every stored job
FACTORS_KEPT: Final = 10


_DEFAULT_WEIGHTS: Final = Weights()
#: standard normal draws come from this fixed pool, picked by the caller's seeded rng
#: (three indices from one ``getrandbits`` call): ``random.gauss`` in pure Python was a
#: fifth of ranking a large catalog. 2**14 points reach past 3.8 standard deviations.
_POOL_BITS: Final = 14
_POOL_MASK: Final = (1 << _POOL_BITS) - 1
_NORMALS: Final = tuple(
    statistics.NormalDist().inv_cdf((i + 0.5) / (1 << _POOL_BITS)) for i in range(1 << _POOL_BITS)
)
_DEFAULT_LEARNING: Final = LearningConfig()
#: sqrt(6): scales (U1 + U2 - 1), of variance 1/6, to unit variance


def rank(
    call: Call,
    models: Sequence[ModelSpec],
    stats: Mapping[tuple[str, str], ModelStats],
    *,
    now: float,
    input_tokens: int,
    rng: random.Random | None,
    weights: Weights = _DEFAULT_WEIGHTS,
    learning: LearningConfig = _DEFAULT_LEARNING,
    exploration: float = 1.0,
    freshen: bool = True,
) -> tuple[Ranked, ...]:
    """Rank ``models`` for ``call``, best first (see the module docstring).

    ``models`` are normally the eligible ones; ``input_tokens`` the same
    estimate eligibility used. ``rng`` (seeded by the caller) turns on
    Thompson sampling; the same seed and inputs give the same ranking.
    ``freshen``: whether the model heard from least recently may be put first (not for a
    ranking that does not order the attempts: a named route's).
    """
    if not models:
        return ()
    w = weights
    intent = call.intent
    asked = call.capabilities
    wanted = call.params.max_tokens
    full = wanted is None and call.options.verbosity == "full"  # room depends on the model
    if wanted is None:
        wanted = VERBOSITY_OUTPUT_TOKENS[call.options.verbosity]
    if exploration <= 0.0:
        rng = None
    half_life = learning.half_life_s
    failure_half_life = learning.failure_half_life_s
    # (the measures an average of speed stands for: its weight is gone after as many)
    ewma_n = (2.0 - learning.ewma_alpha) / learning.ewma_alpha
    sqrt = math.sqrt

    # pass 1: per-model output room, cost, stats and their time decay; the best of each
    outs: list[int] = []
    costs: list[float] = []
    found: list[ModelStats | None] = []
    decay: list[float] = []
    failing: list[float] = []  # (the failures' decay)
    best_latency = math.inf
    best_ttft = math.inf
    for m in models:
        if full:
            out = output_tokens(call, m, input_tokens)
        else:
            out = wanted if wanted < m.max_output_tokens else m.max_output_tokens
        outs.append(out)
        if m.long_input_above is None or input_tokens <= m.long_input_above:
            costs.append(
                (input_tokens * m.input_per_mtok + out * m.output_per_mtok) / 1e6
                + m.request_fee_usd
            )
        else:  # billed at its long-input prices
            costs.append(m.cost(input_tokens, out))
        s = stats.get((m.alias, intent))
        if s is None:
            s = stats.get((m.alias, "*"))
        found.append(s)
        if s is None:
            decay.append(0.0)
            failing.append(0.0)
            continue
        elapsed = now - s.updated_at
        if elapsed > 0.0:
            decay.append(0.5 ** (elapsed / half_life))
            failing.append(0.5 ** (elapsed / failure_half_life))
        else:
            decay.append(1.0)
            failing.append(1.0)
        if s.latency_ms is not None and s.latency_ms < best_latency:
            best_latency = s.latency_ms
        if s.ttft_ms is not None and s.ttft_ms < best_ttft:
            best_ttft = s.ttft_ms
    cheapest = min(costs)
    if cheapest < COST_FLOOR_USD:  # a free model: the paid ones are scored among themselves
        cheapest = min((c for c in costs if c >= COST_FLOOR_USD), default=COST_FLOOR_USD)

    # pass 2: factors and scores
    w_trust, w_capability, w_cost, w_context = w.trust, w.capability, w.cost, w.context
    w_latency, w_ttft, w_success, w_refusal, w_feedback = (
        w.latency,
        w.ttft,
        w.success,
        w.refusal,
        w.feedback,
    )
    s_a, s_ab = SUCCESS_PRIOR[0], SUCCESS_PRIOR[0] + SUCCESS_PRIOR[1]
    r_a, r_ab = REFUSAL_PRIOR[0], REFUSAL_PRIOR[0] + REFUSAL_PRIOR[1]
    f_a, f_ab = FEEDBACK_PRIOR[0], FEEDBACK_PRIOR[0] + FEEDBACK_PRIOR[1]
    # the Thompson draws: mean + spread * sd * z, z standard normal (a Gaussian stand-in
    # for the Beta posterior: its tails keep an untried model's chances real)
    bits = rng.getrandbits if rng is not None else None  # pool indices
    spread = exploration
    asked_set = frozenset(asked)
    # pass 2: each model's fixed factors and its learned rates' means, and the model the
    # means put first (the leader)
    rows: list[tuple[float, ...]] = []
    leader, leader_score = 0, -math.inf
    for i, m in enumerate(models):
        caps = m.capabilities
        if intent != "unknown" and (intent in m.intents or intent in caps):
            capability = 1.0
        elif asked_set and caps:
            capability = len(asked_set.intersection(caps)) / len(caps)
        else:
            capability = 0.0
        cost = costs[i]
        cost_f = 1.0 - math.log(cost / cheapest) / COST_SPAN if cost > cheapest else 1.0
        if cost_f < 0.0:
            cost_f = 0.0
        used = input_tokens + outs[i] if m.context_includes_output else input_tokens
        headroom = 1.0 - used / m.context_window
        if headroom < 0.0:
            headroom = 0.0

        s = found[i]
        latency = ttft = UNKNOWN_SPEED
        conf = 0.0
        lat_ms = lat_sd = ttft_ms = ttft_sd = 0.0  # (a measure and how unsure of it)
        if s is None:
            n = hits = refusals = fb_sum = fb_n = seen = 0.0
        else:
            f = decay[i]
            seen = s.seen * f
            hits = s.successes * f
            refusals = s.refusals * f
            n = hits + s.lasting * f + (s.failures - s.lasting) * failing[i] + refusals
            fb_sum = s.feedback_sum * f
            fb_n = s.feedback_n * f
            conf = n / (n + LATENCY_PRIOR_N)
            unsure = SPEED_SD / sqrt(min(max(n, 1.0), ewma_n))
            if s.latency_ms is not None:
                lat_ms = s.latency_ms
                raw = (best_latency + LATENCY_FLOOR_MS) / (lat_ms + LATENCY_FLOOR_MS)
                latency = UNKNOWN_SPEED + (raw - UNKNOWN_SPEED) * conf
                dev = s.latency_dev if s.latency_dev is not None else UNSEEN_DEV * lat_ms
                lat_sd = unsure * dev
            if s.ttft_ms is not None:
                ttft_ms = s.ttft_ms
                raw = (best_ttft + TTFT_FLOOR_MS) / (ttft_ms + TTFT_FLOOR_MS)
                ttft = UNKNOWN_SPEED + (raw - UNKNOWN_SPEED) * conf
                dev = s.ttft_dev if s.ttft_dev is not None else UNSEEN_DEV * ttft_ms
                ttft_sd = unsure * dev
        # Beta posterior means (a / (a + b)) of the success, refusal and feedback rates
        ab = n + s_ab
        success = (hits + s_a) / ab
        rab = n + r_ab
        refused = (refusals + r_a) / rab
        if seen > n:  # (the draws' spread: all the evidence within the long clock)
            ab, rab = seen + s_ab, seen + r_ab
        fab = fb_n + f_ab
        feedback = (fb_sum + f_a) / fab
        c_trust = w_trust * TRUST_SCORE[m.trust_tier]
        c_capability = w_capability * capability
        c_cost = w_cost * cost_f
        c_context = w_context * headroom
        mean = (
            c_trust
            + c_capability
            + c_cost
            + c_context
            + (w_latency * latency + w_ttft * ttft + w_feedback * feedback + w_success) * success
            + w_refusal * (1.0 - refused)
        )
        if mean > leader_score:
            leader, leader_score = i, mean
        rows.append(
            (
                c_trust,
                c_capability,
                c_cost,
                c_context,
                latency,
                ttft,
                success,
                ab,
                refused,
                rab,
                feedback,
                fab,
                fb_n,
                conf,
                lat_ms,
                lat_sd,
                ttft_ms,
                ttft_sd,
            )
        )

    # pass 3: the Thompson draws, for the models that cost at most ``EXPLORE_COST`` times
    # the leader (a dearer model is put first by what is known of it, never by luck),
    # unless callers rate the leader's answers: only trying a model shows how good its
    # answers are
    dearest = max(costs[leader] * EXPLORE_COST, COST_FLOOR_USD)
    known = found[leader]
    rated = (
        known is not None
        and (fb := known.feedback_n * decay[leader]) >= RATED_MIN
        and fb >= RATED_SHARE * known.n * decay[leader]
    )
    if (
        bits is not None
        and rng is not None
        and (rated or rng.random() < DEAR_SHARE * min(spread, 1.0))
    ):
        dearest = math.inf  # (now and then every model's draw: a dearer one may be better)
    # the speeds drawn, of the models drawn whose speed is known: each against the
    # fastest drawn (against the fastest average, the model put first by its averages
    # lost by every draw above them and gained by none below, and models not drawn won)
    lat_drawn: list[float | None] = [None] * len(rows)
    ttft_drawn: list[float | None] = [None] * len(rows)
    fast_lat = fast_ttft = math.inf
    if bits is not None:
        alike = max(costs[leader] * SPEED_DRAW_COST, COST_FLOOR_USD)
        for i, row in enumerate(rows):
            if costs[i] > alike:
                continue
            _, lat_ms, lat_sd, ttft_ms, ttft_sd = row[13:]
            r = bits(2 * _POOL_BITS)
            if lat_ms > 0.0:
                drawn = lat_ms + spread * lat_sd * _NORMALS[r & _POOL_MASK]
                lat_drawn[i] = drawn = drawn if drawn > 0.0 else 0.0
                fast_lat = drawn if drawn < fast_lat else fast_lat
            if ttft_ms > 0.0:
                drawn = ttft_ms + spread * ttft_sd * _NORMALS[r >> _POOL_BITS]
                ttft_drawn[i] = drawn = drawn if drawn > 0.0 else 0.0
                fast_ttft = drawn if drawn < fast_ttft else fast_ttft
    ranked: list[tuple[float, int, tuple[float, ...]]] = []
    for i, row in enumerate(rows):
        c_trust, c_capability, c_cost, c_context, latency, ttft = row[:6]
        success, ab, refused, rab, feedback, fab, fb_n = row[6:13]
        if bits is not None and costs[i] <= dearest:
            r = bits(3 * _POOL_BITS)
            z1 = _NORMALS[r & _POOL_MASK]
            z2 = _NORMALS[(r >> _POOL_BITS) & _POOL_MASK]
            z3 = _NORMALS[r >> (2 * _POOL_BITS)]
            conf = row[13]
            if (speed := lat_drawn[i]) is not None:
                raw = (fast_lat + LATENCY_FLOOR_MS) / (speed + LATENCY_FLOOR_MS)
                latency = UNKNOWN_SPEED + (raw - UNKNOWN_SPEED) * conf
            if (speed := ttft_drawn[i]) is not None:
                raw = (fast_ttft + TTFT_FLOOR_MS) / (speed + TTFT_FLOOR_MS)
                ttft = UNKNOWN_SPEED + (raw - UNKNOWN_SPEED) * conf
            success += spread * sqrt(success * (1.0 - success) / (ab + 1.0)) * z1
            success = 0.0 if success < 0.0 else 1.0 if success > 1.0 else success
            refused += spread * sqrt(refused * (1.0 - refused) / (rab + 1.0)) * z2
            refused = 0.0 if refused < 0.0 else 1.0 if refused > 1.0 else refused
            if fb_n > 0.0:  # (unrated: no draw, or the prior's spread would never shrink)
                feedback += spread * sqrt(feedback * (1.0 - feedback) / (fab + 1.0)) * z3
                feedback = 0.0 if feedback < 0.0 else 1.0 if feedback > 1.0 else feedback
        c_latency = w_latency * latency * success
        c_ttft = w_ttft * ttft * success
        c_success = w_success * success
        c_refusal = w_refusal * (1.0 - refused)
        c_feedback = w_feedback * feedback * success
        score = (
            c_trust
            + c_capability
            + c_cost
            + c_context
            + c_latency
            + c_ttft
            + c_success
            + c_refusal
            + c_feedback
        )
        factors = (
            c_trust,
            c_capability,
            c_cost,
            c_context,
            c_latency,
            c_ttft,
            c_success,
            c_refusal,
            c_feedback,
        )
        ranked.append((-score, i, factors))
    ranked.sort()
    if (
        freshen
        and rng is not None
        and len(ranked) > 1
        and rng.random() < FRESHEN_SHARE * min(spread, 1.0)
    ):
        _freshen(ranked, found, costs, now)
    return tuple(
        Ranked(
            alias=models[i].alias,
            score=-neg,
            factors=_named(factors) if k < FACTORS_KEPT else {},
        )
        for k, (neg, i, factors) in enumerate(ranked)
    )


def _named(f: tuple[float, ...]) -> dict[str, float]:
    """The factors ``f`` by name (in the order ``rank`` computes them, then ``freshness``
    when it lifted a model to the top)."""
    named = {
        "trust": f[0],
        "capability": f[1],
        "cost": f[2],
        "context": f[3],
        "latency": f[4],
        "ttft": f[5],
        "success": f[6],
        "refusal": f[7],
        "feedback": f[8],
    }
    if len(f) > 9:
        named["freshness"] = f[9]
    return named


def _freshen(
    ranked: list[tuple[float, int, tuple[float, ...]]],
    found: Sequence[ModelStats | None],
    costs: Sequence[float],
    now: float,
) -> None:
    """Put first the model heard from least recently, if that was ``STALE_S`` ago or more
    and it costs at most ``FRESHEN_COST`` times the best-ranked one; a model never tried
    before any (the best-ranked of them): with ``exploration`` low its draw's spread is
    too narrow to beat a model that answered once, and a cheaper twin of the model tried
    first went untried for thousands of calls. Its ``freshness`` factor is what lifts it
    there. In place."""
    top_neg, top_i, _ = ranked[0]
    most = max(costs[top_i] * FRESHEN_COST, COST_FLOOR_USD)
    pick, oldest = 0, now - STALE_S
    for k in range(1, len(ranked)):
        i = ranked[k][1]
        s = found[i]
        if costs[i] > most:
            continue
        if s is None:
            if oldest > -math.inf:
                pick, oldest = k, -math.inf
        elif s.updated_at <= oldest:
            pick, oldest = k, s.updated_at
    if pick:
        neg, i, factors = ranked.pop(pick)
        ranked.insert(0, (top_neg - _LIFT, i, (*factors, neg - top_neg + _LIFT)))
