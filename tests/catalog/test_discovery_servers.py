"""Ollama discovery of every Ollama server the configuration names, through real HTTP:
a second box under a name of its own joins with its pulled models as ``<name>/<model>``,
asked with its key and headers, and the ``local`` route runs through every server's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

import switchman
from switchman.catalog import config_from_dict
from switchman.catalog._discovery import (
    DEFAULT_CONTEXT_WINDOW,
    discover_local_models,
    with_discovered_models,
)
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider

KEY = "gpu-box-key-0123456789"


@pytest.fixture
async def boxes(nursery: trio.Nursery) -> AsyncIterator[tuple[FakeProviderServer, ...]]:
    first: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    second: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    yield first, second


async def test_a_second_ollama_box_joins_under_its_own_name_and_the_local_route(
    boxes: tuple[FakeProviderServer, FakeProviderServer],
) -> None:
    home, gpu = boxes
    config = config_from_dict(
        {
            "providers": {
                "ollama": {"base_url": home.base_url},
                "gpu": {
                    "kind": "ollama",
                    "base_url": gpu.base_url,
                    "api_key_env": "GPU_KEY",
                    "headers": {"X-Team": "search"},
                },
            }
        },
        env={"GPU_KEY": KEY},
    )
    with trio.fail_after(2):
        found = await discover_local_models(config, env={"GPU_KEY": KEY})
    box = found.models["gpu/healthy"]
    assert (box.provider, box.model_id, box.trust_tier) == ("gpu", "healthy:latest", "untrusted")
    assert box.context_window == DEFAULT_CONTEXT_WINDOW and box.cost(1000, 1000) == 0.0
    chain = found.routes["local"].chain
    at_home = [a for a in chain if a.startswith("local/")]
    on_gpu = [a for a in chain if a.startswith("gpu/")]
    assert at_home and on_gpu and list(chain) == at_home + on_gpu  # the ollama provider's first
    # each server asked once, at once; the box with its key and headers
    (tags,) = gpu.requests()
    assert (tags.method, tags.path) == ("GET", "/api/tags")
    assert tags.headers["authorization"] == "Bearer ***" and tags.headers["x-team"] == "search"
    assert "authorization" not in home.requests()[0].headers
    async with switchman.open_router(found, env={"GPU_KEY": KEY}) as router:
        with trio.fail_after(10):
            result = await router.call(switchman.Call(prompt="hi", model="gpu/healthy"))
            assert (result.status, result.model) == ("complete", "gpu/healthy"), result.errors
            # Ollama's own name for it reaches the first server's, which serves it too
            first = await router.call(switchman.Call(prompt="hi", model="local"))
            assert (first.status, first.model) == ("complete", "local/healthy"), first.errors
    assert [r.path for r in gpu.requests()][-1] == "/api/chat"
    assert [r.path for r in home.requests()][-1] == "/api/chat"


async def test_a_box_that_does_not_answer_is_left_as_it_was_and_told(
    boxes: tuple[FakeProviderServer, FakeProviderServer], caplog: pytest.LogCaptureFixture
) -> None:
    home, _ = boxes
    config = config_from_dict(
        {
            "providers": {
                "ollama": {"base_url": home.base_url},
                "gpu": {"kind": "ollama", "base_url": "http://127.0.0.1:9"},
                "off": {"kind": "ollama", "base_url": "http://127.0.0.1:9", "enabled": False},
            }
        },
        env={},
    )
    with trio.fail_after(2):
        found = await discover_local_models(config, timeout_s=0.3)
    assert "local/healthy" in found.models
    assert not [a for a, m in found.models.items() if m.provider in ("gpu", "off")]
    told = [r.getMessage() for r in caplog.records if r.name == "switchman.discovery"]
    assert told == [
        "provider gpu serves no model: its Ollama server at http://127.0.0.1:9 listed none "
        'within 0.3 s of start (GET /api/tags); add [[models]] with provider = "gpu" to '
        "serve it anyway"
    ]


def test_what_the_file_and_the_catalog_know_of_a_boxs_model() -> None:
    """A pulled model the catalog knows for Ollama takes its window; one the file wrote
    for the box under the same alias is kept as written and routed through; the catalog's
    own Ollama models stay as they were (they are the ``ollama`` provider's)."""
    config = config_from_dict(
        {
            "providers": {"gpu": {"kind": "ollama", "base_url": "http://127.0.0.1:9"}},
            "models": [
                {
                    "alias": "gpu/mine",
                    "provider": "gpu",
                    "model_id": "mine:70b",
                    "context_window": 65536,
                }
            ],
        },
        env={},
    )
    found = with_discovered_models(config, {"gpu": ["llama3.2:latest", "mine:latest", "x:1b"]})
    llama = found.models["gpu/llama3.2"]
    assert (llama.provider, llama.model_id, llama.context_window) == (
        "gpu",
        "llama3.2:latest",
        config.models["ollama/llama3.2"].context_window,
    )
    assert found.models["gpu/mine"] == config.models["gpu/mine"]
    assert found.models["gpu/x:1b"].context_window == DEFAULT_CONTEXT_WINDOW
    assert found.routes["local"].chain == ("gpu/llama3.2", "gpu/mine", "gpu/x:1b")
    assert found.models["ollama/llama3.2"] == config.models["ollama/llama3.2"]
