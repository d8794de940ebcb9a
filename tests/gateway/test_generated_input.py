"""Input a fuzzer found the gateway answering with a 500 or a 1011, each now a clear
4xx naming what is wrong: integers too large for a float, digits of other scripts in a
query, a lone surrogate (a JSON ``"\\ud800"``) in a websocket's job id or key, and /v1
errors named as the request spelled them. The real gateway on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.gateway._fakes import KEYS, FakeRouter, make_config, running_gateway
from tests.gateway.test_ws import _recv

HUGE = 10**400
USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "field", ["seed", "max_tokens", "max_completion_tokens", "temperature", "top_p"]
)
async def test_an_integer_too_large_for_a_float_is_a_400_naming_it_on_v1(field: str) -> None:
    body = json.dumps({"model": "fast", "messages": USER}).rstrip("}") + f', "{field}": {HUGE}}}'
    with trio.fail_after(10):
        async with running_gateway(FakeRouter(make_config())) as gw:
            r = await gw.client.post(
                "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
            )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == field
    assert "must be between" in error["message"] and "401 digits" in error["message"]


async def test_integers_too_large_for_a_float_are_named_on_call() -> None:
    body = {
        "prompt": "hi",
        "params": {"seed": HUGE, "temperature": HUGE},
        "options": {"timeouts": {"hard_ms": HUGE}},
    }
    with trio.fail_after(10):
        async with running_gateway(FakeRouter(make_config())) as gw:
            r = await gw.client.post(
                "/call", content=json.dumps(body), headers={"content-type": "application/json"}
            )
    assert r.status_code == 422, r.text
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert fields == {"params.seed", "params.temperature", "options.timeouts.hard_ms"}


@pytest.mark.parametrize(
    "query",
    [
        "limit=%C2%B2",  # ² (isdigit, but not int's)
        "limit=%E2%91%A0",  # ①
        "limit=" + "9" * 5000,
        "limit=%D9%A3",  # Arabic-Indic 3
    ],
)
async def test_a_limit_in_other_digits_is_a_422(query: str) -> None:
    with trio.fail_after(10):
        async with running_gateway(FakeRouter(make_config())) as gw:
            r = await gw.client.get(f"/jobs?{query}")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "limit"


@pytest.mark.parametrize("wait", ["1_0", "%D9%A3", "%EF%BC%91", "%201", "nan", "inf"])
async def test_a_wait_that_is_not_a_plain_number_is_a_422(wait: str) -> None:
    with trio.fail_after(10):
        async with running_gateway(FakeRouter(make_config())) as gw:
            r = await gw.client.post(f"/call?wait={wait}", json={"prompt": "hi"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "wait"


async def test_a_lone_surrogate_in_a_websocket_job_id_is_an_error_not_a_closed_socket() -> None:
    with trio.fail_after(10):
        async with (
            running_gateway(FakeRouter(make_config())) as gw,
            open_websocket_url(gw.ws_url) as ws,
        ):
            await ws.send_message('{"type": "subscribe", "job_id": "\\ud800"}')
            error = await _recv(ws)
            assert error["type"] == "error"
            assert error["error"]["details"][0]["field"] == "job_id"
            assert "lone surrogate" in error["error"]["message"]
            # the socket lives on
            await ws.send_message(json.dumps({"type": "subscribe"}))
            assert await _recv(ws) == {"type": "subscribed", "job_id": None}


async def test_a_lone_surrogate_as_a_key_is_refused_like_any_wrong_key() -> None:
    page = [("origin", "http://localhost:5173")]
    with trio.fail_after(10):
        async with (
            running_gateway(FakeRouter(make_config(keys=KEYS))) as gw,
            open_websocket_url(gw.ws_url, extra_headers=page) as ws,
        ):
            await ws.send_message('{"type": "auth", "key": "\\ud800"}')
            error = await _recv(ws)
            assert error["error"]["code"] == "unauthorized"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1008  # not 1011, an error in the server
            # trio-websocket leaves the TCP stream open after a close the server started
            await ws._stream.aclose()


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": True}, "n"),
        ({"user": "me\ud800"}, "user"),
        # the limit not used is still checked
        ({"max_tokens": -5, "max_completion_tokens": 5}, "max_tokens"),
        # an empty assistant turn is dropped: the bad message keeps its own index
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": ""},
                    {"role": "user", "content": "b\ud800"},
                ]
            },
            "messages[2].content",
        ),
    ],
)
async def test_v1_names_a_bad_field_as_the_request_spelled_it(
    extra: dict[str, Any], param: str
) -> None:
    body = {"model": "fast", "messages": USER, **extra}
    with trio.fail_after(10):
        async with running_gateway(FakeRouter(make_config())) as gw:
            r = await gw.client.post(
                "/v1/chat/completions",
                content=json.dumps(body),  # (a lone surrogate as its JSON escape)
                headers={"content-type": "application/json"},
            )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
