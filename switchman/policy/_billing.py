"""What an attempt is billed for, from what the provider reported (pure).

``possible_bill`` holds a reported bill to what the *model* could have produced: at most
its context window of input and its ``max_output_tokens`` of output, at its list prices
plus the most its fees can come to (``most_cost``). Anything within that is billed as
reported, even past the ``max_tokens`` the request was sent: a provider that ignores the
limit bills the tokens it generated all the same, and the budgets must count what is really
spent (the attempt logs a warning). Only a report no request to the model could produce (a
buggy or hostile upstream's) is held, so that one answer cannot lock every budget for the
rest of its window.

``most_cost`` is also what an attempt reserves before it runs: its prompt and output room
at list prices, plus the model's ``max_request_fee_usd`` where its provider bills fees the
request does not bound (Perplexity's web searches), so concurrent calls cannot overspend.

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


def most_cost(model: ModelSpec, input_tokens: int, output_tokens: int) -> float:
    """The most a request to ``model`` of these tokens can be billed: their list price with
    its request fee, or its ``max_request_fee_usd`` where it has one."""
    cost = model.cost(input_tokens, output_tokens)
    most_fee = model.max_request_fee_usd
    if most_fee is not None and most_fee > model.request_fee_usd:
        return cost + (most_fee - model.request_fee_usd)
    return cost


def possible_bill(model: ModelSpec, usage: Usage, cost_usd: float) -> Bill:
    """``usage`` and ``cost_usd`` as reported, held to what a request to ``model`` could
    have produced (see the module doc)."""
    window, most_out = model.context_window, model.max_output_tokens
    held = usage.input_tokens > window or usage.output_tokens > most_out
    if held:
        usage = Usage(
            input_tokens=min(usage.input_tokens, window),
            output_tokens=min(usage.output_tokens, most_out),
        )
        most = most_cost(model, usage.input_tokens, usage.output_tokens)
    else:
        most = most_cost(model, window, most_out)
    if cost_usd > most:
        return Bill(usage=usage, cost_usd=most, held=True)
    return Bill(usage=usage, cost_usd=cost_usd, held=held)


def partial_output_tokens(text: list[str], max_tokens: int) -> int:
    """What an answer cut short is billed for as output, when the provider did not say:
    the text received, four characters a token (at least one, at most ``max_tokens``)."""
    return min(max(math.ceil(len("".join(text)) / 4), 1), max_tokens)
