"""A call's names are bounded: ``options.fallback`` lists at most 32 models,
``capabilities`` at most 32, and a model, route or capability name is at most 256
characters. Each unknown name is looked up for what it may have meant (about 0.6 ms), on
the gateway's loop: a request of 10,000 unknown fallback names held every client of the
daemon for 6 s and answered 1.1 MB of hints; a 3 MB model name was echoed back twice.
Now each is one short 422 naming the bound, over HTTP, ``/v1`` and the websocket."""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import open_websocket_url

from switchman import Call, Options, ValidationError
from switchman._call import MAX_FALLBACK, MAX_NAME_CHARS
from switchman._errors import FieldError
from tests.gateway._fakes import FakeRouter, make_config, running_gateway

MANY = [f"nosuch-model-{i}" for i in range(10_000)]
LONG = "m" * 3_000_000


def test_a_call_refuses_long_lists_and_names_with_one_error_each() -> None:
    with pytest.raises(ValidationError) as info:
        Options(fallback=MANY)
    assert [(f.field, f.message) for f in info.value.fields] == [
        ("fallback", f"must be at most {MAX_FALLBACK} strings; got {len(MANY)}")
    ]
    with pytest.raises(ValidationError) as info:
        Call(prompt="hi", model=LONG, capabilities=MANY)
    assert [(f.field, f.message) for f in info.value.fields] == [
        ("model", f"must be at most {MAX_NAME_CHARS} characters; got {len(LONG)}"),
        ("capabilities", f"must be at most 32 strings; got {len(MANY)}"),
    ]
    Call(prompt="hi", model="m" * MAX_NAME_CHARS, options=Options(fallback=MANY[:MAX_FALLBACK]))


async def test_http_and_v1_answer_a_short_422_or_400_naming_the_bound() -> None:
    router = FakeRouter(make_config(max_body_bytes=4 * 1024 * 1024))
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            r = await gw.client.post(
                "/call", json={"prompt": "hi", "model": "fast", "options": {"fallback": MANY}}
            )
            assert r.status_code == 422
            assert len(r.content) < 1_000
            [detail] = r.json()["error"]["details"]
            assert detail["field"] == "options.fallback"
            r = await gw.client.post("/call", json={"prompt": "hi", "model": LONG})
            assert r.status_code == 422 and len(r.content) < 1_000
            r = await gw.client.post(
                "/v1/chat/completions",
                json={
                    "model": "fast",
                    "messages": [{"role": "user", "content": "hi"}],
                    "switchman": {"options": {"fallback": MANY}},
                },
            )
            assert r.status_code == 400 and len(r.content) < 1_000
            assert r.json()["error"]["param"] == "switchman.options.fallback"
            async with open_websocket_url(gw.ws_url) as ws:
                call = {"prompt": "hi", "model": "fast", "options": {"fallback": MANY}}
                await ws.send_message(json.dumps({"type": "call", "call": call}))
                reply = await ws.get_message()
                assert len(reply) < 1_000
                assert json.loads(reply)["type"] == "error"
    assert router.calls == []


def test_an_array_of_thousands_of_bad_items_is_told_in_a_few_errors() -> None:
    """Each bad item was one error, each checked against every other: 8,000 numbers as
    ``messages`` (24 KB) held the gateway's loop for 15 s and answered 926 KB. The first 16
    bad items of an array are named, then one error says how many more; a request is told
    at most 64 problems; an array holds at most 10,000 items."""
    from switchman._convert import MAX_ARRAY, call_from_dict

    with pytest.raises(ValidationError) as info:
        call_from_dict({"model": "fast", "messages": [1] * 8_000})
    fields = info.value.fields
    assert [f.field for f in fields[:16]] == [f"messages[{i}]" for i in range(16)]
    assert fields[16] == FieldError("messages[16]", "is wrong too, and 7983 more items after it")
    # (the items past those were checked again as placeholders: "got _Invalid", 47 times)
    assert len(fields) == 17
    for bad in ([5] * 20, [{"role": "user"}] * 20):
        with pytest.raises(ValidationError) as info:
            call_from_dict({"model": "fast", "messages": bad})
        told = [(f.field, f.message) for f in info.value.fields]
        assert told[16:] == [("messages[16]", "is wrong too, and 3 more items after it")], told
    with pytest.raises(ValidationError) as info:
        call_from_dict({"prompt": "hi", "capabilities": [1] * 20})
    assert len(info.value.fields) == 17
    with pytest.raises(ValidationError) as info:
        call_from_dict(
            {"prompt": "hi", "capabilities": [1] * 5_000, "options": {"fallback": [1] * 5_000}}
        )
    assert len(info.value.fields) == 2 * 17
    with pytest.raises(ValidationError) as info:
        call_from_dict({"model": "fast", "messages": [1] * (MAX_ARRAY + 1)})
    assert [(f.field, f.message) for f in info.value.fields] == [
        ("messages", f"must have at most {MAX_ARRAY:,} items; got {MAX_ARRAY + 1:,}")
    ]


async def test_the_gateway_answers_an_array_of_bad_items_shortly() -> None:
    router = FakeRouter(make_config(max_body_bytes=4 * 1024 * 1024))
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call", json={"model": "fast", "messages": [1] * 8_000})
            assert r.status_code == 422 and len(r.content) < 10_000
            # the OpenAI-compatible route reads its messages itself: bounded alike
            v1 = "/v1/chat/completions"
            r = await gw.client.post(v1, json={"model": "fast", "messages": [1] * 8_000})
            assert r.status_code == 400 and len(r.content) < 10_000
            assert r.json()["error"]["param"] == "messages[0]"
            r = await gw.client.post(v1, json={"model": "fast", "messages": [1] * 10_001})
            assert r.status_code == 400
            assert "must have at most 10,000 items" in r.json()["error"]["message"]
            assert (await gw.client.get("/health")).status_code == 200
