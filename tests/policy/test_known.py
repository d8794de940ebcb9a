"""The router's own secrets hidden with redaction off: stream equals whole at every cut."""

from __future__ import annotations

import pytest

from switchman.policy._known import KnownValues, hide_known

SECRETS = ("Qm7Xk2Lp9Wv4Tn8Rk3Jp6Hs1Df5Ga0Ze", "team-a-gateway-secret-7731")
TEXT = (
    "Here: Qm7Xk2Lp9Wv4Tn8Rk3Jp6Hs1Df5Ga0Ze, and team-a-gateway-secret-7731 twice:"
    " team-a-gateway-secret-7731. Mail ann@example.com."
)


def test_whole_text() -> None:
    text, counts = hide_known(TEXT, SECRETS)
    assert text == (
        "Here: [REDACTED:api_key], and [REDACTED:api_key] twice: [REDACTED:api_key]."
        " Mail ann@example.com."
    )
    assert counts == {"api_key": 3}
    assert hide_known("nothing here", SECRETS) == ("nothing here", {})
    assert hide_known("anything", ()) == ("anything", {})


@pytest.mark.parametrize("size", [1, 2, 3, 7, 31, 32, 33, 500])
def test_stream_equals_whole_at_every_cut(size: int) -> None:
    whole, counts = hide_known(TEXT, SECRETS)
    for first in range(len(TEXT)):  # every first cut, then pieces of ``size``
        stream = KnownValues(SECRETS)
        pieces = [TEXT[:first]] + [TEXT[i : i + size] for i in range(first, len(TEXT), size)]
        out = "".join(stream.feed(p) for p in pieces) + stream.flush()
        assert out == whole, (first, size)
        assert stream.counts == counts
