"""A search model's sources, through the real path: the fake provider server speaking
Perplexity's Agent API (a ``search_results`` output item before the answer, as its example
response has it) → the real router → ``Result.citations``, embedded and streamed, and the
gateway's ``/v1`` for the official SDK (top-level ``citations``, as Perplexity's own chat
completions put them, and in the ``switchman`` object)."""

from __future__ import annotations

import functools

import trio

import switchman
from switchman import Call, Result
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from switchman.sim._wire_perplexity import SOURCES
from tests._httpfleet import ENV, http_fleet, model
from tests.gateway._fakes import running_gateway, sdk_ask

URLS = [url for _, url in SOURCES]
ALIAS = "perplexity/healthy"


async def test_a_search_models_sources_reach_the_result_and_the_sdk(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(server, [model("perplexity", "healthy"), model("openai", "healthy")])
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            whole = await router.call(Call(prompt="capital of France?", model=ALIAS))
            streamed: Result | None = None
            async with router.stream(Call(prompt="capital of France?", model=ALIAS)) as replies:
                async for item in replies:
                    if isinstance(item, Result):
                        streamed = item
            other = await router.call(Call(prompt="hi", model="openai/healthy"))
            completion = await trio.to_thread.run_sync(
                functools.partial(sdk_ask, gw.base_url, ALIAS, False)
            )
            chunks = await trio.to_thread.run_sync(
                functools.partial(sdk_ask, gw.base_url, ALIAS, True)
            )
    assert whole.status == "complete" and list(whole.citations) == URLS
    assert streamed is not None and list(streamed.citations) == URLS
    assert other.citations == ()  # a model that cites nothing
    assert completion.model_extra["citations"] == URLS
    assert completion.model_extra["switchman"]["citations"] == URLS
    last = chunks[-1].model_extra
    assert last["citations"] == last["switchman"]["citations"] == URLS


def test_a_source_whose_url_carries_what_redaction_hides_is_not_shown() -> None:
    from switchman.actors._dispatcher import _shown_sources

    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    urls = (
        f"https://example.com/doc?access={token}",
        URLS[0],
        "https://x.org/?to=ann@acme.io",
        URLS[1],
    )
    # left out in place: the answer's [2] and [4] still point to their sources
    assert _shown_sources(urls, True, ()) == ("", URLS[0], "", URLS[1])
    # redaction off: only the router's own keys are kept out
    key = "sk-test-SECRET123456789"
    assert _shown_sources((*urls, f"https://e.com/?k={key}"), False, (key,)) == (*urls, "")
