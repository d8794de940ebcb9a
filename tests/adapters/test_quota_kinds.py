"""Gemini's 429 RESOURCE_EXHAUSTED names the quota that ran out: a minute's is a rate limit
(back in seconds), a day's a used-up quota (the provider is held out, not retried)."""

from __future__ import annotations

import json

from switchman._errors import QuotaExhausted, RateLimited
from switchman.adapters._sse import map_error


def _exhausted(quota_id: str, retry_delay: str | None) -> bytes:
    details: list[dict[str, object]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": "generate_content_requests", "quotaId": quota_id}],
        }
    ]
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    body = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan and billing "
            "details.",
            "status": "RESOURCE_EXHAUSTED",
            "details": details,
        }
    }
    return json.dumps(body).encode()


def test_a_minutes_quota_is_a_rate_limit_and_a_days_a_used_up_quota() -> None:
    minute = map_error(
        "gemini",
        429,
        {},
        _exhausted("GenerateRequestsPerMinutePerProjectPerModel", "47s"),
        secret=None,
    )
    assert isinstance(minute, RateLimited) and minute.retry_after == 47.0
    day = map_error(
        "gemini",
        429,
        {},
        _exhausted("GenerateRequestsPerDayPerProjectPerModel-FreeTier", None),
        secret=None,
    )
    assert isinstance(day, QuotaExhausted)
    assert day.message.startswith("quota exhausted: You exceeded your current quota")
    assert "PerDay" in day.message  # which quota, as the provider named it


def test_a_models_own_days_quota_says_so_with_its_retry_delay() -> None:
    """``...PerDayPerProjectPerModel``: the model's own quota (the provider holds out that
    model alone, its siblings have their own); a project-wide one is not the model's."""
    own = map_error(
        "gemini",
        429,
        {},
        _exhausted("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "33s"),
        secret=None,
    )
    assert isinstance(own, QuotaExhausted) and own.per_model and own.retry_after == 33.0
    shared = map_error(
        "gemini", 429, {}, _exhausted("GenerateRequestsPerDayPerProject", "33s"), secret=None
    )
    assert isinstance(shared, QuotaExhausted) and not shared.per_model
    assert shared.retry_after is None
