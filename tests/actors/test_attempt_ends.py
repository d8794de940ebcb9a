"""The text an attempt's reply channel still holds when the attempt ends: the provider sent
it (and bills it) though the call never read it, so a cut attempt is billed for it too."""

from __future__ import annotations

import pytest
import trio

from switchman.actors._attempt_ends import ClosingCounted, texts_waiting
from switchman.adapters._base import Malformed, TextDelta


def _channel_with(*replies: object) -> trio.MemoryReceiveChannel[object]:
    send, receive = trio.open_memory_channel[object](64)
    for reply in replies:
        send.send_nowait(reply)
    return receive


def test_texts_waiting_takes_the_text_of_what_waits_and_nothing_else() -> None:
    receive = _channel_with(TextDelta(text="a"), Malformed(detail="?"), TextDelta(text="bc"))
    assert texts_waiting(receive) == ["a", "bc"]
    assert texts_waiting(receive) == []  # (taken)
    receive.close()
    assert texts_waiting(receive) == []  # a closed channel holds nothing more


def test_an_exchange_ended_by_an_exception_counts_the_text_left_in_its_channel() -> None:
    receive = _channel_with(TextDelta(text="left "), TextDelta(text="unread"))
    closing = ClosingCounted(receive)
    with pytest.raises(KeyboardInterrupt), closing:  # (as trio.Cancelled would)
        raise KeyboardInterrupt
    assert closing.texts == ["left ", "unread"]
    with pytest.raises(trio.ClosedResourceError):
        receive.receive_nowait()  # closed, as `with receive:` closes it


def test_an_exchange_that_ends_normally_closes_its_channel_and_counts_nothing() -> None:
    receive = _channel_with(TextDelta(text="x"))
    with ClosingCounted(receive) as closing:
        pass
    assert closing.texts == []
    with pytest.raises(trio.ClosedResourceError):
        receive.receive_nowait()
