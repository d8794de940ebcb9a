"""OTP-style supervision: child specs, one_for_one restarts, restart intensity."""

from switchman.supervisor._spec import (
    ChildSpec,
    ChildStatistics,
    ExitReason,
    Restart,
    SupervisorEscalation,
    SupervisorStatistics,
)
from switchman.supervisor._supervisor import Supervisor, run_supervisor

__all__ = [
    "ChildSpec",
    "ChildStatistics",
    "ExitReason",
    "Restart",
    "Supervisor",
    "SupervisorEscalation",
    "SupervisorStatistics",
    "run_supervisor",
]
