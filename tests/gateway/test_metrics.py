from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

import switchman
from switchman import Call
from switchman._result import AttemptRecord, ErrorInfo, Result, Trace, TraceEvent
from switchman.gateway import GatewayMetrics
from tests.gateway._fakes import FakeRouter, make_config, running_gateway


def _event(type_: Any, **data: Any) -> TraceEvent:
    return TraceEvent(type=type_, call_id="c", job_id=None, ts=0.0, data=data)


def _attempt(alias: str, outcome: Any, **fields: Any) -> AttemptRecord:
    return AttemptRecord(
        n=1, alias=alias, provider="sim", started_at=0.0, ended_at=0.0, outcome=outcome, **fields
    )


def _result(status: Any, **fields: Any) -> Result:
    return Result(call_id="c", status=status, **fields)


def test_results_feed_the_call_and_attempt_counters() -> None:
    m = GatewayMetrics()
    fast = _attempt("fast", "success", ttft_ms=40.0, cost_usd=0.25)
    m.record(_result("complete", model="fast", latency_ms=250.0, trace=Trace(attempts=(fast,))))
    m.record(_result("complete", model="fast", latency_ms=50.0))
    slow = _attempt("slow", "timeout", ttft_ms=None)
    timeout = ErrorInfo(code="timeout", message="no answer within 30s")
    m.record(_result("failed", errors=(timeout,), trace=Trace(attempts=(slow,))))
    value = m.registry.get_sample_value
    assert value("switchman_calls_total", {"status": "complete"}) == 2
    assert value("switchman_calls_total", {"status": "failed"}) == 1
    assert value("switchman_call_failures_total", {"code": "timeout"}) == 1
    assert value("switchman_call_latency_seconds_count", {"model": "fast"}) == 2
    assert value("switchman_call_latency_seconds_sum", {"model": "fast"}) == 0.3
    assert value("switchman_call_latency_seconds_count", {"model": "unknown"}) == 1
    labels = {"provider": "sim", "model": "fast", "outcome": "success"}
    assert value("switchman_attempts_total", labels) == 1
    assert value("switchman_attempts_total", labels | {"model": "slow", "outcome": "timeout"}) == 1
    assert value("switchman_ttft_seconds_sum", {"provider": "sim", "model": "fast"}) == 0.04
    assert value("switchman_ttft_seconds_count", {"provider": "sim", "model": "slow"}) is None
    assert value("switchman_spend_usd_total", {"provider": "sim", "model": "fast"}) == 0.25


def test_trace_events_feed_the_breaker_and_drop_counters_only() -> None:
    m = GatewayMetrics()
    m.observe(_event("breaker.changed", alias="slow", provider="sim", to="open"))
    m.observe(_event("events.dropped", count=7))
    # calls and attempts are counted from results: their events count nothing
    m.observe(_event("call.completed", model="fast", latency_ms=250.0))
    m.observe(_event("attempt.finished", alias="fast", provider="sim", outcome="success"))
    m.observe(_event("attempt.delta", text="ignored"))
    value = m.registry.get_sample_value
    assert (
        value(
            "switchman_breaker_transitions_total",
            {"provider": "sim", "model": "slow", "state": "open"},
        )
        == 1
    )
    assert value("switchman_events_dropped_total") == 7
    assert value("switchman_calls_total", {"status": "complete"}) is None
    labels = {"provider": "sim", "model": "fast", "outcome": "success"}
    assert value("switchman_attempts_total", labels) is None


def test_each_gateway_has_its_own_registry() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    a.record(_result("failed"))
    assert a.registry.get_sample_value("switchman_calls_total", {"status": "failed"}) == 1
    assert b.registry.get_sample_value("switchman_calls_total", {"status": "failed"}) is None


def test_odd_event_data_is_counted_as_unknown_not_raised() -> None:
    m = GatewayMetrics()
    m.observe(_event("breaker.changed", alias=5, provider=None, to=3))
    m.observe(_event("events.dropped", count="many"))
    labels = {"provider": "unknown", "model": "unknown", "state": "unknown"}
    assert m.registry.get_sample_value("switchman_breaker_transitions_total", labels) == 1
    assert m.registry.get_sample_value("switchman_events_dropped_total") == 1


