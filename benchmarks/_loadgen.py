"""The load generator: a lean HTTP/1.1 client on trio, closed and open loops.

A general HTTP client (httpx, aiohttp) costs tens of microseconds of Python per
request, which on a 2-core machine would be CPU taken from the server under
test. This client sends pre-rendered request bytes over keep-alive connections
and parses only the status line and the framing headers, so the load
generator's own cost stays small and the same for every target.

- closed loop: ``concurrency`` workers, each with its own connection, send the
  next request as soon as the previous answer is in; after a warm-up (a time
  *and* a few round trips per worker) the answers that complete inside a fixed
  window are counted and divided by it (``Window``);
- a counted run: exactly N requests, back to back (memory checkpoints);
- open loop: requests start on a fixed schedule (``rate`` per second) whatever
  the answers do, each on an idle connection or a new one (at most
  ``max_connections``), and latency counts from the *scheduled* start, so a
  server that falls behind shows it (no coordinated omission).

Everything runs in the caller's trio run and reads trio's clock (so the
arithmetic is testable on a fake clock with in-memory streams); cancelling a
loop closes its connections at once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from benchmarks._util import percentile


class ProtocolError(Exception):
    """The server's reply could not be framed (or the connection ended mid-reply)."""


@attrs.frozen(kw_only=True)
class Target:
    """Where requests go: ``host:port``, the path, and extra headers (such as auth)."""

    name: str
    host: str
    port: int
    path: str = "/v1/chat/completions"
    headers: Mapping[str, str] = attrs.field(factory=dict)


