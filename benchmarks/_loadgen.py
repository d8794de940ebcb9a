"""The load generator: a lean HTTP/1.1 client on trio, closed and open loops.

A general HTTP client (httpx, aiohttp) costs tens of microseconds of Python per
request, which on a 2-core machine would be CPU taken from the server under
test. This client sends pre-rendered request bytes over keep-alive connections
and parses only the status line and the framing headers, so the load
generator's own cost stays small and the same for every target.

- closed loop: ``concurrency`` workers, each with its own connection, send the
  next request as soon as the previous answer is in; the first ``warmup_s``
  seconds are not counted.
- open loop: requests start on a fixed schedule (``rate`` per second) whatever
  the answers do, each on an idle connection or a new one (at most
  ``max_connections``), and latency counts from the *scheduled* start, so a
  server that falls behind shows it (no coordinated omission).

Everything runs in the caller's trio run; cancelling a loop closes its
connections at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
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

    def __init__(self, stream: trio.SocketStream) -> None:
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
    """What one loop measured. Latencies in seconds; throughput in answers per second."""

    target: str
    mode: str
    concurrency: int = 0
    rate: float = 0.0
    duration_s: float
    ok: int
    errors: int
    error_kinds: Mapping[str, int]
    latencies: tuple[float, ...] = attrs.field(repr=False)

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


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, ProtocolError):
        return "protocol"
    if isinstance(exc, trio.BrokenResourceError | ConnectionError):
        return "connection"
    return type(exc).__name__


async def closed_loop(
    target: Target,
    body: bytes,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.0,
    timeout_s: float = 30.0,
    max_requests: int | None = None,
) -> LoadResult:
    """``concurrency`` workers send requests back to back for ``warmup_s + duration_s``,
    or until ``max_requests`` have been started, whichever comes first.

    Only answers to requests started after the warm-up count. A non-200 answer,
    a broken connection or a request slower than ``timeout_s`` is an error (the
    worker then reconnects).
    """
    request = render_request(target, body)
    tally = _Tally()
    start = time.perf_counter()
    measure_from = start + warmup_s
    end = measure_from + duration_s
    budget = [math.inf if max_requests is None else max_requests]

    async def worker() -> None:
        conn: Connection | None = None
        try:
            while (t0 := time.perf_counter()) < end and budget[0] > 0:
                budget[0] -= 1
                counted = t0 >= measure_from
                try:
                    if conn is None or conn.closed:
                        conn = await Connection.open(target.host, target.port)
                    with trio.fail_after(timeout_s):
                        status, _ = await conn.exchange(request)
                except (OSError, ProtocolError, trio.BrokenResourceError, trio.TooSlowError) as e:
                    if counted:
                        tally.error(_error_kind(e))
                    if conn is not None:
                        await conn.aclose()
                    conn = None
                    continue
                if not counted:
                    continue
                if status == 200:
                    tally.ok += 1
                    tally.latencies.append(time.perf_counter() - t0)
                else:
                    tally.error(f"http_{status}")
        finally:
            if conn is not None:
                await conn.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    # the window: from the warm-up's end until the last reply (or the planned end)
    finished = time.perf_counter()
    elapsed = (max(finished, end) if max_requests is None else finished) - measure_from
    return LoadResult(
        target=target.name,
        mode="closed",
        concurrency=concurrency,
        duration_s=min(elapsed, duration_s + timeout_s),
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
    start = time.perf_counter() + 0.01

    async def one(scheduled: float) -> None:
        deadline = trio.current_time() + (scheduled + timeout_s - time.perf_counter())
        conn: Connection | None = None
        try:
            with trio.fail_at(deadline):
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
            tally.latencies.append(time.perf_counter() - scheduled)
        else:
            tally.error(f"http_{status}")

    try:
        async with trio.open_nursery() as nursery:
            for i in range(total):
                scheduled = start + i * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await trio.sleep(delay)
                nursery.start_soon(one, scheduled)
    finally:
        for conn in idle:
            await conn.aclose()
    elapsed = max(time.perf_counter() - start, duration_s)
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
