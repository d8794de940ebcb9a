"""A long answer is redacted in a worker thread, a short one on the router's loop.

1 MB of dense phone numbers took 2 s to redact, every other call stalled meanwhile.
The router below calls a fake OpenAI-style provider (``httpx.MockTransport``) with the
real clock: waiting for a thread is no time an autojump clock may skip.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest
import trio

import switchman
from switchman import Call, Params
from switchman.actors import _dispatcher
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouterConfig
from switchman.policy._redaction import REDACT_IN_THREAD_ABOVE, redact

KEY = "fake-provider-key-0123456789"


def _provider(answer: str) -> httpx.AsyncClient:
    """An OpenAI-style provider streaming ``answer`` in 4 KB pieces."""

    def reply(request: httpx.Request) -> httpx.Response:
        head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        events = [
            {**head, "choices": [{"index": 0, "delta": {"content": answer[i : i + 4096]}}]}
            for i in range(0, len(answer), 4096)
        ]
        events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        events.append(
            {**head, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}
        )
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse.encode()
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(reply))


CONFIG = Config(
    providers={
        "fake": ProviderSpec(
            name="fake", kind="openai", base_url="http://fake.test/v1", api_key_env="FAKE_KEY"
        )
    },
    models={
        "fake/m": ModelSpec(
            alias="fake/m",
            provider="fake",
            model_id="m",
            context_window=1_000_000,
            max_output_tokens=500_000,
        )
    },
    router=RouterConfig(seed=1, exploration=0.0),
)


@pytest.mark.parametrize("size", [REDACT_IN_THREAD_ABOVE // 2, REDACT_IN_THREAD_ABOVE * 4])
async def test_only_a_long_answer_is_redacted_off_the_loop(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "call +1 415 555 2671 or mail ops@example.com now.\n"
    answer = (line * (size // len(line) + 1))[:size]
    threads: list[int] = []
    real = _dispatcher.redact

    def spy(text: str, secrets: tuple[str, ...] = ()) -> switchman.policy.Redacted:
        threads.append(threading.get_ident())
        return real(text, secrets)

    monkeypatch.setattr(_dispatcher, "redact", spy)
    with trio.fail_after(30):
        async with switchman.open_router(
            CONFIG, clients={"fake": _provider(answer)}, env={"FAKE_KEY": KEY}
        ) as router:
            call = Call(prompt="numbers please", model="fake/m", params=Params(max_tokens=50_000))
            result = await router.call(call)
    assert result.status == "complete"
    assert result.answer == redact(answer).text
    assert "415 555" not in result.answer
    on_loop = threads == [threading.get_ident()]
    assert len(threads) == 1 and on_loop == (size <= REDACT_IN_THREAD_ABOVE)
