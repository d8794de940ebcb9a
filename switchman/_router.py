"""The router: the supervised actor tree, and the handle applications hold.

::

    open_router(config)                        one nursery owns everything
     └─ root supervisor (one_for_one)
         ├─ trace hub
         ├─ ledger                 budgets
         ├─ provider supervisor    one actor per enabled provider
         └─ dispatcher             bouncer → eligibility → scoring → attempts → result

Actors talk through bounded memory channels created here, so an actor restarted
by its supervisor keeps its inbox. ``Router.aclose`` stops intake and shuts the
tree down in reverse start order: the dispatcher drains in-flight calls for the
grace period, then providers, ledger and hub stop.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Final

import attrs
import httpx
import trio

from switchman._call import INTENTS, Call
from switchman._channels import open_channel, send_soon
from switchman._errors import (
    FieldError,
    RouterFailed,
    SwitchmanError,
    UnknownCall,
    ValidationError,
)
from switchman._logsecrets import hide_secrets
from switchman._result import Delta, Result, TraceEvent, failed
from switchman._wallclock import anchored_wall_clock
from switchman.actors._board import (
    RouterStatus,
    StatusBoard,
    disabled_snapshot,
    provider_status,
    refusing_now,
)
from switchman.actors._dispatcher import STOPPED, run_dispatcher
from switchman.actors._env import DispatchEnv
from switchman.actors._hub import Subscription, TraceHub, run_trace_hub
from switchman.actors._learned import upstreams
from switchman.actors._ledger import limited_scopes, limits_from_config, run_ledger, tell_odd_limits
from switchman.actors._messages import (
    CancelCall,
    DispatcherMessage,
    FeedbackAnswer,
    FeedbackFor,
    LedgerMessage,
    ProviderMessage,
    SpendQuery,
    Submit,
)
from switchman.actors._persister import (
    BillsInterrupted,
    LedgerTap,
    Persistence,
    bill_interrupted,
    learned_for,
    load_state,
    run_persister,
    tell_spent_out,
    tell_unclaimed,
)
from switchman.actors._provider import run_provider_actor
from switchman.actors._room import BudgetRoom
from switchman.catalog._config import api_key, key_missing, load_config, validate_config
from switchman.catalog._credentials import header_credentials
from switchman.catalog._discovery import discover_local_models
from switchman.catalog._spec import Config, ModelSpec
from switchman.policy._breaker import BreakerConfig
from switchman.policy._budget import Ledger
from switchman.policy._candidates import canonical_call, unserved, validate_call
from switchman.policy._intensity import Intensity
from switchman.policy._learning import LearningConfig, ModelStats
from switchman.policy._redaction import known_secrets
from switchman.store._db import StoreError
from switchman.supervisor import ChildSpec, Supervisor, run_supervisor

INBOX_SIZE = 256


#: call ids: 64 random bits per call from a generator seeded once from the OS (a
#: syscall per call cost more than the rest of building the call message)
log = logging.getLogger("switchman.router")
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def _new_call_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


class RouterClosed(SwitchmanError, trio.ClosedResourceError):
    """``Router.feedback`` or ``Router.spend`` on a router that was closed (a
    ``trio.ClosedResourceError`` too). A call on a closed router is not an error: it
    returns a failed result (``cancelled``)."""

    code = "router_closed"

    def __init__(self) -> None:
        super().__init__("the router is closed: open a new one (open_router) to go on")

    def __reduce__(self) -> tuple[type[RouterClosed], tuple[()], dict[str, object]]:
        return (type(self), (), self.__dict__)  # (pickled, copied: its notes too)


#: what a router used from outside its own trio run says
OTHER_RUN: Final = (
    "this router runs in another trio run: call it from that run's tasks (from another "
    "thread: trio.from_thread.run(router.call, call, trio_token=TOKEN), TOKEN being "
    "trio.lowlevel.current_trio_token() taken in the router's run)"
)

#: what opening a router outside a trio run says (asyncio's event loop, most often)
NOT_TRIO: Final = (
    "switchman.open_router needs a trio run (trio.run): from asyncio, run the router in a "
    "thread of its own under trio.run (examples/asyncio_app.py does, cancellation and "
    "streams included), or call the daemon over HTTP"
)


@attrs.define(eq=False)
class Router:
    """The handle to a running router. Safe to share between tasks of its trio run; from
    anywhere else (another run, a thread), ``RuntimeError`` (see ``OTHER_RUN``)."""

    config: Config
    _hub: TraceHub
    _board: StatusBoard
    _dispatch: trio.MemorySendChannel[DispatcherMessage]
    _ledger: trio.MemorySendChannel[LedgerMessage]
    _root: Supervisor
    _started: float
    _closed: bool = False
    #: the root task of the trio run it runs in: the one run it serves
    _run: object = attrs.field(factory=trio.lowlevel.current_root_task, repr=False)
    #: the spend the persister saves, when there is a store and a budget (``spend_saved``)
    _saving: LedgerTap | None = None

    def _here(self) -> None:
        """Raise ``RuntimeError`` unless called from a task of the router's own trio run
        (a call from another would wedge the dispatcher's inbox for good)."""
        try:
            here = trio.lowlevel.current_root_task()
        except RuntimeError:  # (not in a trio run at all: a plain thread)
            here = None
        if here is not self._run:
            raise RuntimeError(OTHER_RUN)

    @property
    def simulated(self) -> bool:
        """Whether the answers are simulated (every enabled provider is the simulator)."""
        return self.config.simulated

    def _submission(
        self, call: Call, job_id: str | None, *, stream: bool
    ) -> tuple[Submit, trio.MemoryReceiveChannel[Delta | Result]]:
        """The message that submits ``call``, and the channel its replies come on.
        Raises ``ValidationError`` for a call the configuration cannot serve."""
        self._here()
        if not isinstance(call, Call):
            raise TypeError(
                f"call: must be a switchman.Call, not {type(call).__name__} (from a dict: "
                "switchman.call_from_dict)"
            )
        call = canonical_call(call, self.config)  # a model named by its provider's id
        validate_call(call, self.config)
        send: trio.MemorySendChannel[Delta | Result]
        receive: trio.MemoryReceiveChannel[Delta | Result]
        # a stream's replies never wait for its reader: one reading slowly (or not for a
        # while) must not hold the attempt open past its deadline, keep the provider's
        # slot or count against the model, nor lose its result; what waits for it is the
        # answer's deltas, as bounded as the answer (its max_tokens)
        send, receive = open_channel(math.inf if stream else 1)
        submit = Submit(
            call=call,
            call_id=_new_call_id(),
            job_id=job_id,
            stream=stream,
            reply_to=send,
            submitted_at=trio.current_time(),
        )
        return submit, receive

    async def _cancel(self, call_id: str) -> None:
        """Cancel a call still running (shielded and bounded: it runs while leaving)."""
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            try:
                await self._dispatch.send(CancelCall(call_id=call_id))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def cancel_job(self, job_id: str, reason: str) -> None:
        """End the running call submitted for ``job_id`` now: whoever waits for it gets
        its failed result (code ``cancelled``, ``reason`` its message), with the attempts
        it made and what they were billed. A job with no call running: nothing."""
        self._here()
        try:
            await send_soon(self._dispatch, CancelCall(job_id=job_id, reason=reason))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the router is closed: its calls have ended

    async def call(self, call: Call, *, job_id: str | None = None) -> Result:
        """Route ``call`` and return its result (``status`` "failed" with errors when no
        model could answer). Raises ``ValidationError`` for a call the configuration
        cannot serve (unknown model). Cancelled, the call's attempts are cancelled and
        its reservations released (an attempt that had begun its answer is billed what
        it generated, as the provider bills it)."""
        submit, receive = self._submission(call, job_id, stream=False)
        call_id = submit.call_id
        try:  # the wait for the reply below is the checkpoint
            if self._closed:
                raise trio.ClosedResourceError
            await send_soon(self._dispatch, submit)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.lowlevel.checkpoint()
            return failed(call_id, job_id, "cancelled", "the router is closed")
        with receive:
            try:
                item = await receive.receive()
            except trio.EndOfChannel:
                return failed(call_id, job_id, "cancelled", STOPPED)
            except BaseException:  # cancelled (or worse): the call must not go on alone
                await self._cancel(call_id)
                raise
        assert isinstance(item, Result)  # a non-streaming call gets no deltas
        return item

    @asynccontextmanager
    async def stream(
        self, call: Call, *, job_id: str | None = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Delta | Result]]:
        """Deltas of redacted answer text as they arrive, then exactly one ``Result``:
        ``async with router.stream(call) as replies: async for item in replies: ...`` (a
        context manager: the block's end cancels a call still running).

        The call never waits for the reader: a slow one finds the deltas queued, and the
        result after them. Leaving the block early cancels the call."""
        submit, receive = self._submission(call, job_id, stream=True)
        call_id = submit.call_id
        with receive:  # closing needs no checkpoint (``async with`` would add one)
            try:
                if self._closed:
                    raise trio.ClosedResourceError
                await send_soon(self._dispatch, submit)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                submit.reply_to.close()
                fail_send, fail_receive = trio.open_memory_channel[Delta | Result](1)
                fail_send.send_nowait(failed(call_id, job_id, "cancelled", "the router is closed"))
                fail_send.close()
                async with fail_receive:
                    yield fail_receive
                return
            try:
                yield receive
            finally:
                if receive.statistics().open_send_channels > 0:  # still running: cancel it
                    await self._cancel(call_id)

    def subscribe(
        self, *, buffer: int = 256, accept: Callable[[TraceEvent], bool] | None = None
    ) -> Subscription:
        """Every trace event from now on (those ``accept`` returns true for, when given);
        close the channel to unsubscribe. A subscriber that falls ``buffer`` events behind
        loses events and is told how many (of those it accepts). A plain ``async for``
        keeps up: ``receive`` takes the events waiting without letting the router run
        between them (see ``Subscription``). Once the router has closed, the channel
        ends at once."""
        self._here()
        return self._hub.subscribe(buffer=buffer, accept=accept)

    def queued_jobs(self) -> frozenset[str]:
        """The ``job_id`` of each call waiting for one of the router's ``capacity`` slots
        (a gateway shows its job ``queued``); no checkpoint."""
        self._here()
        return frozenset(self._board.queued_jobs)

    def started_jobs(self) -> Mapping[str, float]:
        """The ``job_id`` of each call running that waited for a slot first, with the
        wall-clock time it took one (a gateway shows it as the job's ``started_at``)."""
        self._here()
        return MappingProxyType(dict(self._board.started_jobs))

    def status(self) -> RouterStatus:
        """The providers' live state as their actors last published it (breakers, rate
        limits, learned statistics, calls and attempts in flight); no checkpoint."""
        self._here()
        now = trio.current_time()
        snaps = self._board.snapshots()
        return RouterStatus(
            providers=tuple(provider_status(s, now) for s in snaps.values()),
            uptime_s=now - self._started,
            simulated=self.config.simulated,
            in_flight_calls=self._board.calls_in_flight,
            waiting_calls=self._board.calls_waiting,
            global_budget_refusing=refusing_now(self._board.global_refusing, time.time()),
        )

    async def feedback(
        self,
        call_id: str,
        score: float,
        *,
        intent: str | None = None,
        model: str | None = None,
    ) -> None:
        """Quality feedback (0..1) on a finished call, for learning: credited to the model
        that answered, for the call's intent (or ``intent`` when given), once per call.

        The router remembers who answered its last 10,000 calls, in memory. For an older
        call, or one from before a restart, pass the ``model`` (``result.model``) and the
        call's ``intent`` that you kept: the score is credited to them. ``UnknownCall`` (a
        ``KeyError``) if the router does not know the call and no ``model`` was given;
        ``RouterClosed`` (a ``trio.ClosedResourceError``) once the router is closed."""
        self._here()
        if self._closed:
            raise RouterClosed()
        errors: list[FieldError] = []
        if model is not None:
            if model not in self.config.models:
                errors.append(FieldError("model", f"{model!r} is not a model of this router"))
            if intent is None:
                errors.append(FieldError("intent", "is required with model (the call's intent)"))
        if isinstance(score, bool) or not isinstance(score, int | float):
            errors.append(FieldError("score", f"must be a number; got {type(score).__name__}"))
        elif not 0.0 <= score <= 1.0:  # (NaN fails this too)
            errors.append(FieldError("score", "must be between 0 and 1"))
        if intent is not None and intent not in INTENTS:
            errors.append(FieldError("intent", f"must be one of {', '.join(sorted(INTENTS))}"))
        if errors:
            raise ValidationError(errors)
        send, receive = trio.open_memory_channel[FeedbackAnswer](1)
        async with receive:
            message = FeedbackFor(
                call_id=call_id, score=float(score), reply_to=send, intent=intent, model=model
            )
            try:
                await self._dispatch.send(message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise RouterClosed() from None
            try:
                answer = await receive.receive()
            except trio.EndOfChannel:
                answer = "unknown"
        if answer == "closed":
            raise self._gone()
        if answer == "rated":
            raise ValidationError(
                [FieldError("call_id", f"{call_id} was already rated: feedback counts once")]
            )
        if answer == "unknown":
            raise UnknownCall(call_id)
        if answer == "out_of_service":  # (not counted as given: rate it once it is back)
            raise UnknownCall.out_of_service(call_id)

    async def spend(self, scope: str = "global") -> dict[str, float]:
        """USD spent in the current hour, day and month for ``scope``: ``"global"``,
        ``"provider:NAME"`` or ``"caller:HANDLE"`` (``ValidationError`` for anything else,
        or a provider the configuration does not have and that spent nothing this month;
        ``RouterClosed`` once the router is closed). A caller's spend is kept for a gateway
        key's handle or a handle a budget names; any other handle reads zero (it is the
        caller's own word)."""
        self._here()
        if self._closed:
            raise RouterClosed()
        kind, _, name = scope.partition(":")
        gone = kind == "provider" and bool(name) and name not in self.config.providers
        if not (scope == "global" or (kind in ("provider", "caller") and name)):
            raise self._not_a_scope(scope)
        send, receive = trio.open_memory_channel[dict[str, float]](1)
        async with receive:
            # through the dispatcher: it first hands the ledger the spend it has tracked
            try:
                await self._dispatch.send(SpendQuery(scope=scope, reply_to=send))
                spent = await receive.receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.EndOfChannel):
                raise self._gone() from None
        if gone and not any(spent.values()):  # (one removed since still shows its spend)
            raise self._not_a_scope(scope)
        return spent

    def _not_a_scope(self, scope: str) -> ValidationError:
        return ValidationError(
            [
                FieldError(
                    "scope",
                    f"{scope!r} is not a budget scope: use global, provider:NAME "
                    f"(one of {', '.join(self.config.providers)}) or caller:HANDLE",
                )
            ]
        )

    def _gone(self) -> SwitchmanError:
        """Why a query the dispatcher took went unanswered: the router closed (its inbox
        closed with it), or the dispatcher failed and restarted (its inbox open still)."""
        if self._closed or self._dispatch.statistics().open_receive_channels == 0:
            return RouterClosed()
        return RouterFailed()

    async def spend_saved(self, *, within: float = 1.0) -> bool:
        """Wait until the spend of every attempt settled so far is in the store (``within``
        seconds at most; whether it is). The gateway stores a job's result after it, so a
        process killed between the two never loses a finished call's spend from its
        budgets. At once without a store or a budget."""
        self._here()
        if self._saving is None or self._closed:
            return True
        try:  # (through the ledger: it has taken every settle sent before this)
            await self.spend("global")
        except RouterClosed:
            return True
        return await self._saving.wait_saved(within=within)

    async def aclose(self) -> None:
        """Stop taking calls, drain in-flight ones for the grace period, stop every actor."""
        self._here()
        if self._closed:
            return
        self._closed = True
        await self._root.shutdown()


