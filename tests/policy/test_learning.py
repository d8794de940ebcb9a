from __future__ import annotations

import random

import pytest

from switchman._call import Call
from switchman.catalog._spec import ModelSpec
from switchman.policy._learning import (
    LearningConfig,
    ModelStats,
    decayed,
    observe,
    observe_feedback,
    time_decay,
)
from switchman.policy._scoring import rank

CFG = LearningConfig()


def obs(
    stats: ModelStats | None,
    outcome: str,
    *,
    now: float = 0.0,
    latency_ms: float | None = None,
    ttft_ms: float | None = None,
    cfg: LearningConfig = CFG,
) -> ModelStats:
    return observe(stats, cfg, now=now, outcome=outcome, latency_ms=latency_ms, ttft_ms=ttft_ms)


@pytest.mark.parametrize(
    ("outcome", "successes", "failures", "refusals"),
    [
        ("success", 1.0, 0.0, 0.0),
        ("refused", 0.0, 0.0, 1.0),
        ("content_filtered", 0.0, 0.0, 1.0),
        ("timeout", 0.0, 1.0, 0.0),
        ("error", 0.0, 1.0, 0.0),
    ],
)
def test_outcomes_are_counted_by_kind(
    outcome: str, successes: float, failures: float, refusals: float
) -> None:
    s = obs(None, outcome, now=5.0)
    assert (s.n, s.successes, s.failures, s.refusals) == (1.0, successes, failures, refusals)
    assert s.updated_at == 5.0


def test_a_429_is_a_failure_in_a_row_that_fades_on_the_short_clock_even_alone() -> None:
    """A model whose provider turns calls away reads less successful while it does (it
    kept most first attempts, each costing a retry and a wait), and recovers minutes after
    its 429s end: a lone 429 is not what the model is, as a lone error is."""
    healthy = obs(None, "success", latency_ms=100.0, ttft_ms=10.0)
    limited = obs(healthy, "rate_limited", now=1.0, latency_ms=9.0, ttft_ms=9.0)
    assert limited.failures == pytest.approx(1.0) and limited.lasting == 0.0
    assert (limited.latency_ms, limited.ttft_ms) == (100.0, 10.0)  # (no speed in a 429)
    answered = obs(limited, "success", now=2.0)
    assert answered.lasting == 0.0  # alone, still on the short clock
    erred = obs(obs(healthy, "error", now=1.0), "success", now=2.0)
    assert erred.lasting > 0.9  # (a lone error is what the model is)
    hour = 3_600.0
    assert decayed(answered, CFG, 2.0 + hour).failures < 0.02
    assert decayed(erred, CFG, 2.0 + hour).failures > 0.8
    # 429s after an error: the error was not alone between answers, and fades with them
    # (each 429 was moved to the long clock: 10 of them kept it shunned for hours; then
    # the error alone, an hour old, at full weight: recovery took twice as long)
    s = obs(healthy, "error", now=1.0)
    for i in range(10):
        s = obs(s, "rate_limited", now=2.0 + i)
    s = obs(s, "success", now=20.0)
    assert s.lasting == 0.0
    assert decayed(s, CFG, 20.0 + hour).failures < 0.2  # (11 failures: 2 ** -6 of them)
    # ... and after them (a provider's first answer as it recovers a 500), or among them
    for first, then in (("rate_limited", "error"), ("error", "rate_limited")):
        s = obs(obs(obs(healthy, first, now=1.0), then, now=2.0), "error", now=3.0)
        s = obs(s, "success", now=4.0)
        assert s.lasting == 0.0, (first, then)
    # a lone error between answers is still what the model is
    assert obs(obs(healthy, "error", now=1.0), "success", now=2.0).lasting > 0.9


def test_seen_counts_every_outcome_on_the_long_clock_without_gamma() -> None:
    s = None
    for i in range(200):
        s = obs(s, "success" if i % 10 else "error", now=float(i))
    assert s is not None
    assert s.n < 34 and s.seen == pytest.approx(200.0, rel=0.01)
    later = decayed(s, CFG, 199.0 + CFG.half_life_s)
    assert later.seen == pytest.approx(s.seen / 2, rel=0.01)
    assert obs(s, "cancelled", now=300.0).seen == s.seen  # (not the model's doing)
    rated = observe_feedback(s, CFG, now=199.0, score=0.5)
    assert rated.seen == s.seen


