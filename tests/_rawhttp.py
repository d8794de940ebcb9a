"""Requests read off a raw socket, for the tests' own upstreams."""

from __future__ import annotations

from collections.abc import Callable

import h11
import trio

from switchman.catalog import Config, ModelSpec, ProviderSpec


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


#: an OpenAI-style chat completion, "Paris.", and an OpenAI 429's body, for test upstreams
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1764086400,
    "model": "groq/b",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}
LIMITED = {
    "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
}


def chat_reply(message: dict[str, object]) -> tuple[int, list[tuple[str, str]], bytes]:
    """A test upstream's 200: ``ANSWER`` with ``message`` as its choice's message."""
    import json

    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
    body = {**ANSWER, "choices": [choice]}
    return 200, [("content-type", "application/json")], json.dumps(body).encode()


#: what a test upstream answers a request (its head and body) with: a status, headers and
#: a body (its content-length is added)
Answer = Callable[[h11.Request, bytes], tuple[int, list[tuple[str, str]], bytes]]


async def serve_h11(stream: trio.SocketStream, answer: Answer) -> None:
    """Answer each HTTP/1.1 request on ``stream`` with ``answer``, keeping the connection
    open between them, until the client closes it."""
    conn = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = b""
    async with stream:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request, body = event, b""
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                status, headers, payload = answer(request, body)
                headers = [*headers, ("content-length", str(len(payload)))]
                for reply in (
                    h11.Response(status_code=status, headers=headers),
                    h11.Data(data=payload),
                    h11.EndOfMessage(),
                ):
                    await stream.send_all(conn.send(reply) or b"")
                conn.start_next_cycle()
            else:  # the client closed the connection
                return


async def serve_answers(
    answer: Answer, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``answer`` on 127.0.0.1 until cancelled; tells its base URL once listening."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        await serve_h11(stream, answer)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}")


def served_by(base_url: str, *models: ModelSpec, key_env: str | None = None) -> Config:
    """A config whose ``models`` are served, each by its provider of kind ``openai`` (its
    name picks the quirks) at ``base_url`` (``serve_answers``'s), with its key in
    ``key_env``."""
    providers = {
        m.provider: ProviderSpec(
            name=m.provider, kind="openai", base_url=base_url, api_key_env=key_env
        )
        for m in models
    }
    return Config(providers=providers, models={m.alias: m for m in models})
