from __future__ import annotations

import random
from typing import Any

import attrs
import pytest

from switchman._call import Call, Options
from switchman.catalog._spec import ModelSpec
from switchman.policy._learning import LearningConfig, ModelStats, observe, observe_feedback
from switchman.policy._scoring import (
    DEAR_SHARE,
    EXPLORE_COST,
    FACTORS,
    FACTORS_KEPT,
    FRESHEN_SHARE,
    STALE_S,
    Weights,
    rank,
)

CFG = LearningConfig()
CALL = Call(prompt="hello")


def model(alias: str, **kw: Any) -> ModelSpec:
    kw.setdefault("provider", "p")
    kw.setdefault("model_id", alias)
    kw.setdefault("input_per_mtok", 1.0)
    kw.setdefault("output_per_mtok", 1.0)
    return ModelSpec(alias=alias, **kw)


def order(models: list[ModelSpec], call: Call = CALL, **kw: Any) -> list[str]:
    kw.setdefault("stats", {})
    stats = kw.pop("stats")
    kw.setdefault("rng", None)
    kw.setdefault("now", 0.0)
    kw.setdefault("input_tokens", 100)
    return [r.alias for r in rank(call, models, stats, **kw)]


def history(
    outcomes: list[str], latency_ms: float | None = None, ttft_ms: float | None = None
) -> ModelStats:
    s: ModelStats | None = None
    for outcome in outcomes:
        s = observe(s, CFG, now=0.0, outcome=outcome, latency_ms=latency_ms, ttft_ms=ttft_ms)
    assert s is not None
    return s


def test_empty() -> None:
    assert rank(CALL, [], {}, now=0.0, input_tokens=1, rng=None) == ()


def test_factors_are_all_present_and_sum_to_the_score() -> None:
    ranking = rank(CALL, [model("a"), model("b")], {}, now=0.0, input_tokens=10, rng=None)
    for r in ranking:
        assert tuple(r.factors) == FACTORS
        assert r.score == pytest.approx(sum(r.factors.values()))


def test_prefers_cheaper_all_else_equal() -> None:
    dear = model("dear", input_per_mtok=30.0, output_per_mtok=60.0)
    cheap = model("cheap", input_per_mtok=0.3, output_per_mtok=0.6)
    ranking = rank(CALL, [dear, cheap], {}, now=0.0, input_tokens=100, rng=None)
    assert [r.alias for r in ranking] == ["cheap", "dear"]
    assert ranking[0].factors["cost"] == 1.0
    # 100x dearer on a 1000x log span: 1 - 2/3
    assert ranking[1].factors["cost"] == pytest.approx(1 / 3)


def test_free_models_leave_the_paid_ones_scored_among_themselves() -> None:
    """A free model scores 1 for cost; the paid ones are scored against the cheapest paid
    one (against a floor of $0.000001, any call above $0.001 scored 0 and cost stopped
    counting among 66 of 87 models whenever a free one was eligible)."""
    free = model("free", input_per_mtok=0.0, output_per_mtok=0.0)
    tiny = model("tiny", input_per_mtok=0.0, output_per_mtok=0.0001)  # ~$1e-7
    paid = model("paid", input_per_mtok=0.3, output_per_mtok=0.6)
    dear = model("dear", input_per_mtok=30.0, output_per_mtok=60.0)
    ranking = {
        r.alias: r
        for r in rank(CALL, [dear, paid, tiny, free], {}, now=0.0, input_tokens=100, rng=None)
    }
    assert ranking["free"].factors["cost"] == ranking["tiny"].factors["cost"] == 1.0
    assert ranking["paid"].factors["cost"] == 1.0
    assert ranking["dear"].factors["cost"] == pytest.approx(1 / 3)  # 100x on a 1000x span


