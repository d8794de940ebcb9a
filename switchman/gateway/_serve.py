"""``serve_gateway``: the gateway's hypercorn server, jobs and feeds, in one task.

Layout (everything inside the caller's nursery, via this one task)::

    serve_gateway
     ├─ store            (opened here from config.server.db unless one is given)
     ├─ metrics pump     router.subscribe() → GatewayMetrics (breaker changes; calls are
     │                   counted from each job's result by the job runner)
     ├─ retention        prunes old jobs every few minutes
     ├─ job host         the nursery every job runs in (JobRunner)
     └─ hypercorn        trio worker serving the ASGI app

Graceful shutdown, when ``shutdown_trigger`` returns: no new job is taken
(a new call answers 503 ``shutting_down``, ``/health`` 503 ``draining``: the
gateway keeps listening meanwhile, so load balancers and clients are told
rather than refused); jobs in flight get ``config.server.grace_s`` to finish;
then the router ends the rest, and each is stored with the router's own failed
result (its attempts, what they were billed) and reason ``"shutdown"``;
websockets close once the results they owe are sent; only then does hypercorn
stop accepting, close idle connections and give requests still open a few
more seconds before cancelling them; the store closes. Cancelling ``serve_gateway``
instead skips the grace period but still stores the cancelled jobs as failed.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from switchman.gateway._app import Gateway
from switchman.gateway._hypercorn import SlowWrites
from switchman.gateway._hypercorn import install as install_guard
from switchman.gateway._jobs import JobRunner
from switchman.gateway._metrics import GatewayMetrics
from switchman.gateway._outbox import Outboxes
from switchman.gateway._protocol import RouterHandle
from switchman.store import JobStore, open_store

log = logging.getLogger("switchman.gateway")

#: how often old jobs are pruned
RETENTION_EVERY_S: Final = 300.0
#: the time hypercorn gives requests still open once the jobs are done (after the grace
#: period: hypercorn is told to stop only then)
RESPONSE_MARGIN_S: Final = 5.0
#: gateway jobs in flight per unit of router capacity
_JOBS_PER_CAPACITY: Final = 4
#: the prompt text the jobs in flight may hold, in request bodies of the largest size (32
#: of 4 MiB by default: 128 MiB, a team half of it); each job holds its prompt a few times
#: over, so this bounds the memory calls in flight take, which a job count alone did not
_PROMPT_BODIES: Final = 32


class InsecureBindError(ValueError):
    """Refused to serve a non-loopback address without gateway keys."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, has_keys: bool, insecure: bool) -> None:
    """Raise :class:`InsecureBindError` for an open gateway on a non-loopback host."""
    if not has_keys and not insecure and not is_loopback(host):
        raise InsecureBindError(
            f"refusing to serve {host!r} without gateway keys: anyone who can reach it could "
            "spend your provider budget. Configure [[keys]], bind 127.0.0.1, or pass "
            "insecure=True (--insecure) if you really mean it."
        )


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _address(bind: str) -> tuple[str, int]:
    """``http://127.0.0.1:8265`` → ``("127.0.0.1", 8265)``."""
    hostport = bind.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


@contextmanager
def _unwrapped() -> Iterator[None]:
    """Raise the lone exception of a nursery's ExceptionGroup as itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from _leaves(sub)
    else:
        yield exc


async def serve_gateway(
    router: RouterHandle,
    *,
    host: str,
    port: int,
    insecure: bool = False,
    store: JobStore | None = None,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    end_grace: Callable[[], Awaitable[object]] | None = None,
    wall_clock: Callable[[], float] = time.time,
    outboxes: Outboxes | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the gateway for ``router`` on ``host:port`` until shut down.

    ``task_status.started((host, port))`` reports the bound address once it
    listens (port 0 gives the real port). ``store`` defaults to one opened at
    ``config.server.db`` (closed here on exit). When ``shutdown_trigger``
    returns, the gateway shuts down gracefully (module docstring) and this
    returns; when ``end_grace`` returns during the grace period, the period ends
    there (the jobs left are ended as when it runs out). Raises
    :class:`InsecureBindError` before binding a non-loopback host without
    ``[[keys]]`` unless ``insecure``. ``outboxes``: the caller's record of what the
    websockets owe their clients (to tell at a forced exit), else the gateway's own.
    """
    config = router.config
    check_bind(host, has_keys=bool(config.keys), insecure=insecure)
    with _unwrapped():
        async with AsyncExitStack() as stack:
            if store is None:
                store = await stack.enter_async_context(
                    open_store(
                        config.server.db,
                        retention_count=config.server.job_retention_count,
                        retention_days=config.server.job_retention_days,
                        retention_mb=config.server.job_retention_mb,
                        clock=wall_clock,
                    )
                )
            await _serve(
                router,
                store,
                host=host,
                port=port,
                shutdown_trigger=shutdown_trigger,
                end_grace=end_grace,
                wall_clock=wall_clock,
                check_host=is_loopback(host),
                outboxes=outboxes,
                task_status=task_status,
            )


