"""An upstream whose JSON carries an escaped lone surrogate (``"\\ud800"``, which
``json.loads`` keeps and no UTF-8 encoder accepts): the answer comes through with U+FFFD in
its place, embedded, stored and through the gateway, where it used to answer a 500 (and cut
a stream mid-answer) when the reply was encoded."""

from __future__ import annotations

import pytest
import trio

import switchman
from tests.adapters.test_money_audit import ENV, MINI, Upstream, chat_chunk, config, serve_scripted
from tests.gateway._fakes import running_gateway

USAGE = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
SHOWN = "ab\ufffdcd"


def _stream() -> bytes:
    # (json.dumps writes the lone surrogate as the escape \ud800, as such an upstream does)
    return "".join(
        (
            chat_chunk({"role": "assistant", "content": "ab\ud800cd"}),
            chat_chunk({}, "stop", usage=dict(USAGE)),
            "data: [DONE]\n\n",
        )
    ).encode()


@pytest.mark.parametrize("streamed", [False, True])
async def test_embedded_the_answer_is_valid_text(streamed: bool, nursery: trio.Nursery) -> None:
    upstream: Upstream = await nursery.start(serve_scripted, {"gpt-5.4-mini": _stream})
    call = switchman.Call(prompt="hi", model=MINI.alias)
    with trio.fail_after(10):
        async with switchman.open_router(config(upstream, MINI), env=ENV) as router:
            if streamed:
                async with router.stream(call) as items:
                    got = [item async for item in items]
                result = got[-1]
                assert isinstance(result, switchman.Result)
                assert "".join(d.text for d in got[:-1] if isinstance(d, switchman.Delta)) == SHOWN
            else:
                result = await router.call(call)
    assert (result.status, result.answer) == ("complete", SHOWN)
    result.answer.encode("utf-8")  # (it raised)


async def test_through_the_gateway_every_route_answers(nursery: trio.Nursery) -> None:
    upstream: Upstream = await nursery.start(serve_scripted, {"gpt-5.4-mini": _stream})
    body = {"model": MINI.alias, "messages": [{"role": "user", "content": "hi"}]}
    with trio.fail_after(15):
        async with (
            switchman.open_router(config(upstream, MINI), env=ENV) as router,
            running_gateway(router) as gw,
        ):
            job = await gw.client.post("/call?wait=5", json={"prompt": "hi", "model": MINI.alias})
            assert job.status_code == 200
            assert job.json()["result"]["answer"] == SHOWN
            stored = await gw.client.get(f"/result/{job.json()['job_id']}")
            assert stored.json()["result"]["answer"] == SHOWN
            whole = await gw.client.post("/v1/chat/completions", json=body)
            assert whole.status_code == 200
            assert whole.json()["choices"][0]["message"]["content"] == SHOWN
            streamed = await gw.client.post("/v1/chat/completions", json={**body, "stream": True})
            assert streamed.status_code == 200
            assert streamed.text.rstrip().endswith("data: [DONE]")
            assert SHOWN in streamed.text
