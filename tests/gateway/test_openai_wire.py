from __future__ import annotations

from typing import Any

import pytest

from switchman._call import MAX_PROMPT_CHARS, Message
from switchman._result import (
    AttemptRecord,
    EligibilityTrace,
    ErrorInfo,
    Exclusion,
    Result,
    Trace,
)
from switchman.gateway._http import HttpError
from switchman.gateway._openai import (
    FAILURE_STATUS,
    chat_request,
    error_body,
    failure,
    fallbacks,
)


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_maps_openai_fields_to_the_call() -> None:
    chat = chat_request(
        _body(
            messages=[
                {"role": "developer", "content": "be brief"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
                {"role": "assistant", "content": "ok", "name": "bot"},
                {"role": "user", "content": "more"},
            ],
            model="best",
            temperature=0.5,
            top_p=0.9,
            max_tokens=50,
            seed=7,
            stop="END",
            user="alice",
            metadata={"ticket": "42"},
            intent="code",
            stream=True,
            stream_options={"include_usage": True},
            frequency_penalty=0.1,  # unknown to switchman: ignored
            logit_bias={},
        )
    )
    call = chat.call
    assert call.messages == (
        Message(role="system", content="be brief"),
        Message(role="user", content="ab"),
        Message(role="assistant", content="ok"),
        Message(role="user", content="more"),
    )
    assert call.model == "best" and call.intent == "code"
    assert (call.params.temperature, call.params.top_p, call.params.max_tokens) == (0.5, 0.9, 50)
    assert (call.params.seed, call.params.stop) == (7, ("END",))
    assert (call.caller.handle, call.caller.account_id) == ("alice", "alice")
    assert call.metadata == {"ticket": "42"}
    assert chat.stream and chat.include_usage


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    chat = chat_request(_body(max_tokens=10, max_completion_tokens=20, stop=["a", "b"]))
    assert chat.call.params.max_tokens == 20
    assert chat.call.params.stop == ("a", "b")
    assert not chat.stream and not chat.include_usage
    assert chat.call.caller.handle == "anonymous"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"seed": -3}, "seed"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": 5}, "stop"),
        ({"n": 2}, "n"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": "y"}}, "stream_options"),
        ({"user": 5}, "user"),
        ({"metadata": []}, "metadata"),
        ({"intent": "dance"}, "intent"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
        # asking for what switchman does not do gets a 400, not a text answer in its place
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        # a classifier's forced labels cannot be honoured across providers
        ({"logit_bias": {"1734": -100}}, "logit_bias"),
        # a replayed tool call names what is not supported, not its null content
        (
            {
                "messages": [
                    {"role": "user", "content": "weather?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "user", "content": "and?"},
                ]
            },
            "messages[1].tool_calls",
        ),
        # /v1 sends no prompt: the size limit names messages
        ({"messages": [{"role": "user", "content": "x" * (MAX_PROMPT_CHARS + 1)}]}, "messages"),
    ],
)
def test_bad_values_are_400_naming_the_param(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(HttpError) as info:
        chat_request(_body(**extra))
    assert info.value.status == 400
    assert info.value.param == param


def test_without_a_token_limit_the_call_asks_for_a_full_answer() -> None:
    assert chat_request(_body()).call.options.verbosity == "full"
    for limit in ({"max_tokens": 50}, {"max_completion_tokens": 50}):
        call = chat_request(_body(**limit)).call
        assert call.options.verbosity == "standard" and call.params.max_tokens == 50


@pytest.mark.parametrize("empty", ["", "   \n", None, [], [{"type": "text", "text": " "}]])
def test_an_empty_assistant_turn_of_a_replayed_history_is_dropped(empty: Any) -> None:
    chat = chat_request(
        _body(
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": empty},
                {"role": "user", "content": "again"},
            ]
        )
    )
    assert chat.call.messages == (
        Message(role="user", content="hi"),
        Message(role="user", content="again"),
    )


@pytest.mark.parametrize("role", ["system", "developer"])
@pytest.mark.parametrize("empty", ["", "  ", [{"type": "text", "text": ""}], [], None, "-"])
def test_an_optional_instruction_left_empty_is_dropped_as_openai_takes_it(
    role: str, empty: Any
) -> None:
    """An empty instruction, its content null or left out too ("-" here), is no mistake."""
    instruction = {"role": role} if empty == "-" else {"role": role, "content": empty}
    chat = chat_request(
        _body(
            messages=[
                instruction,
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "again"},
            ]
        )
    )
    assert chat.call.messages == (
        Message(role="user", content="hi"),
        Message(role="assistant", content="hello"),
        Message(role="user", content="again"),
    )


