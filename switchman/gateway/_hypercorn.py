"""A guard around hypercorn's trio connection handler (hypercorn 0.18.0, its latest).

hypercorn's ``TCPServer`` serialises its sends with a lock, but ends a connection
(``_close``: ``send_eof``) outside it. A websocket the gateway closes while the client
closes it too (a page's socket refused, closed by the page the moment the refusal arrives)
then has hypercorn answer the client's close in one task while ``send_eof`` runs in
another: trio raises ``BusyResourceError`` in the send, which hypercorn does not catch, and
it ends the server's nursery: the whole gateway stopped for one socket, three sockets
from any web page being enough at times.

:func:`install` has hypercorn's trio worker use :class:`GuardedTCPServer`, which treats a
send that meets the connection's end as the connection closing (as hypercorn treats a
broken or closed stream already). Only that one exception, on that one path, changes.
It also ends a connection as soon as its client has closed it, rather than when its
keep-alive timer runs out; ends one (not the server) where hypercorn answers bytes that
follow a response already finished; drops one whose client has read nothing of a write for
``WRITE_STALL_S`` (hypercorn shields its writes with no time limit: a client that sends
requests and never reads the answers held its connection for ever, its idle timer stopped
mid-response); and takes at most ``connection_limit()`` connections at once, answering
any past them 503 and closing it at once, so clients cannot use up the process's file
descriptors (20,000 idle connections did: new clients then timed out, the log filled with
``EMFILE`` tracebacks, and the providers' own connections could not be opened either).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import resource
import struct
import termios
from typing import ClassVar, Final

import h11
import trio
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio import run as _run
from hypercorn.trio.tcp_server import TCPServer

log = logging.getLogger("switchman.gateway.server")

#: how long a write to a client may go without the client reading any of it
WRITE_STALL_S: Final = 30.0


class _Stalled(Exception):
    """The client read none of a write for ``WRITE_STALL_S``."""


def _unsent(sock: trio.socket.SocketType) -> int | None:
    """The bytes the system still holds to send on ``sock`` (not yet acknowledged by the
    client: Linux's ``SIOCOUTQ``), or None where it cannot tell."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError, AttributeError):
        return None
    value: int = struct.unpack("i", raw)[0]
    return value


def _sent_now(sock: trio.socket.SocketType, data: bytes) -> memoryview:
    """Write what the system takes of ``data`` now, without waiting; what is left (empty
    when it took it all, as it mostly does). Raises ``OSError`` for a closed socket. No
    checkpoint, no cancel scope: a send through trio's socket cost two scopes, a lock's
    checkpoint and a scheduler pass, 60% of a websocket watcher's cost per message."""
    view = memoryview(data)
    fd = sock.fileno()  # (-1 once closed: never a number another connection took since)
    if fd < 0:
        raise trio.ClosedResourceError
    try:
        return view[os.write(fd, view) :]
    except BlockingIOError:
        return view


class SlowWrites:
    """The writes to clients of one server that had to wait (a client reading slowly),
    and whether they are to end: after a stop's margin for responses, a write no cancel
    reaches (shielded: a frame cut in the middle would garble what follows) had held the
    stop up for as long as a slow but steady reader kept reading (7 to 21 s with watchers
    reading a message a second; then exit 1)."""

    def __init__(self) -> None:
        self.scopes: set[trio.CancelScope] = set()
        self.ended = False

    def end(self) -> None:
        """End every such write now and from now on: their clients are dropped."""
        self.ended = True
        for scope in self.scopes:
            scope.cancel()


async def _send_watched(
    sock: trio.socket.SocketType, data: bytes | memoryview, writes: SlowWrites | None = None
) -> None:
    """Send ``data`` whole; ``_Stalled`` once the client has read nothing for about
    ``WRITE_STALL_S``. A send that must wait is looked at every half of it: the client is
    still reading if the system holds less for it than at the look before (a socket
    becomes writable again only once much of its buffer drained, which a slow but steady
    reader can take longer than that to do). A send that needs no wait costs nothing more."""
    view = memoryview(data)
    held: int | None = None  # what the system held for the client at the last look
    while view:
        if writes is not None and writes.ended:
            raise _Stalled
        with trio.move_on_after(WRITE_STALL_S / 2) as waited:
            if writes is not None:
                writes.scopes.add(waited)
            try:
                sent = await sock.send(view)
            finally:
                if writes is not None:
                    writes.scopes.discard(waited)
        if writes is not None and writes.ended:
            raise _Stalled
        if not waited.cancelled_caught:
            view, held = view[sent:], None
            continue
        now = _unsent(sock)
        if now is None:  # (it cannot tell: the client is given the benefit of the doubt)
            continue
        if held is not None and now >= held:
            raise _Stalled
        held = now


#: what a connection past the limit is answered before it is closed
_FULL_BODY: Final = (
    b'{"error":{"code":"overloaded","message":"too many connections are open; retry shortly"}}'
)
_FULL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
    % (len(_FULL_BODY), _FULL_BODY)
)


