"""Discovery of local models: an Ollama server that answers at start joins the catalog.

``discover_local_models`` asks each configured provider of kind ``ollama`` for its
pulled models (``GET /api/tags``), all at once. Where one answers, each model becomes
``local/<name>`` for the provider named ``ollama`` and ``<provider>/<name>`` for any
other (``:latest`` dropped from the alias, kept in the model id), the provider is
enabled and the ``local`` route runs through those models (the ``ollama`` provider's
first); the catalog's models of the ``ollama`` provider that are not installed are
disabled, since Ollama cannot serve them. Where nothing answers in time, the provider
is left as it was.

The only I/O is those requests; building the new ``Config`` is pure
(``with_discovered_models``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

import attrs
import httpx
import trio

from switchman._call import MAX_NAME_CHARS, unprintable
from switchman._logsecrets import hide_secrets
from switchman.catalog._catalog import builtin_catalog
from switchman.catalog._config import NOT_DETECTED, api_key
from switchman.catalog._credentials import provider_secrets
from switchman.catalog._spec import Config, ModelSpec, ProviderSpec, RouteSpec

#: the provider whose pulled models are named ``local/<name>`` (any other's, by its name)
OLLAMA: Final = "ollama"
#: the alias prefix and route name of discovered models
LOCAL: Final = "local"
#: how long an Ollama server has to answer ``/api/tags``
DISCOVERY_TIMEOUT_S: Final = 0.5
#: the context window of a discovered model the catalog does not know
DEFAULT_CONTEXT_WINDOW: Final = 8192
#: its output limit
DEFAULT_MAX_OUTPUT: Final = 4096

log = logging.getLogger("switchman.discovery")


def _default_client() -> httpx.AsyncClient:
    from switchman.adapters._http import proxied_client, proxy_variables
    from switchman.adapters._pool import system_ssl_context

    settings: dict[str, Any] = dict(
        timeout=httpx.Timeout(DISCOVERY_TIMEOUT_S),
        follow_redirects=False,
        verify=system_ssl_context(),
    )
    if proxy_variables():  # (one httpx cannot use: asked directly, with a warning)
        client = proxied_client("Ollama discovery", **settings)
        if client is not None:
            return client
    return httpx.AsyncClient(**settings, trust_env=False)


def _short(name: str) -> str:
    return name.removesuffix(":latest")


def _asked(provider: ProviderSpec) -> bool:
    """Whether discovery asks ``provider``: an Ollama server enabled or merely "not
    detected" (one disabled in the configuration stays disabled)."""
    return provider.kind == "ollama" and provider.disabled_reason in (None, NOT_DETECTED)


def _headers(provider: ProviderSpec, env: Mapping[str, str] | None) -> dict[str, str]:
    """What a chat request to ``provider`` carries for its server to let it in: the key
    as a bearer token and the configured headers (a proxy in front of a remote Ollama)."""
    headers = dict(provider.headers)
    key = api_key(provider, env)
    if key:
        headers.setdefault("Authorization", f"Bearer {key}")
    return headers


def _usable(provider: str, name: str) -> bool:
    """Whether a pulled model's ``name`` can be a model's id and alias (told if not): one a
    configuration could not give, with a line break (an answer's ``x-switchman-model``
    header) or past the length a call can name, is left out."""
    why = unprintable(name)
    if why is None and len(f"{provider}/{name}") <= MAX_NAME_CHARS:
        return True
    log.warning(
        "provider %s lists a model %r that is left out: its name %s",
        provider,
        name[:80],
        why or f"is longer than {MAX_NAME_CHARS - len(provider) - 1} characters",
    )
    return False