def test_prefers_more_trusted_all_else_equal() -> None:
    models = [
        model("u", trust_tier="untrusted"),
        model("s", trust_tier="standard"),
        model("t", trust_tier="trusted"),
    ]
    ranking = rank(CALL, models, {}, now=0.0, input_tokens=10, rng=None)
    assert [r.alias for r in ranking] == ["t", "s", "u"]
    assert [r.factors["trust"] for r in ranking] == [1.0, 0.5, 0.0]


def test_prefers_faster_all_else_equal() -> None:
    stats = {
        ("slow", "unknown"): history(["success"] * 20, latency_ms=3000.0, ttft_ms=900.0),
        ("fast", "unknown"): history(["success"] * 20, latency_ms=500.0, ttft_ms=100.0),
    }
    ranking = rank(CALL, [model("slow"), model("fast")], stats, now=0.0, input_tokens=10, rng=None)
    assert [r.alias for r in ranking] == ["fast", "slow"]
    fast, slow = ranking
    assert fast.factors["latency"] > slow.factors["latency"]
    assert fast.factors["ttft"] > slow.factors["ttft"]
    assert fast.factors["success"] == slow.factors["success"]


def test_unknown_latency_is_optimistic_so_untried_models_get_explored() -> None:
    stats = {
        ("slow", "unknown"): history(["success"] * 50, latency_ms=5000.0),
        ("fast", "unknown"): history(["success"] * 50, latency_ms=500.0),
        ("new", "unknown"): history(["success"] * 50),
    }
    ranking = {
        r.alias: r.factors["latency"]
        for r in rank(
            CALL,
            [model("slow"), model("fast"), model("new")],
            stats,
            now=0.0,
            input_tokens=10,
            rng=None,
        )
    }
    assert ranking["new"] >= ranking["fast"] > ranking["slow"]


def test_refusals_and_failures_lower_the_rank() -> None:
    stats = {
        ("refuser", "unknown"): history(["success", "refused"] * 10),
        ("failer", "unknown"): history(["success", "error"] * 10),
        ("good", "unknown"): history(["success"] * 20),
    }
    ranking = rank(
        CALL,
        [model("refuser"), model("failer"), model("good")],
        stats,
        now=0.0,
        input_tokens=10,
        rng=None,
    )
    assert [r.alias for r in ranking] == ["good", "failer", "refuser"]
    by = {r.alias: r.factors for r in ranking}
    assert by["refuser"]["refusal"] < by["failer"]["refusal"] == by["good"]["refusal"]
    assert by["good"]["success"] > by["failer"]["success"]


def test_fast_liked_but_failing_model_does_not_win() -> None:
    """Speed and feedback count only as far as the model answers at all."""
    flaky = history(["error", "success"] * 10, latency_ms=100.0, ttft_ms=20.0)
    steady = history(["success"] * 20, latency_ms=2000.0, ttft_ms=400.0)
    for _ in range(10):
        flaky = observe_feedback(flaky, CFG, now=0.0, score=1.0)
        steady = observe_feedback(steady, CFG, now=0.0, score=0.5)
    stats = {("flaky", "unknown"): flaky, ("steady", "unknown"): steady}
    ranking = rank(
        CALL, [model("flaky"), model("steady")], stats, now=0.0, input_tokens=10, rng=None
    )
    assert [r.alias for r in ranking] == ["steady", "flaky"]
    steady_r, flaky_r = ranking
    assert flaky_r.factors["latency"] > steady_r.factors["latency"]
    assert steady_r.factors["success"] - flaky_r.factors["success"] > 0.5


def test_capability_match_and_intent_specialists() -> None:
    call = Call(prompt="x", intent="code", capabilities=("json",))
    specialist = model("spec", intents=("code",))
    tagged = model("tagged", capabilities=("code", "json"))
    narrow = model("narrow", capabilities=("json",))
    broad = model("broad", capabilities=("json", "vision", "tools", "audio"))
    plain = model("plain")
    by = {
        r.alias: r.factors["capability"]
        for r in rank(
            call,
            [plain, broad, narrow, tagged, specialist],
            {},
            now=0.0,
            input_tokens=10,
            rng=None,
        )
    }
    assert by == {"spec": 0.5, "tagged": 0.5, "narrow": 0.5, "broad": 0.125, "plain": 0.0}


