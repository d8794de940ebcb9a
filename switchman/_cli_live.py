"""The live CLI commands over the gateway's websocket: ``watch`` and ``run --stream``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    connect_websocket_url,
)

from switchman._cli_print import color, note
from switchman.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_USAGE,
    CliError,
    api_key,
    closed_early,
    key_refused,
    not_running,
    poll_hint,
    print_result,
    say_interrupted,
    where,
)

#: the close code of a websocket message larger than the daemon takes
TOO_BIG = 1009

_COLORS = {
    "call.accepted": "36",
    "call.routed": "36",
    "attempt.started": "34",
    "attempt.finished": "34",
    "breaker.changed": "35;1",
    "budget.reserved": "33",
    "budget.settled": "33",
    "call.completed": "32",
    "call.failed": "31;1",
    "events.dropped": "31",
}


#: the websocket errors of a call the daemon could not take now (HTTP 429, 503): exit 1
_BUSY = frozenset({"rate_limited", "shutting_down", "overloaded"})
#: how long past ``--wait`` a streamed call waits for the daemon to name the job it took
_JOB_ID_WAIT_S = 10.0
#: how long the daemon has to take the websocket (a stopped or hung daemon accepts the
#: connection and says nothing: trio-websocket's own connect timeout then never ends)
CONNECT_S = 10.0
#: how long closing the websocket may take (its close handshake) before it is dropped
CLOSE_S = 2.0
#: how many names of a list (a call's candidates) a line shows before "+N more"
_LIST_SHOWN = 5


def format_event(event: dict[str, Any]) -> str:
    """One readable line per trace event: its time (UTC), type, call (and job, the id ``switchman
    result`` takes), then its fields, long lists shortened and figures rounded."""
    kind = event.get("type", "?")
    # UTC, marked, as the daemon's log lines and every time switchman shows
    ts = time.strftime("%H:%M:%SZ", time.gmtime(event.get("ts") or time.time()))
    call = (event.get("call_id") or "")[:8]
    job = event.get("job_id")
    skip = {"type", "ts", "call_id", "job_id", "handle", "text"}
    shown = dict(event)
    excluded = shown.get("excluded")
    if kind == "call.routed" and isinstance(excluded, list):
        shown["excluded"] = _excluded_summary(excluded)
    fields = " ".join(
        f"{k}={_value(v)}"
        for k, v in shown.items()
        if k not in skip and v is not None and v != {}  # (``redacted`` of most calls: none)
    )
    if kind == "attempt.delta":
        fields = repr(event.get("text", ""))[:60]
    where = f"{call:<8}" + (f" {job}" if job and kind in ("call.accepted", "call.failed") else "")
    line = f"{ts} {kind:<17} {where} {fields}"
    return color(line, _COLORS.get(kind, "0"), sys.stdout)


def _value(v: Any) -> str:
    """A field's value, short: lists past a few items end in ``+N more``, floats are
    rounded to six significant figures."""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list) and len(v) > _LIST_SHOWN:
        return json.dumps(v[:_LIST_SHOWN])[:-1] + f", +{len(v) - _LIST_SHOWN} more]"
    if isinstance(v, list | dict):
        return json.dumps(v)
    return str(v)


def _excluded_summary(excluded: list[Any]) -> str | None:
    """``3 (breaker open for 2.0s more: a; provider disabled: ... x2)``: a routed event can
    exclude every model of every disabled provider, too many to list one by one."""
    if not excluded:
        return None
    by_reason: dict[str, list[str]] = {}
    for item in excluded:
        if isinstance(item, dict):
            by_reason.setdefault(str(item.get("reason")), []).append(str(item.get("alias")))
    parts = [
        f"{reason}: {aliases[0]}" if len(aliases) == 1 else f"{reason} x{len(aliases)}"
        for reason, aliases in by_reason.items()
    ]
    return f"{len(excluded)} ({'; '.join(parts)})"


def _ws_url(args: argparse.Namespace) -> str:
    return f"ws://{where(args)}/ws"


def _ws_headers() -> list[tuple[bytes, bytes]]:
    key = api_key()
    return [(b"authorization", f"Bearer {key}".encode())] if key else []


@asynccontextmanager
async def _connected(args: argparse.Namespace) -> AsyncIterator[WebSocketConnection]:
    """The daemon's websocket, or a ``CliError`` when it has not taken it in
    ``CONNECT_S`` seconds. (Not trio-websocket's ``open_websocket``: its connect timeout,
    and a Ctrl-C while connecting, are caught in a nursery whose reader task waits on a
    daemon that says nothing, so neither ended the command.)"""
    try:
        async with trio.open_nursery() as nursery:
            ws: WebSocketConnection | None = None
            with trio.move_on_after(CONNECT_S):
                ws = await connect_websocket_url(
                    nursery, _ws_url(args), extra_headers=_ws_headers()
                )
            if ws is not None:
                try:
                    yield ws
                finally:
                    with trio.move_on_after(CLOSE_S) as closing:
                        closing.shield = True  # (a Ctrl-C still closes it, briefly)
                        await ws.aclose()
                    nursery.cancel_scope.cancel()
                return
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # as it came: the daemon's error, Ctrl-C, a CliError
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    raise CliError(
        f"the daemon at {where(args)} did not take the websocket within {CONNECT_S:g}s "
        "(is it stopped, or is something else on that port?)"
    )


async def _watch(args: argparse.Namespace) -> int:
    """Print events until Ctrl-C, ``--count`` events, or (``--job``) the job's result;
    the daemon stopping ends the watch too, with a word on stderr."""
    subscribe: dict[str, Any] = {"type": "subscribe"}
    if args.job_id:
        subscribe["job_id"] = args.job_id
    seen = 0
    async with _connected(args) as ws:
        await ws.send_message(json.dumps(subscribe))
        note(f"watching {_ws_url(args)} (Ctrl-C to stop)", "2")
        while True:
            try:
                message = json.loads(await ws.get_message())
            except ConnectionClosed:  # (a script watching must not take it for a clean end)
                note("the daemon stopped: the watch ends", "2")
                return EXIT_USAGE
            if message.get("type") == "error":
                raise CliError(f"{message['error'].get('code')}: {message['error'].get('message')}")
            if message.get("type") == "subscribed":
                continue
            as_json = getattr(args, "json", False)
            if message.get("type") == "result" and args.job_id:
                # the job is over: its outcome, as ``switchman result`` shows it, ends the watch
                result = message.get("result") or {}
                if as_json:
                    print(json.dumps(message), flush=True)
                    return EXIT_OK if result.get("status") == "complete" else EXIT_FAILED
                return print_result(result) if isinstance(result, dict) and result else EXIT_OK
            print(json.dumps(message) if as_json else format_event(message), flush=True)
            seen += 1
            if args.count and seen >= args.count:
                return EXIT_OK


async def _stream(args: argparse.Namespace, call: dict[str, Any], seen: dict[str, Any]) -> int:
    """Submit ``call`` over the websocket, print its text as it arrives, then the summary.

    Past ``--wait`` seconds it stops reading the answer (the job runs on in the daemon),
    prints the job id and how to poll it, and returns ``EXIT_PENDING``. Once the call is
    sent the daemon may have taken it, so a wait over before the daemon named the job
    still waits (``_JOB_ID_WAIT_S`` more) for its id. ``seen`` notes the job id as soon
    as it is known, for a caller interrupted meanwhile.
    """
    async with _connected(args) as ws:
        await ws.send_message(json.dumps({"type": "call", "call": call}))
        seen["sent"] = True
        try:
            with trio.move_on_after(args.wait):
                return await _read_stream(ws, args, seen)
            if seen["job_id"] is None:
                with trio.move_on_after(_JOB_ID_WAIT_S):
                    await _read_job_id(ws, args, seen)
        except ConnectionClosed as exc:  # the daemon stopped or was killed: name the job
            if seen["streamed"]:
                print()  # end the streamed text's line
            if exc.reason is not None and exc.reason.code == TOO_BIG:
                raise CliError(  # (it read no call: the message was larger than it takes)
                    "payload_too_large: the call is larger than the daemon takes "
                    "(its server.max_body_bytes)"
                ) from None
            raise closed_early(_ws_url(args), seen["job_id"], call_sent=True) from None
    if seen["streamed"]:
        print()  # end the streamed text's line
    job_id = seen["job_id"]
    if job_id is None:
        raise CliError(
            f"the daemon at {where(args)} did not say within {args.wait + _JOB_ID_WAIT_S:g}s "
            "whether it took the call; if it did, switchman jobs lists it"
        )
    if args.json:
        print(json.dumps({"job_id": job_id, "status": "running"}, indent=2))
    else:
        print(
            f"job {job_id} is still running: not finished within --wait {args.wait:g}s; "
            f"poll it with: {poll_hint(job_id)}",
            file=sys.stderr,
        )
    return EXIT_PENDING


async def _read_stream(
    ws: WebSocketConnection, args: argparse.Namespace, seen: dict[str, Any]
) -> int:
    """Read the call's messages until its result (``seen`` notes the job id and whether
    text was printed, for a caller that stops waiting)."""
    while True:
        message = json.loads(await ws.get_message())
        kind = message.get("type")
        if kind == "submitted":
            seen["job_id"] = message.get("job_id")
        elif kind == "attempt.delta" and not args.json:
            print(message.get("text", ""), end="", flush=True)
            seen["streamed"] = seen["streamed"] or bool(message.get("text"))
        elif kind == "result":
            result = message["result"]
            if args.json:
                print(json.dumps(result, indent=2))
                return EXIT_OK if result.get("status") == "complete" else EXIT_FAILED
            if seen["streamed"]:
                print()  # end the streamed text's line
            return print_result(result, show_answer=not seen["streamed"])
        elif kind == "error":
            raise _refusal(args, message["error"])


async def _read_job_id(
    ws: WebSocketConnection, args: argparse.Namespace, seen: dict[str, Any]
) -> None:
    """Read until the daemon names the job it took the call as (into ``seen``), or raise
    its refusal."""
    while seen["job_id"] is None:
        message = json.loads(await ws.get_message())
        if message.get("type") == "submitted":
            seen["job_id"] = message.get("job_id")
        elif message.get("type") == "error":
            raise _refusal(args, message["error"])


def _refusal(args: argparse.Namespace, error: dict[str, Any]) -> CliError:
    """The error for a call the daemon refused over the websocket."""
    code = error.get("code")
    if code == "permission_denied":  # the key was accepted; this call is not its
        return key_refused(where(args), 403, str(error.get("message")))
    # the daemon could not take it now (as over HTTP: a failed call) or the call
    # itself is wrong (a usage error)
    busy = code in _BUSY
    return CliError(
        f"{code}: {error.get('message')}", exit_code=EXIT_FAILED if busy else EXIT_USAGE
    )


def _run(fn: Any, *args: Any) -> int:
    daemon = where(args[0])
    try:
        code: int = trio.run(fn, *args)
    except BaseExceptionGroup as group:  # Ctrl-C while a nursery ran: as itself
        if group.split(KeyboardInterrupt)[1] is not None:
            raise
        raise KeyboardInterrupt from None
    except ConnectionRejected as exc:
        if exc.status_code in (401, 403):
            raise key_refused(daemon, exc.status_code, _rejection_message(exc.body)) from None
        raise CliError(
            f"the daemon at {daemon} refused the websocket (HTTP {exc.status_code})"
        ) from None
    except BrokenPipeError:
        raise  # the reader of our output left (``watch | head``): not the daemon's doing
    except (OSError, HandshakeError) as exc:
        raise not_running(args[0], "ws", exc) from None
    except ConnectionClosed:
        raise CliError("the daemon closed the connection") from None
    return code


def _rejection_message(body: bytes | None) -> str:
    """The ``error.message`` of a refused handshake's JSON body, or ``""``."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


def watch(args: argparse.Namespace) -> int:
    return _run(_watch, args)


def stream_call(args: argparse.Namespace, call: dict[str, Any]) -> int:
    """``run --stream``; on Ctrl-C once the call is sent, says which job runs on (and
    ends the line of text streamed so far) before the ``KeyboardInterrupt`` goes on."""
    seen: dict[str, Any] = {"streamed": False, "job_id": None, "sent": False}
    try:
        return _run(_stream, args, call, seen)
    except KeyboardInterrupt:
        if seen["streamed"]:
            print(flush=True)
        if seen["sent"]:
            say_interrupted(seen["job_id"])
        raise
