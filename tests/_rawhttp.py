"""A request read off a raw socket, for the tests' one-request-per-connection upstreams."""

from __future__ import annotations

import trio


async def read_request_body(stream: trio.SocketStream) -> bytes:
    """The body of the HTTP/1.1 request arriving on ``stream`` (by its Content-Length; none
    is an empty body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += await stream.receive_some(65536)
    return body
