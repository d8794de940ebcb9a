from __future__ import annotations

import pytest

from switchman.gateway._status import safe_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://u:p@host.example:8443/v1?key=abc#x", "https://host.example:8443/v1"),
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("", ""),
        ("http://host:notaport/x", ""),
    ],
)
def test_safe_url_drops_credentials_and_query(url: str, expected: str) -> None:
    assert safe_url(url) == expected
