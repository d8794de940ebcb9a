"""``POST /v1/chat/completions``: a chat-completion request as a job, answered whole or
streamed as OpenAI's chunks (the wire itself is ``_openai``'s).

A client that disconnects before its answer is complete cancels its call, as closing
a stream to OpenAI stops the generation: the attempt in flight is cancelled (billed
what it generated, as the provider bills it) and the job is stored failed, code
``cancelled``. An SDK's timeout followed by its retries so leaves no full, billed call
running behind each try, and a chat's "stop" button stops the spend. A client that
stays but reads slowly, or not at all, holds nothing: the call runs on the model's
time and its text waits for the client. (``/call`` jobs run to their end whoever
waits for them: that is what a job is for.)
"""

from __future__ import annotations

import math
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from switchman._call import Call
from switchman._channels import open_channel
from switchman._result import Delta, Result
from switchman.gateway import _openai
from switchman.gateway._auth import Principal, knows, target_problems
from switchman.gateway._http import (
    ClientGone,
    HttpError,
    Receive,
    Request,
    Send,
    send_events,
    send_json,
    start_event_stream,
)
from switchman.gateway._jobs import JobRunner, failed_result
from switchman.policy._candidates import canonical_call

if TYPE_CHECKING:
    from switchman.gateway._app import Gateway

#: the message of a call cancelled because its client went away
CLIENT_GONE: Final = "the client disconnected before the answer was complete"


class _Watch:
    """Whether the client of a request went away while its job ran, cancelling it."""

    def __init__(self) -> None:
        self.gone = False


async def _watch(receive: Receive, runner: JobRunner, job_id: str, seen: _Watch) -> None:
    """Wait for the client to disconnect, then cancel its job (its body was read whole
    before: what ``receive`` gives next is the disconnect)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            seen.gone = await runner.cancel(job_id, CLIENT_GONE)
            return


async def post_chat_completions(
    gateway: Gateway, req: Request, send: Send, principal: Principal
) -> None:
    body = await req.json(gateway.config.server.max_body_bytes)
    chat = _openai.chat_request(body)
    chat = attrs.evolve(
        chat,
        call=canonical_call(chat.call, gateway.config, knows(principal, gateway.config)),
    )
    unknown, _ = target_problems(principal, chat.call, gateway.config)
    if unknown:
        field, message = unknown[0]
        if field == "model":
            raise HttpError(
                404, "model_not_found", gateway.no_model(chat.call.model, principal), param=field
            )
        field = _openai.v1_field(field)
        raise HttpError(400, "model_not_found", f"{field}: {message}", param=field)
    try:
        call = gateway.admit(chat.call, principal)
    except HttpError as refused:
        raise _openai.v1_error(refused) from None
    gateway.take_request(principal)
    runner = gateway.runner
    if not chat.stream:
        job_id = req.job_id = await gateway.submit(call, principal)
        result, gone = await _wait_or_gone(req.receive, runner, job_id)
        await _chat_whole(gateway, result, job_id, send, call, principal)
        if gone:
            raise ClientGone
        return
    # deltas that arrive together leave in one write (one socket send for several
    # events); the job never waits for a client reading slowly (or not at all): it
    # ends, is stored and billed on the router's own time, its text queued here
    sink: trio.MemorySendChannel[Delta | Result]
    items: trio.MemoryReceiveChannel[Delta | Result]
    sink, items = open_channel(math.inf)
    with items:
        job_id = req.job_id = await gateway.submit(call, principal, sink=sink)
        stream = _chat_stream(gateway, items, job_id, send, call, principal, chat.include_usage)
        await _watched(req.receive, runner, job_id, stream)


async def _wait_or_gone(
    receive: Receive, runner: JobRunner, job_id: str
) -> tuple[Result | None, bool]:
    """Wait for the job, reading what the client sends meanwhile (nothing, after the body:
    its disconnect); a client that goes cancels the job. The job's result, and whether
    the client went. (The job's end interrupts the read: no task of its own, which a
    watcher costs, some 45 µs a request.)"""
    gone = False
    with runner.interrupted_when_done(job_id) as result:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = await runner.cancel(job_id, CLIENT_GONE)
                break
    if gone:
        await runner.wait(job_id)  # (its result, now the router has cut it)
    return result(), gone


async def _watched(
    receive: Receive, runner: JobRunner, job_id: str, answer: Coroutine[Any, Any, None]
) -> None:
    """Await ``answer`` while watching for the client to go (``_watch``); ``ClientGone``
    after it if it went. (``answer``'s own exception is raised here, outside the watcher's
    nursery, as it is: the handler's callers catch ``HttpError`` and the like, not groups.)"""
    seen = _Watch()
    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch, receive, runner, job_id, seen)
        try:
            await answer
        except Exception as exc:
            failure = exc
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if seen.gone:
        raise ClientGone