async def _serve(
    router: RouterHandle,
    store: JobStore,
    *,
    host: str,
    port: int,
    shutdown_trigger: Callable[[], Awaitable[object]] | None,
    end_grace: Callable[[], Awaitable[object]] | None,
    wall_clock: Callable[[], float],
    check_host: bool,
    outboxes: Outboxes | None,
    task_status: trio.TaskStatus[tuple[str, int]],
) -> None:
    config = router.config
    grace = config.server.grace_s
    metrics = GatewayMetrics()
    shutdown = trio.Event()
    server_done = trio.Event()
    jobs_done = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_pump_metrics, router, metrics)
        nursery.start_soon(_retention, store)
        job_nursery: trio.Nursery = await nursery.start(_host_jobs, jobs_done)
        runner = JobRunner(
            router,
            store,
            job_nursery,
            max_in_flight=max(config.router.capacity * _JOBS_PER_CAPACITY, 1),
            max_prompt_chars=config.server.max_body_bytes * _PROMPT_BODIES,
            on_result=metrics.record,
        )
        app = Gateway(
            router,
            store,
            runner,
            metrics,
            wall_clock=wall_clock,
            check_host=check_host,
            outboxes=outboxes,
        )
        hconfig = HypercornConfig()
        hconfig.bind = [_bind(host, port)]
        hconfig.graceful_timeout = RESPONSE_MARGIN_S
        hconfig.keep_alive_timeout = KEEP_ALIVE_S
        hconfig.backlog = LISTEN_BACKLOG
        # a websocket message is held to what an HTTP body may be (hypercorn closes the
        # socket, 1009, past it); its default, 16 MiB, let a message 4x a body be read
        hconfig.websocket_max_message_size = config.server.max_body_bytes
        hconfig.accesslog = None
        hconfig.errorlog = logging.getLogger("switchman.gateway.server")
        hconfig.include_server_header = False
        # the connections' slow writes, ended once a stop's margin is over (hypercorn hands
        # each connection its config: the one object of this server they share)
        writes = SlowWrites()
        hconfig.writes = writes  # type: ignore[attr-defined]

        asgi: Any = app  # hypercorn's own ASGI types are narrower than our dict-based ones
        install_guard()  # one socket's close racing its end must not stop the server

        async def run_server(*, task_status: trio.TaskStatus[list[str]]) -> None:
            try:
                await serve(asgi, hconfig, shutdown_trigger=shutdown.wait, task_status=task_status)
            finally:
                server_done.set()

        binds: list[str] = await nursery.start(run_server)
        address = _address(binds[0])
        log.info("gateway listening on %s:%d", *address)
        task_status.started(address)
        if shutdown_trigger is not None:
            await shutdown_trigger()
        else:
            await trio.sleep_forever()
        # graceful shutdown: still listening while jobs drain, so a load balancer or
        # client sees 503 (`/health` draining, new calls shutting_down), not a refusal
        runner.start_draining()
        async with trio.open_nursery() as grace_period:
            if end_grace is not None:  # (ends the period early when it returns)
                grace_period.start_soon(_end_on, end_grace, grace_period.cancel_scope)
            with trio.move_on_after(grace):
                await runner.wait_idle()
            grace_period.cancel_scope.cancel()
        await runner.cut_short()  # the router ends what is left, with its own results
        job_nursery.cancel_scope.cancel()
        await jobs_done.wait()
        app.drained.set()
        shutdown.set()  # now hypercorn stops accepting; open requests get their margin
        async with trio.open_nursery() as margin:  # (a second signal: no margin)
            if end_grace is not None:
                margin.start_soon(_end_on, end_grace, margin.cancel_scope)
            with trio.move_on_after(RESPONSE_MARGIN_S):
                await server_done.wait()
            margin.cancel_scope.cancel()
        writes.end()  # (a client still being written to, slowly, is dropped)
        await server_done.wait()
        nursery.cancel_scope.cancel()


async def _end_on(trigger: Callable[[], Awaitable[object]], scope: trio.CancelScope) -> None:
    """Cancel ``scope`` once ``trigger`` returns."""
    await trigger()
    scope.cancel()


async def _host_jobs(jobs_done: trio.Event, *, task_status: trio.TaskStatus[trio.Nursery]) -> None:
    """Own the nursery jobs run in; it ends when cancelled and every job cleaned up."""
    try:
        async with trio.open_nursery() as nursery:
            task_status.started(nursery)
            await trio.sleep_forever()
    finally:
        jobs_done.set()


#: how long an idle client connection is kept open: longer than clients keep theirs in
#: their pools (httpx and the openai SDK 5 s, aiohttp 15 s), so the client always closes
#: first; at hypercorn's 5 s both closed together now and then, and a request sent on the
#: connection as the server closed it was reset (no job made)
KEEP_ALIVE_S: Final = 75.0
#: connections the kernel queues before the server accepts them (capped by the system's
#: somaxconn): at hypercorn's 100, a burst of 600 clients connecting at once had 192 reset
LISTEN_BACKLOG: Final = 1024

#: the trace events the metrics take from the hub: the rest are counted from results
_METRIC_EVENTS: Final = frozenset({"breaker.changed"})


#: how soon the metrics feed subscribes again once its subscription ended
RESUBSCRIBE_S: Final = 0.5


async def _pump_metrics(router: RouterHandle, metrics: GatewayMetrics) -> None:
    """Feed the breaker events to ``metrics``, for as long as the gateway runs: a trace
    hub that restarted (a crash) ended the subscription, and it is taken again (once, the
    breaker transitions froze for good)."""
    while True:
        with router.subscribe(buffer=4096, accept=lambda e: e.type in _METRIC_EVENTS) as events:
            async for event in events:
                metrics.observe(event)
        log.warning("the trace hub ended the metrics' subscription (it restarted): taken again")
        await trio.sleep(RESUBSCRIBE_S)


async def _retention(store: JobStore) -> None:
    while True:
        await trio.sleep(RETENTION_EVERY_S)
        try:
            await store.prune()
        except Exception:  # a failed prune is retried next round, never fatal
            log.exception("pruning old jobs failed")
