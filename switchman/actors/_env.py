"""What the dispatcher's call tasks share: read-only wiring, built once by the router."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping

import attrs
import trio

from switchman.actors._board import StatusBoard
from switchman.actors._hub import TraceHub
from switchman.actors._messages import LedgerMessage, ProviderMessage
from switchman.actors._room import BudgetRoom
from switchman.actors._slots import Turns
from switchman.catalog._spec import Config, KeySpec, ModelSpec
from switchman.policy._learning import LearningConfig
from switchman.policy._scoring import Weights


@attrs.frozen(kw_only=True, eq=False)
class DispatchEnv:
    config: Config
    board: StatusBoard
    hub: TraceHub
    providers: Mapping[str, trio.MemorySendChannel[ProviderMessage]]
    ledger: trio.MemorySendChannel[LedgerMessage]
    #: scopes that carry a budget; when a call touches none, no reservation is needed
    limited_scopes: frozenset[str]
    keys_by_handle: Mapping[str, KeySpec]
    #: models whose provider is in service (the others are never candidates)
    models: tuple[ModelSpec, ...]
    #: alias -> why its provider is not in service (reported when a call names it)
    out_of_service: Mapping[str, str]
    #: ``models`` by alias
    by_alias: Mapping[str, ModelSpec] = attrs.field(
        default=attrs.Factory(lambda self: {m.alias: m for m in self.models}, takes_self=True)
    )
    rng: random.Random
    weights: Weights = attrs.field(factory=Weights)
    learning: LearningConfig = attrs.field(factory=LearningConfig)
    wall: Callable[[], float] = time.time
    #: the router's provider keys and gateway key secrets: redacted from answers by value
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)
    #: (scope, period, window) of the budgets already logged as refusing calls
    told_refusals: set[tuple[str, str, str]] = attrs.field(factory=set)
    #: call id -> why whoever cancelled it said it was (the dispatcher's, for its calls)
    cancel_reasons: dict[str, str] = attrs.field(factory=dict)
    #: provider -> the calls waiting for it to have an attempt slot free (its
    #: ``max_concurrency`` all taken), one woken, caller by caller in turn, as one of the
    #: calls' attempts on it ends (the dispatcher's own tasks: every attempt is theirs)
    slot_waiters: dict[str, Turns] = attrs.field(factory=dict)
    #: with a store: returns once the reservations held now are saved (an attempt under a
    #: budget is sent then: a process killed outright counts it when it restarts)
    holds_saved: Callable[[], Awaitable[None]] | None = None
    #: wakes the calls waiting for budget room as reservations end (the ledger calls it)
    budget_room: BudgetRoom = attrs.field(factory=BudgetRoom)
