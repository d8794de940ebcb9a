"""The router's own secrets, hidden from an answer even when its redaction is off (pure).

Turning redaction off (with its override and acknowledgements) is the caller's choice about
the answer's own content: personal data and secrets the model writes. The operator's
provider keys and the other teams' gateway keys are not the caller's to see, whatever it
chose, so an answer that echoes one (a prompt injection, a provider's error text) shows
``[REDACTED:api_key]`` in its place all the same. Only exact values are looked for (the
same ``known_secrets`` that full redaction finds by value).
"""

from __future__ import annotations

import functools
import re
from typing import Final

from switchman.policy._patterns_values import tag

KIND = "api_key"


@functools.lru_cache(maxsize=8)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str]:
    """The secrets as one alternation, longest first: at each place the longest that
    matches wins, and the text is read once, left to right, whole or streamed alike."""
    return re.compile("|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)))


def hide_known(text: str, secrets: tuple[str, ...]) -> tuple[str, dict[str, int]]:
    """``text`` with every occurrence of ``secrets`` replaced, left to right (where two
    overlap, the first to start goes), and how many were."""
    if not secrets:
        return text, {}
    hidden, found = _pattern(secrets).subn(tag(KIND), text)
    return hidden, ({KIND: found} if found else {})


#: a secret's beginning this long or longer, at the end of a text cut short, is hidden
#: too: what the rest of the text would have been is not known (``CREDENTIAL_MIN``)
CUT_SECRET_MIN: Final = 8


def hide_known_cut(text: str, secrets: tuple[str, ...]) -> str:
    """``hide_known``'s text, and a secret's beginning (``CUT_SECRET_MIN`` characters or
    more) at its end hidden too: ``text`` was cut there (a stream broke), and what follows
    it, the beginning of a key, goes elsewhere (the next model, as its answer so far)."""
    hidden = hide_known(text, secrets)[0]
    if not secrets:
        return hidden
    prefixes, _ = _prefixes(secrets)
    for k in range(min(max(map(len, secrets)) - 1, len(hidden)), CUT_SECRET_MIN - 1, -1):
        if hidden[-k:] in prefixes:
            return hidden[:-k] + tag(KIND)
    return hidden


@functools.lru_cache(maxsize=8)
def _prefixes(secrets: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """The proper prefixes of ``secrets`` (where one could still be arriving), and their
    first characters."""
    found = frozenset(s[:n] for s in secrets for n in range(1, len(s)))
    return found, frozenset(p[0] for p in found)


class KnownValues:
    """``hide_known`` over a stream: what ``feed``/``flush`` return, joined, equals
    ``hide_known(whole text)[0]`` for any chunking. The longest end of the text that
    begins a secret (a proper prefix of one: where a secret could still be arriving) is
    held back until the text after it decides it; the rest goes out at once."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets
        self._longest = max((len(s) for s in secrets), default=0)
        self._held = ""
        self._counts: dict[str, int] = {}

    def _open_from(self, text: str, lo: int, hi: int) -> int:
        """The first place in ``lo..hi`` (``hi`` included) where a secret may start and
        the text ends before it would: its rest may still arrive. -1 if none."""
        prefixes, firsts = _prefixes(self._secrets)
        for q in range(max(lo, len(text) - self._longest + 1), min(hi, len(text) - 1) + 1):
            if text[q] in firsts and text[q:] in prefixes:
                return q
        return -1

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the part now safe to emit (may be ``""``)."""
        if not self._secrets:
            return chunk
        text = self._held + chunk
        out: list[str] = []
        at = 0
        cut = -1  # where the text held back starts
        for match in _pattern(self._secrets).finditer(text):
            # a secret still arriving at or before this match would change it
            if (cut := self._open_from(text, at, match.start())) >= 0:
                break
            out += (text[at : match.start()], tag(KIND))
            at = match.end()
            self._counts[KIND] = self._counts.get(KIND, 0) + 1
        if cut < 0:
            cut = self._open_from(text, at, len(text))
            cut = len(text) if cut < 0 else cut
        out.append(text[at:cut])
        self._held = text[cut:]
        return "".join(out)

    def flush(self) -> str:
        """The text still held back, decided at the end of the stream."""
        text, self._held = self._held, ""
        hidden, found = hide_known(text, self._secrets)
        for kind, n in found.items():
            self._counts[kind] = self._counts.get(kind, 0) + n
        return hidden

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._counts)
