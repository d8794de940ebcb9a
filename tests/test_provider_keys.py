"""A provider's key as an operator configures it: in a credential header rather than its
``api_key_env`` (a proxy in front of the provider, Azure's ``api-key``), or a local
server's placeholder (``EMPTY``, ``ollama``), which is no secret. Through ``load_config``
and the router, against the fake provider server over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

import switchman
from switchman import Call, Params
from switchman.adapters._sse import scrub
from switchman.catalog import load_config
from switchman.catalog._credentials import provider_secrets
from switchman.catalog._spec import ProviderSpec
from switchman.sim import FakeProviderServer
from switchman.sim._server import serve_fake_provider

TOKEN = "proxy-token-7Hq2Lm9Xw4"


def _toml(tmp_path: Path, base_url: str, headers: str = "") -> Path:
    path = tmp_path / "switchman.toml"
    path.write_text(
        f"""
[providers.edge]
kind = "openai"
base_url = "{base_url}/openai/v1"
api_key_env = "EDGE_KEY"
{headers}

[[models]]
alias = "edge-model"
provider = "edge"
model_id = "gpt-edge"

[[models]]
alias = "edge-missing"
provider = "edge"
model_id = "not-found"
"""
    )
    return path


async def _ask(config: switchman.Config, env: dict[str, str], model: str) -> switchman.Result:
    call = Call(prompt="What is the capital of France?", model=model, params=Params(max_tokens=50))
    async with switchman.open_router(config, env=env) as router:
        return await router.call(call)


@pytest.mark.parametrize("header", ["Authorization", "api-key", "X-Proxy-Token"])
async def test_a_toml_provider_whose_headers_carry_its_key_is_enabled_and_sends_it(
    tmp_path: Path, header: str
) -> None:
    value = f"Bearer {TOKEN}" if header == "Authorization" else TOKEN
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider)
        path = _toml(tmp_path, server.base_url, f'headers = {{ "{header}" = "{value}" }}')
        config = load_config(path, env={})  # EDGE_KEY unset
        assert config.providers["edge"].disabled_reason is None
        result = await _ask(config, {}, "edge-model")
        (seen,) = server.requests()
        assert header.lower() in seen.headers  # the header went (its value masked here)
        assert TOKEN not in str(result.trace) and TOKEN not in (result.answer or "")
        if header == "Authorization":  # what OpenAI's wire (the fake) takes as the key
            assert result.status == "complete" and result.model == "edge-model"
        nursery.cancel_scope.cancel()


def test_a_toml_provider_with_neither_its_key_nor_a_credential_header_is_disabled(
    tmp_path: Path,
) -> None:
    path = _toml(tmp_path, "http://127.0.0.1:9", 'headers = { "X-Tenant" = "acme-tenant-01" }')
    reason = load_config(path, env={}).providers["edge"].disabled_reason
    assert reason == "missing API key: set EDGE_KEY"
    blank = _toml(tmp_path, "http://127.0.0.1:9", 'headers = { "Authorization" = " " }')
    assert load_config(blank, env={}).providers["edge"].disabled_reason is not None


@pytest.mark.parametrize("placeholder", ["EMPTY", "model", "ollama", "not"])
async def test_a_placeholder_key_does_not_garble_an_error(tmp_path: Path, placeholder: str) -> None:
    """A local server's dummy key is a word the provider's error uses: the error reads as
    the provider wrote it."""
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider)
        env = {"EDGE_KEY": placeholder}
        config = load_config(_toml(tmp_path, server.base_url), env=env)
        result = await _ask(config, env, "edge-missing")
        nursery.cancel_scope.cancel()
    assert result.status == "failed"
    message = result.trace.attempts[0].error or ""
    assert "The model `not-found` does not exist" in message
    assert "[REDACTED]" not in message


def test_a_real_key_is_still_removed_by_value_and_a_placeholder_is_not() -> None:
    key = "loc4l-k3y-abcdefgh"
    said = f"key {key} rejected; the model EMPTY is not here"
    assert scrub(said, key) == "key [REDACTED] rejected; the model EMPTY is not here"
    assert scrub(said, "EMPTY") == said
    spec = ProviderSpec(name="local", kind="openai")
    assert provider_secrets(spec, "EMPTY") == ()
    assert provider_secrets(spec, key) == (key,)