def test_context_headroom_prefers_bigger_window() -> None:
    small = model("small", context_window=4000)
    big = model("big", context_window=200_000)
    ranking = rank(CALL, [small, big], {}, now=0.0, input_tokens=976, rng=None)
    assert [r.alias for r in ranking] == ["big", "small"]
    # (976 + 1024) / 4000 used -> half left, times weight 0.25
    assert ranking[1].factors["context"] == pytest.approx(0.125)
    # verbosity changes the output room, hence the headroom
    full = Call(prompt="x", options=Options(verbosity="full"))
    r = rank(full, [small], {}, now=0.0, input_tokens=976, rng=None)[0]
    assert r.factors["context"] == 0.0


def test_headroom_counts_output_only_where_it_shares_the_window() -> None:
    shared = model("shared", context_window=4000)
    apart = attrs.evolve(model("apart", context_window=4000), context_includes_output=False)
    by = {r.alias: r for r in rank(CALL, [shared, apart], {}, now=0.0, input_tokens=976, rng=None)}
    assert by["shared"].factors["context"] == pytest.approx(0.125)  # (976 + 1024) of 4000
    assert by["apart"].factors["context"] == pytest.approx(0.25 * (1 - 976 / 4000))


def test_weights_scale_contributions() -> None:
    w = Weights(trust=0.0, cost=0.0, capability=0.0, context=0.0, latency=0.0, ttft=0.0,
                success=0.0, refusal=0.0, feedback=3.0)  # fmt: skip
    r = rank(CALL, [model("a")], {}, now=0.0, input_tokens=10, rng=None, weights=w)[0]
    assert r.factors["feedback"] == pytest.approx(3.0 * 0.5 * 0.5)
    assert r.score == pytest.approx(r.factors["feedback"])


def test_stats_fall_back_to_the_all_intents_aggregate() -> None:
    call = Call(prompt="x", intent="code")
    good, bad = history(["success"] * 20), history(["error"] * 20)
    # only aggregates: they decide
    stats = {("a", "*"): bad, ("b", "*"): good}
    assert order([model("a"), model("b")], call, stats=stats) == ["b", "a"]
    # a per-intent entry wins over the aggregate
    stats[("a", "code")] = good
    stats[("b", "code")] = bad
    assert order([model("a"), model("b")], call, stats=stats) == ["a", "b"]


def test_ties_keep_input_order() -> None:
    assert order([model("x"), model("y"), model("z")]) == ["x", "y", "z"]
    assert order([model("z"), model("y"), model("x")]) == ["z", "y", "x"]


def test_exploration_is_deterministic_for_a_seed_and_explores() -> None:
    models = [model(c) for c in "abcde"]
    stats = {("a", "unknown"): history(["success"] * 3), ("b", "unknown"): history(["error"])}

    def draw(seed: int, exploration: float = 1.0) -> tuple[Any, ...]:
        return rank(
            CALL,
            models,
            stats,
            now=0.0,
            input_tokens=10,
            rng=random.Random(seed),
            exploration=exploration,
        )

    assert draw(123) == draw(123)
    firsts = {draw(seed)[0].alias for seed in range(100)}
    assert len(firsts) >= 3  # uncertain models all get a turn
    # exploration 0 = the posterior means, whatever the rng
    means = rank(CALL, models, stats, now=0.0, input_tokens=10, rng=None)
    assert draw(5, exploration=0.0) == means
    # a smaller exploration keeps draws closer to the means
    spread_wide = sum(abs(draw(s)[0].score - means[0].score) for s in range(50))
    spread_narrow = sum(abs(draw(s, 0.2)[0].score - means[0].score) for s in range(50))
    assert spread_narrow < spread_wide / 2


