"""What a call's input counts, and the most an attempt can cost, without a tokenizer.

Three counts of a call's input, each erring on its own safe side (pure, cheap for ASCII):

* ``estimate_input_tokens``: four ASCII characters a token, half a token per byte any
  other character has beyond its first (a Cyrillic or Greek letter half a token, a CJK
  character or a Devanagari letter one, an emoji one and a half: about what current
  tokenizers make of them), plus the framing. What the context windows are checked
  against and what ranking prices: too low costs an attempt that the provider refuses as
  too long (the call falls back to a bigger window); too high would exclude a model the
  prompt fits, with no way back, so it is not an upper bound.
* ``fair_input_tokens``: ASCII text at four characters a token or its pieces (see
  ``fair_tokens``), whichever is more, and a token per *byte* of anything else, plus the
  framing, never above the bound below. What the cost cap (``max_cost_usd``) is checked
  against, and what an attempt is billed for when its provider did not say: data that
  tokenizers cut finer than prose (digits, hex, base64, JSON) or a script they count far
  above four characters a token cannot take a capped call far past its cap.
* ``max_input_tokens``: a token per UTF-8 byte plus the framing. Tokenizers that fall back
  to bytes (every current model family) never make more, so it is a bound: what budget
  reservations hold, so that no budget is overspent.

``most_cost`` is the most a request of some size can be billed: list prices plus the most
a provider's own fees can come to (Perplexity's searches).
"""

from __future__ import annotations

import math
import re
from typing import Final

from switchman._call import Call
from switchman.catalog._spec import ModelSpec

#: ASCII characters per token of the estimates, and the per-message framing overhead
CHARS_PER_TOKEN: Final = 4
TOKENS_PER_MESSAGE: Final = 4
#: what a chat request adds beyond its messages (the reply's priming, special tokens):
#: part of the bound on what a request is billed, with a provider's margin
TOKENS_PER_REQUEST: Final = 16
#: the user turn that asks a model without prefill to continue a cut answer
CONTINUE_PROMPT: Final = (
    "Your previous reply was cut off. Continue it exactly from where it stops, "
    "without repeating any of it."
)
#: the ASCII bytes, deleted to count the bytes of the rest of a text
_ASCII: Final = bytes(range(128))
#: a text longer than this (characters) has its pieces counted on ``_SAMPLES`` evenly
#: spaced slices this long in all, and scaled: a few milliseconds of the loop at most,
#: where counting a whole 1 MB text took 35-190 ms of it
_SAMPLED_ABOVE: Final = 32_768
_SAMPLES: Final = 32
#: ASCII whose pieces come to more than this many times four characters a token is data
#: (``fair_input``): base64, hex and digits come to about twice, prose and code to 1.0-1.15
DENSE: Final = 1.5
#: the pieces today's tokenizers cut text into before merging within them, each a token
#: at least: a word with the space before it (lower case, capitalized, or a run of
#: capitals), up to three digits (without the space: tokenizers split it off), any other
#: character (punctuation, a symbol, a character beyond ASCII), a run of white space. Prose
#: is about a piece a word and four characters a token; base64, hex, digits, JSON and logs
#: are a piece every one to three characters, as tokenizers count them (against cl100k and
#: o200k: 0.76-1.28 of their count for such data, where four characters a token had been
#: 0.33-0.65)
_PIECES: Final = re.compile(
    r" ?[A-Z]?[a-z]+| ?[A-Z]+(?![a-z])|\d{1,3}| ?[^\sA-Za-z\d]|\s+", re.ASCII
)