async def discover_local_models(
    config: Config,
    *,
    client_factory: Callable[[], httpx.AsyncClient] = _default_client,
    timeout_s: float = DISCOVERY_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    skip: Collection[str] = (),
) -> Config:
    """``config`` with the models each of its Ollama servers has installed, where one
    answers in time.

    Asks ``{base_url}/api/tags`` of every provider of kind ``ollama`` that is enabled or
    merely "not detected" and not in ``skip``, at once, with one client from
    ``client_factory`` (closed here), bounded by ``timeout_s`` overall; ``env`` (default
    ``os.environ``) holds their keys. No answer, an error or an empty list leaves that
    provider as it was (one the file configures is warned of, with why); none found:
    ``config`` unchanged. Cancelled midway, the requests are
    abandoned, the client closed and ``trio.Cancelled`` propagates.
    """
    asked = [p for name, p in config.providers.items() if name not in skip and _asked(p)]
    if not asked:
        return config
    # (the adapters build on the catalog: imported here, the catalog imports without them)
    from switchman.adapters._ollama import DEFAULT_BASE_URL, list_ollama_models

    found: dict[str, list[str]] = {}
    why = dict.fromkeys((p.name for p in asked), f"no answer within {timeout_s:g} s")

    async def ask(client: httpx.AsyncClient, provider: ProviderSpec) -> None:
        base_url = provider.base_url or DEFAULT_BASE_URL
        names, why[provider.name] = await list_ollama_models(
            client, base_url, _headers(provider, env)
        )
        names = [n for n in names if _usable(provider.name, n)]
        if names:
            found[provider.name] = names

    # the HTTP libraries' debug lines show none of the keys and headers sent, as for every
    # request the router makes later (an application's DEBUG log, a server echoing them)
    with hide_secrets(v for p in asked for v in provider_secrets(p, api_key(p, env))):
        async with client_factory() as client:
            with trio.move_on_after(timeout_s):
                async with trio.open_nursery() as nursery:
                    for provider in asked:
                        nursery.start_soon(ask, client, provider)
    for provider in asked:
        if provider.name in found or provider.disabled_reason == NOT_DETECTED:
            continue  # (one the file does not configure is looked for, not expected)
        where = provider.base_url or DEFAULT_BASE_URL
        if any(m.provider == provider.name and m.enabled for m in config.models.values()):
            log.warning(
                "provider %s lists no model at start (its Ollama server at %s: %s): its "
                "models are kept, and fail until it serves them",
                provider.name,
                where,
                why[provider.name],
            )
        else:
            log.warning(
                "provider %s serves no model: its Ollama server at %s listed none at start "
                '(GET /api/tags: %s); add [[models]] with provider = "%s" to serve it anyway',
                provider.name,
                where,
                why[provider.name],
                provider.name,
            )
    if not found:
        return config
    ordered = {n: found[n] for n in sorted(found, key=lambda n: n != OLLAMA)}
    return with_discovered_models(config, ordered)


def with_local_models(config: Config, names: Sequence[str]) -> Config:
    """``config`` with the models ``names`` the ``ollama`` provider has installed (see
    ``with_discovered_models``)."""
    return with_discovered_models(config, {OLLAMA: names})


