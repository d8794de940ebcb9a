"""switchman.sim re-exports its public names, sorted and complete."""

from __future__ import annotations

import switchman.sim
from switchman.sim import _plan, _provider, _server


def isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete() -> None:
    exported = switchman.sim.__all__
    assert exported == sorted(exported, key=isort_key)
    assert all(hasattr(switchman.sim, name) for name in exported)
    public = {
        "BEHAVIOURS",
        "REFUSAL_TEXT",
        "BehaviourState",
        "Failure",
        "Plan",
        "answer_quality",
        "behaviour_name",
        "expected_answer",
        "plan_from_name",
        "plan_from_profile",
        "rate_answer",
        "run_sim_attempt",
        "FakeProviderServer",
        "FakeServerConfig",
        "ReceivedRequest",
        "main",
        "serve_fake_provider",
    }
    assert set(exported) == public
    for module in (_plan, _provider, _server):
        for name in public:
            if hasattr(module, name) and not name.isupper():
                assert getattr(switchman.sim, name) is getattr(module, name)
