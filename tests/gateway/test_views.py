"""``PlatformView``: results and events as a key that is not an admin's sees them."""

from __future__ import annotations

from typing import Any

from switchman.catalog import KeySpec
from switchman.gateway._auth import OPEN, authenticate
from switchman.gateway._views import CallTexts, PlatformView
from tests.gateway._fakes import make_config

CONFIG = make_config(
    keys=(
        KeySpec(key_env="KA", handle="team-a", secret="secret-a", models=("fast", "gpt-x")),
        KeySpec(key_env="KO", handle="ops", secret="secret-ops", admin=True),
    )
)
HELD = "provider held out: auth error: Incorrect API key provided: sk-ab***yz"


def _view(secret: str) -> PlatformView:
    principal = authenticate(CONFIG.keys, secret)
    assert principal is not None
    return PlatformView(principal, CONFIG)


def _failed(message: str, excluded: list[dict[str, str]], attempts: Any = ()) -> dict[str, Any]:
    return {
        "status": "failed",
        "errors": [{"code": "no_eligible_model", "message": message}],
        "trace": {
            "eligibility": {"eligible": [], "excluded": excluded},
            "attempts": list(attempts),
        },
    }


def test_models_the_key_cannot_use_leave_the_trace_and_the_message() -> None:
    excluded = [
        {"alias": "slow", "reason": "not allowed for this caller"},
        {"alias": "fast", "reason": "breaker open for 3.0s more"},
        {"alias": "hang", "reason": "intent 'code' not supported"},
    ]
    message = "no eligible model: " + "; ".join(f"{e['alias']}: {e['reason']}" for e in excluded)
    shown = _view("secret-a").result(_failed(message, excluded))
    assert shown["trace"]["eligibility"]["excluded"] == [excluded[1]]
    assert shown["errors"][0] == {
        "code": "no_eligible_model",
        "message": "no eligible model: fast: breaker open for 3.0s more",
    }
    # none left: the message ends where the list began
    alone = f"no eligible model: slow: {excluded[0]['reason']}"
    only = _view("secret-a").result(_failed(alone, [excluded[0]]))
    assert only["trace"]["eligibility"]["excluded"] == []
    assert only["errors"][0]["message"] == "no eligible model"


def test_a_provider_disabled_or_held_out_reads_unavailable_everywhere() -> None:
    excluded = [
        {"alias": "gpt-x", "reason": "provider disabled: missing API key: set OTHER_API_KEY"},
        {"alias": "fast", "reason": "provider sim held out: auth error: no such key"},
    ]
    attempts = [
        {"n": 1, "alias": "fast", "provider": "sim", "outcome": "unavailable", "error": HELD}
    ]
    message = f"2 attempt(s) failed; last: fast: {HELD} (sim)"
    shown = _view("secret-a").result(_failed(message, excluded, attempts))
    assert [e["reason"] for e in shown["trace"]["eligibility"]["excluded"]] == [
        "provider other unavailable",
        "provider sim unavailable",
    ]
    assert shown["trace"]["attempts"][0]["error"] == "provider sim unavailable"
    assert (
        shown["errors"][0]["message"]
        == "2 attempt(s) failed; last: fast: provider sim unavailable (sim)"
    )
    assert shown["errors"][0]["code"] == "no_eligible_model"


def test_a_model_turned_away_as_silent_reads_unavailable_to_a_key() -> None:
    """How long a call has waited on a silent model may be another team's call: a key
    that is not an admin's reads the provider unavailable, as for a held-out one."""
    silent = "silent: an attempt sent 9.0 s ago has had no answer yet (the provider may be hanging)"
    attempts = [
        {"n": 1, "alias": "fast", "provider": "sim", "outcome": "unavailable", "error": silent}
    ]
    message = f"1 attempt(s) failed; last: fast: {silent} (sim)"
    body = _failed(message, [], attempts)
    shown = _view("secret-a").result(body)
    assert shown["trace"]["attempts"][0]["error"] == "provider sim unavailable"
    assert "9.0 s" not in str(shown)
    assert _view("secret-ops").result(body)["trace"]["attempts"][0]["error"] == silent


def test_the_admin_and_the_open_gateway_see_everything() -> None:
    body = _failed("no eligible model: slow: not allowed", [{"alias": "slow", "reason": "x"}])
    assert _view("secret-ops").result(body) is body
    assert PlatformView(OPEN, CONFIG).result(body) is body


def test_a_calls_failure_event_is_cut_with_what_its_earlier_events_said() -> None:
    texts = CallTexts(_view("secret-a"))
    routed = {
        "type": "call.routed",
        "call_id": "c1",
        "excluded": [
            {"alias": "slow", "reason": "not allowed for this caller"},
            {"alias": "gpt-x", "reason": "provider other held out: quota exhausted: pay up"},
        ],
    }
    assert texts.shown(routed)["excluded"] == [
        {"alias": "gpt-x", "reason": "provider other unavailable"}
    ]
    finished = {
        "type": "attempt.finished",
        "call_id": "c1",
        "provider": "sim",
        "outcome": "unavailable",
        "error": HELD,
    }
    assert texts.shown(finished)["error"] == "provider sim unavailable"
    failed = {
        "type": "call.failed",
        "call_id": "c1",
        "message": "no eligible model: slow: not allowed for this caller; "
        "gpt-x: provider other held out: quota exhausted: pay up; fast: " + HELD,
    }
    assert texts.shown(failed)["message"] == (
        "no eligible model: gpt-x: provider other unavailable; fast: provider sim unavailable"
    )
    assert texts.shown(failed)["message"] == failed["message"]  # the call is forgotten


def test_the_models_a_failure_left_out_are_cut_with_their_list_when_none_is_shown() -> None:
    """``; not tried: ALIAS: reason`` (``told_left_out``) of models the key cannot use:
    a key left with ``...; not tried`` at the end of its message."""
    kept_out = [
        {"alias": "slow", "reason": "max_tokens 20000 above the model's limit of 8000"},
        {"alias": "fast", "reason": "breaker open for 3.0s more"},
    ]
    told = "; ".join(f"{e['alias']}: {e['reason']}" for e in kept_out)
    body = _failed(f"2 attempt(s) failed; last: boom (sim); not tried: {told}", kept_out)
    body["errors"][0]["code"] = "all_models_failed"
    shown = _view("secret-a").result(body)["errors"][0]["message"]
    assert (
        shown
        == "2 attempt(s) failed; last: boom (sim); not tried: fast: breaker open for 3.0s more"
    )
    alone = _failed(
        f"1 attempt(s) failed; last: boom (sim); not tried: {told.split('; ')[0]}", kept_out[:1]
    )
    assert _view("secret-a").result(alone)["errors"][0]["message"] == (
        "1 attempt(s) failed; last: boom (sim)"
    )
