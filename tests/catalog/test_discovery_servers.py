"""Ollama discovery of every Ollama server the configuration names, through real HTTP:
a second box under a name of its own joins with its pulled models as ``<name>/<model>``,
asked with its key and headers, and the ``local`` route runs through every server's."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import h11
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
from tests._rawhttp import serve_answers

KEY = "gpu-box-key-0123456789"
TOKEN = "proxy-token-SECRET-4455"


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
    boxes: tuple[FakeProviderServer, FakeProviderServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each server the file configures that lists nothing is told, with why (nothing
    answered; a refusal is told by its status): the ``ollama`` provider too, its catalog
    models kept, failing until it serves them."""
    home, _ = boxes
    config = config_from_dict(
        {
            "providers": {
                "ollama": {"base_url": "http://127.0.0.1:9"},
                "gpu": {"kind": "ollama", "base_url": "http://127.0.0.1:9"},
                "home": {"kind": "ollama", "base_url": home.base_url},
                "off": {"kind": "ollama", "base_url": "http://127.0.0.1:9", "enabled": False},
            }
        },
        env={},
    )
    with trio.fail_after(2):
        found = await discover_local_models(config, timeout_s=0.3)
    assert "home/healthy" in found.models and "local/healthy" not in found.models
    assert found.routes["local"].chain[0] == "home/healthy"
    assert not [a for a, m in found.models.items() if m.provider in ("gpu", "off")]
    assert found.models["ollama/llama3.2"].enabled  # (the server may come up)
    told = sorted(r.getMessage() for r in caplog.records if r.name == "switchman.discovery")
    assert told == [
        "provider gpu serves no model: its Ollama server at http://127.0.0.1:9 listed none at "
        "start (GET /api/tags: no answer (ConnectError)); add [[models]] with "
        'provider = "gpu" to serve it anyway',
        "provider ollama lists no model at start (its Ollama server at http://127.0.0.1:9: no "
        "answer (ConnectError)): its models are kept, and fail until it serves them",
    ]


async def test_a_local_route_the_file_writes_is_kept(
    boxes: tuple[FakeProviderServer, FakeProviderServer],
) -> None:
    """``[routes.local]`` in the file was replaced by the servers' models without a word;
    the catalog's own ``local`` route still is."""
    home, gpu = boxes
    tables = {
        "providers": {
            "ollama": {"base_url": home.base_url},
            "gpu": {"kind": "ollama", "base_url": gpu.base_url},
            "openai": {},
        }
    }
    for chain in (
        ["openai/gpt-5.4-mini"],
        ["ollama/llama3.2"],  # the catalog's models, one of them or in another order
        ["ollama/qwen3:8b", "ollama/llama3.2"],
    ):
        written = config_from_dict(
            {**tables, "routes": {"local": {"chain": chain}}},
            env={"OPENAI_API_KEY": "sk-test-0123456789"},
        )
        with trio.fail_after(2):
            found = await discover_local_models(written)
        assert found.routes["local"] == written.routes["local"], chain
        assert "gpu/healthy" in found.models and "local/healthy" in found.models
    catalogs = config_from_dict(tables, env={"OPENAI_API_KEY": "sk-test-0123456789"})
    with trio.fail_after(2):
        found = await discover_local_models(catalogs)
    assert found.routes["local"].chain[0] == "local/healthy"
    assert "gpu/healthy" in found.routes["local"].chain


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


def test_a_box_whose_names_are_another_s_is_told(caplog: pytest.LogCaptureFixture) -> None:
    """A box named ``local`` beside the ``ollama`` provider: its models' names
    (``local/<model>``) are the ``ollama`` provider's; it served nothing, without a word."""
    config = config_from_dict(
        {
            "providers": {
                "ollama": {"base_url": "http://127.0.0.1:9"},
                "local": {"kind": "ollama", "base_url": "http://127.0.0.1:9"},
            }
        },
        env={},
    )
    found = with_discovered_models(config, {"ollama": ["llama3.2"], "local": ["llama3.2"]})
    assert found.models["local/llama3.2"].provider == "ollama"
    told = [r.getMessage() for r in caplog.records if r.name == "switchman.discovery"]
    assert told == [
        "provider local's model llama3.2 goes without a name: local/llama3.2 is the ollama "
        "provider's; give the provider another name"
    ]


async def test_the_key_a_box_echoes_is_hidden_from_the_http_libraries_debug_lines(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Discovery runs before the router hides its secrets from httpx's and httpcore's log
    records: a server (or a proxy) echoing the key and headers it was sent put them in an
    application's DEBUG log."""

    def answer(head: h11.Request, _: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        sent = {k.decode().lower(): v.decode() for k, v in head.headers}
        echoed = [("x-echo-auth", sent.get("authorization", "")), ("x-echo-token", TOKEN)]
        body = json.dumps({"models": [{"name": "mine:latest"}]}).encode()
        return 200, [("content-type", "application/json"), *echoed], body

    base_url = await nursery.start(serve_answers, answer)
    config = config_from_dict(
        {
            "providers": {
                "gpu": {
                    "kind": "ollama",
                    "base_url": base_url,
                    "api_key_env": "GPU_KEY",
                    "headers": {"X-Proxy-Token": TOKEN},
                }
            }
        },
        env={"GPU_KEY": KEY},
    )
    caplog.set_level(logging.DEBUG, logger="httpcore")
    with trio.fail_after(5):
        found = await discover_local_models(config, env={"GPU_KEY": KEY})
    assert "gpu/mine" in found.models
    assert "x-echo-auth" in caplog.text and "[REDACTED]" in caplog.text
    assert KEY not in caplog.text and TOKEN not in caplog.text


async def test_a_pulled_model_whose_name_no_configuration_could_give_is_left_out_and_told(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """A name with a line break became an alias whose answers were 500s (the
    ``x-switchman-model`` header); one past a call's name limit, a model no call names."""
    names = ["mine:latest", "bad\nname:latest", "rtl\u202e:latest", "x" * 300]

    def answer(head: h11.Request, _: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        body = json.dumps({"models": [{"name": n} for n in names]}).encode()
        return 200, [("content-type", "application/json")], body

    base_url = await nursery.start(serve_answers, answer)
    config = config_from_dict({"providers": {"gpu": {"kind": "ollama", "base_url": base_url}}})
    with trio.fail_after(5):
        found = await discover_local_models(config, env={})
    assert [a for a in found.models if a.startswith("gpu/")] == ["gpu/mine"]
    told = [r.getMessage() for r in caplog.records if "is left out" in r.getMessage()]
    assert len(told) == 3 and "U+000A" in told[0] and "U+202E" in told[1], told
    assert "longer than 252 characters" in told[2]
