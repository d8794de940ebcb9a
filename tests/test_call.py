"""Building a Call: from untrusted JSON (every bad field named) and from Python."""

from __future__ import annotations

import pytest

import switchman
from switchman import Call, Options, Params, Timeouts, ValidationError, call_from_dict


def fields(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {f.field: f.message for f in exc.value.fields}


def test_a_good_call_round_trips_from_json() -> None:
    call = call_from_dict(
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
            ],
            "model": "claude",
            "intent": "code",
            "caller": {"handle": "team-a", "account_id": "acct-1"},
            "min_trust": "standard",
            "capabilities": ["code"],
            "params": {
                "temperature": 0.2,
                "top_p": 1,
                "max_tokens": 100,
                "seed": 7,
                "stop": ["END"],
            },
            "options": {
                "verbosity": "minimal",
                "determinism": "strict",
                "timeouts": {"ttft_ms": 1000, "soft_ms": 5000, "hard_ms": 10000},
                "redaction": {"mode": "auto"},
                "max_cost_usd": 0.5,
                "fallback": ["gpt"],
            },
            "metadata": {"ticket": "T-1"},
        }
    )
    assert call.params.temperature == 0.2 and call.params.top_p == 1.0
    assert call.options.timeouts.hard_ms == 10000
    assert call.chat()[0].role == "system"
    assert switchman.to_jsonable(call)["params"]["stop"] == ["END"]


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as exc:
        call_from_dict(
            {
                "prompt": "hi",
                "bogus": 1,
                "intent": "chitchat",
                "min_trust": "root",
                "params": {"temperature": 3, "top_p": -0.1, "seed": "seven", "max_tokens": 0},
                "options": {"timeouts": {"hard_ms": 0, "extra": 1}, "verbosity": "loud"},
            }
        )
    bad = fields(exc)
    assert set(bad) == {
        "bogus",
        "intent",
        "min_trust",
        "params.temperature",
        "params.top_p",
        "params.seed",
        "params.max_tokens",
        "options.timeouts.hard_ms",
        "options.timeouts.extra",
        "options.verbosity",
    }
    assert bad["bogus"] == "unknown field"
    assert "between 0 and 2" in bad["params.temperature"]
    assert "integer" in bad["params.seed"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({}, "prompt"),
        ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "prompt"),
        ({"prompt": "x" * 1_000_001}, "prompt"),
        ({"messages": [{"role": "system", "content": "only a system turn"}]}, "messages"),
        ({"messages": [{"role": "bot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": "hello"}, "messages"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "a", "params": {"seed": 2**31}}, "params.seed"),
        ({"prompt": "a", "params": {"seed": -1}}, "params.seed"),
        ({"prompt": "a", "params": {"temperature": True}}, "params.temperature"),
        ({"prompt": "a", "params": {"stop": ["a", "b", "c", "d", "e"]}}, "params.stop"),
        (
            {"prompt": "a", "options": {"timeouts": {"ttft_ms": 5000, "hard_ms": 1000}}},
            "options.timeouts.ttft_ms",
        ),
        ({"prompt": "a", "options": {"max_cost_usd": -1}}, "options.max_cost_usd"),
        ({"prompt": "a", "caller": {"handle": ""}}, "caller.handle"),
        ({"prompt": "a", "capabilities": "code"}, "capabilities"),
        ({"prompt": "a", "metadata": [1]}, "metadata"),
    ],
)
def test_each_kind_of_bad_value(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        call_from_dict(body)
    assert field in fields(exc)


def test_not_an_object() -> None:
    with pytest.raises(ValidationError) as exc:
        call_from_dict(["prompt"])
    assert fields(exc) == {"body": "must be a JSON object"}


def test_constructing_a_bad_call_in_python_fails_as_clearly() -> None:
    with pytest.raises(ValidationError, match=r"temperature: must be between 0 and 2; got 5"):
        Params(temperature=5)
    with pytest.raises(ValidationError, match="intent"):
        Call(prompt="hi", intent="chitchat")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="soft_ms: must not exceed hard_ms"):
        Timeouts(soft_ms=2000, hard_ms=1000)
    with pytest.raises(ValidationError, match="verbosity"):
        Options(verbosity="loud")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="give exactly one of prompt or messages"):
        Call()
    assert Call(messages=[{"role": "user", "content": "hi"}]).chat()[0].content == "hi"  # type: ignore[list-item]