def with_discovered_models(config: Config, found: Mapping[str, Sequence[str]]) -> Config:
    """``config`` with the Ollama models each provider of ``found`` has installed (pure;
    see the module doc). The ``local`` route runs through them in ``found``'s order.

    Catalog Ollama models that are not installed on the ``ollama`` provider are disabled;
    ones the file wrote (a ``[[models]]`` entry) are kept as written, unless the provider
    was only "not detected". An alias the configuration already has is kept as it is
    (routed through by ``local`` when it is the same provider's).
    A name the configuration already knows for the provider (same model id, with or
    without ``:latest``) takes that entry's model id, context window, output limit and
    capabilities, so the discovered alias and the known one are one model upstream (one
    breaker, one learning, attempts counted once); a name the catalog knows for Ollama
    takes its window, output limit and capabilities; others get ``DEFAULT_CONTEXT_WINDOW``.
    """
    catalogs = builtin_catalog().models
    in_catalog: dict[str, ModelSpec] = {
        _short(m.model_id): m for m in catalogs.values() if m.provider == OLLAMA
    }
    models = dict(config.models)
    providers = dict(config.providers)
    chain: list[str] = []
    for name, names in found.items():
        provider = providers[name]
        installed = {_short(n) for n in names}
        if name == OLLAMA:
            # the catalog's own entries are disabled when not installed (the provider
            # configured in the file or not: each was a 404 on first use, then held
            # out); models the file wrote itself are left as they were written
            detected = provider.disabled_reason == NOT_DETECTED
            for alias, m in config.models.items():
                if (
                    m.provider == OLLAMA
                    and _short(m.model_id) not in installed
                    and (detected or catalogs.get(alias) == m)
                ):
                    models[alias] = attrs.evolve(m, enabled=False)
        known: dict[str, ModelSpec] = {
            _short(m.model_id): m for m in config.models.values() if m.provider == name
        }
        prefix = LOCAL if name == OLLAMA else name
        for pulled in dict.fromkeys(names):
            alias = f"{prefix}/{_short(pulled)}"
            if alias in chain:
                if models[alias].provider != name:  # (a box named "local" beside ollama)
                    log.warning(
                        "provider %s's model %s goes without a name: %s is the %s "
                        "provider's; give the provider another name",
                        name,
                        pulled,
                        alias,
                        models[alias].provider,
                    )
                continue
            taken = config.models.get(alias)
            if taken is not None:  # the file's own entry under that name: kept as written
                if taken.provider == name and taken.enabled:
                    chain.append(alias)
                continue
            mine = known.get(_short(pulled))
            models[alias] = _local_model(alias, name, pulled, mine, in_catalog.get(_short(pulled)))
            chain.append(alias)
        providers[name] = attrs.evolve(provider, disabled_reason=None)
    old = config.routes.get(LOCAL)
    routes: Mapping[str, RouteSpec] = config.routes
    if old is None or not _written(old):
        routes = {
            **config.routes,
            LOCAL: RouteSpec(
                name=LOCAL,
                chain=tuple(chain),
                fallback_on_content_rejection=old.fallback_on_content_rejection if old else False,
            ),
        }
    else:
        log.info(
            "the local route is kept as the configuration writes it; the models found on "
            "the Ollama servers are called by their names (%s)",
            ", ".join(chain[:4]) + (", ..." if len(chain) > 4 else ""),
        )
    enabled = [p for p in providers.values() if p.disabled_reason is None]
    return attrs.evolve(
        config,
        providers=providers,
        models=models,
        routes=routes,
        simulated=bool(enabled) and all(p.kind == "sim" for p in enabled),
    )


def _written(route: RouteSpec) -> bool:
    """Whether ``route`` (the ``local`` one) is the configuration's own: not the catalog's
    (its Ollama models, or the simulator's stand-ins for them), which discovery replaces."""
    catalog = builtin_catalog()
    chains = [r.chain for r in (catalog.routes.get(LOCAL), catalog.sim_routes.get(LOCAL)) if r]
    return tuple(route.chain) not in [tuple(c) for c in chains]


def _local_model(
    alias: str, provider: str, model_id: str, mine: ModelSpec | None, listed: ModelSpec | None
) -> ModelSpec:
    known = mine if mine is not None else listed
    context = known.context_window if known is not None else DEFAULT_CONTEXT_WINDOW
    max_output = known.max_output_tokens if known is not None else DEFAULT_MAX_OUTPUT
    capabilities: tuple[str, ...] = (LOCAL,)
    if known is not None:
        capabilities += tuple(c for c in known.capabilities if c != LOCAL)
    return ModelSpec(
        alias=alias,
        provider=provider,
        # the provider's own id for it: Ollama serves "llama3.2" and "llama3.2:latest"
        # alike, and the provider actor knows two aliases as one model by their id
        model_id=mine.model_id if mine is not None else model_id,
        trust_tier="untrusted",
        context_window=context,
        max_output_tokens=min(max_output, context),
        input_per_mtok=0.0,
        output_per_mtok=0.0,
        capabilities=capabilities,
        supports_seed=True,
        supports_prefill=False,
    )