def test_sampled_rates_stay_in_range() -> None:
    stats = {("a", "unknown"): history(["success"] * 2)}
    for seed in range(200):
        r = rank(CALL, [model("a")], stats, now=0.0, input_tokens=10, rng=random.Random(seed),
                 exploration=5.0)[0]  # fmt: skip
        assert 0.0 <= r.factors["success"] <= 2.0
        assert 0.0 <= r.factors["refusal"] <= 1.0
        assert 0.0 <= r.factors["feedback"] <= 1.5


def test_where_nobody_rates_feedback_adds_no_noise_and_where_they_do_it_explores() -> None:
    # twins, one ten times dearer, both well known; nobody sends feedback
    cheap = model("cheap", input_per_mtok=1.0, output_per_mtok=1.0)
    dear = model("dear", input_per_mtok=10.0, output_per_mtok=10.0)
    known = history(["success"] * 50, latency_ms=300.0, ttft_ms=100.0)
    stats = {("cheap", "unknown"): known, ("dear", "unknown"): known}
    rng = random.Random(3)
    firsts = [order([cheap, dear], stats=stats, rng=rng)[0] for _ in range(2000)]
    assert firsts.count("dear") / len(firsts) < 0.08  # (it took 29% when unrated drew)
    # rated alike, a few times each: feedback is uncertain, so it explores again
    rated = {k: observe_feedback(v, CFG, now=0.0, score=0.8) for k, v in stats.items()}
    rated = {k: observe_feedback(v, CFG, now=0.0, score=0.8) for k, v in rated.items()}
    firsts = [order([cheap, dear], stats=rated, rng=rng)[0] for _ in range(2000)]
    assert 0.08 < firsts.count("dear") / len(firsts) < 0.5


def test_a_few_milliseconds_of_latency_do_not_outweigh_a_tenfold_price() -> None:
    # twins answering in about a millisecond; one slow answer moved the cheap one's
    # average to 4.8 ms: it must not look several times slower than the dear one
    cheap = model("cheap", input_per_mtok=1.0, output_per_mtok=1.0)
    dear = model("dear", input_per_mtok=10.0, output_per_mtok=10.0)
    stats = {
        ("cheap", "unknown"): history(["success"] * 50, latency_ms=4.8, ttft_ms=2.0),
        ("dear", "unknown"): history(["success"] * 50, latency_ms=0.7, ttft_ms=0.3),
    }
    rng = random.Random(5)
    firsts = [order([cheap, dear], stats=stats, rng=rng)[0] for _ in range(1000)]
    assert firsts.count("cheap") / len(firsts) > 0.9
    # seconds apart, latency still decides between equally priced models
    slow = history(["success"] * 50, latency_ms=6000.0, ttft_ms=2000.0)
    quick = history(["success"] * 50, latency_ms=1500.0, ttft_ms=400.0)
    same = {("cheap", "unknown"): slow, ("dear", "unknown"): quick}
    twin = model("dear", input_per_mtok=1.0, output_per_mtok=1.0)
    firsts = [order([cheap, twin], stats=same, rng=rng)[0] for _ in range(1000)]
    assert firsts.count("dear") / len(firsts) > 0.9


def _stale_world(now: float) -> tuple[list[ModelSpec], dict[tuple[str, str], ModelStats]]:
    """``good`` heard from just now; ``slow``, which failed and was slow a while ago and has
    not been tried since; ``dear``, as stale, at ten times the price."""
    models = [
        model("good"),
        model("slow"),
        model("dear", input_per_mtok=10.0, output_per_mtok=10.0),
    ]
    good = attrs.evolve(history(["success"] * 30, 4.0, 2.0), updated_at=now)
    slow = history(["timeout"] * 6 + ["success"] * 2, 2373.0, 2000.0)
    dear = history(["success"] * 5, 2373.0, 2000.0)
    stats = {("good", "unknown"): good, ("slow", "unknown"): slow, ("dear", "unknown"): dear}
    return models, stats


