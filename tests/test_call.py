"""Building a Call: from untrusted JSON (every bad field named) and from Python."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import switchman
from switchman import (
    Call,
    Caller,
    Message,
    Options,
    Params,
    RedactionOptions,
    RedactionOverride,
    Timeouts,
    ValidationError,
    call_from_dict,
)
from switchman._call import MAX_PROMPT_CHARS


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
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt"),
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


# -- a string where a list belongs ---------------------------------------------------------

ACKS = ("output_may_contain_secrets", "output_may_contain_personal_data")


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Params(stop="END"), "stop"),
        (lambda: Options(fallback="gpt"), "fallback"),
        (lambda: Call(prompt="hi", capabilities="code"), "capabilities"),
        (
            lambda: RedactionOverride(enabled=True, acknowledgements=ACKS[0], reason="r"),
            "acknowledgements",
        ),
    ],
)
def test_a_string_is_refused_where_a_list_of_strings_belongs(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        build()
    assert fields(exc) == {field: "must be a list of strings, not a string"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "a", "params": {"stop": "END"}}, "params.stop"),
        ({"prompt": "a", "options": {"fallback": "gpt"}}, "options.fallback"),
        ({"prompt": "a", "capabilities": "code"}, "capabilities"),
    ],
)
def test_a_string_for_a_list_is_refused_from_json_too(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        call_from_dict(body)
    assert field in fields(exc)


def test_list_fields_name_their_bad_items() -> None:
    with pytest.raises(ValidationError) as exc:
        Call(
            prompt="hi",
            capabilities=["code", ""],
            params=Params(),
            options=Options(),
        )
    assert fields(exc) == {"capabilities[1]": "must be a non-empty string"}
    with pytest.raises(ValidationError) as exc:
        Params(stop=5)  # type: ignore[arg-type]
    assert fields(exc) == {"stop": "must be a list of strings; got int"}
    with pytest.raises(ValidationError) as exc:
        Params(stop=["a", "b", "c", "d", "e"])
    assert fields(exc) == {"stop": "must be at most 4 strings; got 5"}
    assert Params(stop=["END"]).stop == ("END",)  # a list is fine, held as a tuple


# -- the redaction override ------------------------------------------------------------------


def test_a_truthy_non_bool_does_not_turn_redaction_off() -> None:
    with pytest.raises(ValidationError) as exc:
        RedactionOverride(enabled="no", acknowledgements=ACKS, reason="audit")  # type: ignore[arg-type]
    assert fields(exc) == {"enabled": "must be true or false; got str"}
    # the same mistake through JSON is refused the same way
    body = {
        "prompt": "hi",
        "options": {
            "redaction": {
                "mode": "off",
                "override": {"enabled": "no", "acknowledgements": list(ACKS), "reason": "audit"},
            }
        },
    }
    with pytest.raises(ValidationError) as exc:
        call_from_dict(body)
    assert set(fields(exc)) == {"options.redaction.override.enabled"}


def test_every_field_of_the_override_is_checked() -> None:
    with pytest.raises(ValidationError) as exc:
        RedactionOverride(enabled=1, acknowledgements=[ACKS[0], 2], reason=None)  # type: ignore[arg-type]
    assert fields(exc) == {
        "enabled": "must be true or false; got int",
        "acknowledgements[1]": "must be a non-empty string",
        "reason": "must be a string",
    }
    with pytest.raises(ValidationError) as exc:
        RedactionOptions(mode="off", override={"enabled": True})  # type: ignore[arg-type]
    assert fields(exc) == {"override": "must be a RedactionOverride or None"}
    good = RedactionOverride(enabled=True, acknowledgements=ACKS, reason="audit")
    assert RedactionOptions(mode="off", override=good).override is good


# -- messages ---------------------------------------------------------------------------------


def test_message_mappings_are_converted() -> None:
    call = Call(
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    )  # type: ignore[list-item]
    assert call.messages == (
        Message(role="system", content="be brief"),
        Message(role="user", content="hi"),
    )


def test_a_bad_message_mapping_is_named_by_index_beside_other_errors() -> None:
    with pytest.raises(ValidationError) as exc:
        Call(
            messages=[  # type: ignore[list-item]
                {"role": "user", "content": "hi"},
                {"role": "bot", "content": "x", "name": "n"},
                {"content": "y"},
                "plain",
            ],
            intent="chitchat",  # type: ignore[arg-type]
        )
    bad = fields(exc)
    assert set(bad) == {
        "messages[1].role",
        "messages[1].name",
        "messages[2].role",
        "messages[3]",
        "intent",
    }
    assert bad["messages[1].name"] == "unknown field"
    assert bad["messages[2].role"] == "is required"


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("hello", "must be a list of messages, not a string"),
        (5, "must be a list of messages; got int"),
        ({"role": "user", "content": "hi"}, "must be a list of messages; got dict"),
    ],
)
def test_messages_that_are_not_a_list_are_a_validation_error(
    messages: object, message: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        Call(messages=messages)  # type: ignore[arg-type]
    assert fields(exc) == {"messages": message}


@pytest.mark.parametrize("content", ["", "   "])
def test_empty_message_content_is_refused_like_an_empty_prompt(content: str) -> None:
    expected = {"messages[1].content": "must be a non-empty string"}
    with pytest.raises(ValidationError) as exc:
        Call(messages=[Message(role="system", content="s"), Message(role="user", content=content)])
    assert fields(exc) == expected
    with pytest.raises(ValidationError) as exc:
        call_from_dict(
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": content}]}
        )
    assert fields(exc) == expected


def test_one_bad_message_from_json_hides_neither_the_others_nor_the_call() -> None:
    with pytest.raises(ValidationError) as exc:
        call_from_dict(
            {
                "messages": [
                    {"role": "bot", "content": "hi"},
                    {"role": "user", "content": ""},
                    {"role": "user", "content": "ok", "extra": 1},
                ],
                "min_trust": "root",
            }
        )
    # not "prompt: give exactly one of prompt or messages": the messages were given
    assert set(fields(exc)) == {
        "messages[0].role",
        "messages[1].content",
        "messages[2].extra",
        "min_trust",
    }


# -- text that cannot be encoded ------------------------------------------------------------

LONE = "hi \ud800"
LONE_MESSAGE = "must be valid Unicode text: lone surrogate at position 3"


@pytest.mark.parametrize(
    ("json_text", "field"),
    [
        ('{"prompt": "hi \\ud800"}', "prompt"),
        ('{"messages": [{"role": "user", "content": "hi \\ud800"}]}', "messages[0].content"),
        ('{"prompt": "a", "params": {"stop": ["hi \\ud800"]}}', "params.stop[0]"),
        ('{"prompt": "a", "caller": {"handle": "hi \\ud800"}}', "caller.handle"),
        ('{"prompt": "a", "model": "hi \\ud800"}', "model"),
        ('{"prompt": "a", "metadata": {"t": ["hi \\ud800"]}}', "metadata.t[0]"),
    ],
)
def test_a_lone_surrogate_from_json_is_refused(json_text: str, field: str) -> None:
    body = json.loads(json_text)
    with pytest.raises(ValidationError) as exc:
        call_from_dict(body)
    assert fields(exc) == {field: LONE_MESSAGE}
    json.dumps(exc.value.fields[0].field, ensure_ascii=False).encode()  # the error encodes


def test_a_lone_surrogate_in_python_is_refused() -> None:
    for build, field in [
        (lambda: Call(prompt=LONE), "prompt"),
        (lambda: Call(messages=[Message(role="user", content=LONE)]), "messages[0].content"),
        (lambda: Call(messages=[{"role": "user", "content": LONE}]), "messages[0].content"),  # type: ignore[list-item]
        (lambda: Params(stop=(LONE,)), "stop[0]"),
        (lambda: Caller(handle=LONE), "handle"),
        (lambda: Caller(account_id=LONE), "account_id"),
    ]:
        with pytest.raises(ValidationError) as exc:
            build()
        assert fields(exc) == {field: LONE_MESSAGE}, field
    assert Call(prompt="héllo \U0001f600").prompt == "héllo \U0001f600"  # real text is fine


def test_an_unknown_key_with_a_lone_surrogate_is_named_encodably() -> None:
    with pytest.raises(ValidationError) as exc:
        call_from_dict(json.loads('{"prompt": "a", "x\\ud800": 1}'))
    assert fields(exc) == {"x\\ud800": "unknown field"}


def test_a_stop_sequence_may_be_whitespace_but_not_empty() -> None:
    from switchman import Params

    assert Params(stop=("\n",)).stop == ("\n",)
    assert tuple(Params(stop=["\n\n", " "]).stop) == ("\n\n", " ")
    with pytest.raises(switchman.ValidationError, match=r"stop\[0\]: must be a non-empty string"):
        Params(stop=("",))


@pytest.mark.parametrize(
    ("metadata", "field", "said"),
    [
        ({"x": {1, 2}}, "metadata.x", "is not a JSON value (set)"),
        ({"x": [b"raw"]}, "metadata.x[0]", "is not a JSON value (bytes)"),
        ({"f": float("nan")}, "metadata.f", "must be a finite number (JSON has no NaN)"),
        ({"n": [10**4000] * 20}, "metadata", "comes to more than 65,536 characters as JSON"),
    ],
)
def test_metadata_is_json_and_held_to_its_size(metadata: Any, field: str, said: str) -> None:
    """It is written back wherever the call goes (results, traces, the job store)."""
    with pytest.raises(ValidationError) as exc:
        Call(prompt="hi", metadata=metadata)
    assert fields(exc)[field] == said
    Call(prompt="hi", metadata={"ok": [1, 2.5, None, True, "x", {"deep": [10**30]}]})


@pytest.mark.parametrize("handle", ["te\nam", "te\tam", "team\u202e", "\x00team"])
def test_a_handle_with_a_control_or_format_character_is_refused(handle: str) -> None:
    """A handle names spend, budgets, jobs and log lines: a line break or a bidi control in
    it forges a log line, as one in a configured name does."""
    with pytest.raises(ValidationError) as caught:
        Caller(handle=handle)
    (error,) = caught.value.fields
    assert error.field == "handle" and "control or format character" in error.message


def test_a_table_where_an_object_belongs_is_named_with_the_class_to_use() -> None:
    """``Call(options={...})`` as the README's JSON shows them said "must be a Options"."""
    with pytest.raises(switchman.ValidationError) as info:
        switchman.Call(prompt="x", options={"fallback": ["auto"]}, params={"max_tokens": 3})
    said = {f.field: f.message for f in info.value.fields}
    assert said == {
        "params": "must be a switchman.Params, such as switchman.Params(max_tokens=200); got dict",
        "options": 'must be a switchman.Options, such as switchman.Options(fallback=("auto",));'
        " got dict",
    }
