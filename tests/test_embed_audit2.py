"""What the second embedding audit found: the Python API as an application uses it."""

from __future__ import annotations

import json
from typing import Any

import attrs
import httpx
import pytest
import trio

import switchman
from switchman import Call, Options, Timeouts
from switchman._errors import failed_call_error
from switchman._result import ErrorInfo, Result
from switchman.catalog import BudgetsConfig, Config, ModelSpec, ProviderSpec, SimProfile

from ._simfleet import fleet, sim_model

GOOD = sim_model("good", SimProfile(latency_ms=100, ttft_ms=50), trust_tier="trusted")
BAD = sim_model("bad", SimProfile(error_rate=1.0))


def _failed(code: str, provider: str | None = None, status: int | None = None) -> Result:
    error = ErrorInfo(code=code, message=f"it failed: {code}", provider=provider, status=status)
    return Result(call_id="c1", status="failed", errors=(error,))


@pytest.mark.parametrize(
    ("code", "branch"),
    [
        ("budget_exceeded", switchman.BudgetExceeded),
        ("no_eligible_model", switchman.NoEligibleModel),
        ("permission_denied", switchman.PermissionDenied),
        ("timeout", switchman.AttemptTimeout),
        ("rate_limited", switchman.RateLimited),
        ("refused", switchman.Refused),
        ("cancelled", switchman.CallCancelled),
        ("all_models_failed", switchman.CallFailed),
    ],
)
def test_raise_for_status_raises_the_class_of_the_results_code(
    code: str, branch: type[switchman.SwitchmanError]
) -> None:
    result = _failed(code, provider="openai", status=429)
    with pytest.raises(branch) as info:
        result.raise_for_status()
    exc = info.value
    assert isinstance(exc, switchman.CallFailed)  # every one is still a CallFailed
    assert exc.code == code and exc.error_code == code
    assert exc.result is result and str(exc) == f"it failed: {code}"
    if isinstance(exc, switchman.ProviderError):  # who gave the error that ended the call
        assert (exc.provider, exc.status) == ("openai", 429)


def test_a_code_no_class_stands_for_is_a_plain_call_failed() -> None:
    exc = failed_call_error(_failed("internal_error"))
    assert type(exc) is switchman.CallFailed
    assert exc.code == "all_models_failed" and exc.error_code == "internal_error"
    assert failed_call_error(Result(call_id="c", status="failed")).code == "all_models_failed"


def test_a_complete_result_raises_nothing() -> None:
    done = Result(call_id="c", status="complete", answer="yes")
    assert done.raise_for_status() is done


async def test_raise_for_status_on_real_failures(autojump_clock: trio.abc.Clock) -> None:
    async with switchman.open_router(
        fleet(GOOD, BAD, budgets=BudgetsConfig(global_daily_usd=1e-7))
    ) as router:
        broke = await router.call(Call(prompt="hi", model="good"))
    async with switchman.open_router(fleet(GOOD, BAD)) as router:
        untrusted = await router.call(Call(prompt="hi", model="bad", min_trust="trusted"))
        failing = await router.call(Call(prompt="hi", model="bad"))
        slow = await router.call(
            Call(prompt="hi " * 10, model="good", options=Options(timeouts=Timeouts(hard_ms=5)))
        )
    with pytest.raises(switchman.BudgetExceeded) as budget:
        broke.raise_for_status()
    assert budget.value.code == "budget_exceeded" and budget.value.result is broke
    with pytest.raises(switchman.NoEligibleModel):
        untrusted.raise_for_status()
    with pytest.raises(switchman.AttemptTimeout):
        slow.raise_for_status()
    with pytest.raises(switchman.CallFailed) as failed:
        failing.raise_for_status()
    assert type(failed.value) is switchman.CallFailed
    assert failed.value.code == "all_models_failed"


async def test_unknown_call_is_a_switchman_error_and_a_key_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with switchman.open_router(fleet(GOOD)) as router:
        with pytest.raises(switchman.SwitchmanError) as info:
            await router.feedback("never-seen", 0.5)
    assert isinstance(info.value, switchman.UnknownCall)
    assert isinstance(info.value, KeyError)
    assert info.value.call_id == "never-seen"
    assert "pass model=" in str(info.value)


# -- a hand-built Config: keys and the simulated flag -------------------------------------


