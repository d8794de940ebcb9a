"""A request refused before its body was read (a wrong key, no such route) still leaves
its keep-alive connection usable: the body is read and dropped first, as a 413's is.
Answered with the body unread, the connection was closed, and a client sending its next
request on it met a disconnect instead of the 401 (32 clients at once: 21 of 4,000).
The real hypercorn server on a real socket; the clients (httpx, keeping their
connections) in a process of their own, as they would be."""

from __future__ import annotations

import json
import subprocess
import sys

import trio

from switchman.catalog import KeySpec
from switchman.gateway._http import DRAIN_S
from tests.gateway._fakes import FakeRouter, make_config, running_gateway

#: 32 clients, each sending 250 requests with a wrong key on its keep-alive connection;
#: prints what they heard, by status or by the transport error met instead
CLIENTS = """
import collections, json, sys
import httpx, trio

heard = collections.Counter()
wrong = {"authorization": "Bearer wrong-key-0123456789"}

async def client(base):
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        for i in range(250):
            path = "/call" if i % 3 else "/no-such-route"
            try:
                r = await c.post(path, json={"prompt": "x", "model": "m"}, headers=wrong)
                heard[str(r.status_code)] += 1
            except httpx.TransportError as exc:
                heard[type(exc).__name__] += 1

async def main(base):
    async with trio.open_nursery() as nursery:
        for _ in range(32):
            nursery.start_soon(client, base)

trio.run(main, sys.argv[1])
print(json.dumps(heard))
"""


async def test_many_clients_refused_before_their_bodies_are_read_all_hear_why() -> None:
    keys = (KeySpec(key_env="K", handle="team", secret="the-right-key-0123456789"),)
    router = FakeRouter(make_config(keys=keys))
    with trio.fail_after(180):
        async with running_gateway(router) as gw:
            done = await trio.run_process(
                [sys.executable, "-c", CLIENTS, f"http://{gw.host}:{gw.port}"],
                capture_stdout=True,
                stderr=subprocess.STDOUT,
                check=False,
            )
    out = done.stdout.decode()
    assert done.returncode == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == {"401": 32 * 250}, out


async def _head_only(port: int, lines: list[str]) -> bytes:
    """Send a request's head and no body; the head of the gateway's final answer (past a
    ``100 Continue``, which hypercorn sends itself)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        got = b""
        while True:
            while b"\r\n\r\n" not in got:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return got
                got += chunk
            if not got.startswith(b"HTTP/1.1 100"):
                return got
            got = got.split(b"\r\n\r\n", 1)[1]


async def test_a_refused_request_is_answered_without_reading_a_body_it_could_not_be() -> None:
    """A body declared longer than four times what the route takes is not read before the
    401, as a 413's is not: 16 MiB of a 100 MiB one were read, for up to 3 s, and the
    connection closed all the same."""
    keys = (KeySpec(key_env="K", handle="team", secret="the-right-key-0123456789"),)
    config = make_config(keys=keys)
    head = ["POST /call HTTP/1.1", "host: x", "content-type: application/json"]
    wrong = "authorization: Bearer wrong-key-0123456789"
    async with running_gateway(FakeRouter(config)) as gw:
        with trio.fail_after(DRAIN_S / 2):  # (read, the answer waits for a body never sent)
            huge = await _head_only(gw.port, [*head, wrong, f"content-length: {100 << 20}"])
    assert huge.startswith(b"HTTP/1.1 401"), huge
