"""What the gateway needs from the router: the ``RouterHandle`` protocol.

The gateway codes against these protocols only, so it runs the same over the
real router and over the in-memory fake of its tests. Status records are read
through read-only properties, which frozen attrs classes satisfy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import trio

from switchman._call import Call
from switchman._result import Delta, Result, TraceEvent
from switchman.actors import Subscription
from switchman.catalog import Config


class ModelStatusLike(Protocol):
    @property
    def alias(self) -> str: ...
    @property
    def breaker(self) -> str: ...  # "closed" | "open" | "half_open"
    @property
    def retry_at(self) -> float | None: ...  # trio clock
    @property
    def stats(self) -> Mapping[str, Any]: ...
    @property
    def rate_limited_for_s(self) -> float: ...  # a provider's 429 still holding it back
    @property
    def provider_remaining(self) -> Mapping[str, float | None]: ...  # its x-ratelimit-*
    @property
    def held_out(self) -> str | None: ...  # why the provider said it does not serve it
    @property
    def held_for_s(self) -> float: ...
    @property
    def breaker_opened_by(self) -> str | None: ...  # what opened a breaker not closed


class ProviderStatusLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def disabled_reason(self) -> str | None: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def max_concurrency(self) -> int: ...
    @property
    def rate_headroom(self) -> Mapping[str, Any]: ...
    @property
    def models(self) -> Sequence[ModelStatusLike]: ...
    @property
    def restarts(self) -> int: ...  # its actor's restarts after a crash
    @property
    def held_for_s(self) -> float: ...  # how long it stays held out (0.0: not held)


class RouterStatusLike(Protocol):
    @property
    def providers(self) -> Sequence[ProviderStatusLike]: ...
    @property
    def uptime_s(self) -> float: ...
    @property
    def simulated(self) -> bool: ...
    @property
    def waiting_calls(self) -> int: ...
    @property
    def global_budget_refusing(self) -> Sequence[str]: ...


class RouterHandle(Protocol):
    """The running router as the gateway uses it."""

    @property
    def config(self) -> Config: ...

    async def call(self, call: Call, *, job_id: str | None = None) -> Result: ...

    async def cancel_job(self, job_id: str, reason: str) -> None: ...

    async def spend_saved(self, *, within: float = 1.0) -> bool: ...

    def stream(
        self, call: Call, *, job_id: str | None = None
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Delta | Result]]: ...

    def subscribe(
        self, *, buffer: int = 256, accept: Callable[[TraceEvent], bool] | None = None
    ) -> Subscription: ...

    def status(self) -> RouterStatusLike: ...

    def queued_jobs(self) -> frozenset[str]: ...  # jobs whose calls wait for a slot

    def started_jobs(self) -> Mapping[str, float]: ...  # ... and took one: when

    async def spend(self, scope: str = "global") -> dict[str, float]: ...

    async def feedback(
        self,
        call_id: str,
        score: float,
        *,
        intent: str | None = None,
        model: str | None = None,
    ) -> None: ...