def _openai_fake(seen: list[str | None]) -> httpx.AsyncClient:
    """An OpenAI-style provider answering "ok"; notes each request's Authorization."""

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        head = {"id": "chatcmpl-1", "created": 0, "model": "gpt-x"}
        usage = {"prompt_tokens": 3, "completion_tokens": 1}
        if json.loads(request.content).get("stream"):
            events = [
                {**head, "object": "chat.completion.chunk", "choices": [c]}
                for c in (
                    {"index": 0, "delta": {"content": "ok"}},
                    {"index": 0, "delta": {}, "finish_reason": "stop"},
                )
            ]
            events.append(
                {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
            sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=sse.encode()
            )
        message = {"role": "assistant", "content": "ok"}
        body = {
            **head,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
        return httpx.Response(200, json=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(reply))


def _openai_config(**provider: Any) -> Config:
    fields: dict[str, Any] = {"api_key_env": "OPENAI_KEY_NOT_SET", **provider}
    spec = ProviderSpec(name="openai", kind="openai", base_url="http://openai.test/v1", **fields)
    return Config(
        providers={"openai": spec},
        models={"g": ModelSpec(alias="g", provider="openai", model_id="gpt-x")},
    )


async def test_a_hand_built_provider_without_its_key_is_disabled_never_called() -> None:
    seen: list[str | None] = []
    with trio.fail_after(10):
        async with switchman.open_router(
            _openai_config(), clients={"openai": _openai_fake(seen)}, env={}
        ) as router:
            (status,) = router.status().providers
            result = await router.call(Call(prompt="hi", model="g"))
    assert status.disabled_reason == "missing API key: set OPENAI_KEY_NOT_SET"
    # load_config says the same of a provider without its key
    assert switchman.load_config(None, env={}).providers["openai"].disabled_reason == (
        "missing API key: set OPENAI_API_KEY"
    )
    assert not result.ok and seen == []  # never called without its key
    assert "missing API key: set OPENAI_KEY_NOT_SET" in result.errors[0].message
    assert not router.simulated


async def test_a_bad_key_in_the_environment_is_named_as_load_config_names_it() -> None:
    with trio.fail_after(10):
        async with switchman.open_router(
            _openai_config(),
            clients={"openai": _openai_fake([])},
            env={"OPENAI_KEY_NOT_SET": "a b"},
        ) as router:
            (status,) = router.status().providers
    assert status.disabled_reason is not None
    assert status.disabled_reason.startswith("the API key in OPENAI_KEY_NOT_SET holds whitespace")


@pytest.mark.parametrize(
    ("provider", "env", "authorization"),
    [
        ({}, {"OPENAI_KEY_NOT_SET": "sk-test-1"}, "Bearer sk-test-1"),  # the key is set
        ({"headers": {"Authorization": "Bearer hdr-2"}}, {}, "Bearer hdr-2"),  # in headers
        ({"api_key_env": None}, {}, None),  # it needs none
    ],
)
async def test_a_provider_with_its_key_is_called(
    provider: dict[str, Any], env: dict[str, str], authorization: str | None
) -> None:
    seen: list[str | None] = []
    with trio.fail_after(10):
        async with switchman.open_router(
            _openai_config(**provider), clients={"openai": _openai_fake(seen)}, env=env
        ) as router:
            (status,) = router.status().providers
            result = await router.call(Call(prompt="hi", model="g"))
    assert status.disabled_reason is None
    assert result.ok, result.errors
    assert result.answer == "ok" and seen == [authorization]


async def test_a_disabled_reason_given_is_kept() -> None:
    config = _openai_config(disabled_reason="off for the night")
    with trio.fail_after(10):
        async with switchman.open_router(config, clients={"openai": _openai_fake([])}) as router:
            (status,) = router.status().providers
    assert status.disabled_reason == "off for the night"


async def test_only_simulators_make_a_simulated_router(autojump_clock: trio.abc.Clock) -> None:
    config = attrs.evolve(fleet(GOOD), simulated=False)  # as a hand-built one is left
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="hi", model="good"))
        assert result.simulated
        assert router.simulated and router.status().simulated
        assert router.config.simulated


