"""Bad input: 400 malformed, 422 naming each field, 413 too large, 404 unknown job."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from switchman.gateway._app import Gateway
from switchman.gateway._http import DRAIN_FACTOR, DRAIN_S
from switchman.gateway._jobs import JobRunner
from switchman.gateway._metrics import GatewayMetrics
from switchman.store import open_store
from tests.gateway._fakes import FakeRouter, make_config, running_gateway

LIMIT = 2048


def _fields(body: dict[str, Any]) -> set[str]:
    return {d["field"] for d in body["error"]["details"]}


async def test_malformed_json_is_400() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for path in ("/call", "/v1/chat/completions", "/feedback/job_x"):
                r = await gw.client.post(
                    path, content=b"{not json", headers={"content-type": "application/json"}
                )
                assert r.status_code == 400, path
                assert "message" in r.json()["error"]
            assert router.calls == []


async def test_json_nested_past_the_parser_or_with_huge_numbers_is_400_saying_so() -> None:
    """These used to answer 500 with a traceback in the log (a RecursionError), or a
    message advising the server's Python; each way in says what is wrong instead."""
    router = FakeRouter(make_config(max_body_bytes=2**20))
    deep = b"[" * 100_000 + b"]" * 100_000
    digits = b'{"prompt": "hi", "params": {"seed": ' + b"9" * 10_000 + b"}}"
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for path in ("/call", "/v1/chat/completions", "/feedback/job_x"):
                for body, said in ((deep, "nested too deeply"), (digits, "more than 4300 digits")):
                    r = await gw.client.post(path, content=body)
                    assert r.status_code == 400, (path, r.text)
                    assert said in r.json()["error"]["message"]
            assert router.calls == []


async def test_metadata_holding_more_text_than_it_may_is_named_and_nothing_is_stored() -> None:
    """Every job stores its metadata, and retention counted jobs, not bytes: 3.5 MB of
    metadata a call let one key fill the disk with calls that failed and cost nothing."""
    router = FakeRouter(make_config(max_body_bytes=2**23))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            big = {"notes": ["x" * 60_000, "y" * 6_000]}
            r = await gw.client.post("/call", json={"prompt": "hi", "metadata": big})
            assert r.status_code == 422
            assert r.json()["error"]["details"] == [
                {"field": "metadata", "message": "comes to more than 65,536 characters as JSON"}
            ]
            for large in (
                {f"k{i:05}": i for i in range(20_000)},  # (keys count too)
                {"n": [1234567890123] * 250_000},  # (numbers too: 3.7 MB of them)
                {"e": [""] * 200_000},
                {"l": [[]] * 200_000},
                {"b": [int("9" * 4_000)] * 900},  # (numbers by their digits: 3.6 MB)
            ):
                r = await gw.client.post("/call", json={"prompt": "hi", "metadata": large})
                assert r.status_code == 422
            assert (await gw.client.get("/jobs")).json()["jobs"] == []
            fits = {"notes": "x" * 60_000}
            r = await gw.client.post("/call?wait=5", json={"prompt": "hi", "metadata": fits})
            assert r.status_code == 200
    assert len(router.calls) == 1


async def test_metadata_nested_deeper_than_it_may_be_is_named() -> None:
    """Metadata is written back in results, traces and the store: 500 levels used to fail
    the request with a 500 there, past validation."""
    router = FakeRouter(make_config(max_body_bytes=2**20))
    meta: Any = "leaf"
    for _ in range(500):
        meta = [meta]
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call", json={"prompt": "hi", "metadata": {"x": meta}})
            assert r.status_code == 422
            assert r.json()["error"]["details"] == [
                {"field": "metadata", "message": "nests deeper than 32 levels"}
            ]
            shallow = {"a": {"b": [[{"c": 1}]]}}
            r = await gw.client.post("/call?wait=5", json={"prompt": "hi", "metadata": shallow})
            assert r.status_code == 200
            body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
            r = await gw.client.post("/v1/chat/completions", json={**body, "metadata": {"x": meta}})
            assert r.status_code == 400 and r.json()["error"]["param"] == "metadata"


