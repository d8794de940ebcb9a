"""A credential kept in a provider's ``headers`` (Azure's ``api-key``, a proxy's token) is
as secret as the API key: an upstream (a real HTTP server speaking OpenAI's chat format)
that echoes it back, in an error body, a redirect's ``Location``, a response header, an
error event in a stream or an answer's text, gets it shown to no one. Through the router
embedded, and through the gateway to a team's key: results, errors, trace events,
``/providers``, the log and the SQLite file hold none of it. The other headers' values
(``anthropic-version``, a tenant's name) are no secret and come through as they were."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import attrs
import h11
import pytest
import trio
from trio_websocket import open_websocket_url

import switchman
from switchman import Call
from switchman.adapters._sse import scrub
from switchman.catalog import Config, KeySpec, ModelSpec, ProviderSpec
from switchman.catalog._credentials import (
    credential_header,
    header_credentials,
    provider_secrets,
)
from switchman.store import open_store
from tests._rawhttp import serve_h11
from tests._simfleet import drained
from tests._simfleet import streamed as streamed_call
from tests.gateway._fakes import running_gateway

# shapes no key pattern knows (no prefix, under 32 characters): only their value tells
AZURE = "AzKey-7Qp2Wm9Lx4Rt"
PROXY = "PrxTok.8841.zeta"
CREDENTIALS = (AZURE, PROXY)
TENANT = "tenant-plainname-01"  # a header that is no credential
VERSION = "2023-06-01"
HEADERS = {
    "api-key": AZURE,
    "X-Proxy-Authorization": f"Bearer {PROXY}",
    "anthropic-version": VERSION,
    "X-Tenant": TENANT,
}
#: what the upstream says back: both credentials, and the two headers that are not
SAID = f"key {AZURE} token {PROXY} tenant {TENANT} version {VERSION}"

TEAM_SECRET = "team-gateway-secret-5521"
OPS_SECRET = "ops-gateway-secret-5522"
ENV = {"GW_TEAM": TEAM_SECRET, "GW_OPS": OPS_SECRET}
TEAM = {"authorization": f"Bearer {TEAM_SECRET}"}
OPS = {"authorization": f"Bearer {OPS_SECRET}"}

#: the ways the upstream echoes what it was sent (the word in the prompt says which)
ERRORS = ["err400", "err401", "err404", "err500", "html", "redirect", "streamerr"]
MODES = ["text", *ERRORS]


@attrs.define
class Upstream:
    base_url: str
    #: the credential headers of each request it got
    seen: list[tuple[str, str]] = attrs.field(factory=list)


def _sse(events: list[dict[str, Any]]) -> bytes:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()


def _reply(mode: str, stream: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of the upstream's answer in ``mode``."""
    echoed = [("x-echo-key", AZURE), ("set-cookie", f"sess={PROXY}; Path=/")]
    error = {"error": {"message": SAID, "type": "invalid_request_error", "code": AZURE}}
    usage = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    if mode == "text" and not stream:
        body = {
            "id": "chatcmpl-h",
            "object": "chat.completion",
            "created": 1764086400,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": SAID},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        return 200, [("content-type", "application/json"), *echoed], json.dumps(body).encode()
    if mode == "text":  # split mid-credential: every 5 characters
        deltas: list[dict[str, Any]] = [
            {"choices": [{"index": 0, "delta": {"content": SAID[i : i + 5]}}]}
            for i in range(0, len(SAID), 5)
        ]
        end: list[dict[str, Any]] = [
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": usage},
        ]
        body_bytes = _sse(deltas + end) + b"data: [DONE]\n\n"
        return 200, [("content-type", "text/event-stream"), *echoed], body_bytes
    if mode == "streamerr":  # text, then an error event quoting the credentials
        events: list[dict[str, Any]] = [
            {"choices": [{"index": 0, "delta": {"content": "partial "}}]},
            {"error": {"message": SAID, "type": "server_error"}},
        ]
        return 200, [("content-type", "text/event-stream")], _sse(events)
    if mode == "html":
        page = f"<html><body>sign in: {SAID}</body></html>".encode()
        return 200, [("content-type", "text/html"), *echoed], page
    if mode == "redirect":
        where = f"http://127.0.0.1:1/moved?k={AZURE}&t={PROXY}&tenant={TENANT}"
        return 302, [("location", where)], b""
    if mode == "err500":
        return 500, [("content-type", "text/plain"), *echoed], f"internal error: {SAID}".encode()
    status = {"err400": 400, "err401": 401, "err404": 404}[mode]
    if mode == "err404":
        error["error"]["code"] = "model_not_found"
    return status, [("content-type", "application/json"), *echoed], json.dumps(error).encode()


async def serve_upstream(
    *, task_status: trio.TaskStatus[Upstream] = trio.TASK_STATUS_IGNORED
) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    upstream = Upstream(base_url=f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}")

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k.decode(): v.decode() for k, v in head.headers}
        request = json.loads(body)
        upstream.seen.append((headers.get("api-key", ""), headers.get("x-proxy-authorization", "")))
        prompt = request["messages"][-1]["content"]
        mode = next((m for m in MODES if m in prompt), "text")
        return _reply(mode, bool(request.get("stream")))

    async def handle(stream: trio.SocketStream) -> None:
        await serve_h11(stream, answer)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(upstream)


