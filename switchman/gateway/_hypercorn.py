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
keep-alive timer runs out.
"""

from __future__ import annotations

from typing import Final

import trio
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio import run as _run
from hypercorn.trio.tcp_server import TCPServer


class GuardedTCPServer(TCPServer):
    """hypercorn's connection handler, whose send that meets its own ``send_eof`` closes
    the connection instead of raising out of the server, and which lets a connection its
    client closed go at once (hypercorn kept it, in CLOSE-WAIT, until its keep-alive timer
    ran out: with the gateway's 75 s, a client opening a connection per request could use
    up the daemon's file descriptors)."""

    _client_gone = False

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated) and event.idle and self._client_gone:
            return  # nothing is left to keep alive
        try:
            await super().protocol_send(event)
        except trio.BusyResourceError:
            if not isinstance(event, RawData):
                raise
            # the stream is being ended by ``_close`` in another task: this send is too late
            await self.protocol.handle(Closed())

    async def _read_data(self) -> None:
        await super()._read_data()
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
    if _ORIGINAL is TCPServer and getattr(_run, "TCPServer", None) is _ORIGINAL:
        setattr(_run, "TCPServer", GuardedTCPServer)  # noqa: B010 (a module's global)