def text_tokens(text: str) -> int:
    """``ceil(ASCII characters / 4) + ceil(bytes beyond the first of the others / 2)``: the
    estimate of ``estimate_input_tokens`` (see the module)."""
    if text.isascii():
        return -(-len(text) // CHARS_PER_TOKEN)
    ascii_chars = len(text.encode("ascii", "ignore"))
    extra = len(text.encode("utf-8", "surrogatepass")) - len(text)
    return -(-ascii_chars // CHARS_PER_TOKEN) - (-extra // 2)


def estimate_input_tokens(call: Call) -> int:
    """The call's input size in tokens as the context windows are checked: ``text_tokens``
    of its texts plus ``TOKENS_PER_MESSAGE`` per message (a bare prompt is one)."""
    if call.messages is None:
        return text_tokens(call.prompt or "") + TOKENS_PER_MESSAGE
    return sum(text_tokens(m.content) for m in call.messages) + TOKENS_PER_MESSAGE * len(
        call.messages
    )


def fair_tokens(text: str) -> int:
    """The ASCII characters at ``max(ceil(characters / 4), pieces)`` (``_PIECES``) plus the
    UTF-8 bytes of the other characters: a text's tokens counted high, yet fair to plain
    text (a lone surrogate counts as its three bytes)."""
    return _fair(text)[0]


def _fair(text: str) -> tuple[int, int, int]:
    """``fair_tokens`` of ``text``, of its ASCII part alone, and that part at four
    characters a token."""
    if text.isascii():
        quarter = math.ceil(len(text) / CHARS_PER_TOKEN)
        count = max(quarter, min(_ascii_pieces(text, len(text)), len(text)))
        return count, count, quarter
    data = text.encode("utf-8", "surrogatepass")
    other = len(data.translate(None, _ASCII))
    ascii_chars = len(data) - other
    quarter = math.ceil(ascii_chars / CHARS_PER_TOKEN)
    count = max(quarter, min(_ascii_pieces(text, ascii_chars), ascii_chars))
    return count + other, count, quarter


def _ascii_pieces(text: str, ascii_chars: int) -> int:
    """The pieces of ``text``'s ``ascii_chars`` ASCII characters (``_PIECES``; each other
    character is one of its own, not counted).

    A text above ``_SAMPLED_ABOVE`` characters is counted on ``_SAMPLES`` evenly spaced
    slices of it, ``_SAMPLED_ABOVE`` characters in all, scaled by its ASCII to the slices'
    (text made to put its data between the slices is counted low: a caller's own
    ``max_cost_usd`` alone trusts this count; budgets hold a token a byte)."""
    n = len(text)
    if n <= _SAMPLED_ABOVE:
        sample = text
    else:
        size, step = _SAMPLED_ABOVE // _SAMPLES, n // _SAMPLES
        sample = "".join(text[i * step : i * step + size] for i in range(_SAMPLES))
    pieces = _PIECES.subn("", sample)[1]
    sample_ascii = len(sample)
    if not sample.isascii():
        sample_ascii = len(sample.encode("ascii", "ignore"))
        pieces -= len(sample) - sample_ascii
    if sample is text:
        return pieces
    return math.ceil(pieces * ascii_chars / sample_ascii) if sample_ascii else 0


def input_texts(call: Call, continuation: str = "") -> list[str]:
    """The texts an attempt of ``call`` sends (with a continuation's answer so far and the
    turn asking to continue it)."""
    texts = [call.prompt or ""] if call.messages is None else [m.content for m in call.messages]
    if continuation:
        texts += [continuation, CONTINUE_PROMPT]
    return texts


def input_framing(call: Call, continuation: str = "") -> int:
    """The tokens an attempt's input costs beside its texts: per message and per request."""
    messages = 1 if call.messages is None else len(call.messages)
    if continuation:
        messages += 2  # the assistant prefix, and possibly a "continue" turn
    return TOKENS_PER_MESSAGE * messages + TOKENS_PER_REQUEST


def max_input_tokens(call: Call, continuation: str = "") -> int:
    """The most input tokens the call can be billed for: a token per UTF-8 byte of its
    texts plus the framing (see the module). ``continuation`` is text already streamed
    that a continuing attempt sends again (with, at most, the turn asking to continue it).
    """
    return sum(len(t.encode()) for t in input_texts(call, continuation)) + input_framing(
        call, continuation
    )


def fair_input_tokens(call: Call, continuation: str = "") -> int:
    """The texts an attempt sends by ``fair_tokens`` with the framing ``max_input_tokens``
    counts, never above that bound: what the cost cap is checked against, and (held to
    the model's context window) what an input is billed for when its provider did not say."""
    return fair_input(call, continuation)[0]


def fair_input(call: Call, continuation: str = "") -> tuple[int, bool]:
    """``fair_input_tokens``, and whether its ASCII is data that tokenizers cut finer than
    its pieces (counted by them at more than ``DENSE`` times four characters a token:
    base64, hex, digits; random base64 counts at 0.76 of what OpenAI's tokenizers make)."""
    counts = [_fair(t) for t in input_texts(call, continuation)]
    fair = sum(c[0] for c in counts) + input_framing(call, continuation)
    dense = sum(c[1] for c in counts) > DENSE * sum(c[2] for c in counts)
    return min(fair, max_input_tokens(call, continuation)), dense


def most_cost(model: ModelSpec, input_tokens: int, output_tokens: int) -> float:
    """The most a request to ``model`` of these tokens can be billed: their list price with
    its request fee, or its ``max_request_fee_usd`` where it has one."""
    cost = model.cost(input_tokens, output_tokens)
    most_fee = model.max_request_fee_usd
    if most_fee is not None and most_fee > model.request_fee_usd:
        return cost + (most_fee - model.request_fee_usd)
    return cost