def _config(upstream: Upstream, **extra: Any) -> Config:
    return Config(
        providers={
            "azure": ProviderSpec(
                name="azure", kind="openai", base_url=f"{upstream.base_url}/v1", headers=HEADERS
            )
        },
        models={
            "az": ModelSpec(
                alias="az",
                provider="azure",
                model_id="az-1",
                input_per_mtok=1.0,
                output_per_mtok=1.0,
            )
        },
        **extra,
    )


def _leaks(text: str) -> list[str]:
    return [c for c in CREDENTIALS if c in text]


# ----------------------------------------------------------------------------- pure


def test_credential_headers_are_found_by_name_and_other_headers_are_not() -> None:
    found = header_credentials(
        {
            "api-key": AZURE,
            "Authorization": "Basic dXNlcjpwYXNzd29yZA==",
            "X-Proxy-TOKEN": "  proxy-token-value  ",
            "Cookie": "session=abcdef123",
            "X-Client-Secret": "client-secret-1",
            "X-Password": "hunter2hunter2",
            "X-Credential": "credential-99",
            "X-Pass": "pass-value-1",
            "X-Passphrase": "passphrase-value-2",
            "X-Signature": "signature-value-3",
            "X-Session": "session-value-4",
            "anthropic-version": VERSION,  # not a credential's name
            "X-Tenant": TENANT,
            "x-short-key": "abc1234",  # under 8 characters: would redact ordinary words
        }
    )
    assert set(found) == {
        AZURE,
        "Basic dXNlcjpwYXNzd29yZA==",
        "dXNlcjpwYXNzd29yZA==",
        "proxy-token-value",
        "session=abcdef123",
        "client-secret-1",
        "hunter2hunter2",
        "credential-99",
        "pass-value-1",
        "passphrase-value-2",
        "signature-value-3",
        "session-value-4",
    }
    assert [len(v) for v in found] == sorted((len(v) for v in found), reverse=True)
    assert header_credentials({}) == ()


@pytest.mark.parametrize("scheme", ["Token", "ApiKey", "Key", "Bearer", "DPoP"])
def test_the_credential_after_any_scheme_is_one(scheme: str) -> None:
    """Only ``Bearer`` and ``Basic`` were read: ``Token X`` (Replicate's), ``Key X`` (fal's),
    ``ApiKey X`` (Elastic's) kept ``X`` shown wherever a model echoed it, and sent in a
    continuation's text to another provider (the whole value, holding a space, is no
    secret to look for)."""
    found = header_credentials({"Authorization": f"{scheme} tokSCHEMEsecret0123456789xyz"})
    assert "tokSCHEMEsecret0123456789xyz" in found


