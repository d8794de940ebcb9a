"""A reasoning block a model writes at the start of its answer text, taken out.

Models that reason aloud put it in the answer's own text when the provider is not asked to
keep it apart: ``<think>...</think>`` then the answer (Groq's default "raw" reasoning format
for Qwen3, open reasoning models on Together, Ollama's thinking models). It is not the
answer: the caller, the redaction and the answer's length see only what follows it. The
provider bills it all the same (its usage counts it as output), and its stop sequences
apply inside it too: one that cuts the answer there leaves no text, which fails the attempt
(``actors._attempt_ends.no_text``). A block is closed by its first ``</think>``.

Only a block at the very start counts (after white space): a ``<think>`` later in an
answer is the answer's own text. Text that starts like the tag is held until it is clear;
everything after the first chunk of a plain answer passes untouched, at the cost of one
comparison.
"""

from __future__ import annotations

from typing import Final, Literal

OPEN: Final = "<think>"
CLOSE: Final = "</think>"


class ThinkBlock:
    """Feed the answer's text deltas in order; each ``feed`` returns the text that is the
    answer's (maybe ``""``); ``end`` returns what was held back that was answer after all."""

    def __init__(self) -> None:
        self._state: Literal["start", "thinking", "after", "answer"] = "start"
        self._held = ""

    def feed(self, text: str) -> str:
        if self._state == "answer":
            return text
        held = self._held + text
        if self._state == "start":
            lead = held.lstrip()
            if not lead or (len(lead) < len(OPEN) and OPEN.startswith(lead)):
                self._held = held  # white space, or what may become the tag: not yet clear
                return ""
            if not lead.startswith(OPEN):
                self._state, self._held = "answer", ""
                return held
            self._state, held = "thinking", lead[len(OPEN) :]
        if self._state == "thinking":
            at = held.find(CLOSE)
            if at < 0:
                self._held = held[-(len(CLOSE) - 1) :]  # (the start of a tag split in two)
                return ""
            self._state, held = "after", held[at + len(CLOSE) :]
        answer = held.lstrip()  # the white space between the block and the answer
        if not answer:
            self._held = ""
            return ""
        self._state, self._held = "answer", ""
        return answer

    def end(self) -> str:
        """The answer is over (its finish reason came): text held while it was unclear
        whether it began a block is the answer's; a block never closed had no answer."""
        held = self._held if self._state == "start" else ""
        self._state, self._held = "answer", ""
        return held


def without_think(text: str) -> str:
    """``text`` (a whole answer) without a reasoning block at its start."""
    block = ThinkBlock()
    return block.feed(text) + block.end()
