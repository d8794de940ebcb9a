"""An in-memory router with the ``RouterHandle`` shape, and a gateway harness.

Behaviour by model alias: ``fast`` answers at once, ``slow`` after
``router.slow_s``, ``hang`` never, ``cut`` streams two deltas then fails,
``nope`` / ``late`` / ``pricey`` / ``picky`` fail with no_eligible_model /
timeout / budget_exceeded / refused; ``toolong`` / ``strict`` / ``mixed`` /
``keyless`` fail as providers make them fail (:data:`PROVIDER_FAILURES`). A
prompt of ``"boom"`` makes the router raise (a router bug). ``auto`` and the
route ``best`` answer as ``fast``; ``sim/echo`` (an alias with a ``/``, as the
catalog's) answers too. An alias in ``router.excluded`` fails
``no_eligible_model``, its trace leaving out the models given, for their reasons.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import httpx
import trio

from switchman._call import INTENTS, Call
from switchman._errors import FieldError, ValidationError
from switchman._result import (
    AttemptRecord,
    Delta,
    EligibilityTrace,
    ErrorInfo,
    Exclusion,
    Result,
    Trace,
    TraceEvent,
    Usage,
)
from switchman.actors import Subscription, TraceHub
from switchman.catalog import Config, KeySpec, ModelSpec, ProviderSpec, RouteSpec, ServerConfig
from switchman.gateway import serve_gateway
from switchman.store import JobStore

FAILURES = {
    "nope": ("no_eligible_model", "no model is eligible"),
    "late": ("timeout", "the call's deadline passed"),
    "pricey": ("budget_exceeded", "the daily budget of team-a is spent"),
    "picky": ("refused", "every model refused"),
}
PROVIDER_SECRET = "sk-provider-SECRET-123"
#: failures the providers cause, as the router reports them: alias -> each attempt's
#: (outcome, provider status, provider message); the errors are the router's (the cause
#: first, then each attempt's own when there are several)
PROVIDER_FAILURES: dict[str, tuple[tuple[str, int | None, str], ...]] = {
    # the prompt is longer than the model's context: the request's fault
    "toolong": (("context_exceeded", 400, "maximum context length is 8192 tokens"),),
    # two models, each answering 422 to a parameter: the request's fault
    "strict": (
        ("error", 422, "temperature is not supported with this model"),
        ("error", 422, "temperature is not supported with this model"),
    ),
    # too long for one model, the other down: not only the request's fault
    "mixed": (
        ("context_exceeded", 400, "maximum context length is 8192 tokens"),
        ("error", 500, "internal server error"),
    ),
    # the provider rejects switchman's provider key
    "keyless": (("error", 401, "Incorrect API key provided"),),
}


@attrs.frozen(kw_only=True)
class ModelStatus:
    alias: str
    breaker: str = "closed"
    retry_at: float | None = None
    stats: Mapping[str, Any] = attrs.field(factory=dict)
    rate_limited_for_s: float = 0.0
    provider_remaining: Mapping[str, float | None] = attrs.field(factory=dict)
    held_out: str | None = None
    held_for_s: float = 0.0
    breaker_opened_by: str | None = None


@attrs.frozen(kw_only=True)
class ProviderStatus:
    name: str
    kind: str
    disabled_reason: str | None = None
    in_flight: int = 0
    max_concurrency: int = 64
    rate_headroom: Mapping[str, Any] = attrs.field(factory=dict)
    models: tuple[ModelStatus, ...] = ()
    restarts: int = 0
    held_for_s: float = 0.0


@attrs.frozen(kw_only=True)
class RouterStatus:
    providers: tuple[ProviderStatus, ...]
    uptime_s: float
    simulated: bool
    waiting_calls: int = 0
    global_budget_refusing: tuple[str, ...] = ()


def make_config(
    *,
    keys: Sequence[KeySpec] = (),
    db: str = ":memory:",
    grace_s: float = 2.0,
    max_body_bytes: int = 64 * 1024,
) -> Config:
    providers = {
        "sim": ProviderSpec(name="sim", kind="sim"),
        "other": ProviderSpec(
            name="other",
            kind="openai",
            base_url="https://user:sekrit-pass@api.example.com/v1?key=sekrit-query",
            headers={"Authorization": f"Bearer {PROVIDER_SECRET}"},
            api_key_env="OTHER_API_KEY",
        ),
    }
    aliases = ["fast", "slow", "hang", "cut", *FAILURES, *PROVIDER_FAILURES, "sim/echo"]
    models = {a: ModelSpec(alias=a, provider="sim", model_id=f"sim-{a}") for a in aliases}
    models["gpt-x"] = ModelSpec(alias="gpt-x", provider="other", model_id="gpt-x-1")
    return Config(
        providers=providers,
        models=models,
        routes={"best": RouteSpec(name="best", chain=("fast", "slow"))},
        keys=tuple(keys),
        server=ServerConfig(db=db, grace_s=grace_s, max_body_bytes=max_body_bytes),
        simulated=True,
    )


KEYS = (
    KeySpec(key_env="KEY_A", handle="team-a", secret="secret-a", models=("fast", "slow", "sim/*")),
    KeySpec(key_env="KEY_B", handle="team-b", secret="secret-b", min_trust="trusted"),
    KeySpec(key_env="KEY_OPS", handle="ops", secret="secret-ops", admin=True),
)


def _answer(call: Call) -> str:
    last = [m.content for m in call.chat() if m.role == "user"][-1]
    return f"echo {last}"


class FakeRouter:
    def __init__(self, config: Config, *, slow_s: float = 0.3) -> None:
        self.config = config
        self.slow_s = slow_s
        self.calls: list[tuple[Call, str | None]] = []
        self.results: dict[str, Result] = {}
        self.feedback_given: list[tuple[str, float, str | None]] = []
        self.spend_asked: list[str] = []
        #: (caller handle, result) of each complete call: what it spent
        self.paid: list[tuple[str, Result]] = []
        self.breakers: dict[str, str] = {}
        #: alias -> why it is held out (e.g. the provider said 404), for 300 s
        self.held: dict[str, str] = {}
        #: job ids of calls waiting for a router slot (``queued_jobs``)
        self.queued: set[str] = set()
        self.rate_limited: dict[str, float] = {}  # alias -> seconds a 429 still holds it
        #: alias -> the models a call to it leaves out (``{alias: reason}``)
        self.excluded: dict[str, dict[str, str]] = {}
        self._hub = TraceHub()
        #: job id -> the scope its call waits in, and why a cancel_job cut it
        self._waiting: dict[str, trio.CancelScope] = {}
        self._cut: dict[str, str] = {}
        #: the jobs cancel_job ended
        self.cut_jobs: list[str] = []
        self._n = 0
        self._started = trio.current_time()
        self._new_call = trio.Event()

    async def spend(self, scope: str = "global") -> dict[str, float]:
        """The cost of the complete calls in ``scope`` (caller:HANDLE by the call's handle,
        provider:NAME by the answerer's, global all), for every period alike."""
        kind, _, name = scope.partition(":")
        total = 0.0
        for handle, result in self.paid:
            if (kind == "caller" and handle != name) or (
                kind == "provider" and result.provider != name
            ):
                continue
            total += result.cost_usd
        self.spend_asked.append(scope)
        return {"hour": total, "day": total, "month": total}

    # -- events -------------------------------------------------------------------------------

    def subscribe(
        self, *, buffer: int = 256, accept: Callable[[TraceEvent], bool] | None = None
    ) -> Subscription:
        return self._hub.subscribe(buffer=buffer, accept=accept)

    @property
    def subscribers(self) -> int:
        return self._hub.statistics().subscribers

    def publish(self, event: TraceEvent) -> None:
        """To every subscriber through the router's own hub (its buffers, filters and
        dropped-event notices)."""
        self._hub.publish(event)

    def _event(self, type_: Any, call: Call, call_id: str, job_id: str | None, **data: Any) -> None:
        self.publish(
            TraceEvent(
                type=type_,
                call_id=call_id,
                job_id=job_id,
                ts=time.time(),
                data=data,
                handle=call.caller.handle,
            )
        )

    # -- calls --------------------------------------------------------------------------------

    def _check(self, call: Call) -> str:
        name = call.model
        if name in ("auto", "best"):
            return "fast"
        if name not in self.config.models:
            raise ValidationError([FieldError("model", f"unknown model or route {name!r}")])
        return name

    def _provider_failure(self, call: Call, call_id: str, job_id: str | None, alias: str) -> Result:
        attempts = tuple(
            AttemptRecord(
                n=i + 1,
                alias=alias,
                provider="sim",
                started_at=0.0,
                ended_at=0.1,
                ttft_ms=None,
                outcome=outcome,  # type: ignore[arg-type]
                status_code=status,
                error=message,
            )
            for i, (outcome, status, message) in enumerate(PROVIDER_FAILURES[alias])
        )
        errors = tuple(
            ErrorInfo(
                code="permission_denied" if status == 401 else "all_models_failed",
                message=message,
                provider="sim",
                status=status,
            )
            for _, status, message in PROVIDER_FAILURES[alias]
        )
        if len(errors) > 1:  # the cause first, as the router gives it
            codes = {e.code for e in errors}
            last = errors[-1]
            lead = ErrorInfo(
                code=last.code if len(codes) == 1 else "all_models_failed",
                message=f"{len(errors)} attempt(s) failed; last: {last.message} "
                f"(sim, HTTP {last.status})",
                provider="sim",
                status=last.status,
            )
            errors = (lead, *errors)
        self._event("call.failed", call, call_id, job_id, code=errors[0].code)
        return Result(
            call_id=call_id,
            job_id=job_id,
            status="failed",
            errors=errors,
            trace=Trace(attempts=attempts, outcome="failed"),
        )

    def _unrouted(self, call: Call, call_id: str, job_id: str | None, alias: str) -> Result:
        excluded = tuple(Exclusion(alias=a, reason=r) for a, r in self.excluded[alias].items())
        message = "no eligible model: " + "; ".join(f"{e.alias}: {e.reason}" for e in excluded)
        self._event("call.failed", call, call_id, job_id, code="no_eligible_model")
        return Result(
            call_id=call_id,
            job_id=job_id,
            status="failed",
            errors=(ErrorInfo(code="no_eligible_model", message=message),),
            trace=Trace(eligibility=EligibilityTrace(excluded=excluded), outcome="failed"),
        )

    def _result(self, call: Call, call_id: str, job_id: str | None, alias: str) -> Result:
        if alias in self.excluded:
            result = self._unrouted(call, call_id, job_id, alias)
            self.results[call_id] = result
            return result
        if alias in PROVIDER_FAILURES:
            result = self._provider_failure(call, call_id, job_id, alias)
            self.results[call_id] = result
            return result
        if alias in FAILURES or alias == "cut":
            code, message = FAILURES.get(alias, ("all_models_failed", "the stream broke"))
            result = Result(
                call_id=call_id,
                job_id=job_id,
                status="failed",
                errors=(ErrorInfo(code=code, message=message),),
            )
            self._event("call.failed", call, call_id, job_id, code=code, message=message)
        else:
            attempts = (
                AttemptRecord(
                    n=1,
                    alias="slow",
                    provider="sim",
                    started_at=0.0,
                    ended_at=0.1,
                    ttft_ms=None,
                    outcome="timeout",
                ),
                AttemptRecord(
                    n=2,
                    alias=alias,
                    provider="sim",
                    started_at=0.1,
                    ended_at=0.2,
                    ttft_ms=12.0,
                    outcome="success",
                    cost_usd=0.002,
                ),
            )
            result = Result(
                call_id=call_id,
                job_id=job_id,
                status="complete",
                answer=_answer(call),
                model=alias,
                provider="sim",
                provider_model_id=f"sim-{alias}",
                usage=Usage(input_tokens=7, output_tokens=3),
                cost_usd=0.002,
                latency_ms=200.0,
                trace=Trace(attempts=attempts, outcome="success"),
                simulated=True,
            )
            self._event(
                "attempt.finished",
                call,
                call_id,
                job_id,
                alias=alias,
                provider="sim",
                outcome="success",
                ttft_ms=12.0,
                cost_usd=0.002,
            )
            self._event("call.completed", call, call_id, job_id, model=alias, latency_ms=200.0)
            self.paid.append((call.caller.handle, result))
        self.results[call_id] = result
        return result

    async def _start(self, call: Call, job_id: str | None) -> tuple[str, str]:
        alias = self._check(call)
        if call.prompt == "boom":
            raise RuntimeError("router bug")
        self._n += 1
        call_id = f"call-{self._n}"
        self.calls.append((call, job_id))
        self._new_call.set()
        self._new_call = trio.Event()
        self._event("call.accepted", call, call_id, job_id, model=call.model)
        with trio.CancelScope() as waiting:
            if job_id is not None:
                self._waiting[job_id] = waiting
            if alias == "slow":
                await trio.sleep(self.slow_s)
            elif alias == "hang":
                await trio.sleep_forever()
        if job_id is not None:
            del self._waiting[job_id]
        return alias, call_id

    async def spend_saved(self, *, within: float = 1.0) -> bool:
        return True

    async def cancel_job(self, job_id: str, reason: str) -> None:
        """As the router: the job's call ends now with a failed result saying ``reason``."""
        waiting = self._waiting.get(job_id)
        if waiting is not None:
            self._cut[job_id] = reason
            self.cut_jobs.append(job_id)
            waiting.cancel()

    def _cut_result(self, call_id: str, job_id: str) -> Result:
        attempt = AttemptRecord(
            n=1,
            alias="hang",
            provider="sim",
            started_at=0.0,
            ended_at=0.1,
            ttft_ms=None,
            outcome="cancelled",
            error="the call was cancelled",
        )
        return Result(
            call_id=call_id,
            job_id=job_id,
            status="failed",
            errors=(ErrorInfo(code="cancelled", message=self._cut[job_id]),),
            trace=Trace(attempts=(attempt,), outcome="cancelled"),
        )

    async def wait_for_calls(self, n: int) -> None:
        """Wait until ``n`` calls have reached the router."""
        while len(self.calls) < n:
            await self._new_call.wait()

    async def call(self, call: Call, *, job_id: str | None = None) -> Result:
        alias, call_id = await self._start(call, job_id)
        if job_id in self._cut:
            return self._cut_result(call_id, job_id)
        return self._result(call, call_id, job_id, alias)

    @asynccontextmanager
    async def stream(
        self, call: Call, *, job_id: str | None = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Delta | Result]]:
        send, receive = trio.open_memory_channel[Delta | Result](0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._produce, call, job_id, send)
            async with receive:
                yield receive
            nursery.cancel_scope.cancel()

    async def _produce(
        self, call: Call, job_id: str | None, send: trio.MemorySendChannel[Delta | Result]
    ) -> None:
        async with send:
            alias, call_id = await self._start(call, job_id)
            if job_id is not None and job_id in self._cut:
                await send.send(self._cut_result(call_id, job_id))
                return
            if alias in FAILURES or alias in PROVIDER_FAILURES or alias in self.excluded:
                await send.send(self._result(call, call_id, job_id, alias))
                return
            words = _answer(call).split(" ")
            if alias == "cut":
                words = words[:2]
            for i, word in enumerate(words):
                text = word if i == 0 else " " + word
                self._event("attempt.delta", call, call_id, job_id, n=1, text=text)
                await send.send(Delta(text=text))
            await send.send(self._result(call, call_id, job_id, alias))

    async def feedback(
        self,
        call_id: str,
        score: float,
        *,
        intent: str | None = None,
        model: str | None = None,
    ) -> None:
        if intent is not None and intent not in INTENTS:  # as the router checks it
            raise ValidationError([FieldError("intent", "must be a known intent")])
        if call_id not in self.results and model is None:  # (as the router: forgotten)
            raise KeyError(call_id)
        self.feedback_given.append((call_id, score, intent))

    def queued_jobs(self) -> frozenset[str]:
        return frozenset(self.queued)

    def started_jobs(self) -> Mapping[str, float]:
        return {}

    def status(self) -> RouterStatus:
        providers = []
        for name, spec in self.config.providers.items():
            models = tuple(
                ModelStatus(
                    alias=a,
                    breaker=self.breakers.get(a, "closed"),
                    held_out=self.held.get(a),
                    held_for_s=300.0 if a in self.held else 0.0,  # as a 404 hold
                    retry_at=trio.current_time() + 5 if self.breakers.get(a) == "open" else None,
                    stats={"unknown": {"n": 3.0, "success_rate": 1.0}},
                    rate_limited_for_s=self.rate_limited.get(a, 0.0),
                )
                for a, m in self.config.models.items()
                if m.provider == name
            )
            providers.append(
                ProviderStatus(
                    name=name,
                    kind=spec.kind,
                    disabled_reason="missing API key: set OTHER_API_KEY"
                    if name == "other"
                    else None,
                    in_flight=1 if name == "sim" else 0,
                    rate_headroom={"rpm": 0.5},
                    models=models,
                )
            )
        return RouterStatus(
            providers=tuple(providers),
            uptime_s=trio.current_time() - self._started,
            simulated=True,
        )


