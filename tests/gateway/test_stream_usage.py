"""A stream asked with ``stream_options.include_usage``: its last chunk (usage, no choices)
still names the answerer in its ``switchman`` object, as the last chunk of any stream does."""

from __future__ import annotations

import functools
from typing import Any

import openai
import trio

from tests.gateway._fakes import FakeRouter, make_config, running_gateway


def _stream(base_url: str, include_usage: bool) -> list[Any]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        chunks = client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": include_usage},
        )
        return list(chunks)


async def test_the_last_chunk_names_the_answerer_with_or_without_usage() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            for include_usage in (True, False):
                chunks = await trio.to_thread.run_sync(
                    functools.partial(_stream, gw.base_url, include_usage)
                )
                last = chunks[-1]
                extra = last.model_extra or {}
                assert extra["switchman"]["model"] == "fast", include_usage
                assert last.usage is not None  # (without the option, on the finish chunk)
                if include_usage:
                    assert last.choices == []
                    # the chunk before it ends the answer, and names it too
                    assert chunks[-2].choices[0].finish_reason == "stop"
                    assert (chunks[-2].model_extra or {})["switchman"]["model"] == "fast"
                else:
                    assert last.choices[0].finish_reason == "stop"
