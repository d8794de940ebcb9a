"""A transport error never repeats the request's credentials, in any form the exception
shows them (httpcore quotes a header it refused as bytes)."""

from __future__ import annotations

import httpcore
import httpx

from switchman.adapters._base import HttpRequest
from switchman.adapters._http import _secrets_of, _transport_error

KEY = "LEAKCANARYnl0123"


def test_the_credentials_of_a_request_are_its_auth_header_values_and_tokens() -> None:
    http = HttpRequest(
        method="POST",
        url="https://api.example.com/v1/chat/completions",
        headers={
            "Authorization": f"Bearer {KEY}",
            "x-api-key": "anthropic-style",
            "x-goog-api-key": "gemini-style",
            "content-type": "application/json",
        },
    )
    assert set(_secrets_of(http)) == {f"Bearer {KEY}", KEY, "anthropic-style", "gemini-style"}


def test_a_header_the_transport_refused_is_not_quoted_back() -> None:
    refused = httpcore.LocalProtocolError(f"Illegal header value {(KEY + chr(10)).encode()!r}")
    error = _transport_error(
        refused, "anthropic", None, False, "https://api.example.com", (KEY + "\n",)
    )
    assert KEY not in error.message and "[REDACTED]" in error.message
    encoding = httpx.LocalProtocolError(f"'ascii' codec can't encode: 'Bearer {KEY}\u201c'")
    error = _transport_error(encoding, "openai", None, False, "", (f"Bearer {KEY}\u201c", KEY))
    assert KEY not in error.message