def test_a_model_not_heard_from_for_a_while_is_put_first_now_and_then() -> None:
    """Its estimates would otherwise stay as they were while it ranks last, and a model
    that recovered never be seen to: about FRESHEN_SHARE of rankings try it first (a
    half-open breaker's probe comes of such a call), never a much dearer one."""
    now = 60.0
    models, stats = _stale_world(now)
    rng = random.Random(7)
    firsts = [rank(CALL, models, stats, now=now, input_tokens=100, rng=rng)[0] for _ in range(5000)]
    freshened = [r for r in firsts if "freshness" in r.factors]
    assert {r.alias for r in firsts} == {"good", "slow"}
    assert {r.alias for r in freshened} == {"slow"}
    assert 0.5 * FRESHEN_SHARE < len(freshened) / len(firsts) < 2 * FRESHEN_SHARE
    # its score is lifted just above the best one's, and the factors still sum to it
    r = freshened[0]
    assert r.score == pytest.approx(sum(r.factors.values()))
    ranking = rank(CALL, models, stats, now=now, input_tokens=100, rng=random.Random(7))
    assert [x.alias for x in ranking][:1] == ["good"]


def test_the_draws_narrow_with_all_that_was_seen_within_the_long_clock() -> None:
    """Two models alike but for price: with the draws' spread from the last ~33 outcomes
    alone (``n``), the dearer twin at twice the price took about a quarter of first
    attempts for ever. Its spread now narrows with every outcome seen within the long
    half-life (``seen``), what the rates are still read from the last ~33."""
    from switchman.policy._learning import LearningConfig, observe

    cfg = LearningConfig()

    def answered(k: int) -> ModelStats:
        s = None
        for i in range(k):
            s = observe(s, cfg, now=i * 20.0, outcome="success", latency_ms=0.0, ttft_ms=0.0)
        assert s is not None
        return s

    cheap, dear = answered(900), answered(100)
    assert cheap.n < 34 and cheap.seen > 600 and dear.seen > 90
    models = [
        model("cheap", input_per_mtok=1.0, output_per_mtok=4.0),
        model("dear", input_per_mtok=2.0, output_per_mtok=8.0),
    ]
    now = 900 * 20.0

    def dearer_share(stats: dict[tuple[str, str], ModelStats]) -> float:
        rng = random.Random(5)
        firsts = [
            rank(CALL, models, stats, now=now, input_tokens=100, rng=rng)[0].alias
            for _ in range(4000)
        ]
        return firsts.count("dear") / len(firsts)

    sure = dearer_share({("cheap", "unknown"): cheap, ("dear", "unknown"): dear})
    # (a store saved before ``seen`` was kept reads as before: spread from ``n``)
    unsure = dearer_share(
        {
            ("cheap", "unknown"): attrs.evolve(cheap, seen=0.0),
            ("dear", "unknown"): attrs.evolve(dear, seen=0.0),
        }
    )
    assert sure < 0.09 and unsure > 0.15 and sure < unsure / 2, (sure, unsure)


@pytest.mark.parametrize("exploration", [0.3, 0.5, 1.0])
def test_a_model_never_tried_is_put_first_now_and_then_at_any_exploration(
    exploration: float,
) -> None:
    """With ``exploration`` low, an untried model's draw is too narrow to beat a model that
    answered: a cheaper twin of the model tried first went untried for thousands of calls
    (0.3: 97-100% of 800 calls to the dearer one). It is put first in the freshening share
    of rankings, before any model merely not heard from lately."""
    now = 600.0
    models, stats = _stale_world(now)
    models = [*models, model("fresh", input_per_mtok=1.5, output_per_mtok=1.5)]
    rng = random.Random(11)
    firsts = [
        rank(CALL, models, stats, now=now, input_tokens=100, rng=rng, exploration=exploration)[0]
        for _ in range(5000)
    ]
    lifted = [r.alias for r in firsts if "freshness" in r.factors]
    share = FRESHEN_SHARE * exploration
    # (a stale model only when the untried one's draw put it first already)
    assert 0.4 * share < lifted.count("fresh") / len(firsts) <= len(lifted) / len(firsts)
    assert len(lifted) / len(firsts) < 2 * share
    assert set(lifted) <= {"fresh", "slow"} and lifted.count("slow") <= lifted.count("fresh")


