"""A model the caller named is tried first even when its output limit is below the
verbosity's room and a fallback has it: adding a fallback had made the router skip the
named model (``verbosity standard needs room for 1024 output tokens ... (others have it)``),
and on ``/v1``, whose default verbosity is ``full``, more often. Through the real router on
the simulator and the gateway with the official SDK."""

from __future__ import annotations

import openai
import trio

import switchman
from switchman import Call, Options
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouterConfig, RouteSpec, SimProfile
from tests.gateway._fakes import running_gateway


def _model(alias: str, max_output: int) -> ModelSpec:
    return ModelSpec(
        alias=alias,
        provider="sim",
        model_id=alias,
        max_output_tokens=max_output,
        input_per_mtok=1.0,
        output_per_mtok=1.0,
        sim=SimProfile(latency_ms=1, ttft_ms=1),
    )


CONFIG = Config(
    providers={"sim": ProviderSpec(name="sim", kind="sim")},
    models={"short": _model("short", 800), "roomy": _model("roomy", 16_000)},
    routes={"shortfirst": RouteSpec(name="shortfirst", chain=("short", "roomy"))},
    router=RouterConfig(exploration=0.0),
    simulated=True,
)


async def test_a_named_model_short_of_the_verbosity_s_room_is_tried_first() -> None:
    async with switchman.open_router(CONFIG) as router:
        for model, fallback in (("short", ("roomy",)), ("shortfirst", ()), ("short", ("auto",))):
            result = await router.call(
                Call(prompt="hi", model=model, options=Options(fallback=fallback))
            )
            assert result.model == "short", (model, fallback, result.trace.eligibility)
            assert result.trace.attempts[0].alias == "short"
        # brought in by ``auto`` alone, it is still left out for the roomy one, a fallback
        # of ``auto`` naming it included (``auto`` ranks every model: fallbacks add none)
        for fallback in ((), ("short",)):
            result = await router.call(
                Call(prompt="hi", model="auto", options=Options(fallback=fallback))
            )
            assert result.model == "roomy"
            assert "(others have it)" in str(result.trace.eligibility.excluded)


async def test_the_sdk_naming_a_short_model_with_a_fallback_gets_that_model() -> None:
    with trio.fail_after(30):
        async with (
            switchman.open_router(CONFIG) as router,
            running_gateway(router) as gw,
        ):
            client = openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key="x", max_retries=0)
            try:
                reply = await trio.to_thread.run_sync(
                    lambda: client.chat.completions.create(
                        model="short",
                        messages=[{"role": "user", "content": "hi"}],
                        extra_body={"switchman": {"options": {"fallback": ["roomy"]}}},
                    )
                )
            finally:
                client.close()
    assert reply.model == "short"
