"""A prefill a provider says again at the start of its answer: Mistral's answer to a
trailing assistant turn marked ``prefix: true`` begins with that turn's text, where
Anthropic's and DeepSeek's go on after it. The repeat is dropped, streamed or not, so an
answer is what follows the prefill on every wire. Pure; no I/O of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from switchman.adapters._base import ProviderRequest, StreamEvent, TextDelta
from switchman.adapters._flavors import ChatFlavor

Emit = Callable[[StreamEvent], Awaitable[None]]


def said_again(flavor: object, request: ProviderRequest) -> str | None:
    """The prefill the answer to ``request`` begins with again on a wire of ``flavor``
    (a ``ChatFlavor`` that ``echoes_prefix``), else None."""
    if not (isinstance(flavor, ChatFlavor) and flavor.echoes_prefix and request.messages):
        return None
    last = request.messages[-1]
    return last.content if last.role == "assistant" and last.content else None


def without_prefill(emit: Emit, prefill: str) -> Emit:
    """``emit`` with the answer's text held until it shows whether it begins with
    ``prefill`` again, and that beginning dropped. Text that parts from the prefill is
    passed on whole; an answer that ends inside it (nothing after the repeat) adds nothing."""
    held = ""
    deciding = True

    async def emit_after(event: StreamEvent) -> None:
        nonlocal held, deciding
        if not deciding:
            await emit(event)
            return
        if isinstance(event, TextDelta):
            held += event.text
            if len(held) < len(prefill) and prefill.startswith(held):
                return  # (it may yet be the prefill said again)
            deciding = False
            rest = held.removeprefix(prefill)
            if rest:
                await emit(TextDelta(text=rest))
            return
        await emit(event)  # (an end while held is still the prefill's beginning: no text)

    return emit_after