def _keys_checked(config: Config, env: Mapping[str, str] | None) -> Config:
    """``config`` (built in Python) with load_config's key rule applied: a provider whose
    API key ``env`` lacks is disabled with the reason load_config gives (``missing API
    key: set X``; not when its ``headers`` carry a credential), unless it is disabled
    already.
    And ``simulated`` when the config says so or every enabled provider is the
    simulator (its results all say simulated)."""
    providers = {
        name: (
            attrs.evolve(p, disabled_reason=reason)
            if p.disabled_reason is None and (reason := key_missing(p, env)) is not None
            else p
        )
        for name, p in config.providers.items()
    }
    enabled = [p for p in providers.values() if p.disabled_reason is None]
    simulated = config.simulated or (bool(enabled) and all(p.kind == "sim" for p in enabled))
    if providers == config.providers and simulated == config.simulated:
        return config
    return attrs.evolve(config, providers=providers, simulated=simulated)


def _held_now(tap: LedgerTap, room: BudgetRoom, ledger: Ledger) -> None:
    """The ledger after a change: its holds to save (``tap``), and the calls waiting for
    budget room woken if one ended (``room``)."""
    tap.hold(ledger)
    room(ledger)


#: the stores routers of this process run on (by id): one store, one router
_STORES_IN_USE: Final[set[int]] = set()