@attrs.define
class Running:
    client: httpx.AsyncClient
    host: str
    port: int
    shutdown: trio.Event
    router: Any

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"


@asynccontextmanager
async def running_gateway(
    router: Any, *, store: JobStore | None = None, headers: Mapping[str, str] | None = None
) -> AsyncIterator[Running]:
    """The gateway on 127.0.0.1:0 with an httpx client; graceful shutdown on exit."""
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(
            partial(
                serve_gateway,
                router,
                host="127.0.0.1",
                port=0,
                store=store,
                shutdown_trigger=shutdown.wait,
            )
        )
        async with httpx.AsyncClient(
            base_url=f"http://{host}:{port}", headers=dict(headers or {}), timeout=10
        ) as client:
            yield Running(client=client, host=host, port=port, shutdown=shutdown, router=router)
        shutdown.set()


@asynccontextmanager
async def gateway_over_fake(
    nursery: trio.Nursery, models: Sequence[ModelSpec], **config: Any
) -> AsyncIterator[tuple[Running, Any]]:
    """The real gateway over the real router (its ``config`` fields evolved), whose
    providers are one fake provider server: ``(gateway, server)``."""
    import switchman
    from switchman.sim import FakeServerConfig, serve_fake_provider
    from switchman.store import open_store
    from tests._httpfleet import ENV, http_fleet

    server = await nursery.start(serve_fake_provider, FakeServerConfig())
    fleet: Config = attrs.evolve(http_fleet(server, models), **config)
    async with (
        switchman.open_router(fleet, env=ENV) as router,
        open_store(":memory:") as store,
        running_gateway(router, store=store) as gw,
    ):
        yield gw, server


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def sdk_ask(base_url: str, model: str, stream: bool, prompt: str = "capital of France?") -> Any:
    """One chat completion through the official SDK (run it in a thread): the completion,
    or the list of a stream's chunks."""
    import openai

    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        messages: Any = [{"role": "user", "content": prompt}]
        if not stream:
            return client.chat.completions.create(model=model, messages=messages)
        return list(client.chat.completions.create(model=model, messages=messages, stream=True))