def test_instructions_alone_are_answered_as_openai_does() -> None:
    chat = chat_request(
        _body(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": "List three colours."},
            ]
        )
    )
    assert chat.call.messages == (
        Message(role="system", content="Be brief."),
        Message(role="user", content="List three colours."),
    )


def test_harmless_defaults_of_sdks_are_accepted() -> None:
    # what clients send by default must not be refused
    chat = chat_request(
        _body(
            tools=[],
            tool_choice="none",
            response_format={"type": "text"},
            logprobs=False,
            modalities=["text"],
            presence_penalty=0,
            frequency_penalty=0,
        )
    )
    assert chat.call.params.max_tokens is None


def test_every_bad_param_is_listed() -> None:
    with pytest.raises(HttpError) as info:
        chat_request(_body(temperature=9, top_p=9))
    details = info.value.details
    assert details is not None
    assert {d["field"] for d in details} == {"temperature", "top_p"}


def test_non_object_body_is_400() -> None:
    with pytest.raises(HttpError) as info:
        chat_request([1, 2])
    assert info.value.status == 400


def _attempt(n: int, alias: str) -> AttemptRecord:
    return AttemptRecord(
        n=n, alias=alias, provider="p", started_at=0, ended_at=1, ttft_ms=None, outcome="error"
    )


def test_fallbacks_count_model_switches_not_retries() -> None:
    def result(*aliases: str) -> Result:
        attempts = tuple(_attempt(i, a) for i, a in enumerate(aliases))
        return Result(call_id="c", status="complete", trace=Trace(attempts=attempts))

    assert fallbacks(result()) == 0
    assert fallbacks(result("a")) == 0
    assert fallbacks(result("a", "a")) == 0
    assert fallbacks(result("a", "a", "b", "c")) == 2


@pytest.mark.parametrize(("code", "status"), sorted(FAILURE_STATUS.items()))
def test_failed_results_map_to_their_status(code: str, status: int) -> None:
    err = failure(
        Result(call_id="c", status="failed", errors=(ErrorInfo(code=code, message="why"),))
    )
    assert (err.status, err.code, err.message) == (status, code, "why")


def _failed(*attempts: tuple[str, int | None], lead: ErrorInfo | None = None) -> Result:
    """A failed result as the router reports it: the cause first, then each attempt's error."""
    records = tuple(
        AttemptRecord(
            n=i,
            alias="m",
            provider="p",
            started_at=0,
            ended_at=1,
            ttft_ms=None,
            outcome=outcome,  # type: ignore[arg-type]
            status_code=status,
        )
        for i, (outcome, status) in enumerate(attempts, start=1)
    )
    codes = {
        "context_exceeded": "all_models_failed",
        "error": "all_models_failed",
        "content_filtered": "refused",
        "unavailable": "no_eligible_model",
    }
    errors = tuple(
        ErrorInfo(
            code="permission_denied" if status in (401, 403) else codes[outcome],
            message=f"provider says {status}",
            provider="p",
            status=status,
        )
        for outcome, status in attempts
    )
    if lead is not None:
        errors = (lead, *errors)
    return Result(call_id="c", status="failed", errors=errors, trace=Trace(attempts=records))


def _lead(code: str, status: int | None = None, provider: str | None = "p") -> ErrorInfo:
    return ErrorInfo(code=code, message="2 attempt(s) failed", provider=provider, status=status)


