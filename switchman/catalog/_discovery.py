"""Discovery of local models: an Ollama server that answers at start joins the catalog.

``discover_local_models`` asks the configured ``ollama`` provider for its pulled
models (``GET /api/tags``). When it answers, each model becomes ``local/<name>``
(``:latest`` dropped from the alias, kept in the model id), the provider is
enabled and the ``local`` route runs through those models; the catalog's models of the
provider that are not installed are disabled, since Ollama cannot serve them.
When nothing answers in time, the configuration is returned unchanged.

The only I/O is that one request; building the new ``Config`` is pure
(``with_local_models``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import httpx
import trio

from switchman.adapters._http import proxied_client, proxy_variables
from switchman.adapters._ollama import DEFAULT_BASE_URL, discover_ollama_models
from switchman.catalog._catalog import builtin_catalog
from switchman.catalog._config import NOT_DETECTED
from switchman.catalog._spec import Config, ModelSpec, RouteSpec

#: the provider name discovery looks for
OLLAMA: Final = "ollama"
#: the alias prefix and route name of discovered models
LOCAL: Final = "local"
#: how long an Ollama server has to answer ``/api/tags``
DISCOVERY_TIMEOUT_S: Final = 0.5
#: the context window of a discovered model the catalog does not know
DEFAULT_CONTEXT_WINDOW: Final = 8192
#: its output limit
DEFAULT_MAX_OUTPUT: Final = 4096


def _default_client() -> httpx.AsyncClient:
    settings: dict[str, Any] = dict(
        timeout=httpx.Timeout(DISCOVERY_TIMEOUT_S), follow_redirects=False
    )
    if proxy_variables():  # (one httpx cannot use: asked directly, with a warning)
        client = proxied_client("Ollama discovery", **settings)
        if client is not None:
            return client
    return httpx.AsyncClient(**settings, trust_env=False)


def _short(name: str) -> str:
    return name.removesuffix(":latest")


async def discover_local_models(
    config: Config,
    *,
    client_factory: Callable[[], httpx.AsyncClient] = _default_client,
    timeout_s: float = DISCOVERY_TIMEOUT_S,
) -> Config:
    """``config`` with the models an Ollama server has installed, when one answers in time.

    Looks only when ``config`` has an ``ollama`` provider that is enabled or was
    merely "not detected" (one disabled in the configuration stays disabled).
    Asks ``{base_url}/api/tags`` with a client from ``client_factory`` (closed
    here), bounded by ``timeout_s`` overall. No answer, an error or an empty
    list: ``config`` unchanged. Cancelled midway, the request is abandoned, the
    client closed and ``trio.Cancelled`` propagates.
    """
    provider = config.providers.get(OLLAMA)
    if provider is None or provider.kind != "ollama":
        return config
    if provider.disabled_reason not in (None, NOT_DETECTED):
        return config
    names: list[str] = []
    async with client_factory() as client:
        with trio.move_on_after(timeout_s):
            names = await discover_ollama_models(client, provider.base_url or DEFAULT_BASE_URL)
    if not names:
        return config
    return with_local_models(config, names)


def with_local_models(config: Config, names: Sequence[str]) -> Config:
    """``config`` with the Ollama models ``names`` installed (pure; see the module doc).

    Catalog Ollama models that are not installed are disabled; ones the file wrote
    (a ``[[models]]`` entry) are kept as written, unless the provider was only "not
    detected".
    A name the catalog already knows for the ``ollama`` provider (same model id,
    with or without ``:latest``) takes that entry's model id, context window, output
    limit and capabilities, so ``local/<name>`` and the catalog alias are one model
    upstream (one breaker, one learning, attempts counted once); others get
    ``DEFAULT_CONTEXT_WINDOW``.
    """
    provider = config.providers[OLLAMA]
    installed = {_short(n) for n in names}
    # the catalog's own Ollama entries are disabled when not installed (the provider
    # configured in the file or not: each was a 404 on first use, then held out); models
    # the file wrote itself are left as they were written
    detected = provider.disabled_reason == NOT_DETECTED
    catalogs = builtin_catalog().models
    known: dict[str, ModelSpec] = {
        _short(m.model_id): m for m in config.models.values() if m.provider == OLLAMA
    }
    models: dict[str, ModelSpec] = {
        alias: (
            attrs.evolve(m, enabled=False)
            if m.provider == OLLAMA
            and _short(m.model_id) not in installed
            and (detected or catalogs.get(alias) == m)
            else m
        )
        for alias, m in config.models.items()
    }
    chain: list[str] = []
    for name in dict.fromkeys(names):
        alias = f"{LOCAL}/{_short(name)}"
        if alias in chain:
            continue
        models[alias] = _local_model(alias, name, known.get(_short(name)))
        chain.append(alias)
    old = config.routes.get(LOCAL)
    routes: Mapping[str, RouteSpec] = {
        **config.routes,
        LOCAL: RouteSpec(
            name=LOCAL,
            chain=tuple(chain),
            fallback_on_content_rejection=old.fallback_on_content_rejection if old else False,
        ),
    }
    providers = {**config.providers, OLLAMA: attrs.evolve(provider, disabled_reason=None)}
    enabled = [p for p in providers.values() if p.disabled_reason is None]
    return attrs.evolve(
        config,
        providers=providers,
        models=models,
        routes=routes,
        simulated=bool(enabled) and all(p.kind == "sim" for p in enabled),
    )


def _local_model(alias: str, model_id: str, known: ModelSpec | None) -> ModelSpec:
    context = known.context_window if known is not None else DEFAULT_CONTEXT_WINDOW
    max_output = known.max_output_tokens if known is not None else DEFAULT_MAX_OUTPUT
    capabilities: tuple[str, ...] = (LOCAL,)
    if known is not None:
        capabilities += tuple(c for c in known.capabilities if c != LOCAL)
    return ModelSpec(
        alias=alias,
        provider=OLLAMA,
        # the catalog's own id for it: Ollama serves "llama3.2" and "llama3.2:latest"
        # alike, and the provider actor knows two aliases as one model by their id
        model_id=known.model_id if known is not None else model_id,
        trust_tier="untrusted",
        context_window=context,
        max_output_tokens=min(max_output, context),
        input_per_mtok=0.0,
        output_per_mtok=0.0,
        capabilities=capabilities,
        supports_seed=True,
        supports_prefill=False,
    )
