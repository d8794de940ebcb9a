"""Configuration values: providers, models, routes, budgets, gateway keys.

These are the shapes the TOML keys of DESIGN.md map onto, merged over the
built-in catalog by ``load_config``. All frozen; ``attrs.evolve`` to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from switchman._call import Intent, TrustTier

Kind = Literal["openai", "anthropic", "gemini", "ollama", "sim"]


@attrs.frozen(kw_only=True)
class SimProfile:
    """Behaviour of one simulated model (used by ``kind = "sim"`` and the fake server).

    Times in milliseconds, rates in 0..1. ``quality`` maps intent to a 0..1 answer
    quality the router can learn from feedback; missing intents use ``default_quality``.

    Scheduled outages (seconds of trio time since the simulated provider started):
    from ``outage_after_s`` on, the model answers every attempt with a 503 for
    ``outage_for_s`` seconds; with ``outage_every_s`` the outage starts again every
    that many seconds. ``outage_after_s = None`` (the default) means no outages.
    """

    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    tokens_per_s: float = 0.0  # 0 = instant
    error_rate: float = 0.0
    refusal_rate: float = 0.0
    rate_limit_rate: float = 0.0
    stall_rate: float = 0.0
    cut_rate: float = 0.0
    default_quality: float = 0.7
    quality: Mapping[str, float] = attrs.field(factory=dict)
    outage_after_s: float | None = None
    outage_for_s: float = 0.0
    outage_every_s: float | None = None


@attrs.frozen(kw_only=True)
class ProviderSpec:
    name: str
    kind: Kind
    base_url: str = ""
    api_key_env: str | None = None
    max_concurrency: int = 64
    rpm: int | None = None
    tpm: int | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    #: set by load_config: why the provider cannot be used (missing key), else None
    disabled_reason: str | None = None
    seed: int = 0  # sim only


@attrs.frozen(kw_only=True)
class ModelSpec:
    alias: str
    provider: str
    model_id: str
    trust_tier: TrustTier = "standard"
    context_window: int = 128_000
    max_output_tokens: int = 8_192
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    intents: tuple[Intent, ...] = ()  # empty = all
    capabilities: tuple[str, ...] = ()
    supports_seed: bool = False
    supports_prefill: bool = False
    enabled: bool = True
    sim: SimProfile | None = None

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for the given token counts at this model's list prices."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


@attrs.frozen(kw_only=True)
class RouteSpec:
    name: str
    chain: tuple[str, ...]
    #: fall back when a provider rejects the request's content (HTTP 400 policy)
    fallback_on_content_rejection: bool = False


@attrs.frozen(kw_only=True)
class KeySpec:
    key_env: str
    handle: str
    daily_usd: float | None = None
    hourly_usd: float | None = None
    monthly_usd: float | None = None
    models: tuple[str, ...] = ("*",)
    min_trust: TrustTier = "untrusted"
    admin: bool = False
    #: resolved from the environment by load_config; never printed
    secret: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class BudgetsConfig:
    global_hourly_usd: float | None = None
    global_daily_usd: float | None = None
    global_monthly_usd: float | None = None
    #: per provider name: {"daily_usd": ...}
    providers: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)
    #: per caller handle (embedding without gateway keys): {"daily_usd": ...}
    callers: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8265
    max_body_bytes: int = 4 * 1024 * 1024
    db: str | None = None
    job_retention_count: int = 10_000
    job_retention_days: float = 7.0
    grace_s: float = 10.0


@attrs.frozen(kw_only=True)
class RouterConfig:
    """Runtime knobs of the dispatcher."""

    capacity: int = 1024
    default_ttft_ms: int = 15_000
    default_soft_ms: int = 60_000
    default_hard_ms: int = 120_000
    stall_ms: int = 15_000
    seed: int | None = None
    exploration: float = 1.0


@attrs.frozen(kw_only=True)
class Config:
    providers: Mapping[str, ProviderSpec] = attrs.field(factory=dict)
    models: Mapping[str, ModelSpec] = attrs.field(factory=dict)
    routes: Mapping[str, RouteSpec] = attrs.field(factory=dict)
    budgets: BudgetsConfig = attrs.field(factory=BudgetsConfig)
    keys: tuple[KeySpec, ...] = ()
    server: ServerConfig = attrs.field(factory=ServerConfig)
    router: RouterConfig = attrs.field(factory=RouterConfig)
    #: true when every enabled provider is the simulator: answers are simulated
    simulated: bool = False
