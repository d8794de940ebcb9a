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


class KnownValues:
    """``hide_known`` over a stream: what ``feed``/``flush`` return, joined, equals
    ``hide_known(whole text)[0]`` for any chunking. A place where a secret could still
    start (the last ``len(longest secret) - 1`` characters) is held back until the text
    after it decides it."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets
        self._longest = max((len(s) for s in secrets), default=0)
        self._held = ""
        self._counts: dict[str, int] = {}

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the part now safe to emit (may be ``""``)."""
        if not self._secrets:
            return chunk
        text = self._held + chunk
        decided = len(text) - self._longest  # a match may start at or before this
        out: list[str] = []
        at = 0
        for match in _pattern(self._secrets).finditer(text):
            if match.start() > decided:
                break
            out += (text[at : match.start()], tag(KIND))
            at = match.end()
            self._counts[KIND] = self._counts.get(KIND, 0) + 1
        cut = max(at, decided + 1)
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