@pytest.mark.parametrize(
    ("name", "carries"),
    [
        ("Authorization", True),
        ("X-Auth-Token", True),
        ("Ocp-Apim-Subscription-Key", True),
        ("X-Private-Token", True),
        ("X-JWT", True),
        ("X-Session-Id", True),
        ("X-Passthrough", False),  # (a word that begins with "pass" is not one)
        ("X-Bypass-Cache", False),
        ("X-Author", False),
        ("X-Monkey-Id", False),
        ("anthropic-version", False),
    ],
)
def test_a_credential_header_is_known_by_a_word_of_its_name(name: str, carries: bool) -> None:
    assert credential_header(name) is carries


async def test_a_python_config_whose_key_is_in_a_short_header_is_not_disabled() -> None:
    """A credential header of any length counts as the provider's key (it is not hidden
    under 8 characters, but it is a key); a header that merely looks like one does not."""
    url = "http://127.0.0.1:9/v1"  # (never asked: nothing is called)
    with_key = ProviderSpec(
        name="p", kind="openai", base_url=url, api_key_env="UNSET_X", headers={"api-key": "s7"}
    )
    passthrough = ProviderSpec(
        name="q",
        kind="openai",
        base_url=url,
        api_key_env="UNSET_Y",
        headers={"X-Passthrough": "yes-please-1"},
    )
    models = {
        "m": ModelSpec(alias="m", provider="p", model_id="m"),
        "n": ModelSpec(alias="n", provider="q", model_id="n"),
    }
    config = Config(providers={"p": with_key, "q": passthrough}, models=models)
    async with switchman.open_router(config, env={}) as router:
        reasons = {p.name: p.disabled_reason for p in router.status().providers}
    assert reasons["p"] is None
    assert reasons["q"] is not None and "UNSET_Y" in reasons["q"]


def test_a_providers_secrets_are_its_key_and_its_credential_headers() -> None:
    spec = ProviderSpec(name="p", kind="openai", headers=HEADERS)
    assert provider_secrets(spec, "sk-the-api-key-0001") == (
        f"Bearer {PROXY}",
        "sk-the-api-key-0001",
        AZURE,
        PROXY,
    )
    assert provider_secrets(spec, None) == (f"Bearer {PROXY}", AZURE, PROXY)
    assert provider_secrets(ProviderSpec(name="s", kind="sim"), None) == ()
    assert provider_secrets(ProviderSpec(name="o", kind="openai"), "key-0001") == ("key-0001",)


def test_scrub_takes_several_secrets() -> None:
    said = scrub(f"{SAID} again {AZURE}", (AZURE, PROXY))
    assert _leaks(said) == [] and said.count("[REDACTED]") == 3
    assert TENANT in said and VERSION in said
    assert scrub(SAID, AZURE).count("[REDACTED]") == 1  # one value, as before
    assert scrub(SAID, ()) == scrub(SAID) == SAID


