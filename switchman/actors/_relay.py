"""What reaches a caller's stream: each piece of an answer through the redactor's
hold-back window, and what it held back once the answer is whole."""

from __future__ import annotations

import trio

from switchman._channels import send_soon
from switchman._result import Delta
from switchman.actors._callrun import CallRun
from switchman.actors._env import DispatchEnv


async def forward(env: DispatchEnv, run: CallRun, piece: str, n: int) -> None:
    """Hand ``piece`` to the caller's stream through the redactor (hold-back window)."""
    run.raw_pieces.append(piece)
    safe = run.redactor.feed(piece) if run.redactor is not None else piece
    if safe:
        first = not run.sent_redacted
        if first:
            run.first_text_at = trio.current_time()
        run.sent_redacted.append(safe)
        if env.hub.active:
            run.event(env, "attempt.delta", n=n, text=safe)
        delta = Delta(text=safe)
        try:
            if first:
                # the first text goes out at once: two checkpoints, so the reader surely
                # runs before the rest is relayed (time to first token)
                await run.reply_to.send(delta)
                await trio.lowlevel.checkpoint()
            else:  # later deltas that arrived together travel on together
                await send_soon(run.reply_to, delta)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # the caller left its stream: stop the call (its attempt and reservation too)
            if run.scope is not None:
                run.scope.cancel()
            await trio.lowlevel.checkpoint()
            raise


async def flush_held_back(env: DispatchEnv, run: CallRun, n: int) -> None:
    """Send the caller's stream what the redactor held back, once the answer is whole."""
    assert run.redactor is not None
    tail = run.redactor.flush()
    if not tail:
        return
    if run.first_text_at is None:  # the whole answer was short enough to be held back
        run.first_text_at = trio.current_time()
    run.sent_redacted.append(tail)
    if env.hub.active:
        run.event(env, "attempt.delta", n=n, text=tail)
    # the answer is whole: even at the call's deadline, its end reaches a reader (briefly)
    with trio.CancelScope(shield=True), trio.move_on_after(5.0):
        try:
            await send_soon(run.reply_to, Delta(text=tail))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the caller left; the answer is complete all the same