async def test_v1_fields_of_the_wrong_type_are_400_naming_them() -> None:
    """A role or an intent given as an array or object used to answer 500 (unhashable)."""
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for role in (["user"], {"x": 1}, 5):
                body = {"model": "fast", "messages": [{"role": role, "content": "hi"}]}
                r = await gw.client.post("/v1/chat/completions", json=body)
                assert r.status_code == 400, r.text
                assert r.json()["error"]["param"] == "messages[0].role"
            for intent in (["code"], {"a": 1}):
                body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
                r = await gw.client.post("/v1/chat/completions", json={**body, "intent": intent})
                assert r.status_code == 400 and r.json()["error"]["param"] == "intent", r.text
            assert router.calls == []


async def test_invalid_call_fields_are_422_naming_each_one() -> None:
    router = FakeRouter(make_config())
    body = {
        "prompt": "x",
        "model": "fast",
        "colour": "red",
        "params": {"temperature": 7, "top_p": "high"},
        "options": {"verbosity": "loud"},
    }
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call", json=body)
            assert r.status_code == 422
            err = r.json()["error"]
            assert err["code"] == "validation_error"
            assert _fields(r.json()) == {
                "colour",
                "params.temperature",
                "params.top_p",
                "options.verbosity",
            }
            r = await gw.client.post("/call", json=[1])
            assert r.status_code == 422 and _fields(r.json()) == {"body"}
            assert router.calls == []


async def test_unknown_models_are_422_before_a_job_exists() -> None:
    router = FakeRouter(make_config())
    body = {"prompt": "x", "model": "nosuch", "options": {"fallback": ["fast", "nada"]}}
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call", json=body)
            assert r.status_code == 422
            assert _fields(r.json()) == {"model", "options.fallback[1]"}
            strict = {"prompt": "x", "options": {"determinism": "strict"}}
            r = await gw.client.post("/call", json=strict)
            assert r.status_code == 422 and _fields(r.json()) == {"params.seed"}
            warm = {**strict, "params": {"temperature": 0.7}}  # strict samples at 0
            r = await gw.client.post("/call", json=warm)
            assert r.status_code == 422
            assert _fields(r.json()) == {"params.seed", "params.temperature"}
            assert "is 0.7, but options.determinism strict" in r.text
            assert (await gw.client.get("/jobs")).json()["jobs"] == []
            r = await gw.client.post(
                "/call", json={**warm, "params": {"temperature": 0, "seed": 1}}
            )
            assert r.status_code == 202


async def test_an_unknown_model_is_named_beside_the_other_bad_fields() -> None:
    router = FakeRouter(make_config())
    body = {"prompt": 5, "model": "nosuch", "options": {"fallback": ["fast", "nada"]}}
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            alone = await gw.client.post("/call", json={"prompt": "x", "model": "nosuch"})
            r = await gw.client.post("/call", json=body)
            assert r.status_code == 422
            assert _fields(r.json()) == {"prompt", "model", "options.fallback[1]"}
            said = {d["field"]: d["message"] for d in r.json()["error"]["details"]}
            # in the same words as when it is the only mistake
            assert said["model"] == alone.json()["error"]["details"][0]["message"]
            assert said["model"] == "unknown model or route 'nosuch'"
            assert said["options.fallback[1]"] == "unknown model 'nada'"
            # a model of the wrong type is the call's own error, named once
            r = await gw.client.post("/call", json={"prompt": 5, "model": 7})
            assert [d["field"] for d in r.json()["error"]["details"]].count("model") == 1
            # known names are not reported
            r = await gw.client.post("/call", json={"prompt": 5, "model": "best"})
            assert _fields(r.json()) == {"prompt"}
            assert router.calls == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("wait=abc", "wait"), ("wait=-1", "wait"), ("wait=1000", "wait"), ("wait=nan", "wait")],
)
async def test_bad_wait_is_422(query: str, field: str) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post(f"/call?{query}", json={"prompt": "x"})
            assert r.status_code == 422 and _fields(r.json()) == {field}
            r = await gw.client.get(f"/result/job_x?{query}")
            assert r.status_code == 422 and _fields(r.json()) == {field}