# ----------------------------------------------------------------------------- embedded


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("mode", MODES)
async def test_the_router_shows_no_credential_an_upstream_echoes(
    mode: str, streamed: bool, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpcore's lines quote every response header
    upstream: Upstream = await nursery.start(serve_upstream)
    events: list[Any] = []
    call = Call(prompt=f"{mode} please", model="az")
    with trio.fail_after(20):
        async with switchman.open_router(_config(upstream), env={}) as router:
            with router.subscribe() as feed:
                if streamed:
                    result, text = await streamed_call(router, call)
                else:
                    result, text = await router.call(call), ""
                await trio.sleep(0.05)  # the attempt's last events
                events += drained(feed)
            status = router.status()
    assert upstream.seen and upstream.seen[0] == (AZURE, f"Bearer {PROXY}")  # sent, echoed
    assert any(e.type == "attempt.finished" for e in events)
    shown = " ".join(
        [repr(attrs.asdict(result)), text, *map(repr, events), repr(status), caplog.text]
    )
    assert _leaks(shown) == []
    if mode == "text":
        assert result.status == "complete", result.errors
        assert (
            result.answer
            == f"key [REDACTED:api_key] token [REDACTED:api_key] tenant {TENANT} version {VERSION}"
        )
    elif mode == "streamerr" and streamed:
        # the model alone continues the text the server error broke (its continuation
        # asks anew, without the word that made this upstream fail)
        assert result.status == "complete", result.errors
        said = result.trace.attempts[0].error or ""
        assert TENANT in said, said  # the echo was told, cut
    else:
        assert result.status == "failed"
        said = " ".join(e.message for e in result.errors)
        assert TENANT in said or "127.0.0.1:1" in said, said  # the echo was told, cut
    if mode == "err401":  # the provider is held out, saying why (and the log says it)
        held = [p.disabled_reason for p in status.providers]
        assert any(r and TENANT in r for r in held), held
        assert any(
            r.levelno == logging.WARNING and TENANT in r.getMessage() for r in caplog.records
        )
    if mode == "err404":  # the model is held out, saying why
        assert TENANT in repr(status)


# ----------------------------------------------------------------------------- gateway


async def _read_ws(ws: Any, into: list[str]) -> None:
    while True:
        into.append(str(await ws.get_message()))


async def _through_gateway(router: Any, store: Any, mode: str) -> tuple[str, dict[str, Any]]:
    """Everything a team's key sees of a call in ``mode`` (and the admin's /providers):
    the text of each answer, and the /call body."""
    seen: list[str] = []
    async with (
        running_gateway(router, store=store) as gw,
        open_websocket_url(
            gw.ws_url, extra_headers=[(b"authorization", TEAM["authorization"].encode())]
        ) as ws,
    ):
        await ws.send_message(json.dumps({"type": "subscribe"}))
        assert json.loads(await ws.get_message())["type"] == "subscribed"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_read_ws, ws, seen)
            r = await gw.client.post(
                "/call?wait=20", json={"prompt": f"{mode} go", "model": "az"}, headers=TEAM
            )
            body = r.json()
            seen.append(r.text)
            seen.append((await gw.client.get(f"/result/{body['job_id']}", headers=TEAM)).text)
            chat = {"model": "az", "messages": [{"role": "user", "content": f"{mode} go"}]}
            r = await gw.client.post("/v1/chat/completions", json=chat, headers=TEAM)
            seen.append(f"{r.headers} {r.text}")
            async with gw.client.stream(
                "POST", "/v1/chat/completions", json={**chat, "stream": True}, headers=TEAM
            ) as s:
                seen.append(f"{s.headers} {(await s.aread()).decode()}")
            for who in (TEAM, OPS):
                seen.append((await gw.client.get("/providers", headers=who)).text)
            await trio.sleep(0.2)  # the last events
            nursery.cancel_scope.cancel()
    return " ".join(seen), body


def _stored(where: Path) -> bytes:
    """The SQLite file's bytes (its journal's too, if left)."""
    return b"".join(p.read_bytes() for p in where.iterdir() if p.name.startswith("jobs.db"))


@pytest.mark.parametrize("mode", MODES)
async def test_the_gateway_shows_a_team_no_credential_an_upstream_echoes(
    mode: str, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream: Upstream = await nursery.start(serve_upstream)
    keys = (
        KeySpec(key_env="GW_TEAM", handle="team", secret=TEAM_SECRET, models=("*",)),
        KeySpec(key_env="GW_OPS", handle="ops", secret=OPS_SECRET, admin=True, models=("*",)),
    )
    config = _config(upstream, keys=keys)
    db = tmp_path / "jobs.db"
    with trio.fail_after(30):
        async with (
            open_store(db) as store,
            switchman.open_router(config, env=ENV, store=store) as router,
        ):
            shown, body = await _through_gateway(router, store, mode)
    assert upstream.seen and upstream.seen[0] == (AZURE, f"Bearer {PROXY}")
    assert '"type":"attempt.finished"' in shown.replace(" ", "")  # the team's events came
    assert _leaks(shown) == []
    assert _leaks(caplog.text) == []
    stored = _stored(tmp_path)
    assert [c for c in CREDENTIALS if c.encode() in stored] == []
    if mode == "text":
        assert body["result"]["answer"].endswith(f"tenant {TENANT} version {VERSION}"), body
        assert body["result"]["answer"].count("[REDACTED:api_key]") == 2
    else:
        said = " ".join(e["message"] for e in body["result"]["errors"])
        assert TENANT in said or "127.0.0.1:1" in said, said
