"""A model that answers with no text, through the real path: the official SDK → the
gateway → the real router → an upstream over real HTTP. The call fails (no answer is not
an answer), and the SDK is told not to repeat it: each try would be billed, and the same
request gives the same nothing."""

from __future__ import annotations

import functools
import time
from typing import Any

import openai
import pytest
import trio

import switchman
from tests.gateway._fakes import running_gateway
from tests.test_finish_reasons import KEY, upstream


def _ask(base_url: str, stream: bool) -> Any:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=2) as client:
        messages: Any = [{"role": "user", "content": "Capital of France?"}]
        made = client.chat.completions.create(model="remote", messages=messages, stream=stream)
        return list(made) if stream else made


@pytest.mark.parametrize("stream", [False, True])
async def test_no_text_from_the_only_model_is_one_failed_call_the_sdk_does_not_repeat(
    stream: bool,
) -> None:
    started = time.time()
    with trio.fail_after(30):
        async with (
            upstream("stop", text="") as config,
            switchman.open_router(config, env={"FINISH_TEST_KEY": KEY}) as router,
            running_gateway(router) as gw,
        ):
            with pytest.raises(openai.APIStatusError) as info:
                await trio.to_thread.run_sync(functools.partial(_ask, gw.base_url, stream))
            listed = (await gw.client.get("/jobs")).json()["jobs"]
    jobs = [j for j in listed if j["submitted_at"] >= started]
    assert info.value.status_code == 503
    assert info.value.response.headers["x-should-retry"] == "false"
    assert "no answer: it ended (finish reason 'stop') with no text" in info.value.message
    assert len(jobs) == 1  # asked once: the SDK did not send it again