@pytest.mark.parametrize(
    ("result", "status", "code"),
    [
        # the request's own fault: sending it again fails again
        (_failed(("context_exceeded", 400)), 400, "context_length_exceeded"),
        (_failed(("context_exceeded", None)), 400, "context_length_exceeded"),
        (_failed(("error", 413)), 400, "invalid_request"),
        (_failed(("error", 422)), 400, "invalid_request"),
        (
            _failed(
                ("error", 400), ("context_exceeded", 400), lead=_lead("all_models_failed", 400)
            ),
            400,
            "context_length_exceeded",
        ),
        # not only the request's: another model was down, held out, or the deadline passed
        (
            _failed(
                ("context_exceeded", 400), ("error", 500), lead=_lead("all_models_failed", 500)
            ),
            503,
            "all_models_failed",
        ),
        (
            _failed(("error", 400), ("unavailable", None), lead=_lead("all_models_failed", 400)),
            503,
            "all_models_failed",
        ),
        (
            _failed(("context_exceeded", 400), lead=_lead("timeout", None, provider=None)),
            504,
            "timeout",
        ),
        # a model the provider does not serve, and content a provider refuses, keep theirs
        (_failed(("error", 404)), 503, "all_models_failed"),
        (_failed(("content_filtered", 400)), 422, "refused"),
        # the provider rejects switchman's key: upstream, not the gateway key's 403
        (_failed(("error", 401)), 502, "provider_key_rejected"),
        (
            _failed(("error", 403), ("error", 401), lead=_lead("permission_denied", 401)),
            502,
            "provider_key_rejected",
        ),
    ],
)
def test_failed_results_answer_by_their_cause(result: Result, status: int, code: str) -> None:
    err = failure(result)
    assert (err.status, err.code) == (status, code)
    if status == 400:
        assert err.message == result.errors[0].message
    # the SDK is told not to resend a key rejection, nor a call whose deadline passed
    retry = dict(err.headers).get(b"x-should-retry")
    assert retry == (b"false" if status in (502, 504) else None)


def test_a_provider_key_rejection_names_the_provider_and_its_words() -> None:
    err = failure(_failed(("error", 403), ("error", 401), lead=_lead("permission_denied", 401)))
    assert err.message == "the provider p rejected switchman's API key for it (HTTP 401): " + (
        "provider says 401"
    )
    # a gateway-level denial (no provider) stays a 403
    gateway = Result(
        call_id="c", status="failed", errors=(ErrorInfo(code="permission_denied", message="no"),)
    )
    assert failure(gateway).status == 403


def _unrouted(*reasons: str) -> Result:
    """A call the router tried no model for: each model left out for its reason."""
    excluded = tuple(Exclusion(alias=f"m{i}", reason=r) for i, r in enumerate(reasons))
    message = "no eligible model: " + "; ".join(f"{e.alias}: {e.reason}" for e in excluded)
    return Result(
        call_id="c",
        status="failed",
        errors=(ErrorInfo(code="no_eligible_model", message=message),),
        trace=Trace(eligibility=EligibilityTrace(excluded=excluded)),
    )


TOO_SMALL = "context window 32768 too small for 250004 input + 1024 output tokens"


def test_a_prompt_too_long_for_every_model_is_a_400_context_length_exceeded() -> None:
    result = _unrouted(TOO_SMALL, TOO_SMALL.replace("32768", "131072"))
    err = failure(result)
    assert (err.status, err.code, err.param) == (400, "context_length_exceeded", "messages")
    assert err.message == "no eligible model for this request: m0: " + TOO_SMALL + (
        "; m1: " + TOO_SMALL.replace("32768", "131072")
    )
    assert error_body(err)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "reasons",
    [
        (TOO_SMALL, "breaker open for 4.0s more"),  # another model may be back soon
        ("breaker open for 4.0s more",),
        (),
    ],
)
def test_no_eligible_model_for_another_reason_stays_503(reasons: tuple[str, ...]) -> None:
    err = failure(_unrouted(*reasons))
    assert (err.status, err.code) == (503, "no_eligible_model")


def test_the_cost_header_is_plain_decimals_to_the_nano_dollar() -> None:
    from switchman.gateway._openai import _decimal

    assert [_decimal(x) for x in (2.3e-05, 0.0, 1.5, 0.000000001, 12.3456789012)] == [
        "0.000023",
        "0",
        "1.5",
        "0.000000001",
        "12.345678901",
    ]
