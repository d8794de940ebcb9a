"""An upstream that reports garbage (usage of a billion tokens, a count of 400 digits, a
cost of 400 digits, a ``model`` echoing our key): the answer is still delivered, the bill is
held to the model's most with one warning, nothing overflows or crashes the provider, its
rate budget is not emptied for days, and the key is never shown. Real HTTP upstream."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
import trio

import switchman
from switchman.policy._estimate import most_cost
from tests.adapters.test_money_audit import (
    ENV,
    GROK,
    MINI,
    Upstream,
    chat_chunk,
    chat_stream,
    config,
    serve_scripted,
)

KEY = ENV["MONEY_KEY"]
FINE = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}


async def _two_calls(upstream: Upstream, cfg: Any, alias: str) -> list[switchman.Result]:
    with trio.fail_after(15):
        async with switchman.open_router(cfg, env=ENV) as router:
            results = [await router.call(switchman.Call(prompt="hi", model=alias)) for _ in "ab"]
            (provider,) = router.status().providers
            assert provider.restarts == 0  # (an overflow crashed its actor)
    return results


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 10**400, "completion_tokens": 5, "total_tokens": 10**400},
        {"prompt_tokens": 5, "completion_tokens": 10**9, "total_tokens": 10**9},
    ],
    ids=["400 digits", "a billion"],
)
async def test_a_garbage_count_is_held_and_leaves_the_provider_serving(
    usage: dict[str, Any], nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    replies = iter([chat_stream("Paris.", usage), chat_stream("Paris.", FINE)])
    upstream: Upstream = await nursery.start(
        serve_scripted, {"gpt-5.4-mini": lambda: next(replies)}
    )
    # a tokens-a-minute budget that holds any one request to the model (its window and
    # output, 256,000), which the garbage would have emptied for a day (10**9) or ever
    cfg = config(upstream, MINI)
    cfg = attrs.evolve(
        cfg,
        providers={n: attrs.evolve(p, tpm=600_000) for n, p in cfg.providers.items()},
    )
    first, second = await _two_calls(upstream, cfg, MINI.alias)
    most = most_cost(MINI, MINI.context_window, MINI.max_output_tokens)
    assert first.status == "complete" and first.cost_usd <= most + 1e-12
    said = [r.getMessage() for r in caplog.records if r.name == "switchman.attempts"]
    assert len(said) == 1 and "more than any request could produce" in said[0], said
    # the next call is served: the rate budget took what a request could use, not 10**9
    assert second.status == "complete", second.errors


@pytest.mark.parametrize("cost", [10**400, float("inf")], ids=["400 digits", "infinity"])
async def test_a_garbage_cost_never_overflows(cost: float, nursery: trio.Nursery) -> None:
    usage = {"prompt_tokens": 21, "completion_tokens": 8, "total_tokens": 29}

    def reply() -> bytes:
        # (json.dumps writes float("inf") as Infinity, which json.loads reads back)
        end = chat_chunk({}, "stop", usage={**usage, "cost_in_usd_ticks": cost})
        return (chat_chunk({"content": "Paris."}) + end + "data: [DONE]\n\n").encode()

    upstream: Upstream = await nursery.start(serve_scripted, {"grok-4.3": reply})
    first, second = await _two_calls(upstream, config(upstream, GROK), GROK.alias)
    assert first.status == "complete" and second.status == "complete", first.errors
    most = most_cost(GROK, GROK.context_window, GROK.max_output_tokens)
    assert 0 < first.cost_usd <= most + 1e-12


async def test_an_upstream_model_field_echoing_the_key_is_not_shown(
    nursery: trio.Nursery,
) -> None:
    def reply() -> bytes:
        body = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": f"echo-{KEY}-\ud800",
            "choices": [{"index": 0, "delta": {"content": "Paris."}, "finish_reason": "stop"}],
            "usage": FINE,
        }
        return f"data: {json.dumps(body)}\n\ndata: [DONE]\n\n".encode()

    upstream: Upstream = await nursery.start(serve_scripted, {"gpt-5.4-mini": reply})
    first, _ = await _two_calls(upstream, config(upstream, MINI), MINI.alias)
    assert first.status == "complete"
    shown = first.provider_model_id or ""
    assert KEY not in shown and shown.startswith("echo-")
    shown.encode("utf-8")  # (a lone surrogate could not be)
