"""Pure, trio-free decisions: breaker, rate budget, retry, eligibility, scoring, learning,
budget arithmetic, restart intensity, redaction. Each takes ``now`` as an argument."""

from switchman.policy._breaker import (
    Breaker,
    BreakerConfig,
    breaker_admit,
    breaker_record,
    breaker_retry_at,
)
from switchman.policy._budget import Ledger, Limit, release, reserve, settle
from switchman.policy._candidates import plan_attempt_order, resolve_target
from switchman.policy._eligibility import (
    Eligibility,
    check_eligibility,
    output_tokens,
    request_params,
)
from switchman.policy._estimate import estimate_input_tokens
from switchman.policy._intensity import Intensity, record_restart
from switchman.policy._learning import LearningConfig, ModelStats, observe, observe_feedback
from switchman.policy._ratelimit import (
    RateBudget,
    new_budget,
    parse_retry_after,
    rate_admit,
    rate_observe,
    rate_settle,
)
from switchman.policy._redaction import Redacted, StreamRedactor, redact
from switchman.policy._retry import RetryDecision, backoff_delay, decide_after_failure
from switchman.policy._scoring import Weights, rank

__all__ = [
    "Breaker",
    "BreakerConfig",
    "Eligibility",
    "Intensity",
    "LearningConfig",
    "Ledger",
    "Limit",
    "ModelStats",
    "RateBudget",
    "Redacted",
    "RetryDecision",
    "StreamRedactor",
    "Weights",
    "backoff_delay",
    "breaker_admit",
    "breaker_record",
    "breaker_retry_at",
    "check_eligibility",
    "decide_after_failure",
    "estimate_input_tokens",
    "new_budget",
    "observe",
    "observe_feedback",
    "output_tokens",
    "parse_retry_after",
    "plan_attempt_order",
    "rank",
    "rate_admit",
    "rate_observe",
    "rate_settle",
    "record_restart",
    "redact",
    "release",
    "request_params",
    "reserve",
    "resolve_target",
    "settle",
]
