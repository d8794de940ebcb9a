"""``[[keys]] rpm``: a key over its request rate is refused with 429 and retry-after."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
import trio
from trio_websocket import open_websocket_url

from switchman.catalog import KeySpec
from switchman.gateway._auth import OPEN, Principal
from switchman.gateway._http import HttpError
from switchman.gateway._limits import KeyRates
from tests.gateway._fakes import FakeRouter, bearer, make_config, running_gateway

USER = [{"role": "user", "content": "hi"}]


def _keys(rpm: int) -> tuple[KeySpec, ...]:
    return (
        KeySpec(key_env="KEY_R", handle="r", secret="secret-r", rpm=rpm),
        KeySpec(key_env="KEY_FREE", handle="free", secret="secret-free"),
        KeySpec(key_env="KEY_OTHER", handle="other", secret="secret-other", rpm=rpm),
    )


def test_a_bucket_holds_rpm_requests_then_one_every_60_over_rpm() -> None:
    rates = KeyRates()
    assert [rates.admit("a", 2, 0.0) for _ in range(2)] == [None, None]
    assert rates.admit("a", 2, 0.0) == pytest.approx(30.0)
    assert rates.admit("a", 2, 20.0) == pytest.approx(10.0)  # a refusal takes nothing
    assert rates.admit("b", 2, 20.0) is None  # each handle has its own bucket
    assert rates.admit("a", 2, 30.0) is None
    assert rates.admit("a", 2, 30.0) == pytest.approx(30.0)


def test_a_refusal_is_a_429_with_retry_after_rounded_up() -> None:
    rates = KeyRates()
    limited = Principal(key_id="K", handle="r", admin=False, rpm=1)
    rates.check(limited, 0.0)
    with pytest.raises(HttpError) as info:
        rates.check(limited, 0.5)
    err = info.value
    assert (err.status, err.code) == (429, "rate_limited")
    assert "'r' is over its rate of 1 request a minute; retry in 59.5s" in err.message
    assert dict(err.headers) == {b"retry-after": b"60", b"retry-after-ms": b"59500"}
    # no rpm, or the open gateway: never limited
    for principal in (OPEN, Principal(key_id="F", handle="free", admin=False)):
        for _ in range(100):
            rates.check(principal, 0.5)


async def test_http_calls_over_a_keys_rpm_are_429_per_key() -> None:
    router = FakeRouter(make_config(keys=_keys(2)))
    call = {"prompt": "hi", "model": "fast"}
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r_key, free, other = bearer("secret-r"), bearer("secret-free"), bearer("secret-other")
            # /call and /v1 draw on the same bucket
            assert (await gw.client.post("/call", json=call, headers=r_key)).status_code == 202
            chat = {"model": "fast", "messages": USER}
            r = await gw.client.post("/v1/chat/completions", json=chat, headers=r_key)
            assert r.status_code == 200
            r = await gw.client.post("/call", json=call, headers=r_key)
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(r.headers["retry-after"]) <= 30
            r = await gw.client.post("/v1/chat/completions", json=chat, headers=r_key)
            assert r.status_code == 429
            error = r.json()["error"]
            assert (error["code"], error["type"]) == ("rate_limited", "rate_limit_error")
            assert "retry-after" in r.headers
            # reading is not limited; other keys have their own rate, or none
            assert (await gw.client.get("/jobs", headers=r_key)).status_code == 200
            for _ in range(5):
                assert (await gw.client.post("/call", json=call, headers=free)).status_code == 202
            assert (await gw.client.post("/call", json=call, headers=other)).status_code == 202
            assert len(router.calls) == 2 + 5 + 1  # the refused ones never reached it


async def test_a_request_refused_for_itself_is_told_why_and_takes_nothing_from_the_rpm() -> None:
    """A bad field or a model the key may not use answers its own 422/400/403/404 however
    many came before, and leaves the key's calls a minute to its real calls."""
    keys = (KeySpec(key_env="KEY_R", handle="r", secret="secret-r", rpm=2, models=("fast",)),)
    router = FakeRouter(make_config(keys=keys))
    r_key = bearer("secret-r")
    refused = [
        ("/call", {"prompt": "hi", "model": "slow"}, 403),  # not this key's
        ("/call", {"prompt": "hi", "model": "fast", "params": {"temperature": 9}}, 422),
        ("/call", {"prompt": "", "model": "fast"}, 422),
        ("/v1/chat/completions", {"model": "slow", "messages": USER}, 403),
        ("/v1/chat/completions", {"model": "no-such", "messages": USER}, 404),
        ("/v1/chat/completions", {"model": "fast", "messages": USER, "n": 3}, 400),
    ]
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for _ in range(2):  # twice the key's rpm of them
                for path, body, status in refused:
                    r = await gw.client.post(path, json=body, headers=r_key)
                    assert r.status_code == status, (path, body, r.text)
            ws_refused = json.dumps({"type": "call", "call": {"prompt": "hi", "model": "slow"}})
            auth = [(b"authorization", b"Bearer secret-r")]
            async with open_websocket_url(gw.ws_url, extra_headers=auth) as ws:
                for _ in range(3):
                    await ws.send_message(ws_refused)
                    error = json.loads(await ws.get_message())
                    assert error["error"]["code"] == "permission_denied", error
            call = {"prompt": "hi", "model": "fast"}
            assert (await gw.client.post("/call", json=call, headers=r_key)).status_code == 202
            chat = {"model": "fast", "messages": USER}
            r = await gw.client.post("/v1/chat/completions", json=chat, headers=r_key)
            assert r.status_code == 200
            r = await gw.client.post("/call", json=call, headers=r_key)
            assert r.status_code == 429  # the two real calls used it up
            # over the rate, a bad request is still told what is wrong with it
            r = await gw.client.post("/call", json=refused[1][1], headers=r_key)
            assert r.status_code == 422 and "temperature" in r.text
            assert len(router.calls) == 2


