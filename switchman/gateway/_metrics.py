"""Prometheus metrics of the gateway: calls and attempts counted from each job's result,
breaker transitions from the router's trace events.

Calls, failures, latency, attempts, time to first token and spend are counted by
:meth:`GatewayMetrics.record` from every job's final result, as the job runner gets it:
nothing is lost under load (fed from trace events, a full subscription buffer used to drop
them, and the counters fell behind ``/health`` and ``/budgets``). :meth:`observe` takes the
trace events a result does not hold: ``breaker.changed`` (``provider``, ``alias`` or
``model``, ``state`` or ``to``; a missing field counts as ``"unknown"``) and
``events.dropped`` (``count``).

The registry belongs to one :class:`GatewayMetrics` (no global registry), so two
gateways in one process, or two tests, never share counters.

Breaker states and in-flight counts are read from ``router.status()`` at each
scrape, so they are right even for providers that never produced an event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

from switchman._result import Result, TraceEvent
from switchman.gateway._protocol import RouterStatusLike

BREAKER_VALUE: Final = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TTFT_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def _label(data: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value[:100]
    return "unknown"


def _number(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


class _WithoutCreated:
    """``registry``'s families without the ``*_created`` series prometheus_client adds to
    every counter and histogram (a start time per series, which doubled the series; a
    scraper tells a counter's reset from its values)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


class GatewayMetrics:
    """Counters, histograms and gauges in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._exposed = CollectorRegistry(auto_describe=False)
        self._exposed.register(_WithoutCreated(r))
        self.calls = Counter("switchman_calls", "Calls finished, by status", ["status"], registry=r)
        self.attempts = Counter(
            "switchman_attempts",
            "Attempts finished, by provider, model and outcome (unavailable: none was sent,"
            " the model paused or its provider busy)",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "switchman_call_latency_seconds",
            "Latency of finished calls, failed ones included (model: the one that "
            "answered, 'unknown' for a failed call)",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "switchman_ttft_seconds",
            "Time to first token of attempts",
            ["provider", "model"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.spend = Counter(
            "switchman_spend_usd",
            "Spend in USD, by provider and model",
            ["provider", "model"],
            registry=r,
        )
        self.breaker_transitions = Counter(
            "switchman_breaker_transitions",
            "Breaker state changes, by the state entered",
            ["provider", "model", "state"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "switchman_breaker_state",
            "Breaker state per model: 0 closed, 1 half-open, 2 open",
            ["provider", "model"],
            registry=r,
        )
        self.in_flight = Gauge(
            "switchman_provider_in_flight",
            "Attempts in flight per provider",
            ["provider"],
            registry=r,
        )
        self.restarts = Counter(
            "switchman_provider_restarts",
            "Times a provider's actor crashed (a bug) and was restarted by its supervisor",
            ["provider"],
            registry=r,
        )
        #: the restarts each provider's status said at the last scrape
        self._restarts_seen: dict[str, int] = {}
        self.model_available = Gauge(
            "switchman_model_available",
            "1 when a model can take an attempt now; 0 when its breaker is open, its "
            "provider holds it out (a 404: it does not serve it) or holds it back (a 429), "
            "or its provider is unavailable",
            ["provider", "model"],
            registry=r,
        )
        self.calls_waiting = Gauge(
            "switchman_router_calls_waiting",
            "Calls waiting for one of the router's capacity slots",
            registry=r,
        )
        self.jobs_in_flight = Gauge(
            "switchman_gateway_jobs_in_flight", "Gateway jobs in flight", registry=r
        )
        self.events_dropped = Counter(
            "switchman_events_dropped", "Trace events the metrics feed lost", registry=r
        )
        self.refused = Counter(
            "switchman_calls_refused",
            "Calls refused before they ran (no job made: HTTP 4xx/503, or a websocket error), "
            "by the code the client was told (validation_error, permission_denied, "
            "rate_limited, overloaded; on /v1 OpenAI's, invalid_value...); not in "
            "switchman_calls_total",
            ["code"],
            registry=r,
        )
        self.failures = Counter(
            "switchman_call_failures",
            "Failed calls, by their error code (budget_exceeded, no_eligible_model, "
            "all_models_failed, timeout, refused, rate_limited, cancelled, ...)",
            ["code"],
            registry=r,
        )
        self.available = Gauge(
            "switchman_provider_available",
            "1 when a provider can take attempts; 0 when it is disabled (no key, turned off) "
            "or held out (its key rejected, its quota used up)",
            ["provider"],
            registry=r,
        )
        self.budget_spent = Gauge(
            "switchman_budget_spent_usd",
            "USD spent this hour, day and month (UTC) by each budgeted scope: global, "
            "provider:NAME, caller:HANDLE",
            ["scope", "period"],
            registry=r,
        )
        self.budget_limit = Gauge(
            "switchman_budget_limit_usd",
            "Each budget's limit, by scope and period (alert on spent over limit)",
            ["scope", "period"],
            registry=r,
        )
        self.http_requests = Counter(
            "switchman_http_requests",
            "HTTP requests, by route and status",
            ["route", "status"],
            registry=r,
        )

    def observe(self, event: TraceEvent) -> None:
        """Count one trace event: a breaker change, or the feed's own lost events (calls
        and attempts are counted from results, :meth:`record`)."""
        data = event.data
        match event.type:
            case "breaker.changed":
                self.breaker_transitions.labels(
                    provider=_label(data, "provider"),
                    model=_label(data, "alias", "model"),
                    state=_label(data, "state", "to"),
                ).inc()
            case "events.dropped":
                self.events_dropped.inc(_number(data, "count") or 1)
            case _:
                pass

    def record(self, result: Result) -> None:
        """Count one finished call and its attempts, from its result."""
        if result.status == "complete":
            self.calls.labels(status="complete").inc()
        else:
            code = result.errors[0].code if result.errors else "unknown"
            self.failures.labels(code=code[:100] or "unknown").inc()
            self.calls.labels(status="failed").inc()
        self.latency.labels(model=(result.model or "unknown")[:100]).observe(
            max(result.latency_ms, 0.0) / 1000
        )
        for a in result.trace.attempts:
            provider, model = a.provider[:100] or "unknown", a.alias[:100] or "unknown"
            self.attempts.labels(provider=provider, model=model, outcome=a.outcome).inc()
            if a.ttft_ms is not None and a.ttft_ms >= 0:
                self.ttft.labels(provider=provider, model=model).observe(a.ttft_ms / 1000)
            if a.cost_usd > 0:
                # (to the nano-dollar, as the ledger counts it: the sums then agree)
                self.spend.labels(provider=provider, model=model).inc(round(a.cost_usd, 9))

    def render(
        self,
        status: RouterStatusLike,
        *,
        jobs_in_flight: int,
        budgets: Mapping[str, tuple[Mapping[str, float], Mapping[str, float]]] | None = None,
    ) -> bytes:
        """The Prometheus text exposition, gauges refreshed from ``status`` first, and from
        ``budgets`` (scope -> (spent, limits), each by period) the budgets' gauges."""
        for scope, (spent, limits) in (budgets or {}).items():
            for period, limit in limits.items():
                self.budget_limit.labels(scope=scope, period=period).set(limit)
                self.budget_spent.labels(scope=scope, period=period).set(spent.get(period, 0.0))
        for provider in status.providers:
            self.in_flight.labels(provider=provider.name).set(provider.in_flight)
            seen = self._restarts_seen.get(provider.name, 0)
            self.restarts.labels(provider=provider.name).inc(max(provider.restarts - seen, 0))
            self._restarts_seen[provider.name] = max(seen, provider.restarts)
            up = provider.disabled_reason is None
            self.available.labels(provider=provider.name).set(up)
            for model in provider.models:
                value = BREAKER_VALUE.get(model.breaker, -1.0)
                self.breaker_state.labels(provider=provider.name, model=model.alias).set(value)
                usable = (
                    up
                    and model.breaker != "open"
                    and model.held_out is None
                    and model.rate_limited_for_s <= 0.0
                )
                self.model_available.labels(provider=provider.name, model=model.alias).set(usable)
        self.jobs_in_flight.set(jobs_in_flight)
        self.calls_waiting.set(status.waiting_calls)
        return bytes(generate_latest(self._exposed))
