"""Mistral's answer to a ``prefix`` turn begins with the prefill again (Anthropic's and
DeepSeek's go on after it): the repeat is dropped however the answer comes chunked, so an
answer is what follows the prefill on every wire."""

from __future__ import annotations

import pytest

from switchman._call import Message
from switchman._result import Usage
from switchman.adapters._base import Malformed, ProviderRequest, StreamEnd, StreamEvent, TextDelta
from switchman.adapters._echo import said_again, without_prefill
from switchman.adapters._flavors import FLAVORS

END = StreamEnd(finish_reason="stop", usage=Usage())


async def _through(prefill: str, events: list[StreamEvent]) -> list[StreamEvent]:
    out: list[StreamEvent] = []

    async def emit(event: StreamEvent) -> None:
        out.append(event)

    emit_after = without_prefill(emit, prefill)
    for event in events:
        await emit_after(event)
    return out


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize(
    ("chunks", "answer"),
    [
        (["Al", "pha", " bravo", " charlie"], " bravo charlie"),  # a token at a time
        (["Alpha bravo"], " bravo"),  # whole (a reply not streamed)
        (["Alphabet soup"], "bet soup"),  # the prefill ended inside a word
        (["Beta", " gamma"], "Beta gamma"),  # not said again: passed on whole
        (["Al", "mond"], "Almond"),  # parted from it midway: passed on whole
        (["Alpha"], ""),  # nothing after the repeat
        (["Al"], ""),  # ended inside it
    ],
)
async def test_the_prefill_said_again_is_dropped(chunks: list[str], answer: str) -> None:
    events = await _through("Alpha", [*(TextDelta(text=c) for c in chunks), END])
    assert _text(events) == answer
    assert events[-1] is END
    assert all(e.text for e in events if isinstance(e, TextDelta))  # no empty deltas


async def test_other_events_pass_while_the_text_is_held() -> None:
    bad = Malformed(detail="not JSON")
    events = await _through("Alpha", [TextDelta(text="Al"), bad, TextDelta(text="pha!"), END])
    assert events == [bad, TextDelta(text="!"), END]


def test_only_mistrals_wire_says_the_prefill_again_and_only_after_a_prefill() -> None:
    prefilled = ProviderRequest(
        model_id="m",
        messages=(Message(role="user", content="Hi"), Message(role="assistant", content="Al")),
    )
    asked = ProviderRequest(model_id="m", messages=(Message(role="user", content="Hi"),))
    assert said_again(FLAVORS["mistral"], prefilled) == "Al"
    assert said_again(FLAVORS["mistral"], asked) is None
    for name in ("openai", "deepseek", "xai", "groq", "together"):
        assert said_again(FLAVORS[name], prefilled) is None, name
    assert said_again(None, prefilled) is None  # (another wire's adapter has no flavour)