async def test_metrics_endpoint_serves_prometheus_text_fed_by_the_router() -> None:
    router = FakeRouter(make_config())
    router.breakers["slow"] = "open"
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "fast"})
            await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "nope"})
            # refused before a job was made: counted as such, not as calls
            refused = await gw.client.post("/call", json={"prompt": ""})
            assert refused.status_code == 422
            body = {"model": "fast", "messages": [], "temperature": 9}
            assert (await gw.client.post("/v1/chat/completions", json=body)).status_code == 400
            await trio.testing.wait_all_tasks_blocked(0.05)
            r = await gw.client.get("/metrics")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(r.text)
                for s in family.samples
            }
    assert samples[("switchman_calls_total", (("status", "complete"),))] == 1
    assert samples[("switchman_calls_total", (("status", "failed"),))] == 1
    assert samples[("switchman_breaker_state", (("model", "slow"), ("provider", "sim")))] == 2
    assert samples[("switchman_breaker_state", (("model", "fast"), ("provider", "sim")))] == 0
    assert samples[("switchman_provider_in_flight", (("provider", "sim"),))] == 1
    assert samples[("switchman_provider_restarts_total", (("provider", "sim"),))] == 0
    assert samples[("switchman_model_available", (("model", "slow"), ("provider", "sim")))] == 0
    assert samples[("switchman_model_available", (("model", "fast"), ("provider", "sim")))] == 1
    assert samples[("switchman_calls_refused_total", (("code", "validation_error"),))] == 1
    assert samples[("switchman_calls_refused_total", (("code", "invalid_value"),))] == 1
    # no *_created series (a start time for each, doubling them)
    assert not [name for name, _ in samples if name.endswith("_created")]
    spend = ("switchman_spend_usd_total", (("model", "fast"), ("provider", "sim")))
    assert samples[spend] == 0.002
    assert samples[("switchman_http_requests_total", (("route", "/call"), ("status", "200")))] == 2


class _LossyFeed(FakeRouter):
    """A router whose trace feed loses every call and attempt event, as a full
    subscription buffer does under load."""

    def publish(self, event: TraceEvent) -> None:
        if event.type.startswith(("call.", "attempt.")):
            return
        super().publish(event)


async def test_calls_are_counted_from_results_even_when_the_trace_feed_loses_events() -> None:
    router = _LossyFeed(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for model in ("fast", "fast", "nope"):
                await gw.client.post("/call?wait=5", json={"prompt": "x", "model": model})
            body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
            await gw.client.post("/v1/chat/completions", json=body)
            r = await gw.client.get("/metrics")
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(r.text)
                for s in family.samples
            }
    assert samples[("switchman_calls_total", (("status", "complete"),))] == 3
    assert samples[("switchman_calls_total", (("status", "failed"),))] == 1
    spend = ("switchman_spend_usd_total", (("model", "fast"), ("provider", "sim")))
    assert samples[spend] == pytest.approx(0.006)
    attempts = [v for (name, _), v in samples.items() if name == "switchman_attempts_total"]
    assert sum(attempts) >= 3


async def test_the_breaker_feed_is_taken_again_after_the_trace_hub_restarts(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A restarted trace hub ends every subscription: the metrics' feed subscribes again,
    and the breaker transitions after it are counted (they froze for good before)."""
    from switchman.catalog import SimProfile
    from switchman.gateway._serve import RESUBSCRIBE_S, _pump_metrics
    from tests._simfleet import fleet, sim_model

    down = sim_model("down", SimProfile(latency_ms=50, error_rate=1.0))
    metrics = GatewayMetrics()
    opened = {"provider": "sim", "model": "down", "state": "open"}
    async with switchman.open_router(fleet(down)) as router, trio.open_nursery() as nursery:
        nursery.start_soon(_pump_metrics, router, metrics)
        await trio.testing.wait_all_tasks_blocked()
        hub = router._hub
        hub.close()  # the hub actor's way out, on a crash ...
        hub.reopen()  # ... and its restart
        await trio.sleep(RESUBSCRIBE_S * 2)
        assert hub.statistics().subscribers == 1
        for _ in range(10):  # its failures open its breaker
            await router.call(Call(prompt="hi", model="down"))
            await trio.testing.wait_all_tasks_blocked()
        value = metrics.registry.get_sample_value("switchman_breaker_transitions_total", opened)
        assert value == 1
        nursery.cancel_scope.cancel()