async def test_a_real_provider_in_service_is_not_simulated(
    autojump_clock: trio.abc.Clock,
) -> None:
    real = _openai_config(headers={"Authorization": "Bearer hdr"})
    config = attrs.evolve(
        fleet(GOOD),
        providers={**fleet(GOOD).providers, **real.providers},
        models={**fleet(GOOD).models, **real.models},
        simulated=False,
    )
    async with switchman.open_router(config, clients={"openai": _openai_fake([])}) as router:
        assert not router.simulated and not router.status().simulated
    # the same real provider without its key: only the simulator is left in service
    keyless = attrs.evolve(config, providers={**config.providers, **_openai_config().providers})
    async with switchman.open_router(keyless, env={}) as router:
        assert router.simulated and router.status().simulated


# -- typing for strict users ---------------------------------------------------------------


def test_lists_a_user_fills_are_held_as_tuples() -> None:
    call = Call(
        prompt="hi",
        capabilities=["code"],
        params=switchman.Params(stop=["\n\n", "END"]),
        options=Options(
            fallback=["good"],
            redaction=switchman.RedactionOptions(
                mode="off",
                override=switchman.RedactionOverride(
                    enabled=True, acknowledgements=["output_may_contain_secrets"], reason="r"
                ),
            ),
        ),
    )
    assert call.capabilities == ("code",)
    assert call.params.stop == ("\n\n", "END")
    assert call.options.fallback == ("good",)
    assert call.options.redaction.override is not None
    assert call.options.redaction.override.acknowledgements == ("output_may_contain_secrets",)
    hash(call.params)  # a frozen value of tuples hashes
    assert call == attrs.evolve(call, capabilities=("code",))


def test_a_lone_string_is_still_no_list_of_strings() -> None:
    with pytest.raises(switchman.ValidationError, match="stop: must be a list of strings"):
        switchman.Params(stop="END")  # type: ignore[arg-type]
    with pytest.raises(switchman.ValidationError, match="capabilities"):
        Call(prompt="hi", capabilities="code")  # type: ignore[arg-type]
    with pytest.raises(switchman.ValidationError, match=r"fallback\[1\]"):
        Options(fallback=["good", 3])  # type: ignore[list-item]


def test_the_literal_types_of_public_signatures_are_exported() -> None:
    from typing import get_args

    assert "summarize" in get_args(switchman.Intent)
    assert get_args(switchman.TrustTier) == ("untrusted", "standard", "trusted")
    assert "user" in get_args(switchman.Role)
    assert "minimal" in get_args(switchman.Verbosity)
    assert "strict" in get_args(switchman.Determinism)
    assert get_args(switchman.RedactionMode) == ("auto", "off")
    assert "success" in get_args(switchman.Outcome)
    assert "call.completed" in get_args(switchman.EventType)


async def test_feedback_and_spend_on_a_closed_router_raise_router_closed() -> None:
    """A ``switchman`` error (and still the ``trio.ClosedResourceError`` feedback raised),
    not trio's bare one; a call on a closed router stays a failed result."""
    async with switchman.open_router() as router:
        result = await router.call(switchman.Call(prompt="hi", model="auto"))
    for attempt in (
        router.feedback(result.call_id, 1.0),
        router.spend("global"),
    ):
        with pytest.raises(switchman.RouterClosed) as raised:
            await attempt
        assert isinstance(raised.value, switchman.SwitchmanError)
        assert isinstance(raised.value, trio.ClosedResourceError)
        assert "the router is closed" in str(raised.value)
    late = await router.call(switchman.Call(prompt="hi", model="auto"))
    assert (late.status, late.errors[0].code) == ("failed", "cancelled")


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("budget_exceeded", "switchman.BudgetExceeded"),
        ("no_eligible_model", "switchman.NoEligibleModel"),
        ("timeout", "switchman.AttemptTimeout"),
        ("cancelled", "switchman._errors.CallCancelled"),
        ("internal_error", "switchman._errors.CallFailed"),
    ],
)
def test_a_raised_failure_pickles_and_names_the_class_a_caller_catches(
    code: str, shown: str
) -> None:
    """A process pool or a task queue carries it; a traceback shows what to catch."""
    import pickle

    result = Result(
        call_id="c1", status="failed", errors=(ErrorInfo(code=code, message=f"why: {code}"),)
    )
    raised = failed_call_error(result)
    again = pickle.loads(pickle.dumps(raised))
    assert type(again) is type(raised)
    assert again.result == result and str(again) == f"why: {code}"
    assert isinstance(again, switchman.CallFailed)
    assert f"{type(raised).__module__}.{type(raised).__qualname__}" == shown
