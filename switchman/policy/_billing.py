"""What an attempt is billed for, from what the provider reported (pure).

``possible_bill`` holds a reported bill to what the *model* could have produced: at most
its context window of input and its ``max_output_tokens`` of output, at its list prices
plus the most its fees can come to (``most_cost``). Anything within that is billed as
reported, even past the ``max_tokens`` the request was sent: a provider that ignores the
limit bills the tokens it generated all the same, and the budgets must count what is really
spent (the attempt logs a warning). Only a report no request to the model could produce (a
buggy or hostile upstream's) is held, so that one answer cannot lock every budget for the
rest of its window.

``most_bill`` is what an attempt reserves before it runs: its prompt (``max_input_tokens``,
held to the model's context window as a report is) and output room at list prices (with
``most_cost``: plus the model's ``max_request_fee_usd`` where its provider bills fees the
request does not bound, Perplexity's web searches), so concurrent calls cannot overspend.

``cut_usage`` is what an attempt cut short after its output began (its stream broke or
stalled, the caller's own deadline passed, the caller left) is billed for when the provider
did not say: an upper bound, so that a caller cutting its own calls cannot spend past its
budget on text a provider counts as many tokens (emoji, CJK, rare scripts): its input and
its output so far each by ``fair_tokens`` (ASCII at four characters a token or a token a
piece, whichever is more; a token per byte of anything else), the input never above
``max_input_tokens``, the very bound its reservation was made with, nor the model's context
window. An answer that ends normally without usage is billed the same way. Only such
attempts pay for the counting.
"""

from __future__ import annotations

from typing import Final

import attrs

from switchman._call import Call
from switchman._result import Usage
from switchman.catalog._spec import ModelSpec
from switchman.policy._estimate import (
    fair_input_tokens,
    fair_tokens,
    max_input_tokens,
    most_cost,
)

#: the most request fees one answer's report is billed (Perplexity's searches: $0.50, twenty
#: times what a request reserves; an answer of its Agent API ran 20): a report of more is
#: held there, as one of more tokens than the model could produce is
MOST_FEES: Final = 100


@attrs.frozen(kw_only=True)
class Bill:
    """``usage`` and ``cost_usd`` to bill; ``held`` when the report was beyond the possible."""

    usage: Usage
    cost_usd: float
    held: bool


def possible_bill(model: ModelSpec, usage: Usage, cost_usd: float, fees: int | None = None) -> Bill:
    """``usage`` and ``cost_usd`` as reported, held to what a request to ``model`` could
    have produced (see the module doc); ``fees``: the request fees the provider says the
    request ran up (Perplexity's searches), which no request bounds: up to ``MOST_FEES``
    of them count, past the ``max_request_fee_usd`` its reservation held."""
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
    if fees is not None and model.request_fee_usd > 0.0:
        if fees > MOST_FEES:  # (held at that many: the rest of the fees are not billed)
            cost_usd = max(cost_usd - (fees - MOST_FEES) * model.request_fee_usd, 0.0)
            held = True
        said = min(fees, MOST_FEES) * model.request_fee_usd
        most += max(said - max(model.max_request_fee_usd or 0.0, model.request_fee_usd), 0.0)
    if cost_usd > most:
        return Bill(usage=usage, cost_usd=most, held=True)
    return Bill(usage=usage, cost_usd=cost_usd, held=held)


def most_bill(model: ModelSpec, call: Call, continuation: str, output_tokens: int) -> float:
    """The most an attempt of ``call`` on ``model`` (sending ``continuation`` again), with
    room for ``output_tokens``, can be billed: what it reserves. Its input is held to the
    context window, as ``possible_bill`` holds a report (a prompt of more bytes than the
    window reserved, at a long-input price, more than any bill could come to)."""
    return most_cost(
        model, min(max_input_tokens(call, continuation), model.context_window), output_tokens
    )


def billed_input_tokens(model: ModelSpec, call: Call, continuation: str = "") -> int:
    """What the input of an attempt is billed for when the provider did not say: the
    estimate's ``fair_input_tokens``, never above the model's context window."""
    return min(fair_input_tokens(call, continuation), model.context_window)


def partial_output_tokens(text: list[str], max_tokens: int, *, unseen: bool = False) -> int:
    """What an answer cut short is billed for as output, when the provider did not say: at
    least one token, at most ``max_tokens``, and between them

        ceil(ASCII characters / 4) + UTF-8 bytes of the other characters

    ``unseen``: the model may have reasoned before its text without streaming its reasoning
    (``actors.reasoning_unseen``), billed as output all the same, which may have come to
    anything up to ``max_tokens``: billed ``max_tokens``, the bound it reserved.

    An upper bound that is still fair to plain text: a tokenizer that falls back to bytes
    (every current model family) makes at most one token per byte, so text of other scripts
    (emoji, CJK, Cyrillic...), which providers count far above four characters a token, is
    billed at its bytes; English text and code, about four characters a token, at that, and
    data tokenizers cut finer (digits, hex, base64) at a token a piece. A
    lone surrogate (a JSON escape no encoder would make) counts as its three bytes.
    """
    if unseen:
        return max_tokens
    return min(max(fair_tokens("".join(text)), 1), max_tokens)


def cut_usage(
    model: ModelSpec,
    call: Call,
    continuation: str,
    text: list[str],
    max_tokens: int,
    *,
    unseen: bool = False,
) -> Usage:
    """What an attempt of ``call`` on ``model`` cut short after its output ``text`` began is
    billed for, when the provider did not say (see the module doc): as input
    ``billed_input_tokens(model, call, continuation)`` (``continuation``: the answer so far
    that the attempt sent again); as output ``partial_output_tokens(text, max_tokens,
    unseen=unseen)``."""
    return Usage(
        input_tokens=billed_input_tokens(model, call, continuation),
        output_tokens=partial_output_tokens(text, max_tokens, unseen=unseen),
    )