async def run_router(
    config: Config | None = None,
    *,
    clients: Mapping[str, httpx.AsyncClient] | None = None,
    env: Mapping[str, str] | None = None,
    breaker: BreakerConfig | None = None,
    store: Persistence | None = None,
    task_status: trio.TaskStatus[Router] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a router until ``Router.aclose`` or cancellation; ``task_status.started(router)``:
    ``router: switchman.Router = await nursery.start(switchman.run_router, config)``.

    ``clients`` maps provider names to httpx clients to use instead of opening
    pooled ones (tests, benchmarks); ``env`` replaces ``os.environ`` for API keys;
    ``store`` keeps spend and learned statistics across restarts, for one router at a
    time (a second router on it, its spend written over the first's, is a ``StoreError``).
    Awaited without ``nursery.start`` (no handle to call it by): ``TypeError``.
    """
    if task_status is trio.TASK_STATUS_IGNORED:
        raise TypeError(
            "run_router runs until closed and hands its router to nursery.start: "
            "router = await nursery.start(switchman.run_router, config); "
            "or use `async with switchman.open_router(config) as router`"
        )
    if store is not None and id(store) in _STORES_IN_USE:
        raise StoreError(
            "this store is in use by another router in this process: two routers on one "
            "store write their spend over each other's (a budget would count half of it); "
            "give each router a store of its own file (switchman.store.open_store)"
        )
    claimed = store is not None
    if claimed:
        _STORES_IN_USE.add(id(store))
    try:
        await _run_router(config, clients, env, breaker, store, task_status)
    finally:
        if claimed:
            _STORES_IN_USE.discard(id(store))


@trio.lowlevel.enable_ki_protection  # Ctrl-C reaches the application's task, not ours
async def _run_router(
    config: Config | None,
    clients: Mapping[str, httpx.AsyncClient] | None,
    env: Mapping[str, str] | None,
    breaker: BreakerConfig | None,
    store: Persistence | None,
    task_status: trio.TaskStatus[Router],
) -> None:
    if config is None:
        config = load_config(None, env=env)
    else:  # one built in Python meets the same rules as one loaded from TOML
        validate_config(config)
        config = _keys_checked(config, env)
    # an Ollama server that answers joins with its pulled models (local/<name>)
    config = await discover_local_models(config, env=env, skip=clients or ())
    initial_ledger: Ledger | None = None
    initial_stats: dict[tuple[str, str], ModelStats] = {}
    kept_stats: dict[tuple[str, str], ModelStats] = {}  # of models the config leaves out
    learned_models = upstreams(config)  # the model each alias's statistics are of
    limits = limits_from_config(config)
    tell_odd_limits(limits)  # (likely mistakes, said as the router starts)
    if store is not None:
        initial_ledger, stored_stats, stored_models, held = await load_state(store)
        placed = learned_for(learned_models, stored_stats, stored_models)
        initial_stats, kept_stats = placed.stats, placed.kept
        learned_models.update(placed.kept_upstreams)
        if initial_ledger is not None:
            tell_unclaimed(initial_ledger, config)
            tell_spent_out(initial_ledger, limits)
        if held and isinstance(store, BillsInterrupted):
            await bill_interrupted(store, held, simulated=config.simulated)
    tap = LedgerTap()
    if initial_ledger is not None:
        # saved again at once, as it now is: the holds of attempts a killed process left
        # are spent in it, and the next start must not count (or tell of) them again
        tap(initial_ledger)
    hub = TraceHub()
    board = StatusBoard()
    seed = config.router.seed
    rng = random.Random(seed)
    dispatch_send, dispatch_recv = trio.open_memory_channel[DispatcherMessage](INBOX_SIZE)
    # unbounded, as every sender is: a reservation or query waits for its answer, and each
    # hold ends in one settle or release; those were dropped past a full inbox's 5 s
    ledger_send, ledger_recv = trio.open_memory_channel[LedgerMessage](math.inf)
    learning = LearningConfig(
        half_life_s=config.router.learning_half_life_s,
        failure_half_life_s=config.router.failure_half_life_s,
    )

    by_provider: dict[str, list[ModelSpec]] = {}
    for m in config.models.values():
        by_provider.setdefault(m.provider, []).append(m)

    provider_specs: list[ChildSpec] = []
    inboxes: dict[str, trio.MemorySendChannel[ProviderMessage]] = {}
    for name, spec in config.providers.items():
        models = tuple(by_provider.get(name, ()))
        if spec.disabled_reason is not None or not models:
            board.publish(name, disabled_snapshot(spec, models, trio.current_time()))
            continue
        send, receive = trio.open_memory_channel[ProviderMessage](INBOX_SIZE)
        inboxes[name] = send
        aliases = {m.alias for m in models}
        start = functools.partial(
            run_provider_actor,
            spec,
            models,
            receive,
            board=board,
            hub=hub,
            api_key=api_key(spec, env),
            breaker_cfg=breaker,
            learning_cfg=learning,
            # (a sim provider's own seed, when given, makes its draws its own)
            rng=random.Random(rng.random() if spec.seed is None else spec.seed),
            client=(clients or {}).get(name),
            initial_stats={k: v for k, v in initial_stats.items() if k[0] in aliases},
        )
        provider_specs.append(
            ChildSpec(
                id=f"provider:{name}",
                start=start,
                stop=send.close,
                shutdown_s=5.0,
                on_crash=functools.partial(board.crashed, name),
            )
        )

    in_service = set(inboxes)
    running = {m.alias for m in config.models.values() if m.provider in in_service}
    models_in_service = tuple(m for m in config.models.values() if m.provider in in_service)
    out_of_service = {
        m.alias: why
        for m in config.models.values()
        if m.provider not in in_service and (why := unserved(m, config)) is not None
    }
    #: the credentials in the providers' headers (``header_credentials``)
    configured = [v for p in config.providers.values() for v in header_credentials(p.headers)]
    dispatch_env = DispatchEnv(
        config=config,
        board=board,
        hub=hub,
        providers=inboxes,
        ledger=ledger_send,
        limited_scopes=limited_scopes(limits),
        keys_by_handle={k.handle: k for k in config.keys},
        models=models_in_service,
        out_of_service=out_of_service,
        rng=random.Random(rng.random()),
        learning=learning,
        weights=config.router.weights,
        wall=anchored_wall_clock(),
        holds_saved=tap.holds_saved if store is not None else None,
        # a model echoing the router's own keys (a prompt injection, a provider's error
        # text in an answer) shows none of them, whatever their shape
        secrets=known_secrets(
            [api_key(p, env) for p in config.providers.values()]
            + configured  # Azure's api-key, a proxy's token: secrets as much as a key
            + [k.secret for k in config.keys]
        ),
    )
    specs = [
        ChildSpec(id="trace-hub", start=functools.partial(run_trace_hub, hub), shutdown_s=0.0),
        # the persister before the ledger: stopped after it, so its last save has every
        # hold the calls cut at a stop gave back or settled (the ledger drains its inbox)
        *(
            [
                ChildSpec(
                    id="persister",
                    start=functools.partial(
                        run_persister,
                        store,
                        board,
                        tap,
                        # what was learned about models not running this time (their
                        # provider has no key today, or they left the config for now)
                        kept={
                            **kept_stats,
                            **{k: v for k, v in initial_stats.items() if k[0] not in running},
                        },
                        upstreams=learned_models,
                    ),
                    shutdown_s=0.0,
                )
            ]
            if store is not None
            else []
        ),
        ChildSpec(
            id="ledger",
            # a restarted ledger carries on from the last state it handed out, holds and all
            start=lambda task_status: run_ledger(
                ledger_recv,
                limits,
                initial=tap.latest,  # (the stored ledger, handed to the tap at start)
                on_change=tap,
                on_state=functools.partial(_held_now, tap, dispatch_env.budget_room),
                on_stop=tap.ledger_stopped,
                task_status=task_status,
            ),
            stop=ledger_send.close,
            shutdown_s=5.0,
        ),
        ChildSpec(
            id="providers",
            start=functools.partial(
                run_supervisor,
                "providers",
                provider_specs,
                # five a provider: each provider's own crashes are held back by holds
                # (``policy.crash_hold``), and several crashing alone at once, with answers
                # between, had given up for all, the root then restarting every provider
                intensity=Intensity(max_restarts=5 * max(len(provider_specs), 1), period_s=30.0),
            ),
            shutdown_s=10.0,
        ),
        ChildSpec(
            id="dispatcher",
            start=functools.partial(run_dispatcher, dispatch_env, dispatch_recv),
            stop=dispatch_send.close,
            shutdown_s=config.server.grace_s + 5.0,
        ),
    ]
    # the HTTP libraries' own debug lines show none of the secrets either
    # (those of the headers' credentials too short for ``known_secrets`` included)
    with hide_secrets({*dispatch_env.secrets, *configured}):
        async with trio.open_nursery() as nursery:
            root = await nursery.start(
                functools.partial(
                    run_supervisor,
                    "root",
                    specs,
                    intensity=Intensity(max_restarts=3, period_s=30.0),
                )
            )
            router = Router(
                config=config,
                hub=hub,
                board=board,
                dispatch=dispatch_send,
                ledger=ledger_send,
                root=root,
                started=trio.current_time(),
                saving=tap if store is not None and limits else None,
            )
            task_status.started(router)


@asynccontextmanager
async def open_router(
    config: Config | None = None,
    *,
    clients: Mapping[str, httpx.AsyncClient] | None = None,
    env: Mapping[str, str] | None = None,
    breaker: BreakerConfig | None = None,
    store: Persistence | None = None,
) -> AsyncIterator[Router]:
    """A running router for the duration of the block; closed on the way out.

    Left normally or by an exception, it stops taking calls and lets those in flight
    finish for ``grace_s`` (``aclose``). Left by a cancellation (a ``move_on_after``
    around it, a cancelled nursery) or Ctrl-C, its actors stop at once: calls in flight
    end failed (``cancelled``, "the router stopped before the call finished"), their
    trace events with the hub. To drain on a shutdown signal of your own, ``await
    router.aclose()`` before cancelling.

    An exception raised in the block (``ValidationError`` from ``router.call``, or the
    application's own) comes out as itself, not inside the ``ExceptionGroup`` the
    router's nursery would wrap it in; a group of several stays a group.

    Opening raises ``ValidationError`` naming every problem of a ``config`` built in
    Python (as ``load_config`` does for a file); a provider whose key variable is unset is
    disabled, not an error. Each open asks a local Ollama for its models (at most 0.5 s).
    Without ``store`` (``switchman.store.open_store``), spend and learning start afresh.
    The arguments are ``run_router``'s. Outside a trio run (asyncio's), ``RuntimeError``
    saying how to reach it from there.
    """
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        raise RuntimeError(NOT_TRIO) from None
    try:
        async with trio.open_nursery() as nursery:
            router: Router = await nursery.start(
                functools.partial(
                    run_router, config, clients=clients, env=env, breaker=breaker, store=store
                )
            )
            interrupted = False
            try:
                yield router
            except BaseException as exc:
                interrupted = _interrupted(exc)
                raise
            finally:
                if interrupted:  # Ctrl-C: stop now, as a cancellation does, not drain
                    nursery.cancel_scope.cancel()
                else:
                    with trio.CancelScope(shield=True):
                        await router.aclose()
    except BaseExceptionGroup as group:
        only = _single(group)
        if only is None:
            raise
        raise only from only.__cause__  # (the group's context dropped, not its cause)


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is (or holds) a ``KeyboardInterrupt``."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(KeyboardInterrupt) is not None
    return isinstance(exc, KeyboardInterrupt)


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside ``group`` (through nested groups of one), else None."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc
