"""Opening a ``/ws`` websocket: whose it is, from its upgrade request's key or, for a
page's socket (which cannot set headers), its first message ``{"type": "auth", "key"}``.

A socket opened without a key waits ``AUTH_WAIT_S`` at most for that message, and at most
``AWAITING_AUTH`` such sockets wait at once across the gateway: past them the upgrade
answers 429 (each costs a connection and a task, and a page may open thousands without
any key). A team (a key's handle) holds at most ``SOCKETS_PER_KEY`` sockets at once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import trio

from switchman.gateway._auth import (
    SEVERAL_KEYS,
    Principal,
    authenticate,
    presented_key,
    presents_several_keys,
)
from switchman.gateway._http import HttpError, Message, Receive, Scope, Send, dumps, parse_json

if TYPE_CHECKING:
    from switchman.gateway._app import Gateway

#: websockets one team (a key's handle) may hold open at once: each costs a subscription
#: and buffers, and one key must not take a gateway's memory from the others
SOCKETS_PER_KEY: Final = 64
#: how long a socket opened without a key has to send ``{"type": "auth", "key": ...}``
AUTH_WAIT_S: Final = 10.0
_ASK_KEY: Final = (
    'send {"type": "auth", "key": "<key>"} first, or the key in the upgrade request\'s'
    " Authorization: Bearer <key> or x-api-key header"
)
NOT_VALID: Final = (
    "a valid gateway key is required (Authorization: Bearer <key> or x-api-key, or an"
    ' {"type": "auth", "key": "<key>"} message)'
)
#: sockets opened without a key still to send their auth message, across the gateway
AWAITING_AUTH: Final = 256
_TOO_MANY_WAITING: Final = HttpError(
    429,
    "rate_limited",
    f"{AWAITING_AUTH} websockets opened without a key are waiting to authenticate: retry"
    " shortly, or give the key in the upgrade request",
)


def error_message(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = list(details)
    return {"type": "error", "error": error}


async def open_socket(gw: Gateway, scope: Scope, receive: Receive, send: Send) -> Principal | None:
    """Accept a websocket and learn whose it is (its key's principal), or refuse it (told
    why) and return None."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return None
    raw = scope.get("headers", ())
    if presents_several_keys(raw):
        await _reject(scope, send, HttpError(400, "bad_request", SEVERAL_KEYS))
        return None
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
    try:
        gw.refuse_pages(scope)
    except HttpError as refused:
        await _reject(scope, send, refused)
        return None
    principal = gw.authenticate(headers)
    if principal is None and (presented_key(headers) is not None or "origin" not in headers):
        # a wrong key, or no key from a program (which can set headers): 401 at once
        await _reject(scope, send, HttpError(401, "unauthorized", NOT_VALID))
        return None
    if principal is not None and (full := _sockets_full(gw, principal)) is not None:
        await _reject(scope, send, full)
        return None
    if principal is not None:
        await send({"type": "websocket.accept"})
        return principal
    # a browser's socket (it cannot set headers): ask for the key; counted from the check,
    # before the accept (a checkpoint), so that sockets opening together cannot all pass
    if gw.awaiting_auth >= AWAITING_AUTH:
        await _reject(scope, send, _TOO_MANY_WAITING)
        return None
    gw.awaiting_auth += 1
    try:
        await send({"type": "websocket.accept"})
        return await _key_message(gw, receive, send)
    finally:
        gw.awaiting_auth -= 1


def _sockets_full(gw: Gateway, principal: Principal) -> HttpError | None:
    """A 429 when ``principal``'s team already holds ``SOCKETS_PER_KEY`` sockets (the
    gateway without keys, one caller of its own machine, has no such limit)."""
    held = gw.sockets.held(principal.owner)
    if principal.owner is None or held < SOCKETS_PER_KEY:
        return None
    return HttpError(
        429,
        "rate_limited",
        f"this key's team has {held} websockets open, the most one team may hold: close one first",
    )


async def _key_message(gw: Gateway, receive: Receive, send: Send) -> Principal | None:
    """The principal of a socket opened without a key, from its first message
    ``{"type": "auth", "key": ...}`` sent within ``AUTH_WAIT_S``; None (the socket told
    why and closed with 1008) for anything else, or when the client left. Once the
    gateway is stopping, a socket still waiting is closed at once (1001): it is owed
    nothing, and must not hold the stop up."""
    problem = f"no auth message within {AUTH_WAIT_S:g} s: {_ASK_KEY}"
    code = 1008
    message: Message | None = None
    with trio.move_on_after(AUTH_WAIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when_set, gw.runner.stopping, nursery.cancel_scope)
            message = await receive()
            nursery.cancel_scope.cancel()
    if message is None and gw.runner.stopping.is_set():
        problem, code = "the gateway is shutting down", 1001
    if message is not None:
        if message["type"] == "websocket.disconnect":
            return None
        principal, problem = _auth_message(gw, message.get("text"))
        full = _sockets_full(gw, principal) if principal is not None else None
        if principal is not None and full is None:
            await _send_raw(send, {"type": "authenticated", "handle": principal.handle})
            return principal
        if full is not None:
            await _send_raw(send, error_message(full.code, full.message))
            with contextlib.suppress(Exception):  # (the client may be gone)
                await send({"type": "websocket.close", "code": 1008})
            return None
    await _send_raw(
        send, error_message("unauthorized" if code == 1008 else "shutting_down", problem)
    )
    with contextlib.suppress(Exception):  # (the client may be gone)
        await send({"type": "websocket.close", "code": code})
    return None


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _auth_message(gw: Gateway, text: str | None) -> tuple[Principal | None, str]:
    """The principal an ``auth`` message's key names, or None and what is wrong with it."""
    try:
        data = parse_json(text) if text is not None else None
    except ValueError:
        data = None
    if not (isinstance(data, dict) and data.get("type") == "auth"):
        return None, f"the first message must authenticate: {_ASK_KEY}"
    unknown = sorted(str(k) for k in data if k not in ("type", "key"))
    key = data.get("key")
    if unknown or not isinstance(key, str) or not key.strip():
        what = f"unknown field(s) {', '.join(unknown)}" if unknown else "no key"
        return None, f"{what} in the auth message: {_ASK_KEY}"
    principal = authenticate(gw.config.keys, key.strip())
    return principal, NOT_VALID


async def _send_raw(send: Send, message: Mapping[str, Any]) -> None:
    with contextlib.suppress(Exception):  # (the client may be gone)
        text = json.dumps(message, separators=(",", ":"))
        await send({"type": "websocket.send", "text": text})


async def _reject(scope: Scope, send: Send, err: HttpError) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = dumps(err.body())
        await send(
            {
                "type": "websocket.http.response.start",
                "status": err.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
