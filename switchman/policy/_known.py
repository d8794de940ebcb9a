"""The router's own secrets, hidden from an answer even when its redaction is off (pure).

Turning redaction off (with its override and acknowledgements) is the caller's choice about
the answer's own content: personal data and secrets the model writes. The operator's
provider keys and the other teams' gateway keys are not the caller's to see, whatever it
chose, so an answer that echoes one (a prompt injection, a provider's error text) shows
``[REDACTED:api_key]`` in its place all the same. Only exact values are looked for (the
same ``known_secrets`` that full redaction finds by value).
"""

from __future__ import annotations

from collections.abc import Mapping

from switchman.policy._patterns_values import tag

KIND = "api_key"


def hide_known(text: str, secrets: tuple[str, ...]) -> tuple[str, dict[str, int]]:
    """``text`` with every exact occurrence of ``secrets`` (longest first) replaced, and
    how many were."""
    found = 0
    for secret in secrets:
        if secret in text:
            found += text.count(secret)
            text = text.replace(secret, tag(KIND))
    return text, ({KIND: found} if found else {})


class KnownValues:
    """``hide_known`` over a stream: what ``feed``/``flush`` return, joined, equals
    ``hide_known(whole text)[0]`` for any chunking. The last ``len(longest secret) - 1``
    characters are held back, as the start of a secret may be among them."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets
        self._hold = max((len(s) for s in secrets), default=1) - 1
        self._held = ""
        self._counts: dict[str, int] = {}

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the part now safe to emit (may be ``""``)."""
        text, found = hide_known(self._held + chunk, self._secrets)
        self._count(found)
        cut = max(len(text) - self._hold, 0)
        self._held = text[cut:]
        return text[:cut]

    def flush(self) -> str:
        """What is still held back, at the end of the stream."""
        text, self._held = self._held, ""
        return text

    def _count(self, found: Mapping[str, int]) -> None:
        for kind, n in found.items():
            self._counts[kind] = self._counts.get(kind, 0) + n

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._counts)
