"""Why no model was tried, read from the router's own words, and when one is back."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest

from switchman._call import Call, Options, Params
from switchman._result import EligibilityTrace, ErrorInfo, Exclusion, Result, Trace
from switchman.catalog import ModelSpec, RouteSpec
from switchman.gateway._causes import (
    call_aliases,
    exclusion_kind,
    retry_headers,
    retry_hint,
    unrouted,
)
from switchman.gateway._openai import error_body, failure
from switchman.policy import check_eligibility, estimate_input_tokens
from tests.gateway._fakes import ModelStatus, ProviderStatus, RouterStatus, make_config

MODEL = ModelSpec(alias="m", provider="sim", model_id="m")


def _reason(call: Call, model: ModelSpec = MODEL, allowed: tuple[str, ...] = ("*",)) -> str:
    """The eligibility policy's own reason for leaving ``model`` out of ``call``."""
    elig = check_eligibility(
        call,
        [model],
        input_tokens=estimate_input_tokens(call),
        unavailable={},
        allowed=allowed,
    )
    assert not elig.eligible
    return elig.excluded[0].reason


def _call(**kw: Any) -> Call:
    return Call(**{"prompt": "hello", **kw})


#: a call and a model for each reason of the request's own
REQUEST_CASES = {
    "intent": (_call(intent="lookup"), attrs.evolve(MODEL, intents=("code",))),
    "trust": (_call(min_trust="trusted"), attrs.evolve(MODEL, trust_tier="untrusted")),
    "capabilities": (_call(capabilities=("vision",)), MODEL),
    "max_tokens": (_call(params=Params(max_tokens=9000)), MODEL),
    "context": (_call(prompt="x" * 4000), attrs.evolve(MODEL, context_window=1200)),
    "determinism": (
        _call(params=Params(seed=1), options=Options(determinism="strict")),
        MODEL,
    ),
    "stop": (_call(params=Params(stop=("END",))), attrs.evolve(MODEL, supports_stop=False)),
    "cost": (
        _call(options=Options(max_cost_usd=0.000001)),
        attrs.evolve(MODEL, input_per_mtok=10.0, output_per_mtok=30.0),
    ),
}
#: the dispatcher's words for a model that cannot serve now (``unavailable_models``,
#: providers out of service), and the policy's for a disabled model
AVAILABILITY_REASONS = (
    "breaker open for 8.5s more",
    "breaker half-open: probe in flight",
    "rate budget empty for 2.0s",
    "rate limited for 12.3s",
    "provider openai held out: auth error: invalid api key (HTTP 401)",
    "not served by openai: the model does not exist (held out 299s more)",
    "provider disabled: missing API key: set OPENAI_API_KEY",
    "provider local is not configured",
    "disabled",
)


def _unrouted(*excluded: tuple[str, str]) -> Result:
    """A call the router tried no model for, each model left out for its reason."""
    exclusions = tuple(Exclusion(alias=a, reason=r) for a, r in excluded)
    return Result(
        call_id="c",
        status="failed",
        errors=(ErrorInfo(code="no_eligible_model", message="no eligible model"),),
        trace=Trace(eligibility=EligibilityTrace(excluded=exclusions)),
    )


@pytest.mark.parametrize("case", sorted(REQUEST_CASES))
def test_each_reason_of_the_request_itself_is_read_as_such_and_answers_400(case: str) -> None:
    call, model = REQUEST_CASES[case]
    reason = _reason(call, model)
    assert exclusion_kind(reason) == "request"
    err = failure(_unrouted(("m", reason), ("n", reason)))
    code = "context_length_exceeded" if case == "context" else "invalid_request"
    assert (err.status, err.code) == (400, code)
    assert error_body(err)["error"]["type"] == "invalid_request_error"
    assert err.message == f"no eligible model for this request: m: {reason}; n: {reason}"
    # with a model the key may not use beside it: still the request's fault
    denied = _reason(_call(), allowed=("other/*",))
    assert failure(_unrouted(("m", reason), ("x", denied))).status == 400


def test_models_the_key_may_not_use_answer_403() -> None:
    denied = _reason(_call(), allowed=("other/*",))
    assert exclusion_kind(denied) == "caller"
    err = failure(_unrouted(("m", denied), ("n", denied)))
    assert (err.status, err.code) == (403, "permission_denied")
    assert "this key may use none of the models the call could use: m: not allowed" in (err.message)


@pytest.mark.parametrize("reason", AVAILABILITY_REASONS)
def test_a_model_left_out_for_its_availability_keeps_the_503(reason: str) -> None:
    assert exclusion_kind(reason) == "availability"
    stop = _reason(*REQUEST_CASES["stop"])
    denied = _reason(_call(), allowed=("other/*",))
    for excluded in ([("m", reason)], [("m", stop), ("n", reason)], [("x", denied), ("m", reason)]):
        err = failure(_unrouted(*excluded))
        assert (err.status, err.code) == (503, "no_eligible_model")


def test_the_disabled_reason_is_the_policys() -> None:
    assert _reason(_call(), attrs.evolve(MODEL, enabled=False)) == "disabled"


def test_only_a_call_no_model_was_tried_for_counts_as_unrouted() -> None:
    stop = _reason(*REQUEST_CASES["stop"])
    result = _unrouted(("m", stop))
    assert unrouted(result) == result.trace.eligibility.excluded
    tried = attrs.evolve(result, errors=(ErrorInfo(code="all_models_failed", message="x"),))
    assert unrouted(tried) == ()
    partly = attrs.evolve(
        result, trace=Trace(eligibility=EligibilityTrace(eligible=("n",), excluded=()))
    )
    assert unrouted(partly) == ()