def render_request(target: Target, body: bytes) -> bytes:
    """The bytes of one ``POST`` of ``body`` (JSON) to ``target``, keep-alive."""
    lines = [
        f"POST {target.path} HTTP/1.1",
        f"host: {target.host}:{target.port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{k}: {v}" for k, v in target.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive HTTP/1.1 connection. Not for concurrent use."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._buf = bytearray()
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(await trio.open_tcp_stream(host, port))

    async def aclose(self) -> None:
        self.closed = True
        await trio.aclose_forcefully(self._stream)

    async def _fill(self) -> None:
        data = await self._stream.receive_some(65536)
        if not data:
            raise ProtocolError("connection closed by the server")
        self._buf += data

    async def _line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    async def _exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` and read the whole reply: (status, body).

        Raises ``ProtocolError`` or a trio stream error when the reply cannot
        be read; the connection is then unusable. Cancelled midway, likewise.
        """
        await self._stream.send_all(request)
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self._buf[:end]).split(b"\r\n")
        del self._buf[: end + 4]
        try:
            status = int(head[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {head[0]!r}") from None
        length: int | None = None
        chunked = False
        close = False
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            body = await self._chunked()
        elif length is not None:
            body = await self._exactly(length)
        else:
            body = await self._until_close()
            close = True
        if close:
            await self.aclose()
        return status, body

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self._line()).split(b";", 1)[0], 16)
            if size == 0:
                while await self._line():  # trailers, then the empty line
                    pass
                return b"".join(parts)
            parts.append(await self._exactly(size))
            await self._exactly(2)

    async def _until_close(self) -> bytes:
        while True:
            try:
                await self._fill()
            except ProtocolError:
                data = bytes(self._buf)
                self._buf.clear()
                return data


@attrs.frozen(kw_only=True)
class LoadResult:
    """What one loop measured. Latencies in seconds; throughput in answers per second.

    ``duration_s`` is the time the answers were counted over: a closed loop's fixed
    measurement window, or an open loop's (or a counted run's) time until its last answer.
    ``sampled`` is what the caller's ``sample`` function read at the window's start and
    end (a server's CPU seconds, say), or None.
    """

    target: str
    mode: str
    concurrency: int = 0
    rate: float = 0.0
    duration_s: float
    ok: int
    errors: int
    error_kinds: Mapping[str, int]
    latencies: tuple[float, ...] = attrs.field(repr=False)
    #: closed loop: how long the warm-up took and how many replies it saw
    warmup_s: float = 0.0
    warmup_replies: int = 0
    sampled: tuple[float, float] | None = None

    @property
    def throughput(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else math.nan

    def row(self) -> dict[str, Any]:
        ms = [s * 1000.0 for s in self.latencies]
        return {
            "target": self.target,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "duration_s": round(self.duration_s, 3),
            "warmup_s": round(self.warmup_s, 3),
            "warmup_replies": self.warmup_replies,
            "ok": self.ok,
            "errors": self.errors,
            "error_kinds": dict(self.error_kinds),
            "throughput_rps": self.throughput,
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "mean_ms": sum(ms) / len(ms) if ms else math.nan,
        }


class _Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.latencies: list[float] = []
        self.kinds: dict[str, int] = {}

    def error(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    @property
    def errors(self) -> int:
        return sum(self.kinds.values())


class Window:
    """A closed loop's measurement window: the arithmetic, with no clock of its own.

    The loop starts at ``start``. The warm-up lasts until ``warmup_s`` have passed
    *and* ``warmup_replies`` replies (answers or errors) have come in, so a slow
    server gets a few round trips per client before anything counts. The window
    then runs ``duration_s``: a reply counts when it *completes* inside
    ``(opens_at, closes_at]``, whenever its request started (the reply that ends
    the warm-up does not count), so throughput is
    completions in a fixed window divided by that window (a steady closed loop
    completes as many requests in a window as it starts, without the bias of
    counting starts and waiting for the stragglers). Replies before or after the
    window are not counted. ``force_open(now)`` opens it at ``now`` if the warm-up
    never gets its replies (a server too slow or down).
    """

    def __init__(
        self, *, start: float, warmup_s: float, warmup_replies: int, duration_s: float
    ) -> None:
        self.start = start
        self.warmup_s = warmup_s
        self.warmup_replies = warmup_replies
        self.duration_s = duration_s
        self.opens_at: float | None = None
        self.seen = 0
        self.tally = _Tally()

    @property
    def closes_at(self) -> float | None:
        return None if self.opens_at is None else self.opens_at + self.duration_s

    def force_open(self, now: float) -> None:
        if self.opens_at is None:
            self.opens_at = max(now, self.start + self.warmup_s)

    def record(self, done_at: float, latency: float, error: str | None) -> None:
        """A reply completed at ``done_at`` after ``latency`` seconds; ``error`` names
        what went wrong, None for a 200 answer."""
        if self.opens_at is None:
            self.seen += 1
            if self.seen >= self.warmup_replies:
                self.opens_at = max(done_at, self.start + self.warmup_s)
        if self.opens_at is None or not self.opens_at < done_at <= self.opens_at + self.duration_s:
            return
        if error is None:
            self.tally.ok += 1
            self.tally.latencies.append(latency)
        else:
            self.tally.error(error)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, ProtocolError):
        return "protocol"
    if isinstance(exc, trio.BrokenResourceError | ConnectionError):
        return "connection"
    return type(exc).__name__


#: how a loop reaches the server: a fresh stream per connection
Connect = Callable[[], Awaitable[trio.abc.Stream]]


def _tcp(target: Target) -> Connect:
    async def connect() -> trio.abc.Stream:
        return await trio.open_tcp_stream(target.host, target.port)

    return connect


_FAILURES = (OSError, ProtocolError, trio.BrokenResourceError, trio.TooSlowError)


async def closed_loop(
    target: Target,
    body: bytes,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.0,
    warmup_round_trips: float = 2.0,
    max_warmup_s: float = 60.0,
    timeout_s: float = 30.0,
    sample: Callable[[], float] | None = None,
    connect: Connect | None = None,
) -> LoadResult:
    """``concurrency`` workers send requests back to back; answers are counted in a
    fixed window of ``duration_s`` (:class:`Window`) after a warm-up of at least
    ``warmup_s`` and ``warmup_round_trips`` replies per worker (at most
    ``max_warmup_s``: then the window opens anyway). Returns when the window closes;
    requests still in flight then are cancelled and their connections closed.

    A non-200 answer, a broken connection or a request slower than ``timeout_s`` is
    an error (the worker then reconnects). ``sample`` (a server's CPU seconds, say) is
    read as the window opens and as it closes. ``connect`` replaces the TCP
    connection to ``target`` (tests: in-memory streams on a fake clock).
    """
    request = render_request(target, body)
    open_stream = connect or _tcp(target)
    start = trio.current_time()
    window = Window(
        start=start,
        warmup_s=warmup_s,
        warmup_replies=max(1, math.ceil(concurrency * warmup_round_trips)),
        duration_s=duration_s,
    )
    opened = trio.Event()

    async def worker() -> None:
        conn: Connection | None = None
        try:
            while True:
                t0 = trio.current_time()
                error: str | None = None
                try:
                    if conn is None or conn.closed:
                        conn = Connection(await open_stream())
                    with trio.fail_after(timeout_s):
                        status, _ = await conn.exchange(request)
                    if status != 200:
                        error = f"http_{status}"
                except _FAILURES as e:
                    error = _error_kind(e)
                    if conn is not None:
                        await conn.aclose()
                    conn = None
                done = trio.current_time()
                window.record(done, done - t0, error)
                if window.opens_at is not None:
                    opened.set()
        finally:
            if conn is not None:
                await conn.aclose()

    sampled: tuple[float, float] | None = None
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
        with trio.move_on_at(start + max_warmup_s):
            await opened.wait()
        window.force_open(trio.current_time())
        assert window.opens_at is not None and window.closes_at is not None
        await trio.sleep_until(window.opens_at)
        first = sample() if sample is not None else 0.0
        await trio.sleep_until(window.closes_at)
        if sample is not None:
            sampled = (first, sample())
        nursery.cancel_scope.cancel()
    tally = window.tally
    return LoadResult(
        target=target.name,
        mode="closed",
        concurrency=concurrency,
        duration_s=duration_s,
        ok=tally.ok,
        errors=tally.errors,
        error_kinds=tally.kinds,
        latencies=tuple(tally.latencies),
        warmup_s=window.opens_at - start,
        warmup_replies=window.seen,
        sampled=sampled,
    )


async def send_requests(
    target: Target,
    body: bytes,
    *,
    concurrency: int,
    requests: int,
    timeout_s: float = 30.0,
) -> LoadResult:
    """Send exactly ``requests`` requests with ``concurrency`` workers back to back
    (the memory scenario drives a gateway to its call checkpoints this way); every
    reply counts. Cancelled midway, the connections close at once."""
    request = render_request(target, body)
    tally = _Tally()
    left = [requests]
    start = trio.current_time()

    async def worker() -> None:
        conn: Connection | None = None
        try:
            while left[0] > 0:
                left[0] -= 1
                t0 = trio.current_time()
                try:
                    if conn is None or conn.closed:
                        conn = await Connection.open(target.host, target.port)
                    with trio.fail_after(timeout_s):
                        status, _ = await conn.exchange(request)
                except _FAILURES as e:
                    tally.error(_error_kind(e))
                    if conn is not None:
                        await conn.aclose()
                    conn = None
                    continue
                if status == 200:
                    tally.ok += 1
                    tally.latencies.append(trio.current_time() - t0)
                else:
                    tally.error(f"http_{status}")
        finally:
            if conn is not None:
                await conn.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return LoadResult(
        target=target.name,
        mode="count",
        concurrency=concurrency,
        duration_s=trio.current_time() - start,
        ok=tally.ok,
        errors=tally.errors,
        error_kinds=tally.kinds,
        latencies=tuple(tally.latencies),
    )


async def open_loop(
    target: Target,
    body: bytes,
    *,
    rate: float,
    duration_s: float,
    max_connections: int = 512,
    timeout_s: float = 10.0,
) -> LoadResult:
    """Start ``rate`` requests a second for ``duration_s``, whatever the answers do.

    Latency is measured from each request's scheduled start. A request that
    finds ``max_connections`` busy waits for one (its latency keeps growing);
    one not answered ``timeout_s`` after its scheduled start is an error.
    """
    request = render_request(target, body)
    tally = _Tally()
    idle: list[Connection] = []
    slots = trio.Semaphore(max_connections)
    interval = 1.0 / rate
    total = max(1, int(rate * duration_s))
    start = trio.current_time() + 0.01

    async def one(scheduled: float) -> None:
        conn: Connection | None = None
        try:
            with trio.fail_at(scheduled + timeout_s):
                async with slots:
                    conn = idle.pop() if idle else await Connection.open(target.host, target.port)
                    status, _ = await conn.exchange(request)
        except (OSError, ProtocolError, trio.BrokenResourceError, trio.TooSlowError) as e:
            tally.error(_error_kind(e))
            if conn is not None:
                await conn.aclose()
            return
        if not conn.closed:
            idle.append(conn)
        if status == 200:
            tally.ok += 1
            tally.latencies.append(trio.current_time() - scheduled)
        else:
            tally.error(f"http_{status}")

    try:
        async with trio.open_nursery() as nursery:
            for i in range(total):
                scheduled = start + i * interval
                await trio.sleep_until(scheduled)
                nursery.start_soon(one, scheduled)
    finally:
        for conn in idle:
            await conn.aclose()
    elapsed = max(trio.current_time() - start, duration_s)
    return LoadResult(
        target=target.name,
        mode="open",
        rate=rate,
        duration_s=elapsed,
        ok=tally.ok,
        errors=tally.errors,
        error_kinds=tally.kinds,
        latencies=tuple(tally.latencies),
    )
