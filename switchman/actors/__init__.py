"""The actors: trace hub, ledger, provider actors, dispatcher, and their messages."""

from switchman.actors._board import (
    ModelStatus,
    ProviderSnapshot,
    ProviderStatus,
    RouterStatus,
    StatusBoard,
)
from switchman.actors._dispatcher import run_dispatcher
from switchman.actors._hub import HubStatistics, Subscription, TraceHub, run_trace_hub
from switchman.actors._ledger import limits_from_config, run_ledger
from switchman.actors._provider import run_provider_actor

__all__ = [
    "HubStatistics",
    "ModelStatus",
    "ProviderSnapshot",
    "ProviderStatus",
    "RouterStatus",
    "StatusBoard",
    "Subscription",
    "TraceHub",
    "limits_from_config",
    "run_dispatcher",
    "run_ledger",
    "run_provider_actor",
    "run_trace_hub",
]
