"""How an attempt ended, when it did not end with its answer: the errors for an attempt
cut off by a limit, for an upstream that would not stop, for a provider actor that went
away; and the repeat a continuation drops. Pure: values in, an error or text out."""

from __future__ import annotations

from switchman._errors import AttemptTimeout, BadReply, ProviderError, StreamBroken
from switchman.catalog._spec import ModelSpec


def strip_repeat(sent: str, pending: str) -> tuple[str, str, bool]:
    """Drop a repeated copy of ``sent`` at the start of a continuation.

    Returns (text to forward now, text still held, still checking?).
    """
    want = sent.lstrip()
    got = pending.lstrip()
    if len(got) < len(want) and want.startswith(got):
        return "", pending, True  # could still be a repeat: keep holding
    if got.startswith(want):
        return got[len(want) :], "", False
    for k in range(min(len(want), len(got)), 19, -1):  # overlap of the tail, 20+ chars
        if got.startswith(want[-k:]):
            return got[k:], "", False
    return pending, "", False


def runaway(model: ModelSpec, text: list[str], out_tokens: int, received: int) -> ProviderError:
    """An upstream sending far more text than ``out_tokens`` can be: garbage, or a loop;
    kept, it would fill memory and the job store."""
    message = (
        f"the answer grew past what max_tokens {out_tokens} allows ({received:,} characters "
        "and counting): the upstream is not answering the request"
    )
    if text:
        return StreamBroken(message, provider=model.provider, status=200)
    return BadReply(message, provider=model.provider, status=200)


def stopped(model: ModelSpec, text: list[str]) -> ProviderError:
    message = "provider actor stopped during the attempt"
    if text:
        return StreamBroken(message, provider=model.provider)
    return ProviderError(message, provider=model.provider)


def timed_out(
    model: ModelSpec,
    text: list[str],
    now: float,
    attempt_deadline: float,
    ttft_s: float,
    stall_s: float,
) -> ProviderError:
    if now >= attempt_deadline:
        return AttemptTimeout("attempt deadline passed", provider=model.provider)
    if text:
        return StreamBroken(
            f"stream stalled: no data for {stall_s:.3g}s after output began",
            provider=model.provider,
        )
    return AttemptTimeout(f"no first token within {ttft_s:.3g}s", provider=model.provider)
