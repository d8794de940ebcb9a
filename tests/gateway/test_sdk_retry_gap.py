"""No tight loop through the official SDK: a call that retried a model, failing again,
answers 503 with ``retry-after: 1`` when a model could serve now, so the SDK's own retries
never send a model a third request within 1.5 s of its first. Without it, the SDK came
back after half a second: requests at 0, 0.76 and 1.25 s. The real router and gateway,
the simulator's model failing every answer."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import trio

from tests.gateway.test_e2e import PICKY_MODELS, real_gateway


def _ask(client: openai.OpenAI) -> None:
    client.chat.completions.create(
        model="t/broken", messages=[{"role": "user", "content": "Say hello"}]
    )


async def test_the_sdk_is_asked_to_wait_before_a_third_request_to_a_failing_model(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with real_gateway(tmp_path, models=PICKY_MODELS) as gw:
            once = openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key="x", max_retries=0)
            sdk = openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key="x", max_retries=2)
            try:
                with pytest.raises(openai.InternalServerError) as info:
                    await trio.to_thread.run_sync(lambda: _ask(once))
                assert info.value.code == "all_models_failed"
                assert info.value.response.headers["retry-after"] == "1"
                await trio.sleep(2.0)  # (the first call's attempts out of the window)
                with pytest.raises(openai.InternalServerError):
                    await trio.to_thread.run_sync(lambda: _ask(sdk))
            finally:
                once.close()
                sdk.close()
            jobs = (await gw.client.get("/jobs?limit=10")).json()["jobs"]
            starts: list[float] = []
            for job in jobs:
                result = (await gw.client.get(f"/result/{job['job_id']}")).json()["result"]
                starts += [
                    float(a["started_at"])  # (wall-clock seconds)
                    for a in result["trace"]["attempts"]
                    if a["alias"] == "t/broken"
                ]
    starts.sort()
    assert len(starts) >= 4
    # never a third request within 1.5 s of a first
    assert all(later - first >= 1.5 for first, later in zip(starts, starts[2:], strict=False))
