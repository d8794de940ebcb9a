"""The simulator: the in-process ``kind = "sim"`` provider and the fake provider server.

Both follow the same ``Plan`` values: ``plan_from_profile`` (a model's
``SimProfile`` and a seeded rng) drives ``run_sim_attempt``; ``plan_from_name``
(the model name picks a behaviour) drives the HTTP server started with
``serve_fake_provider`` or ``python -m switchman.sim``.
"""

from switchman.sim._plan import (
    BEHAVIOURS,
    REFUSAL_TEXT,
    BehaviourState,
    Failure,
    Plan,
    behaviour_name,
    expected_answer,
    plan_from_name,
    plan_from_profile,
)
from switchman.sim._provider import run_sim_attempt
from switchman.sim._server import (
    FakeProviderServer,
    FakeServerConfig,
    ReceivedRequest,
    main,
    serve_fake_provider,
)

__all__ = [
    "BEHAVIOURS",
    "REFUSAL_TEXT",
    "BehaviourState",
    "Failure",
    "FakeProviderServer",
    "FakeServerConfig",
    "Plan",
    "ReceivedRequest",
    "behaviour_name",
    "expected_answer",
    "main",
    "plan_from_name",
    "plan_from_profile",
    "run_sim_attempt",
    "serve_fake_provider",
]