async def _chat_whole(
    gateway: Gateway,
    result: Result | None,
    job_id: str,
    send: Send,
    call: Call,
    principal: Principal,
) -> None:
    if result is None:
        raise HttpError(500, "internal_error", "the job finished without a result")
    headers = _openai.result_headers(result, job_id)
    if not result.ok:
        err = gateway.failure(result, call, principal)
        err_body = _openai.error_body(err) | {"switchman": _openai.switchman_info(result, job_id)}
        await send_json(send, err.status, err_body, [*headers, *err.headers])
        return
    created = int(gateway.wall_clock())
    out = _openai.completion_body(result, job_id=job_id, created=created, requested=call.model)
    await send_json(send, 200, out, headers)


async def _chat_stream(
    gateway: Gateway,
    items: trio.MemoryReceiveChannel[Delta | Result],
    job_id: str,
    send: Send,
    call: Call,
    principal: Principal,
    include_usage: bool,
) -> None:
    created = int(gateway.wall_clock())
    first = await _next(items, job_id)
    if isinstance(first, Result) and not first.ok:
        err = gateway.failure(first, call, principal)
        info = _openai.switchman_info(first, job_id)
        err_body = _openai.error_body(err) | {"switchman": info}
        headers = [*_openai.result_headers(first, job_id), *err.headers]
        await send_json(send, err.status, err_body, headers)
        return
    await start_event_stream(send, _openai.result_headers(None, job_id))

    def chunk(delta: Mapping[str, Any] | None, **kw: Any) -> dict[str, Any]:
        return _openai.chunk_body(
            job_id=job_id, created=created, model=call.model, delta=delta, **kw
        )

    pending: list[Any] = [chunk({"role": "assistant", "content": ""})]
    sent = False
    item: Delta | Result = first
    while isinstance(item, Delta):
        if item.text:
            pending.append(chunk({"content": item.text}))
            if not sent:  # the first text goes out at once: time to first token
                sent = True
                await send_events(send, pending)
                pending = []
        try:  # later text already there goes out in the same write
            item = items.receive_nowait()
            continue
        except trio.WouldBlock:
            pass
        except trio.EndOfChannel:
            item = failed_result(job_id, "internal_error", "the stream ended without a result")
            break
        if pending:
            await send_events(send, pending)
            pending = []
        item = await _next(items, job_id)
    result = item
    if not result.ok:
        err = gateway.shown_error(_openai.failure(result), result, principal)
        pending.append(_openai.error_body(err))
        await send_events(send, pending, last=True)
        return
    if not sent and result.answer:
        pending.append(chunk({"content": result.answer}))
    # every chunk names the requested model; the answerer is in ``switchman.model``
    pending.append(
        chunk(
            {},
            finish_reason=result.finish_reason or "stop",
            usage=None if include_usage else result.usage,
            extra=_openai.switchman_info(result, job_id),
        )
    )
    if include_usage:  # the last chunk names the answerer too, as without usage
        info = _openai.switchman_info(result, job_id)
        pending.append(chunk(None, usage=result.usage, extra=info))
    pending.append("[DONE]")
    await send_events(send, pending, last=True)


async def _next(items: trio.MemoryReceiveChannel[Delta | Result], job_id: str) -> Delta | Result:
    try:
        return await items.receive()
    except trio.EndOfChannel:
        return failed_result(job_id, "internal_error", "the stream ended without a result")