@pytest.mark.parametrize("outcome", ["context_exceeded", "unavailable", "cancelled"])
def test_outcomes_not_the_models_fault_are_ignored(outcome: str) -> None:
    before = obs(obs(None, "success", latency_ms=100.0), "error")
    assert obs(before, outcome, now=50.0, latency_ms=9999.0, ttft_ms=9999.0) is before
    assert obs(None, outcome, latency_ms=5.0) == ModelStats()


def test_older_counts_decay_by_gamma_per_observation() -> None:
    s = obs(obs(obs(None, "success"), "success"), "timeout")
    g = CFG.gamma
    assert s.n == pytest.approx(1 + g + g * g)
    assert s.successes == pytest.approx(g + g * g)
    assert s.failures == pytest.approx(1.0)


def test_latency_and_ttft_are_ewmas_and_errors_do_not_feed_them() -> None:
    s = obs(None, "success", latency_ms=100.0, ttft_ms=10.0)
    assert (s.latency_ms, s.ttft_ms) == (100.0, 10.0)
    s = obs(s, "success", latency_ms=200.0, ttft_ms=None)
    assert s.latency_ms == pytest.approx(120.0)  # 100 + 0.2 * (200 - 100)
    assert s.ttft_ms == 10.0
    s2 = obs(s, "error", latency_ms=1.0, ttft_ms=1.0)
    assert (s2.latency_ms, s2.ttft_ms) == (s.latency_ms, s.ttft_ms)
    assert s2.failures == 1.0
    # a timeout shows slowness: it does move the EWMA
    s3 = obs(s, "timeout", latency_ms=30_000.0)
    assert s3.latency_ms == pytest.approx(120.0 + 0.2 * (30_000.0 - 120.0))


def test_feedback_accumulates_with_gamma() -> None:
    s = observe_feedback(None, CFG, now=0.0, score=1.0)
    s = observe_feedback(s, CFG, now=0.0, score=0.0)
    assert s.feedback_sum == pytest.approx(CFG.gamma)
    assert s.feedback_n == pytest.approx(1.0 + CFG.gamma)
    assert s.n == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        observe_feedback(s, CFG, now=0.0, score=1.5)


def test_time_decay_halves_counts_per_half_life() -> None:
    s = obs(obs(None, "success", latency_ms=300.0), "refused")
    s = observe_feedback(s, CFG, now=0.0, score=0.8)
    later = decayed(s, CFG, CFG.half_life_s)
    assert later.n == pytest.approx(s.n / 2)
    assert later.successes == pytest.approx(s.successes / 2)
    assert later.refusals == pytest.approx(s.refusals / 2)
    assert later.feedback_sum == pytest.approx(0.4)
    assert later.feedback_n == pytest.approx(0.5)
    assert later.latency_ms == 300.0
    assert later.updated_at == CFG.half_life_s
    assert decayed(s, CFG, 0.0) is s
    assert time_decay(CFG, -5.0) == 1.0


def test_observation_after_a_pause_first_applies_time_decay() -> None:
    s = obs(None, "success", now=0.0)
    s = obs(s, "success", now=CFG.half_life_s)
    assert s.successes == pytest.approx(0.5 * CFG.gamma + 1.0)
    s = observe_feedback(s, CFG, now=2 * CFG.half_life_s, score=1.0)
    assert s.successes == pytest.approx((0.5 * CFG.gamma + 1.0) / 2)