async def test_a_websocket_call_over_the_rpm_gets_an_error_and_the_socket_lives_on() -> None:
    router = FakeRouter(make_config(keys=_keys(1)))
    auth = [(b"authorization", b"Bearer secret-r")]
    message = json.dumps({"type": "call", "call": {"prompt": "hi", "model": "fast"}})
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=auth) as ws,
        ):
            await ws.send_message(message)
            while json.loads(await ws.get_message())["type"] != "result":
                pass
            await ws.send_message(message)
            error = json.loads(await ws.get_message())
            assert error["type"] == "error" and error["error"]["code"] == "rate_limited"
            assert 1 <= error["error"]["retry_after_s"] <= 60
            await ws.send_message(json.dumps({"type": "subscribe"}))
            assert json.loads(await ws.get_message())["type"] == "subscribed"
            assert len(router.calls) == 1


async def test_the_openai_sdk_waits_out_the_retry_after_and_gets_its_answer() -> None:
    # 30 a minute: a request back every 2 s, which the SDK waits (retry-after-ms) and retries
    router = FakeRouter(make_config(keys=_keys(30)))
    call = {"prompt": "drain", "model": "fast"}
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            for _ in range(31):  # use up the bucket
                refused_at = time.monotonic()
                r = await gw.client.post("/call", json=call, headers=bearer("secret-r"))
                if r.status_code == 429:
                    break
            assert r.status_code == 429
            # the refusal may come anywhere in the 2 s a request takes to come back (a
            # loaded machine drains slowly): wait for that one and take it, so the SDK
            # meets a bucket just emptied, whose next request is 2 s away
            wait = int(r.headers["retry-after-ms"]) / 1000
            await trio.sleep(wait)
            r = await gw.client.post("/call", json=call, headers=bearer("secret-r"))
            assert r.status_code == 202
            client = openai.OpenAI(
                base_url=f"{gw.base_url}/v1", api_key="secret-r", max_retries=2, timeout=10
            )
            try:
                raw = await trio.to_thread.run_sync(
                    lambda: client.chat.completions.with_raw_response.create(
                        model="fast",
                        messages=USER,  # type: ignore[arg-type]
                    )
                )
                # the bucket had two requests to win back since the refusal: one taken
                # above, one the SDK waited for
                waited = time.monotonic() - refused_at
                impatient = openai.OpenAI(
                    base_url=f"{gw.base_url}/v1", api_key="secret-r", max_retries=0, timeout=10
                )
                with impatient, pytest.raises(openai.RateLimitError) as info:
                    await trio.to_thread.run_sync(
                        lambda: impatient.chat.completions.create(
                            model="fast",
                            messages=USER,  # type: ignore[arg-type]
                        )
                    )
            finally:
                client.close()
            assert raw.parse().choices[0].message.content == "echo hi"
            assert raw.retries_taken >= 1 and waited >= wait + 2.0 - 0.01
            assert info.value.status_code == 429 and info.value.code == "rate_limited"
            assert "retry-after" in info.value.response.headers


async def test_the_prompt_text_of_calls_in_flight_is_bounded_per_team_and_in_all() -> None:
    """Each job in flight holds its prompt a few times over: 90 calls of 3.5 MB prompts to
    a silent model took the daemon to 1 GB, and one team's share of the job count was
    2,048 of them. The prompt text in flight is bounded to 32 request bodies of the
    largest size, a team half of it: past it, 503 ``overloaded`` saying so, with
    ``retry-after``, and nothing is routed; a team's calls that end give their room back."""
    keys = (
        KeySpec(key_env="KEY_A", handle="a", secret="secret-a"),
        KeySpec(key_env="KEY_B", handle="b", secret="secret-b"),
    )
    router = FakeRouter(make_config(keys=keys, max_body_bytes=64 * 1024))  # 2 MiB in all
    big = "x" * 60_000  # a team may hold 17 of them (1 MiB)

    async def call(key: str, model: str = "hang") -> httpx.Response:
        return await gw.client.post(
            "/call", json={"prompt": big, "model": model}, headers=bearer(key)
        )

    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            a = [await call("secret-a") for _ in range(18)]
            assert [r.status_code for r in a] == [202] * 17 + [503]
            refused = a[-1].json()["error"]
            assert refused["code"] == "overloaded"
            assert "this key's team has 1.0 MB of prompts in calls in flight" in refused["message"]
            assert a[-1].headers["retry-after"] == "1"
            b = [await call("secret-b") for _ in range(18)]  # the gateway's 2 MiB are full
            assert [r.status_code for r in b] == [202] * 17 + [503]
            said = b[-1].json()["error"]["message"]
            assert "the most prompt text the gateway holds at once (2.0 MB)" in said
            assert "1.0 MB" not in said  # (how much the other team holds is not told)
            small = await gw.client.post(
                "/call", json={"prompt": "hi", "model": "hang"}, headers=bearer("secret-b")
            )
            assert small.status_code == 202  # room is counted in characters, not calls
            routed = len(router.calls)
    assert routed == 17 + 17 + 1