class _QuietSecondAnswers(logging.Filter):
    """Leaves out hypercorn's traceback for an app whose answer h11 refused as a second one
    on its connection (``GuardedTCPServer.run``): a client sending bytes with a refused
    websocket upgrade would otherwise write one to the log each time."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _is_second_answer(exc)


def _is_second_answer(exc: BaseException | None) -> bool:
    if isinstance(exc, h11.LocalProtocolError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_second_answer(e) for e in exc.exceptions)
    return False


log.addFilter(_QuietSecondAnswers())


def connection_limit() -> int:
    """How many client connections the process takes at once: its file-descriptor limit,
    less what the providers' connections, the store and the log need (a quarter of it,
    between 256 and 2,048)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    reserve = min(max(256, soft // 4), 2048)
    return max(64, soft - reserve)


def raise_file_limit() -> None:
    """Raise the process's soft file-descriptor limit to its hard limit (at most 65,536),
    as servers do: a soft limit of 1,024, a common default, would cap the daemon at 768
    clients. Left as it is where the system refuses."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


class GuardedTCPServer(TCPServer):
    """hypercorn's connection handler, whose send that meets its own ``send_eof`` closes
    the connection instead of raising out of the server, and which lets a connection its
    client closed go at once (hypercorn kept it, in CLOSE-WAIT, until its keep-alive timer
    ran out: with the gateway's 75 s, a client opening a connection per request could use
    up the daemon's file descriptors)."""

    _client_gone = False
    #: connections open now, in the process; past ``limit`` a new one is refused
    open_now: ClassVar[int] = 0
    limit: ClassVar[int] = 1 << 20
    #: whether connections are being refused (said once in the log per streak)
    _full: ClassVar[bool] = False

    async def run(self) -> None:
        cls = GuardedTCPServer
        if cls.open_now >= cls.limit:
            if not cls._full:
                cls._full = True
                log.warning(
                    "%d client connections are open, the most this process takes (see its"
                    " file limit, ulimit -n): new ones are answered 503 until some close",
                    cls.open_now,
                )
            with trio.move_on_after(1.0):
                try:
                    await self.stream.send_all(_FULL)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await self.stream.aclose()
            return
        cls._full = False
        cls.open_now += 1
        try:
            await super().run()
        except* Exception as group:
            # hypercorn answering twice on one connection (bytes that came with a websocket
            # upgrade the app refuses: hypercorn answers them 400, then the app's refusal
            # or hypercorn's own 500 is a second answer), from any of its tasks: h11
            # refuses it, hypercorn does not catch that, and it ended the whole server.
            # It, or any other failure of one connection, ends that connection instead.
            if not _is_second_answer(group):
                log.error("a connection failed; it is closed", exc_info=group)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.aclose()
        finally:
            cls.open_now -= 1

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated) and event.idle and self._client_gone:
            return  # nothing is left to keep alive
        if isinstance(event, RawData):
            await self._send_data(event.data)
            return
        try:
            await super().protocol_send(event)
        except trio.BusyResourceError:
            if not isinstance(event, RawData):
                raise
            # the stream is being ended by ``_close`` in another task: this send is too late
            await self.protocol.handle(Closed())

    async def _send_data(self, data: bytes) -> None:
        """hypercorn's write (serialised, shielded), dropping a client that reads none of
        it for ``WRITE_STALL_S`` (``_send_watched``), as one that closed is. What the
        system takes at once is written without a wait (``_sent_now``)."""
        lock = self.send_lock
        try:
            lock.acquire_nowait()  # (uncontended, as mostly: no checkpoint)
        except trio.WouldBlock:
            await lock.acquire()
        try:
            sock = getattr(self.stream, "socket", None)  # (TLS: not watched)
            if isinstance(sock, trio.socket.SocketType):
                if rest := _sent_now(sock, data):
                    with trio.CancelScope(shield=True):
                        await _send_watched(sock, rest, getattr(self.config, "writes", None))
                else:
                    await trio.lowlevel.cancel_shielded_checkpoint()
            else:
                with trio.CancelScope(shield=True):
                    await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self.protocol.handle(Closed())
        except trio.BusyResourceError:
            # the stream is being ended by ``_close`` in another task: too late
            await self.protocol.handle(Closed())
        except _Stalled:  # a client that reads nothing: dropped
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.aclose()
            await self.protocol.handle(Closed())
        finally:
            lock.release()

    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        except h11.LocalProtocolError:
            # hypercorn answering bytes that follow a response it already finished (a
            # refused websocket upgrade's, then anything): h11 refuses the second answer,
            # which hypercorn does not catch, and it ended the whole server. It ends this
            # connection instead.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.aclose()
        # the client closed (or the stream broke): no keep-alive timer holds the
        # connection's end back any more; what still runs for it (a response) ends as before
        self._client_gone = True
        await self.idle_task.stop()


#: the handler class hypercorn's trio worker names (None if a release renamed it: the
#: guard is then not installed, and its test says so)
_ORIGINAL: Final = getattr(_run, "TCPServer", None)


def install() -> None:
    """Serve every connection of hypercorn's trio worker with :class:`GuardedTCPServer`
    (idempotent; it names its handler class once, in ``hypercorn.trio.run``)."""
    GuardedTCPServer.limit = connection_limit()
    if _ORIGINAL is TCPServer and getattr(_run, "TCPServer", None) is _ORIGINAL:
        setattr(_run, "TCPServer", GuardedTCPServer)  # noqa: B010 (a module's global)