@pytest.mark.parametrize(
    "kw", [{"gamma": 0.0}, {"gamma": 1.5}, {"half_life_s": 0.0}, {"ewma_alpha": 0.0}]
)
def test_learning_config_rejects_nonsense(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LearningConfig(**kw)


# -- the router learns ------------------------------------------------------------------------

A = ModelSpec(alias="a", provider="p", model_id="a")
B = ModelSpec(alias="b", provider="q", model_id="b")
CODE = Call(prompt="write a function", intent="code")


class World:
    """Two models serving intent "code", one observation each per simulated second."""

    def __init__(self) -> None:
        self.sim = random.Random(7)
        self.stats: dict[tuple[str, str], ModelStats] = {}
        self.now = 0.0

    def attempt(self, alias: str, p_success: float, latency_ms: float, quality: float) -> None:
        key = (alias, "code")
        ok = self.sim.random() < p_success
        lat = latency_ms * (0.8 + 0.4 * self.sim.random())
        self.stats[key] = observe(
            self.stats.get(key),
            CFG,
            now=self.now,
            outcome="success" if ok else "error",
            latency_ms=lat,
            ttft_ms=lat / 4,
        )
        if ok and self.sim.random() < 0.3:
            self.stats[key] = observe_feedback(self.stats[key], CFG, now=self.now, score=quality)

    def tick(self, a_success: float) -> None:
        self.now += 1.0
        self.attempt("a", a_success, 400.0, 0.9)
        self.attempt("b", 0.7, 1200.0, 0.5)

    def leader(self) -> str:
        return rank(CODE, [A, B], self.stats, now=self.now, input_tokens=10, rng=None)[0].alias

    def a_first_share(self) -> int:
        return sum(
            rank(CODE, [A, B], self.stats, now=self.now, input_tokens=10, rng=random.Random(seed))[
                0
            ].alias
            == "a"
            for seed in range(200)
        )


def test_learns_the_better_model_then_notices_it_degrade() -> None:
    world = World()
    assert world.a_first_share() in range(60, 141)  # no knowledge: a coin toss
    for _ in range(300):
        world.tick(a_success=0.95)
    assert world.leader() == "a"
    assert world.a_first_share() >= 180

    # a starts failing (fast errors: its latency EWMA stays good)
    switched_after = None
    for i in range(1, 101):
        world.tick(a_success=0.1)
        if world.leader() == "b":
            switched_after = i
            break
    assert switched_after is not None
    for _ in range(20):
        world.tick(a_success=0.1)
    assert world.leader() == "b"
    assert world.a_first_share() <= 20


def test_stats_relax_to_the_prior_after_several_half_lives() -> None:
    world = World()
    for _ in range(300):
        world.tick(a_success=0.95)
    fresh = rank(CODE, [A, B], {}, now=0.0, input_tokens=10, rng=None)
    learned = rank(CODE, [A, B], world.stats, now=world.now, input_tokens=10, rng=None)
    assert learned[0].score - learned[1].score > 1.0
    later = world.now + 10 * CFG.half_life_s
    relaxed = rank(CODE, [A, B], world.stats, now=later, input_tokens=10, rng=None)
    assert relaxed[0].score - relaxed[1].score < 0.05
    for r in relaxed:
        for name, value in r.factors.items():
            assert value == pytest.approx(fresh[0].factors[name], abs=0.02), name
    a = decayed(world.stats[("a", "code")], CFG, later)
    assert a.n < 0.05
    assert a.feedback_n < 0.05


def test_failures_fade_sooner_than_what_a_model_is() -> None:
    """An outage's failures count half after ``failure_half_life_s`` (ten minutes); the
    successes, refusals and feedback after ``half_life_s`` (six hours): a quiet night
    keeps what was learned, and a model that failed for a while is tried again."""
    s: ModelStats | None = None
    for outcome in ["success"] * 10 + ["refused"] * 2 + ["error"] * 10:
        s = observe(s, CFG, now=0.0, outcome=outcome, latency_ms=100.0, ttft_ms=50.0)
    assert s is not None
    s = observe_feedback(s, CFG, now=0.0, score=0.8)
    later = decayed(s, CFG, CFG.failure_half_life_s)
    assert later.failures == pytest.approx(s.failures / 2)
    kept = 0.5 ** (CFG.failure_half_life_s / CFG.half_life_s)
    assert later.successes == pytest.approx(s.successes * kept)
    assert later.refusals == pytest.approx(s.refusals * kept)
    assert later.feedback_n == pytest.approx(s.feedback_n * kept)
    assert later.n == pytest.approx(later.successes + later.failures + later.refusals)
    # an hour on: the failures are all but gone, the rest mostly kept
    hour = decayed(s, CFG, 3_600.0)
    assert hour.failures < s.failures / 50 and hour.successes > s.successes * 0.85
    # the next outcome decays them alike, then adds itself
    nxt = observe(s, CFG, now=3_600.0, outcome="success", latency_ms=None, ttft_ms=None)
    assert nxt.failures == pytest.approx(hour.failures * CFG.gamma)
    assert nxt.successes == pytest.approx(hour.successes * CFG.gamma + 1)
    assert CFG.half_life_s == 6 * 3_600.0 and CFG.failure_half_life_s == 600.0


def test_a_failure_that_comes_alone_is_what_the_model_is() -> None:
    """A model failing one call in five, a call every fifteen minutes: its failures come
    alone, between answers, and fade as its answers do, so its success rate reads about
    80% (99.96% when every failure faded in ten minutes). A run of failures, an outage,
    still fades in minutes."""
    s: ModelStats | None = None
    for i in range(201):
        outcome = "error" if i % 5 == 4 else "success"
        s = observe(s, CFG, now=i * 900.0, outcome=outcome, latency_ms=None, ttft_ms=None)
    assert s is not None
    now = decayed(s, CFG, 201 * 900.0)
    assert 0.72 < now.successes / now.n < 0.88, now.successes / now.n
    assert now.lasting == pytest.approx(now.failures, rel=0.05)
    # one failure, then an answer: the failure is kept as long as the answers
    one = obs(obs(obs(None, "success"), "error", now=60.0), "success", now=120.0)
    assert one.streak == 0 and one.lasting == pytest.approx(one.failures)
    hour = decayed(one, CFG, 3_720.0)
    assert hour.failures == pytest.approx(one.failures * time_decay(CFG, 3_600.0))
    # ten in a row, then an answer: an outage's failures are not what the model is
    out = obs(None, "success")
    for t in range(1, 11):
        out = obs(out, "error", now=t * 60.0)
    assert out.streak == 10 and out.lasting == 0.0
    back = obs(out, "success", now=3_600.0)
    assert back.streak == 0 and back.lasting == 0.0 and back.failures < 0.3


def test_a_speed_measured_long_ago_gives_way_to_one_measured_now() -> None:
    """One slow answer, then a quiet hour, then a fast one: the average is mostly the fast
    one (a slow spell long past said little of the model now); within a minute the usual
    ``ewma_alpha`` holds."""
    s: ModelStats | None = None
    for k in range(30):
        s = observe(s, CFG, now=float(k), outcome="success", latency_ms=800.0, ttft_ms=300.0)
    s = observe(s, CFG, now=30.0, outcome="success", latency_ms=8_000.0, ttft_ms=4_000.0)
    assert s is not None and s.latency_ms == pytest.approx(800 + 0.2 * 7_200, rel=0.01)
    soon = observe(s, CFG, now=40.0, outcome="success", latency_ms=800.0, ttft_ms=300.0)
    assert soon.latency_ms == pytest.approx(s.latency_ms * 0.8 + 800 * 0.2, rel=0.01)
    later = observe(s, CFG, now=3_630.0, outcome="success", latency_ms=800.0, ttft_ms=300.0)
    assert later.latency_ms is not None and later.latency_ms < 830.0


def test_a_fresh_look_counts_for_half_the_speed_and_its_deviation_keeps_the_distance() -> None:
    """A model ranked last for a slow spell is looked at again now and then (the ranking's
    ``freshness``): that measure counts for half of what the model is now, not a fifth (a
    recovered model took a thousand calls to show it), nor all (one fast answer of a model
    slow one time in five made it look fast); how far it fell from the old average stays in
    the deviation, so the ranking's draws are unsure of the model until more measures
    come."""
    s: ModelStats | None = None
    for k in range(30):
        s = observe(s, CFG, now=float(k), outcome="success", latency_ms=4_000.0, ttft_ms=1_000.0)
    assert s is not None and s.latency_dev == pytest.approx(0.0, abs=1e-6)
    blended = observe(s, CFG, now=30.0, outcome="success", latency_ms=800.0, ttft_ms=200.0)
    assert blended.latency_ms == pytest.approx(4_000 * 0.8 + 800 * 0.2, rel=0.01)
    looked = observe(
        s, CFG, now=30.0, outcome="success", latency_ms=800.0, ttft_ms=200.0, fresh_look=True
    )
    assert looked.latency_ms == pytest.approx(4_000 * 0.5 + 800 * 0.5, rel=0.01)
    assert looked.ttft_ms == pytest.approx(1_000 * 0.5 + 200 * 0.5, rel=0.01)
    assert looked.latency_dev == pytest.approx(0.2 * 3_200, rel=0.01)
    assert looked.ttft_dev == pytest.approx(0.2 * 800, rel=0.01)


def test_the_deviation_of_speed_is_averaged_as_the_speed_is() -> None:
    s = obs(None, "success", latency_ms=1_000.0, ttft_ms=100.0)
    assert s.latency_dev is None  # (one measure: no distance yet)
    s = obs(s, "success", latency_ms=1_500.0, ttft_ms=100.0)
    assert s.latency_dev == 500.0 and s.ttft_dev == 0.0
    s = obs(s, "success", latency_ms=1_100.0, ttft_ms=150.0)
    # |1100 - 1100| (the average before it: 1000 * 0.8 + 1500 * 0.2)
    assert s.latency_dev == pytest.approx(500.0 * 0.8, rel=1e-6)
    assert s.ttft_dev == pytest.approx(50.0 * 0.2, rel=1e-6)
    assert decayed(s, CFG, 3_600.0).latency_dev == s.latency_dev