async def test_bad_jobs_query_is_422_naming_each() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.get("/jobs", params={"status": "done", "limit": "0"})
            assert r.status_code == 422 and _fields(r.json()) == {"status", "limit"}
            r = await gw.client.get("/jobs", params={"limit": "x"})
            assert r.status_code == 422 and _fields(r.json()) == {"limit"}


async def test_bad_feedback_is_422_naming_each() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            job_id = (await gw.client.post("/call?wait=5", json={"prompt": "x"})).json()["job_id"]
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": 2, "why": "x"})
            assert r.status_code == 422 and _fields(r.json()) == {"score", "why"}
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": True})
            assert r.status_code == 422 and _fields(r.json()) == {"score"}
            r = await gw.client.post(f"/feedback/{job_id}", json={})
            assert r.status_code == 422 and _fields(r.json()) == {"score"}
            assert router.feedback_given == []


async def test_unknown_job_is_404() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for r in (
                await gw.client.get("/result/job_nope"),
                await gw.client.post("/feedback/job_nope", json={"score": 1}),
            ):
                assert r.status_code == 404
                assert r.json()["error"]["code"] == "not_found"


async def _rejected_as_too_large(post: Any) -> httpx.Response | None:
    """The 413 answer, or None when the server closed the connection while the client was
    still uploading the rest of the body (it answers 413 without reading the rest, and a
    client mid-upload may see the close before the answer: both mean nothing was taken)."""
    try:
        response: httpx.Response = await post
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
        return None
    assert response.status_code == 413, response.text
    return response


async def test_too_large_bodies_are_413() -> None:
    router = FakeRouter(make_config(max_body_bytes=LIMIT))
    big = {"prompt": "x" * (LIMIT + 10)}
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await _rejected_as_too_large(gw.client.post("/call", json=big))
            if r is not None:
                assert r.json()["error"]["code"] == "payload_too_large"

            async def chunks() -> Any:  # no Content-Length: chunked transfer
                for _ in range(10):
                    yield b" " * 512

            r = await _rejected_as_too_large(gw.client.post("/call", content=chunks()))
            if r is not None:
                assert "content-length" not in r.request.headers
            r = await _rejected_as_too_large(
                gw.client.post(
                    "/v1/chat/completions",
                    json={"model": "auto", "messages": [{"role": "user", "content": "x" * LIMIT}]},
                )
            )
            if r is not None:
                assert r.json()["error"]["type"] == "invalid_request_error"
            assert router.calls == []
            # a body just under the limit is fine
            ok = await gw.client.post("/call", json={"prompt": "x" * (LIMIT - 100)})
            assert ok.status_code == 202


class _Receive:
    """An ASGI receive that counts how much of the body the app pulled."""

    def __init__(self, chunks: int, size: int) -> None:
        self.left = chunks
        self.size = size
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        self.left -= 1
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.left > 0}


async def _asgi_post(headers: list[tuple[bytes, bytes]], receive: _Receive) -> int:
    router = FakeRouter(make_config(max_body_bytes=LIMIT))
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with open_store(":memory:") as store, trio.open_nursery() as nursery:
        runner = JobRunner(router, store, nursery, max_in_flight=4)
        app = Gateway(router, store, runner, GatewayMetrics())
        scope = {"type": "http", "method": "POST", "path": "/call", "headers": headers}
        await app(scope, receive, send)  # type: ignore[arg-type]
    return int(sent[0]["status"])


async def test_a_declared_content_length_far_over_the_limit_reads_nothing() -> None:
    receive = _Receive(chunks=1000, size=1024)
    status = await _asgi_post([(b"content-length", str(1024 * 1000).encode())], receive)
    assert status == 413
    assert receive.calls == 0