@pytest.mark.parametrize("exploration", [0.0, 1.0])
def test_a_model_heard_from_lately_or_no_exploration_is_not_put_first(
    exploration: float,
) -> None:
    now = 60.0
    models, stats = _stale_world(now)
    if exploration:  # heard from STALE_S ago, no more
        stats = {k: attrs.evolve(s, updated_at=now - STALE_S + 1) for k, s in stats.items()}
    rng = random.Random(7)
    for _ in range(2000):
        ranking = rank(
            CALL, models, stats, now=now, input_tokens=100, rng=rng, exploration=exploration
        )
        assert ranking[0].alias == "good" and "freshness" not in ranking[0].factors


def test_freshening_is_never_above_its_share_nor_where_it_is_not_asked_for() -> None:
    """``exploration`` above 1 widens the draws, not the share put first to be heard from
    (at 10 a fifth of calls went to the stalest model); a ranking asked not to freshen
    (a named route's, which does not order its attempts) never does."""
    now = 60.0
    models, stats = _stale_world(now)
    rng = random.Random(3)
    wide = [
        rank(CALL, models, stats, now=now, input_tokens=100, rng=rng, exploration=10.0)[0]
        for _ in range(5000)
    ]
    assert sum("freshness" in r.factors for r in wide) / len(wide) < 2 * FRESHEN_SHARE
    for _ in range(2000):
        ranking = rank(CALL, models, stats, now=now, input_tokens=100, rng=rng, freshen=False)
        assert all("freshness" not in r.factors for r in ranking)


def test_the_ranking_keeps_every_score_and_the_first_tens_factors() -> None:
    """A whole catalog's factors made every stored result 27 KB larger."""
    models = [model(f"m{i}", input_per_mtok=float(i + 1)) for i in range(30)]
    ranked = rank(Call(prompt="hi"), models, {}, now=0.0, input_tokens=10, rng=random.Random(3))
    assert len(ranked) == 30
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    for r in ranked[:FACTORS_KEPT]:
        assert set(r.factors) == set(FACTORS)
        assert sum(r.factors.values()) == pytest.approx(r.score)
    assert all(r.factors == {} for r in ranked[FACTORS_KEPT:])


def _firsts(models: list[ModelSpec], stats: dict[tuple[str, str], ModelStats], n: int) -> list[str]:
    rng = random.Random(4)
    return [
        rank(CALL, models, stats, now=0.0, input_tokens=100, rng=rng)[0].alias for _ in range(n)
    ]


def test_a_draw_puts_a_dearer_model_first_only_in_its_share() -> None:
    """Untried models look alike (the prior): a model dearer than ``EXPLORE_COST`` times
    the one the means put first is put first by a draw only in ``DEAR_SHARE`` of the
    rankings (and where its draw then wins), however many of them there are; one
    within that price is explored freely."""
    known = history(["success"] * 30)
    cheap = model("cheap", input_per_mtok=0.1, output_per_mtok=0.1)
    dear = [
        model(f"dear{i}", input_per_mtok=3.0, output_per_mtok=3.0, trust_tier="trusted")
        for i in range(40)
    ]
    assert EXPLORE_COST < 3.0 / 0.1
    firsts = _firsts([cheap, *dear], {("cheap", "unknown"): known}, 4_000)
    dear_share = sum(a != "cheap" for a in firsts) / len(firsts)
    assert 0 < dear_share <= DEAR_SHARE * 1.3, dear_share
    # near in price, untried: explored whenever its draw wins
    near = [model(f"near{i}", input_per_mtok=0.15, output_per_mtok=0.15) for i in range(40)]
    firsts = _firsts([cheap, *near], {("cheap", "unknown"): known}, 1_000)
    assert sum(a != "cheap" for a in firsts) / len(firsts) > 0.5


