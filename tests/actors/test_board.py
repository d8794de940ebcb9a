"""Status read from a provider snapshot: what the provider said about each model."""

from __future__ import annotations

from typing import Any

import attrs

from switchman._result import Exclusion
from switchman.actors._board import ProviderSnapshot, model_status
from switchman.catalog import ModelSpec, ProviderSpec
from switchman.policy._ratelimit import new_budget, rate_observe

SPEC = ProviderSpec(name="openai", kind="openai", base_url="http://x.test/v1")
LIMITED = ModelSpec(alias="openai/a", provider="openai", model_id="a")
QUIET = ModelSpec(alias="openai/b", provider="openai", model_id="b")


def test_a_model_shows_its_own_provider_counters_and_429_hold() -> None:
    said = rate_observe(
        new_budget(None, None, 0.0),
        0.0,
        {"x-ratelimit-remaining-requests": "42", "x-ratelimit-reset-requests": "1m"},
        wall_now=1e9,
        status=429,
        retry_after=3.0,
    )
    snap = ProviderSnapshot(
        spec=SPEC,
        models=(LIMITED, QUIET),
        breakers={},
        rate=new_budget(None, None, 0.0),
        stats={},
        model_rates={LIMITED.alias: said},
    )
    limited = model_status(snap, LIMITED, now=1.0)
    assert limited.rate_limited_for_s == 2.0  # the 429's 3 s, one of them gone
    assert limited.provider_remaining == {"requests": 42.0, "tokens": None}
    quiet = model_status(snap, QUIET, now=1.0)  # a sibling is not held back
    assert quiet.rate_limited_for_s == 0.0
    assert quiet.provider_remaining == {"requests": None, "tokens": None}
    later = model_status(snap, LIMITED, now=61.0)  # the counter's reset has passed
    assert later.rate_limited_for_s == 0.0 and later.provider_remaining["requests"] is None


def test_holds_last_until_their_time_and_routing_agrees_with_status() -> None:
    from types import SimpleNamespace

    from switchman.actors._board import ModelHold, StatusBoard, provider_status
    from switchman.actors._unavailable import unavailable_models

    missing = "not served by openai: The model `a` does not exist [model_not_found]"
    snap = ProviderSnapshot(
        spec=SPEC,
        models=(LIMITED, QUIET),
        breakers={},
        rate=new_budget(None, None, 0.0),
        stats={},
        model_holds={LIMITED.alias: ModelHold(reason=missing, until=300.0)},
    )
    board = StatusBoard()
    board.publish("openai", snap)
    env: Any = SimpleNamespace(board=board)
    held = model_status(snap, LIMITED, now=10.0)
    assert (held.held_out, held.held_for_s) == (missing, 290.0)
    assert model_status(snap, QUIET, now=10.0).held_out is None
    assert unavailable_models(env, 10.0) == {LIMITED.alias: f"{missing} (held out 290s more)"}
    # once the hold has passed, the next attempt finds out whether it still holds
    assert model_status(snap, LIMITED, now=300.0).held_out is None
    assert unavailable_models(env, 300.0) == {}

    bad_key = attrs.evolve(snap, misconfigured="auth error: bad key", misconfigured_until=300.0)
    board.publish("openai", bad_key)
    assert provider_status(bad_key, 10.0).disabled_reason == "auth error: bad key"
    assert set(unavailable_models(env, 10.0)) == {LIMITED.alias, QUIET.alias}
    assert provider_status(bad_key, 300.0).disabled_reason is None
    assert unavailable_models(env, 300.0) == {}  # was held out for good before


def test_routing_knows_exactly_when_a_paused_model_is_back() -> None:
    from types import SimpleNamespace

    from switchman.actors._board import StatusBoard
    from switchman.actors._unavailable import unavailable_models
    from switchman.actors._waits import short_wait as _short_wait

    said = rate_observe(  # a 429 with Retry-After: 1 at t=0
        new_budget(None, None, 0.0), 0.0, {}, wall_now=1e9, status=429, retry_after=1.0
    )
    board = StatusBoard()
    board.publish(
        "openai",
        ProviderSnapshot(
            spec=SPEC,
            models=(LIMITED, QUIET),
            breakers={},
            rate=new_budget(None, None, 0.0),
            stats={},
            model_rates={LIMITED.alias: said},
        ),
    )
    env: Any = SimpleNamespace(board=board)
    back: dict[str, float] = {}
    reasons = unavailable_models(env, 0.67, None, back)
    assert reasons == {LIMITED.alias: "rate limited for 0.3s"}  # rounded for people
    assert back == {LIMITED.alias: 1.0}  # exact for the wait
    excluded = [Exclusion(alias=LIMITED.alias, reason=reasons[LIMITED.alias])]
    wait = _short_wait(excluded, back, 0.67, deadline=100.0)
    assert wait is not None and 0.67 + wait > 1.0  # not the 0.31 s the text says


def test_learned_weight_in_status_fades_as_scoring_fades_it() -> None:
    from switchman.policy._learning import LearningConfig, ModelStats

    cfg = LearningConfig()
    snap = ProviderSnapshot(
        spec=SPEC,
        models=(QUIET,),
        breakers={},
        rate=new_budget(None, None, 0.0),
        stats={(QUIET.alias, "*"): ModelStats(n=10.0, successes=10.0, updated_at=0.0)},
        learning=cfg,
    )
    assert model_status(snap, QUIET, now=0.0).stats["*"]["n"] == 10.0
    later = model_status(snap, QUIET, now=cfg.half_life_s)
    assert later.stats["*"]["n"] == 5.0  # a half-life later, it weighs half
    assert later.stats["*"]["success_rate"] == 1.0  # rates do not fade
