"""The router's own secrets hidden with redaction off: stream equals whole at every cut."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy._known import KnownValues, hide_known, hide_known_cut

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


#: keys whose ends overlap others' starts: the stream must still decide as the whole does
OVERLAPPING = ("KEYAAAA0000-1", "0000-1BBBBKEY", "-1BBBB")


def streams_as_whole(keys: tuple[str, ...], text: str, cuts: list[int]) -> str:
    """``text`` fed to ``KnownValues(keys)`` in pieces of the ``cuts`` sizes (in turn): it
    gives what ``hide_known`` gives the whole, with the same counts, and holds back only
    the start of a key, never more. The whole, hidden."""
    whole, counts = hide_known(text, keys)
    stream = KnownValues(keys)
    out, at, i = [], 0, 0
    while at < len(text):
        size = cuts[i % len(cuts)]
        out.append(stream.feed(text[at : at + size]))
        at, i = at + size, i + 1
        held = stream._held
        assert not held or any(s.startswith(held) and s != held for s in keys)
    assert "".join(out) + stream.flush() == whole
    assert stream.counts == counts
    return whole


@given(
    pieces=st.lists(st.sampled_from([*OVERLAPPING, "KEYAAAA", "0000", "-1", "BBBB", " ", "x"])),
    cuts=st.lists(st.integers(min_value=1, max_value=9), min_size=1),
)
@settings(max_examples=400, deadline=None)
def test_overlapping_keys_stream_as_whole(pieces: list[str], cuts: list[int]) -> None:
    whole = streams_as_whole(OVERLAPPING, "".join(pieces), cuts)
    for key in OVERLAPPING:  # (no key is left whole in what was shown)
        assert key not in whole


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("key sk-cut-test-key-000000000001 and", "key [REDACTED:api_key] and"),
        ("key sk-cut-test-key-0000", "key [REDACTED:api_key]"),  # cut inside it
        ("key sk-cut-t", "key [REDACTED:api_key]"),  # eight characters of it
        ("key sk-cut-", "key sk-cut-"),  # seven: too few to tell from a word
        ("plain text", "plain text"),
    ],
)
def test_a_text_cut_inside_a_secret_hides_its_beginning(text: str, hidden: str) -> None:
    """A stream that broke inside a key handed its first characters (39 of 42) to the next
    model as the answer so far."""
    assert hide_known_cut(text, ("sk-cut-test-key-000000000001",)) == hidden
