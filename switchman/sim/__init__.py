"""The simulator: the in-process ``kind = "sim"`` provider and the fake provider server.

Both follow the same ``Plan`` values: ``plan_from_profile`` (a model's
``SimProfile`` and a seeded rng) drives ``run_sim_attempt``; ``plan_from_name``
(the model name picks a behaviour) drives the HTTP server started with
``serve_fake_provider`` or ``python -m switchman.sim``. ``rate_answer`` is a
simulated user's feedback score for an answer, from the model's per-intent quality.
"""

from switchman.sim._plan import (
    BEHAVIOURS,
    REFUSAL_TEXT,
    BehaviourState,
    Failure,
    Plan,
    answer_quality,
    behaviour_name,
    expected_answer,
    plan_from_name,
    plan_from_profile,
    rate_answer,
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
    "answer_quality",
    "behaviour_name",
    "expected_answer",
    "main",
    "plan_from_name",
    "plan_from_profile",
    "rate_answer",
    "run_sim_attempt",
    "serve_fake_provider",
]