async def test_a_body_a_little_over_the_limit_is_read_to_its_end_before_the_413() -> None:
    # the client reads the 413 only if the server took the whole body (else: a reset)
    for headers in ([(b"content-length", str(1024 * 5).encode())], []):
        receive = _Receive(chunks=5, size=1024)
        status = await _asgi_post(headers, receive)
        assert status == 413
        assert receive.calls == 5 and receive.left == 0


async def test_a_chunked_body_stops_being_read_past_the_drain_bound() -> None:
    receive = _Receive(chunks=1000, size=1024)
    status = await _asgi_post([], receive)
    assert status == 413
    assert receive.calls == DRAIN_FACTOR * LIMIT // 1024 + 1


async def _raw_post(gw: Any, declared: int, body: bytes) -> tuple[bytes, float]:
    """POST /call on a raw socket declaring ``declared`` body bytes and sending ``body``;
    the whole answer (until the server closes) and how long its first bytes took."""
    stream = await trio.open_tcp_stream(gw.host, gw.port)
    async with stream:
        head = (
            "POST /call HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
            f"content-length: {declared}\r\n\r\n"
        ).encode()
        await stream.send_all(head + body)
        started = trio.current_time()
        first = await stream.receive_some()
        took = trio.current_time() - started
        answer = first
        while chunk := await stream.receive_some():
            answer += chunk
    return answer, took


async def test_a_body_that_stops_coming_gets_its_413_once_the_drain_time_is_up() -> None:
    router = FakeRouter(make_config(max_body_bytes=LIMIT))
    with trio.fail_after(DRAIN_S + 15):
        async with running_gateway(router) as gw:
            # half the declared body, then nothing: the server stops waiting for the rest
            answer, took = await _raw_post(gw, LIMIT * 2, b"x" * LIMIT)
            assert answer.startswith(b"HTTP/1.1 413")
            assert DRAIN_S - 0.5 <= took <= DRAIN_S + 5
            # past the bound it reads nothing: the 413 at once, and the connection closed
            answer, took = await _raw_post(gw, LIMIT * (DRAIN_FACTOR + 1), b"")
            assert answer.startswith(b"HTTP/1.1 413") and b"payload_too_large" in answer
            assert took < DRAIN_S - 0.5
    assert router.calls == []


async def test_a_body_that_never_finishes_coming_gets_a_408(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that sends part of its body (under the limit) and then nothing would hold
    its connection for ever: the body has BODY_READ_S to arrive."""
    from switchman.gateway import _http

    monkeypatch.setattr(_http, "BODY_READ_S", 1.0)
    router = FakeRouter(make_config(max_body_bytes=LIMIT))
    with trio.fail_after(15):
        async with running_gateway(router) as gw:
            answer, took = await _raw_post(gw, LIMIT // 2, b'{"prompt": "')
            assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
            assert 0.5 <= took <= 5
    assert router.calls == []


async def test_a_request_target_in_absolute_form_reaches_its_route() -> None:
    """``GET http://host:port/health`` (RFC 9112, 3.2.2: servers must accept it) used to
    answer 404 "no route http://..."."""
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            stream = await trio.open_tcp_stream(gw.host, gw.port)
            async with stream:
                target = f"http://{gw.host}:{gw.port}/health"
                request = f"GET {target} HTTP/1.1\r\nHost: {gw.host}\r\nConnection: close\r\n\r\n"
                await stream.send_all(request.encode())
                reply = b""
                while chunk := await stream.receive_some():
                    reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"status"' in reply


async def test_a_v1_user_with_a_control_character_is_a_400_naming_it() -> None:
    """``user`` is the caller's handle on an open gateway: a line break in it would name
    spend and jobs and write log lines."""
    router = FakeRouter(make_config())
    body = {"model": "fast", "messages": [{"role": "user", "content": "x"}], "user": "a\nb"}
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "user"
    assert "control or format character" in r.json()["error"]["message"]