def test_a_call_reaches_its_model_route_and_fallbacks() -> None:
    config = make_config()
    assert call_aliases(_call(model="fast"), config) == ("fast",)
    best = _call(model="best", options=Options(fallback=("gpt-x", "fast")))
    assert call_aliases(best, config) == ("fast", "slow", "gpt-x")
    assert call_aliases(_call(model="fast", options=Options(fallback=("auto",))), config) == tuple(
        config.models
    )
    assert call_aliases(_call(), config) == tuple(config.models)


NOW = 100.0


def _status(**models: dict[str, Any]) -> RouterStatus:
    """Provider ``sim`` with the given models' status, ``other`` disabled (gpt-x)."""
    sim = tuple(ModelStatus(alias=a, **kw) for a, kw in models.items())
    return RouterStatus(
        providers=(
            ProviderStatus(name="sim", kind="sim", models=sim),
            ProviderStatus(
                name="other",
                kind="openai",
                disabled_reason="provider other misconfigured: bad key",
                models=(ModelStatus(alias="gpt-x"),),
            ),
        ),
        uptime_s=1.0,
        simulated=True,
    )


def _hint(call: Call, status: RouterStatus, allowed: tuple[str, ...] = ("*",)) -> float | None:
    failed = _unrouted(("x", "breaker open for 1.0s more"))
    return retry_hint(failed, call, make_config(), status, allowed=allowed, now=NOW)


def test_the_soonest_model_back_decides_the_wait() -> None:
    best = _call(model="best")  # fast, slow
    status = _status(
        fast={"breaker": "open", "retry_at": NOW + 8.2},
        slow={"rate_limited_for_s": 3.5},
    )
    assert _hint(best, status) == pytest.approx(3.5)
    assert list(retry_headers(3.5)) == [(b"retry-after", b"4")]
    # a model held back by two things is back when both are over
    status = _status(fast={"breaker": "open", "retry_at": NOW + 8.2, "rate_limited_for_s": 20.0})
    assert _hint(_call(model="fast"), status) == pytest.approx(20.0)
    # one that could serve now: nothing to wait for, the client's own backoff
    status = _status(fast={"breaker": "open", "retry_at": NOW + 8.2}, slow={})
    assert _hint(best, status) == 0.0
    # a model the status does not list (its provider is out of service) is not back soon
    assert _hint(best, _status(fast={"breaker": "open", "retry_at": NOW + 8.2})) == (
        pytest.approx(8.2)
    )
    assert list(retry_headers(0.0)) == []
    assert list(retry_headers(None)) == []


def test_a_provider_held_out_for_minutes_says_do_not_retry() -> None:
    held = {"held_out": "not served by sim: no such model", "held_for_s": 290.0}
    assert _hint(_call(model="fast"), _status(fast=held)) == 290.0
    assert list(retry_headers(290.0)) == [(b"x-should-retry", b"false")]
    # a misconfigured provider says no time: not soon either
    assert _hint(_call(model="gpt-x"), _status()) == math.inf
    assert list(retry_headers(math.inf)) == [(b"x-should-retry", b"false")]
    # the models of a call may be held out for minutes and one back soon: wait for it
    soon = {"breaker": "open", "retry_at": NOW + 30.0}
    hint = _hint(_call(model="gpt-x", options=Options(fallback=("fast",))), _status(fast=soon))
    assert hint == pytest.approx(30.0)
    assert list(retry_headers(hint)) == [(b"retry-after", b"30")]


def test_only_models_the_call_could_use_count() -> None:
    status = _status(fast={"rate_limited_for_s": 5.0}, slow={"rate_limited_for_s": 50.0})
    # the key may not use fast: slow decides
    assert _hint(_call(model="best"), status, allowed=("slow",)) == pytest.approx(50.0)
    # a model left out for the request itself is not waited for
    failed = _unrouted(("fast", "stop sequences, which the model does not take"))
    config = make_config()
    config = attrs.evolve(config, routes={"best": RouteSpec(name="best", chain=("fast", "slow"))})
    hint = retry_hint(failed, _call(model="best"), config, status, allowed=("*",), now=NOW)
    assert hint == pytest.approx(50.0)
    # nothing the call could use: no hint at all
    assert _hint(_call(model="best"), status, allowed=("gpt-x",)) is None


def test_a_half_open_breaker_may_serve_and_an_empty_rate_budget_holds_all_models() -> None:
    fast = _call(model="fast")
    assert _hint(fast, _status(fast={"breaker": "half_open"})) == 0.0
    status = _status(fast={})
    sim = attrs.evolve(status.providers[0], rate_headroom={"rpm": 0.0, "blocked_for_s": 2.5})
    status = attrs.evolve(status, providers=(sim, *status.providers[1:]))
    assert _hint(fast, status) == pytest.approx(2.5)
    assert list(retry_headers(2.5)) == [(b"retry-after", b"3")]


def test_a_provider_with_every_attempt_slot_taken_says_retry_in_a_second() -> None:
    """A call that waited its 5 s for a slot and got none: the SDK's own backoff resent it
    at once, to wait its 5 s again (16 s for nothing in an audit)."""
    fast = _call(model="fast")
    status = _status(fast={})
    full = attrs.evolve(status.providers[0], in_flight=8, max_concurrency=8)
    assert _hint(fast, attrs.evolve(status, providers=(full, *status.providers[1:]))) == 1.0
    assert list(retry_headers(1.0)) == [(b"retry-after", b"1")]
    room = attrs.evolve(full, in_flight=7)
    assert _hint(fast, attrs.evolve(status, providers=(room, *status.providers[1:]))) == 0.0
