"""What the second embedding audit found: the Python API as an application uses it."""

from __future__ import annotations

import pytest
import trio

import switchman
from switchman import Call, Options, Timeouts
from switchman._errors import failed_call_error
from switchman._result import ErrorInfo, Result
from switchman.catalog import BudgetsConfig, SimProfile

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
