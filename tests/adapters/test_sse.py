"""Framing decoders, key scrubbing, retry hints and the shared error mapping."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchman._errors import (
    AuthError,
    BadReply,
    BadRequest,
    ContentRejected,
    ContextExceeded,
    ModelNotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    StreamBroken,
    UpstreamError,
)
from switchman.adapters._sse import (
    LineDecoder,
    SseDecoder,
    SseEvent,
    error_fields,
    map_error,
    parse_duration,
    retry_after_from_headers,
    scrub,
    should_retry_header,
    stream_error,
)

SSE = (
    b": keep-alive\r\n\r\n"
    b'event: message_start\ndata: {"a":1}\n\n'
    b"data: line one\r\ndata: line two\r\n\r\n"
    b"id: 7\nretry: 100\ndata: caf\xc3\xa9\n\n"
    b"data: [DONE]\n\n"
)
SSE_EVENTS = [
    SseEvent(event="message_start", data='{"a":1}'),
    SseEvent(data="line one\nline two"),
    SseEvent(data="café"),
    SseEvent(data="[DONE]"),
]


def _decode_in_pieces(raw: bytes, cuts: list[int]) -> list[SseEvent]:
    decoder = SseDecoder()
    events: list[SseEvent] = []
    start = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(raw[start:cut])
        start = cut
    events += decoder.feed(raw[start:])
    return events + decoder.close()


def test_sse_decoder_reads_fields_comments_crlf_and_multiline_data() -> None:
    assert _decode_in_pieces(SSE, []) == SSE_EVENTS


@given(st.lists(st.integers(min_value=0, max_value=len(SSE)), max_size=12))
def test_sse_decoder_is_independent_of_chunk_boundaries(cuts: list[int]) -> None:
    assert _decode_in_pieces(SSE, cuts) == SSE_EVENTS


def test_sse_decoder_byte_by_byte_splits_crlf_and_utf8() -> None:
    raw = b"data: \xe2\x82\xac\r\n\r\ndata: x\r\n\r\n"
    assert _decode_in_pieces(raw, list(range(len(raw)))) == [
        SseEvent(data="€"),
        SseEvent(data="x"),
    ]


def test_sse_decoder_flushes_an_event_missing_its_blank_line_at_close() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"last": true}') == []
    assert decoder.close() == [SseEvent(data='{"last": true}')]


def test_sse_decoder_keeps_non_sse_lines_as_raw() -> None:
    raw = b'data: {"x":1}\n\n{\n  "error": {"code": 503}\n}\n\n'
    assert _decode_in_pieces(raw, []) == [
        SseEvent(data='{"x":1}'),
        SseEvent(raw='{\n  "error": {"code": 503}\n}'),
    ]


def test_line_decoder_handles_all_line_breaks_and_a_last_partial_line() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b"a\nb\r\nc\r") == ["a", "b"]
    assert decoder.feed(b"\nd") == ["c"]
    assert decoder.close() == ["d"]


SECRET = "sk-test-51HfVv2d9QpLm3Xz8RtY7uW0aBcDeFgHiJkL"


@pytest.mark.parametrize(
    "text",
    [
        f"Incorrect API key provided: {SECRET}.",
        "Incorrect API key provided: sk-proj-****abcd. You can find it ...",
        "Incorrect API key provided: xa***yz. You can obtain an API key",
        "Authorization: Bearer abcdef123456 rejected",
        "key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv is not valid",
        "token gsk_8s7d6f5g4h3j2k1l0 refused",
        "opaque 5b0e7c1d9a8f4e2b8c6d3a1f0e9d8c7b id",
    ],
)
def test_scrub_removes_the_key_and_key_like_tokens(text: str) -> None:
    cleaned = scrub(text, SECRET)
    assert "[REDACTED]" in cleaned
    for fragment in (SECRET, "****abcd", "xa***yz", "abcdef123456", "AIzaSy", "gsk_8s", "5b0e7c1d"):
        assert fragment not in cleaned


def test_scrub_leaves_ordinary_text_and_urls_alone() -> None:
    text = (
        "Rate limit reached for gpt-5.4-mini on tokens per min. Visit "
        "https://platform.openai.com/account/rate-limits to learn more. "
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    )
    assert scrub(text, SECRET) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("47s", 47.0), ("1.5s", 1.5), ("240ms", 0.24), ("6m0s", 360.0), ("1h", 3600.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "12", "3x", "s"])
def test_parse_duration_rejects_non_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_retry_after_prefers_milliseconds_then_seconds_then_http_date() -> None:
    assert retry_after_from_headers({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_from_headers({"Retry-After": "12"}) == 12.0
    assert retry_after_from_headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_from_headers({"retry-after": "later"}) is None
    assert retry_after_from_headers({}) is None


def test_error_fields_reads_every_shape() -> None:
    openai = error_fields({"error": {"message": "m", "type": "t", "code": "c", "param": None}})
    assert (openai.message, openai.codes) == ("m", ("t", "c"))
    xai = error_fields({"code": "Client specified an invalid argument", "error": "bad"})
    assert (xai.message, xai.codes) == ("bad", ("Client specified an invalid argument",))
    assert error_fields({"error": "model not found"}).message == "model not found"
    mistral = error_fields({"object": "error", "message": "Rate limit", "code": "1300"})
    assert (mistral.message, mistral.codes) == ("Rate limit", ("1300",))
    gemini = error_fields([{"error": {"code": 400, "message": "x", "status": "INVALID_ARGUMENT"}}])
    assert (gemini.status, gemini.codes) == (400, ("INVALID_ARGUMENT",))
    anthropic = error_fields(
        {"error": {"type": "rate_limit_error", "details": {"error_code": "enforced_spend"}}}
    )
    assert anthropic.codes == ("rate_limit_error", "enforced_spend")
    detail = error_fields({"detail": [{"msg": "Field required"}]})
    assert detail.message == "Field required"
    located = error_fields(
        {"detail": [{"loc": ["body", "model"], "msg": "x"}, {"loc": ["body", 0], "msg": "y"}]}
    )
    assert located.message == "body.model: x; body.0: y"
    nested = error_fields({"object": "error", "message": {"detail": "Unauthorized"}})
    assert nested.message == "Unauthorized"


def _body(payload: object) -> bytes:
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("status", "payload", "kind"),
    [
        (401, {"error": {"message": "nope"}}, AuthError),
        (403, {"error": {"message": "region not supported"}}, AuthError),
        (400, {"error": "Incorrect API key provided: xa***yz."}, AuthError),
        (400, {"error": {"message": "x", "code": "invalid_api_key"}}, AuthError),
        (429, {"error": {"message": "slow down"}}, RateLimited),
        (500, {"error": {"message": "boom"}}, UpstreamError),
        (503, {"error": {"message": "overloaded"}}, UpstreamError),
        (529, {"error": {"type": "overloaded_error"}}, UpstreamError),
        (498, {"error": {"code": "capacity_exceeded"}}, UpstreamError),
        (400, {"error": {"code": "context_length_exceeded", "message": "x"}}, ContextExceeded),
        (400, {"error": {"message": "prompt is too long: 9 tokens > 8 maximum"}}, ContextExceeded),
        (400, {"error": {"message": "The input token count (9) exceeds ..."}}, ContextExceeded),
        (413, {"error": {"message": "request too large"}}, ContextExceeded),
        (400, {"error": {"message": "Prompt too long: 8 tokens over the limit"}}, ContextExceeded),
        (400, {"error": "the input length exceeds the context length"}, ContextExceeded),
        (400, {"error": {"code": "content_policy_violation", "message": "no"}}, ContentRejected),
        (400, {"error": {"message": "rejected by our safety system"}}, ContentRejected),
        (
            400,
            {"error": {"message": "Output blocked by content filtering policy"}},
            ContentRejected,
        ),
        (400, {"error": "the request was blocked by a content policy"}, ContentRejected),
        (404, {"error": {"message": "model not found"}}, ModelNotFound),
        (404, {"error": {"type": "not_found_error", "message": "model: x"}}, ModelNotFound),
        (400, {"error": {"code": "model_not_found", "message": "no such model"}}, ModelNotFound),
        (400, {"error": {"message": "x", "type": "invalid_model", "code": 400}}, ModelNotFound),
        (409, {"error": {"message": "conflict"}}, UpstreamError),
        (429, {"code": "c", "error": "Your team has used all available credits."}, QuotaExhausted),
        (403, {"code": "c", "error": "Your team doesn't have any credits yet."}, QuotaExhausted),
        (429, {"code": "Some resource has been exhausted", "error": "slow down"}, RateLimited),
        (400, {"error": {"message": "unknown field 'foo'"}}, BadRequest),
        (422, {"detail": [{"msg": "Field required"}]}, BadRequest),
        (302, {}, BadReply),
    ],
)
def test_map_error_picks_the_branch(
    status: int, payload: object, kind: type[ProviderError]
) -> None:
    error = map_error("p", status, {}, _body(payload), secret=None)
    assert type(error) is kind
    assert (error.provider, error.status) == ("p", status)


def test_map_error_rate_limit_retry_after_sources() -> None:
    headers_first = map_error("p", 429, {"retry-after": "3"}, _body({}), secret=None)
    assert isinstance(headers_first, RateLimited) and headers_first.retry_after == 3.0
    body = _body({"error": {"details": [{"retryDelay": "47s"}]}})
    from_body = map_error("p", 429, {}, body, secret=None)
    assert isinstance(from_body, RateLimited) and from_body.retry_after == 47.0
    hint = _body({"error": {"message": "Please try again in 240ms. Visit ..."}})
    from_text = map_error("p", 429, {}, hint, secret=None)
    assert isinstance(from_text, RateLimited) and from_text.retry_after == pytest.approx(0.24)
    unknown = map_error("p", 429, {}, _body({"error": "quota"}), secret=None)
    assert isinstance(unknown, RateLimited) and unknown.retry_after is None


def test_map_error_5xx_retry_hints() -> None:
    body = _body({"error": {"message": "busy"}})
    header = map_error("p", 503, {"Retry-After": "4", "X-Should-Retry": "True"}, body, secret=None)
    assert isinstance(header, UpstreamError)
    assert (header.retry_after, header.should_retry) == (4.0, True)
    in_body = _body({"error": {"message": "busy", "details": [{"retryDelay": "1.5s"}]}})
    from_body = map_error("p", 503, {}, in_body, secret=None)
    assert isinstance(from_body, UpstreamError) and from_body.retry_after == 1.5
    no = map_error("p", 529, {"x-should-retry": "false"}, body, secret=None)
    assert isinstance(no, UpstreamError) and (no.retry_after, no.should_retry) == (None, False)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-should-retry": "true"}, True),
        ({"X-Should-Retry": " FALSE "}, False),
        ({"x-should-retry": "maybe"}, None),
        ({}, None),
    ],
)
def test_should_retry_header(headers: dict[str, str], expected: bool | None) -> None:
    assert should_retry_header(headers) is expected


def test_map_error_handles_html_and_empty_bodies() -> None:
    html = b"<html><head><title>401 Authorization Required</title></head></html>"
    error = map_error("perplexity", 401, {}, html, secret=None)
    assert isinstance(error, AuthError) and "401 Authorization Required" in error.message
    empty = map_error("p", 500, {}, b"", secret=None)
    assert isinstance(empty, UpstreamError) and empty.message == "HTTP 500"


def test_map_error_never_repeats_the_key() -> None:
    body = _body({"error": {"message": f"Incorrect API key provided: {SECRET}", "code": SECRET}})
    error = map_error("openai", 401, {}, body, secret=SECRET)
    assert SECRET not in str(error) and SECRET not in error.message
    assert isinstance(error, AuthError)


def test_stream_error_before_and_after_output() -> None:
    payload = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    early = stream_error("anthropic", payload, secret=None, output_began=False)
    assert isinstance(early, UpstreamError) and early.status == 529
    late = stream_error("anthropic", payload, secret=None, output_began=True)
    assert isinstance(late, StreamBroken) and "Overloaded" in late.message
    limited = stream_error(
        "x", {"error": {"type": "rate_limit_error"}}, secret=None, output_began=False
    )
    assert isinstance(limited, RateLimited)
    coded = stream_error(
        "g", {"error": {"code": 503, "message": "m"}}, secret=None, output_began=False
    )
    assert isinstance(coded, UpstreamError) and coded.status == 503
    unknown_model = stream_error(
        "x", {"error": {"type": "invalid_model", "message": "m"}}, secret=None, output_began=False
    )
    assert isinstance(unknown_model, ModelNotFound)
    quota = stream_error(
        "x",
        {"error": {"code": "insufficient_quota", "message": "m"}},
        secret=None,
        output_began=False,
    )
    assert isinstance(quota, QuotaExhausted)


def test_a_line_that_never_ends_is_a_broken_stream() -> None:
    from switchman._errors import StreamBroken
    from switchman.adapters._sse import MAX_LINE_CHARS, LineDecoder

    decoder = LineDecoder()
    chunk = b"x" * (1024 * 1024)
    with pytest.raises(StreamBroken, match="without ending"):
        for _ in range(MAX_LINE_CHARS // len(chunk) + 1):
            decoder.feed(chunk)
    # long lines that do end are fine, however much arrives
    decoder = LineDecoder()
    for _ in range(MAX_LINE_CHARS // len(chunk) + 4):
        assert decoder.feed(chunk[:-1] + b"\n") == ["x" * (len(chunk) - 1)]


def test_a_leading_byte_order_mark_is_not_text() -> None:
    from switchman.adapters._sse import LineDecoder

    decoder = LineDecoder()
    assert decoder.feed(b"\xef\xbb") == []  # split across two reads
    assert decoder.feed(b"\xbfdata: hi\n") == ["data: hi"]
    assert decoder.feed(b"\xef\xbb\xbfdata: later\n") == ["\ufeffdata: later"]  # only the first


def test_a_redirect_names_where_it_points_and_why_it_is_not_followed() -> None:
    from switchman._errors import BadReply
    from switchman.adapters._sse import ErrorFields, classify

    error = classify(
        "p",
        301,
        {"location": "https://api.example.com/v2/chat"},
        ErrorFields(message=""),
        secret=None,
    )
    assert isinstance(error, BadReply) and error.status == 301
    assert "redirected (HTTP 301) to https://api.example.com/v2/chat" in str(error)
    assert "base_url" in str(error)