def test_a_speed_measured_before_a_quiet_spell_still_counts() -> None:
    """A cheaper model measured slow, then not tried for an hour: it is still what it was
    last seen to be (its slowness fading with the failures' clock had a model slow every
    time tried again and again at quiet traffic); the next measure of it, after the
    quiet spell, replaces most of that (``_learning``'s average)."""
    cheap = model("cheap", input_per_mtok=0.1, output_per_mtok=0.1)
    other = model("other")
    s: ModelStats | None = None
    for k in range(30):
        s = observe(s, CFG, now=float(k), outcome="success", latency_ms=20_000.0, ttft_ms=9_000.0)
    assert s is not None
    stats = {("cheap", "unknown"): s, ("other", "unknown"): history(["success"] * 30, 800, 300)}
    stats[("other", "unknown")] = attrs.evolve(stats[("other", "unknown")], updated_at=3_600.0)
    assert order([cheap, other], stats=stats, now=3_600.0) == ["other", "cheap"]
    fast = observe(s, CFG, now=3_600.0, outcome="success", latency_ms=800.0, ttft_ms=300.0)
    stats[("cheap", "unknown")] = fast
    assert order([cheap, other], stats=stats, now=3_600.0) == ["cheap", "other"]


def test_where_callers_rate_answers_a_dearer_model_is_drawn_too() -> None:
    """Feedback in use (a quarter or more of the leader's answers rated): an untried model
    three times the price gets its draws in every ranking, as only trying it shows
    whether its answers are better; one stray rating does not open that."""
    rated = attrs.evolve(history(["success"] * 30), feedback_sum=15.0, feedback_n=30.0)
    cheap = model("cheap", input_per_mtok=0.1, output_per_mtok=0.1)
    dear = model("dear", input_per_mtok=0.3, output_per_mtok=0.3)
    unrated = history(["success"] * 30)
    stray = attrs.evolve(unrated, feedback_sum=0.8, feedback_n=1.0)  # one caller, once
    without = _firsts([cheap, dear], {("cheap", "unknown"): unrated}, 2_000)
    once = _firsts([cheap, dear], {("cheap", "unknown"): stray}, 2_000)
    with_feedback = _firsts([cheap, dear], {("cheap", "unknown"): rated}, 2_000)
    assert without.count("dear") < with_feedback.count("dear")
    assert once.count("dear") < with_feedback.count("dear") / 2
    assert with_feedback.count("dear") > 20


def test_models_alike_in_speed_share_the_first_place_by_the_draws_of_speed() -> None:
    """Two models a few milliseconds apart on average, whose answers stray by more: the
    draws of speed share the calls between them (the one whose average was lower took
    every call until its average rose, in runs of 70 to 110 calls); a model clearly
    slower, or no exploration, does not."""

    def known(latency: float, dev: float) -> ModelStats:
        s = history(["success"] * 60, latency_ms=latency, ttft_ms=200.0)
        return attrs.evolve(s, latency_dev=dev, ttft_dev=20.0)

    a, b = model("a"), model("b")
    alike = {("a", "unknown"): known(800.0, 120.0), ("b", "unknown"): known(830.0, 120.0)}
    rng = random.Random(5)
    firsts = [order([a, b], stats=alike, rng=rng, freshen=False)[0] for _ in range(2_000)]
    assert 0.2 < firsts.count("b") / len(firsts) < 0.5, firsts.count("b")
    assert order([a, b], stats=alike, rng=rng, exploration=0.0) == ["a", "b"]
    apart = {("a", "unknown"): known(800.0, 120.0), ("b", "unknown"): known(4_000.0, 120.0)}
    firsts = [order([a, b], stats=apart, rng=rng, freshen=False)[0] for _ in range(2_000)]
    assert firsts.count("b") == 0
