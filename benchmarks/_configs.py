"""Configurations for the systems under test, pointed at the fake upstream.

switchman gets a TOML file loaded with ``switchman.load_config`` (what users
run: the built-in catalog plus one OpenAI-compatible provider ``fake``);
LiteLLM gets the equivalent ``model_list`` (YAML for its proxy, a list of
dicts for its ``Router``). Model names on the upstream select its behaviour
(``healthy``, ``down``, ``reset``...; see ``switchman.sim``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from switchman import Config, load_config

#: the environment variable holding the (fake) upstream API key
KEY_ENV: Final = "SWITCHMAN_BENCH_UPSTREAM_KEY"
KEY_VALUE: Final = "sk-bench-upstream"
#: LiteLLM's proxy refuses to start without a master key
LITELLM_MASTER_KEY: Final = "sk-bench-0123456789abcdef0123456789abcdef"
#: the alias every simple scenario calls
ALIAS: Final = "bench"
#: switchman's gateway runs with a key, as LiteLLM's proxy runs with its master key: both
#: check the caller's key on every request (an admin key: no model or rate limits)
GATEWAY_KEY_ENV: Final = "SWITCHMAN_BENCH_GATEWAY_KEY"
GATEWAY_KEY: Final = "sk-bench-gateway-0123456789abcdef0123456789abcdef"
#: the environment a switchman gateway process gets: the upstream's key and its own
GATEWAY_ENV: Final = {KEY_ENV: KEY_VALUE, GATEWAY_KEY_ENV: GATEWAY_KEY}


def gateway_auth() -> dict[str, str]:
    """What a client of switchman's gateway sends (see ``GATEWAY_KEY``)."""
    return {"authorization": f"Bearer {GATEWAY_KEY}"}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def switchman_toml(
    upstream_url: str,
    models: Mapping[str, str],
    *,
    routes: Mapping[str, Sequence[str]] | None = None,
    provider_of: Mapping[str, str] | None = None,
    max_concurrency: int = 1024,
    capacity: int = 4096,
    gateway_key: bool = False,
    job_retention: int | None = None,
) -> str:
    """TOML: OpenAI-compatible providers at ``upstream_url`` (``/v1`` appended), one
    model per ``alias -> upstream model name``, and optional ``routes``. Models are
    on provider ``fake`` unless ``provider_of`` names another for their alias (every
    provider points at the same upstream). ``gateway_key``: one admin ``[[keys]]``
    entry whose secret is ``GATEWAY_KEY`` (from ``GATEWAY_KEY_ENV``); ``job_retention``:
    the gateway's ``[server] job_retention_count``."""
    provider_of = provider_of or {}
    providers = sorted({provider_of.get(alias, "fake") for alias in models} or {"fake"})
    lines = [
        "[server]",
        "grace_s = 2.0",
        *([f"job_retention_count = {job_retention}"] if job_retention is not None else []),
        "",
        "[router]",
        f"capacity = {capacity}",
        "seed = 1",
        "",
    ]
    for name in providers:
        lines += [
            f"[providers.{name}]",
            'kind = "openai"',
            f"base_url = {_toml_value(upstream_url + '/v1')}",
            f"api_key_env = {_toml_value(KEY_ENV)}",
            f"max_concurrency = {max_concurrency}",
            "",
        ]
    for alias, model_id in models.items():
        lines += [
            "[[models]]",
            f"alias = {_toml_value(alias)}",
            f"provider = {_toml_value(provider_of.get(alias, 'fake'))}",
            f"model_id = {_toml_value(model_id)}",
            "input_per_mtok = 1.0",
            "output_per_mtok = 2.0",
            "",
        ]
    for name, chain in (routes or {}).items():
        lines += [f"[routes.{name}]", f"chain = {_toml_value(list(chain))}", ""]
    if gateway_key:
        lines += [
            "[[keys]]",
            f"key_env = {_toml_value(GATEWAY_KEY_ENV)}",
            'handle = "bench"',
            "admin = true",
            "",
        ]
    return "\n".join(lines)


def write_switchman_config(
    workdir: Path,
    upstream_url: str,
    models: Mapping[str, str],
    *,
    routes: Mapping[str, Sequence[str]] | None = None,
    provider_of: Mapping[str, str] | None = None,
    name: str = "switchman.toml",
    gateway_key: bool = False,
    job_retention: int | None = None,
) -> tuple[Path, Config]:
    """Write the TOML to ``workdir/<name>`` and load it as users would."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / name
    toml = switchman_toml(
        upstream_url,
        models,
        routes=routes,
        provider_of=provider_of,
        gateway_key=gateway_key,
        job_retention=job_retention,
    )
    path.write_text(toml, "utf-8")
    return path, load_config(path, env=GATEWAY_ENV)


def litellm_model_list(upstream_url: str, models: Mapping[str, str]) -> list[dict[str, Any]]:
    """LiteLLM's ``model_list`` for the same aliases (OpenAI-compatible provider)."""
    return [
        {
            "model_name": alias,
            "litellm_params": {
                "model": f"openai/{model_id}",
                "api_base": upstream_url + "/v1",
                "api_key": KEY_VALUE,
            },
        }
        for alias, model_id in models.items()
    ]


def litellm_proxy_yaml(
    upstream_url: str,
    models: Mapping[str, str],
    *,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The proxy's config file. YAML is a superset of JSON, so JSON it is."""
    data: dict[str, Any] = {
        "model_list": litellm_model_list(upstream_url, models),
        "litellm_settings": {"telemetry": False},
        "general_settings": {"master_key": LITELLM_MASTER_KEY},
    }
    if fallbacks:
        data["router_settings"] = {"fallbacks": [{k: list(v)} for k, v in fallbacks.items()]}
    return json.dumps(data, indent=2)


def chat_body(model: str, prompt: str = "Say something short.", *, stream: bool = False) -> bytes:
    """An OpenAI chat-completions request body."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()
