"""What an attempt is billed for, from what the provider reported (pure).

``possible_bill`` holds a reported bill to what the request could have produced: at most
the model's context window of input and the ``max_tokens`` it was sent, at its list
prices (plus its request fee). A buggy or hostile upstream that reports more would
otherwise be billed, and one answer could lock every budget for the rest of its window.
``partial_output_tokens`` is what an answer cut short is billed for as output when the
provider did not say.
"""

from __future__ import annotations

import math

import attrs

from switchman._result import Usage
from switchman.catalog._spec import ModelSpec


@attrs.frozen(kw_only=True)
class Bill:
    """``usage`` and ``cost_usd`` to bill; ``held`` when the report was beyond the possible."""

    usage: Usage
    cost_usd: float
    held: bool


def possible_bill(model: ModelSpec, usage: Usage, cost_usd: float, max_tokens: int) -> Bill:
    """``usage`` and ``cost_usd`` as reported, held to what a request to ``model`` with
    ``max_tokens`` could have produced (see the module doc)."""
    window = model.context_window
    held = usage.input_tokens > window or usage.output_tokens > max_tokens
    if held:
        usage = Usage(
            input_tokens=min(usage.input_tokens, window),
            output_tokens=min(usage.output_tokens, max_tokens),
        )
        most = model.cost(usage.input_tokens, usage.output_tokens)
    else:
        most = model.cost(window, max_tokens)
    if cost_usd > most:
        return Bill(usage=usage, cost_usd=most, held=True)
    return Bill(usage=usage, cost_usd=cost_usd, held=held)


def partial_output_tokens(text: list[str], max_tokens: int) -> int:
    """What an answer cut short is billed for as output, when the provider did not say:
    the text received, four characters a token (at least one, at most ``max_tokens``)."""
    return min(max(math.ceil(len("".join(text)) / 4), 1), max_tokens)
