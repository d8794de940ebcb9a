"""Attempts with fallback: one call's walk down its candidate list.

For each candidate: reserve the estimated cost, send an ``Attempt`` to the
provider actor, read its reply under the call's deadlines (time to first token,
stall between chunks, the attempt deadline, the call's hard deadline), forward
redacted text when the caller streams, then settle or release the reservation and
ask ``decide_after_failure`` what to do next.

A stream that breaks after text reached the caller is continued, not restarted:
the next model gets that text as an assistant prefill when it supports one, else a
user turn asking it to continue; a repeated prefix is dropped. If nothing can
continue, the call fails with the original break as its first error.

Everything here runs inside one call task of the dispatcher; cancelling it (the
caller went away, shutdown) cancels the attempt in flight, settles its reservation
to what it generated (none: released) and closes its reply channel, all in shielded,
bounded clean-up.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Final

import attrs
import trio

from switchman._channels import open_channel
from switchman._errors import (
    AttemptTimeout,
    BudgetExceeded,
    ContextExceeded,
    ProviderError,
    Refused,
    StreamBroken,
    attempt_outcome,
)
from switchman._result import AttemptRecord, ErrorInfo, Usage, Wait, normal_finish
from switchman.actors._attempt_ends import (
    ClosingCounted,
    answer_cost,
    answering,
    callers_own_limit,
    content_fallback,
    error_info,
    held_back,
    may_have_run,
    merge_waiting,
    messages_for,
    over_reserved,
    reasoning_unseen,
    record_data,
    refusal_redacted,
    runaway,
    stopped,
    texts_waiting,
    tighter,
    timed_out,
    turned_away,
)
from switchman.actors._callrun import CallRun, Success
from switchman.actors._env import DispatchEnv
from switchman.actors._holds import (
    budget_held,
    hold_saved,
    release_hold,
    reserve_hold,
    settle_hold,
    tell_budget_refusal,
    wait_for_room,
)
from switchman.actors._messages import (
    Attempt,
    AttemptFailed,
    AttemptReply,
    CallersTimeout,
    CancelAttempt,
    Unavailable,
)
from switchman.actors._relay import flush_held_back, forward
from switchman.actors._slots import Turns
from switchman.adapters._base import Malformed, ProviderRequest, StreamEnd, TextDelta
from switchman.catalog._spec import ModelSpec
from switchman.policy._billing import (
    MOST_FEES,
    billed_input_tokens,
    cut_usage,
    most_bill,
    partial_output_tokens,
    possible_bill,
)
from switchman.policy._budget import NO_LEDGER, refusal_message, to_nanos
from switchman.policy._eligibility import (
    cap_exceeded,
    fits_window,
    input_room,
    output_tokens,
    request_params,
)
from switchman.policy._estimate import most_cost, text_tokens
from switchman.policy._retry import RetryDecision, decide_after_failure

#: the most characters one token of output can be (runs of spaces or repeated characters
#: make long tokens): text past ``max_tokens`` times this is not an answer
MAX_CHARS_PER_TOKEN: Final = 64

log = logging.getLogger("switchman.attempts")
_attempt_ids = itertools.count(1)
#: how long a call may wait, in all, for a model that is only briefly unavailable
SHORT_WAIT_S = 5.0


#: a call stops falling back once its failed attempts were billed this many times what an
#: answer from the model it tried first could cost (their answers broke off, or were
#: refused with usage): a prompt every model breaks off on (a proxy cutting long streams),
#: at half a million tokens, was billed $80 over 54 models
FAILED_ANSWERS: Final = 3
#: ... and at least this much: a few cheap refusals must not stop a call a next model
#: would answer (three reasoning models that spent a 40-token limit thinking, $0.00006)
FAILED_FLOOR_USD: Final = 0.01


async def run_attempts(
    env: DispatchEnv, run: CallRun, candidates: list[ModelSpec]
) -> Success | None:
    """Try ``candidates`` in order until one answers; None when all failed (see run.errors).

    Attempts are counted per upstream model (provider and model id): two aliases of one
    model do not get two tries each, and once the call switched away from a model, an
    other alias of it later in the list is passed over. Once a provider said the input is
    too long for a model, models whose context window leaves the input less room are passed
    over."""
    tries: dict[tuple[str, str], int] = {}
    left: set[tuple[str, str]] = set()
    too_long_for = 0  # the most input room a provider said the input overflowed
    waited = 0.0
    paused: Wait | None = None  # the wait for a paused model before asking it again
    billed = 0.0  # what the attempts that failed were billed
    budget_waited = 0.0  # for budget room the calls in flight held
    #: a stream broken after its text began, switched away from: where it is, the attempts
    #: made by then, and its error (no model after it tried: it continues itself, once)
    back: tuple[int, int, ProviderError] | None = None
    came_back = False
    i = 0
    while True:
        if i >= len(candidates):
            if back is None or sum(tries.values()) != back[1]:
                return None
            i, _, broken = back
            back, came_back = None, True
            candidates = candidates[: i + 1]  # (those after it were told of: not again)
            model = candidates[i]
            now = trio.current_time()
            again = decide_after_failure(
                broken,
                attempts_on_model=tries[(model.provider, model.model_id)],
                now=now,
                deadline=run.deadline,
                rng=env.rng,
                nothing_else=True,
            )
            if again.action != "retry" or held_back(env, model, now + again.delay_s):
                return None
            left.discard((model.provider, model.model_id))
            run.after = f"retry: {again.reason} (no model after it could take the call)"
            with run.waiting(f"backoff before retrying {model.alias}: {again.reason}"):
                await trio.sleep(again.delay_s)
        model = candidates[i]
        upstream = (model.provider, model.model_id)
        if upstream in left:
            run.skip(model.alias, "the same upstream model as one the call switched away from")
            i += 1
            continue
        if too_long_for and input_room(run.call, model, run.input_tokens) < too_long_for:
            run.skip(
                model.alias,
                "its window leaves the input less room than one a provider said it overflowed",
            )
            i += 1
            continue
        now = trio.current_time()
        if now >= run.deadline:
            run.errors.append(ErrorInfo(code="timeout", message="the call's deadline passed"))
            return None
        tries[upstream] = tries.get(upstream, 0) + 1
        outcome = await _one_attempt(env, run, model, leave_room=i + 1 < len(candidates))
        if isinstance(outcome, Success):
            return outcome
        if outcome is None:  # not attempted (budget, unavailable): next model
            tries[upstream] -= 1
            if merge_waiting(run.attempts, run.errors) and paused and run.waits:
                run.waits.remove(paused)  # the merged refusal's record now spans that wait
            paused = None
            back_at, run.back_at = run.back_at, None
            busy, run.busy = run.busy, False
            later, run.room_later = run.room_later, None
            if later and (i + 1 == len(candidates) or later[0].kept_for_any):  # room held: wait
                took = await wait_for_room(env, run, model.alias, *later, budget_waited)
                if took is not None:
                    budget_waited += took
                    continue
            now = trio.current_time()
            if i + 1 == len(candidates) and back_at is not None:
                # the last candidate is only paused (its half-open probe is out, its rate
                # window resets, its attempt slots are all taken): wait for it, briefly and
                # inside the deadline, as for a model found paused before any attempt
                wait = max(back_at - now, 0.0) + 0.001
                if waited + wait <= SHORT_WAIT_S and now + wait < run.deadline:
                    reason = run.attempts[-1].error if run.attempts else None
                    with run.waiting(f"{model.alias} paused: {reason or 'turned away'}"):
                        if busy:  # woken as an attempt on it ends (``wait`` at the most)
                            turns = env.slot_waiters.get(model.provider)
                            if turns is None:
                                turns = env.slot_waiters[model.provider] = Turns()
                            with trio.move_on_after(wait):
                                await turns.wait(run.call.caller.handle)
                        else:
                            await trio.sleep(wait)
                    waited += trio.current_time() - now
                    paused = run.waits[-1] if run.waits else None
                    continue
            i += 1
            run.after = f"fallback: {model.alias} not tried"
            continue
        paused = None
        if isinstance(outcome, ContextExceeded):
            # less room cannot take it either (as much may: tokenizers differ)
            too_long_for = max(too_long_for, input_room(run.call, model, run.input_tokens))
        now = trio.current_time()
        decision = decide_after_failure(
            outcome,
            attempts_on_model=tries[upstream],
            now=now,
            deadline=run.deadline,
            rng=env.rng,
            content_fallback=content_fallback(env.config, run.call),
            nothing_else=not any(
                (m.provider, m.model_id) not in left and (m.provider, m.model_id) != upstream
                for m in candidates[i + 1 :]
            ),
        )
        if isinstance(outcome, Refused) and run.sent_raw and decision.action == "switch":
            # (the caller has its text: another model would finish what a refusal stopped)
            decision = RetryDecision(action="stop", reason="a refusal is not continued")
        held = held_back(env, model, now + decision.delay_s) if decision.action == "retry" else 0
        if held:
            i += 1  # its breaker just opened: a retry would only be refused, after a wait
            left.add(upstream)
            why = f"not retried: its breaker opened, for {held - now:.1f}s"
            run.skip(model.alias, why)
            run.after = f"fallback: {model.alias} {why}"
        elif decision.action == "retry":
            run.after = f"retry: {decision.reason}"
            with run.waiting(f"backoff before retrying {model.alias}: {decision.reason}"):
                await trio.sleep(decision.delay_s)
        elif decision.action == "switch":
            if isinstance(outcome, StreamBroken) and back is None and not came_back:
                back = (i, sum(tries.values()), outcome)
            i += 1
            left.add(upstream)
            run.after = f"fallback: {decision.reason}"
            billed += outcome.billed_cost_usd or 0.0
            if billed >= max(FAILED_ANSWERS * answer_cost(run, candidates[0]), FAILED_FLOOR_USD):
                why = (
                    f"the call stopped: its failed attempts were billed ${billed:.6f}, "
                    f"{FAILED_ANSWERS} times what an answer could cost or more"
                )
                for model in candidates[i:]:
                    run.skip(model.alias, why)
                if i < len(candidates):
                    run.stopped = f"{why} ({len(candidates) - i} more model(s) not tried)"
                return None
        else:
            return None


async def _one_attempt(
    env: DispatchEnv, run: CallRun, model: ModelSpec, *, leave_room: bool = False
) -> Success | ProviderError | None:
    n = len(run.attempts) + 1
    call = run.call
    cont_tokens = text_tokens(run.sent_raw)
    # a continuation asks only for what is left of the answer's room, so the whole
    # answer the caller reads stays within its max_tokens
    out_tokens = max(1, output_tokens(call, model, run.input_tokens) - cont_tokens)
    input_tokens = run.input_tokens + cont_tokens
    if cont_tokens and not fits_window(model, input_tokens, out_tokens):
        # eligibility checked the prompt alone; a continuation carries the answer so far
        why = (
            f"context window {model.context_window} too small to continue the answer"
            f" ({input_tokens} input tokens with the text so far)"
        )
        run.skip(model.alias, why)
        run.errors.append(
            ErrorInfo(
                code="all_models_failed", message=f"{model.alias}: {why}", provider=model.provider
            )
        )
        return None
    spent = run.settled_usd + run.tracked_usd
    if call.options.max_cost_usd is not None and (spent or cont_tokens):
        # eligibility checked the prompt alone against the cap; later attempts count what
        # the call was billed already (and a continuation, the text so far)
        over = cap_exceeded(call, model, out_tokens, continuation=run.sent_raw, spent=spent)
        if over is not None:
            message = f"{model.alias}: {over}"
            run.skip(model.alias, over)
            run.errors.append(ErrorInfo(code="no_eligible_model", message=message))
            run.over_cap += 1
            return None
    handle = call.caller.handle
    caller = f"caller:{handle}"
    # a caller's spend is kept for a gateway key's handle or a caller with a budget; any
    # other handle is the caller's own word, and would add a ledger row per name made up
    if handle in env.keys_by_handle or caller in env.limited_scopes:
        scopes: tuple[str, ...] = ("global", f"provider:{model.provider}", caller)
    else:
        scopes = ("global", f"provider:{model.provider}")
    began = trio.current_time()  # (spend no budget holds counts in the periods of now too)
    reservation: str | None = None
    if env.limited_scopes.intersection(scopes):
        # the most this attempt can cost, so that no budget is ever overspent
        estimate = most_bill(model, call, run.sent_raw, out_tokens)
        run.holds += 1
        reservation = f"{run.call_id}:{n}.{run.holds}"
        # (its job named: a process killed under it bills the job for it)
        owner = run.job_id or ""
        refused = await reserve_hold(env, reservation, scopes, estimate, owner, n, run.started)
        if refused is not None:
            key = env.keys_by_handle.get(handle)
            message = refusal_message(
                refused,
                cost=f"the ${estimate:.6f} {model.alias} could cost (prompt and max_tokens)",
                # a gateway key that is not an admin's sees its own budget's figures only
                figures=key is None or key.admin or refused.limit.scope == caller,
                wall_now=time.time(),
            )
            limit = refused.limit
            run.skip(model.alias, message)
            # (a ledger that never answered is a bug, not a budget: a 500, not a 402)
            code = "internal_error" if limit.scope == NO_LEDGER else BudgetExceeded.code
            run.errors.append(ErrorInfo(code=code, message=message))
            run.event(env, "budget.reserved", n=n, alias=model.alias, ok=False, reason=message)
            # (what calls in flight hold would cover it: it may wait for them, run_attempts;
            # else the budget is refusing what it cannot cover, and says so)
            # (in the ledger's whole nano-dollars: a float's noise read exact room as short)
            need = to_nanos(estimate)
            if 0 < need <= to_nanos(refused.available_usd) + to_nanos(refused.held_usd):
                run.room_later = (refused, estimate)
            else:
                tell_budget_refusal(env, limit, estimate)
            return None
        budget_held(env)
        run.reserved_usd += estimate
        if not set(scopes).issubset(run.budget_scopes):  # every scope the call held in
            run.budget_scopes = tuple(dict.fromkeys((*run.budget_scopes, *scopes)))
        run.event(env, "budget.reserved", n=n, alias=model.alias, ok=True, amount_usd=estimate)
    settled = False
    sent = reservation is None or env.holds_saved is None  # (took a slot: gives it back)
    try:
        if not sent:  # its hold saved before it goes: a process killed counts it
            await hold_saved(env, run)
            sent = True
        result = await _exchange(env, run, model, n, input_tokens, out_tokens, leave_room)
        sent = result is not None
        if result is None and reservation is not None:  # turned away: nothing was sent
            run.reserved_usd -= estimate
        if isinstance(result, Success) and reservation is not None:
            if result.cost_usd > estimate * (1.0 + 1e-9) and not result.told:
                over_reserved(model.alias, result.cost_usd, estimate)
            await settle_hold(env, reservation, result.cost_usd)
            settled = True
            run.settled_usd += result.cost_usd
            run.event(env, "budget.settled", n=n, alias=model.alias, amount_usd=result.cost_usd)
        elif isinstance(result, Success) and result.cost_usd > 0.0:
            # no budget to hold it against, but spend is tracked all the same (global,
            # per provider, per key): the dispatcher hands it to the ledger in batches
            run.track(scopes, result.cost_usd, run.wall_at(env, began))
        elif isinstance(result, ProviderError) and result.billed_cost_usd:
            # failed here, but billed there (an answer that ended abnormally): it is spend
            if reservation is not None:
                await settle_hold(env, reservation, result.billed_cost_usd)
                settled = True
                run.settled_usd += result.billed_cost_usd
                run.event(
                    env, "budget.settled", n=n, alias=model.alias, amount_usd=result.billed_cost_usd
                )
            else:
                run.track(scopes, result.billed_cost_usd, run.wall_at(env, began))
        return result
    except Exception:  # a bug: the provider may have billed what the call never learned
        if run.handed == n and not settled and not run.cut_usd:
            most = most_bill(model, call, run.sent_raw, out_tokens)
            log.error(
                "attempt %d on %s failed inside the router after it was sent: counted at"
                " the most it could cost, $%.6f",
                n,
                model.alias,
                most,
            )
            if reservation is not None:
                run.cut_usd = most  # (settled below: never overspent)
            else:
                run.track(scopes, most, run.wall_at(env, began))
        raise
    finally:
        if sent and (turns := env.slot_waiters.get(model.provider)) is not None:
            turns.wake_one()  # its slot is free: the next caller in turn asks for it
        cut, run.cut_usd = run.cut_usd, 0.0  # cancelled after output began: billed
        if reservation is not None and not settled:
            if cut:
                await settle_hold(env, reservation, cut)
                run.settled_usd += cut
                run.event(env, "budget.settled", n=n, alias=model.alias, amount_usd=cut)
            else:
                await release_hold(env, reservation)
                # told as a settlement of nothing: a failed attempt costs nothing
                run.event(
                    env, "budget.settled", n=n, alias=model.alias, amount_usd=0.0, released=True
                )
        elif cut:
            run.track(scopes, cut, run.wall_at(env, began))


async def _exchange(
    env: DispatchEnv,
    run: CallRun,
    model: ModelSpec,
    n: int,
    input_tokens: int,
    out_tokens: int,
    leave_room: bool = False,
) -> Success | ProviderError | None:
    """Send one attempt and read its reply to the end, under every deadline.

    ``leave_room``: other candidates follow, so the wait for a first token is at most half
    of the call's time left, and a silent model cannot use up the time its fallbacks need.
    """
    call = run.call
    continued = run.sent_raw  # what this attempt sends again: in its bill's bound if cut
    params = request_params(call, model)
    params["max_tokens"] = out_tokens
    # a continuation of a broken stream: its join to the text sent (a repeat of it dropped)
    messages, seam = messages_for(run, model, env.secrets)
    request = ProviderRequest(
        model_id=model.model_id,
        messages=messages,
        stream=True,
        context_window=model.context_window,
        **params,
    )
    timeouts = call.options.timeouts
    rcfg = env.config.router
    ttft_s = (timeouts.ttft_ms or rcfg.default_ttft_ms) / 1000.0
    stall_s = rcfg.stall_ms / 1000.0
    started = trio.current_time()
    if leave_room:
        ttft_s = min(ttft_s, (run.deadline - started) / 2)
    attempt_deadline = min(
        run.deadline, started + (timeouts.soft_ms or rcfg.default_soft_ms) / 1000.0
    )
    attempt_id = next(_attempt_ids)
    inbox = env.providers[model.provider]
    send: trio.MemorySendChannel[AttemptReply]
    receive: trio.MemoryReceiveChannel[AttemptReply]
    send, receive = open_channel(64)
    after = run.after
    if continued and after is not None:
        after = f"{after}; it continues the {len(continued):,} characters already sent"
    if env.hub.active:
        run.event(
            env, "attempt.started", n=n, alias=model.alias, provider=model.provider, after=after
        )
    wall_started = run.wall(env)

    text: list[str] = []
    ttft: float | None = None
    malformed = 0
    status_code: int | None = None
    error: ProviderError | None = None
    end: StreamEnd | None = None
    unavailable: Unavailable | None = None
    dedupe = seam is not None and seam.checking
    # all the text such a continuation generated, its repeat included: what it is billed
    raw: list[str] | None = [] if dedupe else None
    received = 0  # characters of text, against the most max_tokens can produce
    # (and a continuation's repeat of the text so far, counted before it is dropped)
    most_chars = out_tokens * MAX_CHARS_PER_TOKEN + (len(run.sent_raw) if dedupe else 0)

    closing = ClosingCounted(receive)
    try:
        with closing:
            attempt = Attempt(
                id=attempt_id,
                model=model,
                request=request,
                intent=call.intent,
                deadline=attempt_deadline,
                ttft_s=ttft_s,
                stall_s=stall_s,
                input_tokens=input_tokens,
                reply_to=send,
                alternatives=leave_room,
                continues=bool(continued),
                fresh_look=run.take_fresh_look(model.alias),
            )
            try:
                inbox.send_nowait(attempt)
            except trio.WouldBlock:  # the provider's inbox is full: wait, up to the deadline
                with trio.move_on_at(attempt_deadline):
                    await inbox.send(attempt)
            run.handed = n
            # one timer for the whole exchange: the TTFT deadline until text arrives,
            # then the stall limit after each event; moved, never re-created per event
            ttft_deadline = min(attempt_deadline, started + ttft_s)
            timer = trio.CancelScope(deadline=ttft_deadline)
            with timer:
                while error is None and end is None and unavailable is None:
                    try:  # drain what is already there without a checkpoint per event
                        reply: AttemptReply = receive.receive_nowait()
                    except trio.WouldBlock:
                        # about to wait: the stall clock starts now (the last event was
                        # just handled); moving the deadline only here keeps it cheap
                        if text:
                            timer.deadline = min(attempt_deadline, trio.current_time() + stall_s)
                        try:
                            reply = await receive.receive()
                        except trio.EndOfChannel:
                            error = stopped(model, text)
                            break
                    except trio.EndOfChannel:
                        error = stopped(model, text)
                        break
                    match reply:
                        case TextDelta(text=piece):
                            if ttft is None:
                                ttft = trio.current_time() - started
                            received += len(piece)
                            if raw is not None:
                                raw.append(piece)
                            if received > most_chars:  # a runaway upstream: not an answer
                                error = runaway(model, text, out_tokens, received)
                                _cancel_attempt(env, model, attempt_id, error)
                                break
                            if seam is not None:
                                piece = seam.take(piece)
                            if piece:
                                text.append(piece)
                                if run.stream:
                                    timer.deadline = attempt_deadline  # a slow reader is no stall
                                    await forward(env, run, piece, n)
                        case Malformed():
                            malformed += 1
                        case StreamEnd():
                            end = reply
                        case AttemptFailed(error=exc):
                            error = exc
                        case Unavailable():
                            unavailable = reply
                        case _:
                            status_code = getattr(reply, "status", status_code)
            if timer.cancelled_caught:
                now = trio.current_time()
                error = timed_out(model, text, now, attempt_deadline, ttft_s, stall_s)
                counts = not callers_own_limit(
                    call.options.timeouts, rcfg, now, attempt_deadline, run.deadline, text, ttft_s
                )
                why = error if counts else CallersTimeout(error.message, provider=model.provider)
                _cancel_attempt(env, model, attempt_id, why)
            if error is not None:  # (what waits unread was sent, and is billed)
                closing.texts = texts_waiting(receive)
    except BaseException as exc:
        hard_deadline = isinstance(exc, trio.Cancelled) and trio.current_time() >= run.deadline
        # the call's deadline passing mid-attempt counts against the model, unless the
        # caller chose it tighter than the router's default; a caller that left never does
        counts = hard_deadline and not tighter(timeouts.hard_ms, rcfg.default_hard_ms)
        passed = "the call's deadline passed"
        _cancel_attempt(
            env,
            model,
            attempt_id,
            AttemptTimeout(passed, provider=model.provider)
            if counts
            else CallersTimeout(passed, provider=model.provider)
            if hard_deadline
            else None,  # (the caller left)
        )
        if isinstance(exc, trio.Cancelled):  # the call's deadline, or the caller left
            billed: dict[str, Any] = {}
            unseen = reasoning_unseen(model, env.config)
            # output began (or a reasoning model answering reasoned, unseen): billed,
            # whoever left
            if received or closing.texts or (unseen and answering(status_code)):
                generated = (raw if raw is not None else text) + closing.texts
                usage = cut_usage(model, call, continued, generated, out_tokens, unseen=unseen)
                # (unsaid: its fees at the most they can be, as its reservation held them)
                run.cut_usd = most_cost(model, usage.input_tokens, usage.output_tokens)
                billed = {"usage": usage, "cost_usd": run.cut_usd, "usage_estimated": True}
            record = AttemptRecord(
                n=n,
                alias=model.alias,
                provider=model.provider,
                model_id=model.model_id,
                started_at=wall_started,
                ended_at=run.wall(env),
                ttft_ms=ttft * 1000.0 if ttft is not None else None,
                outcome="timeout" if hard_deadline else "cancelled",
                status_code=status_code,
                error="the call's deadline passed"
                if hard_deadline
                else env.cancel_reasons.get(run.call_id, "the call was cancelled"),
                malformed_events=malformed,
                after=after,
                **billed,
            )
            run.attempts.append(record)
            if env.hub.active:
                run.event(env, "attempt.finished", **record_data(record))
        raise
    if seam is not None and end is not None and (rest := seam.close()):  # held to the end
        text.append(rest)
        if run.stream:
            await forward(env, run, rest, n)
    ended = run.wall(env)
    ttft_ms = ttft * 1000.0 if ttft is not None else None
    base: dict[str, Any] = dict(
        n=n,
        alias=model.alias,
        provider=model.provider,
        model_id=model.model_id,
        started_at=wall_started,
        ended_at=ended,
        ttft_ms=ttft_ms,
        malformed_events=malformed,
        after=after,
    )
    if unavailable is not None:
        turned_away(env, run, model, unavailable, AttemptRecord(outcome="unavailable", **base))
        return None
    if end is not None:
        if run.stream and run.redactor is not None:
            # the text the redactor still held back is this attempt's: it goes out now,
            # before the attempt is told finished
            await flush_held_back(env, run, n)
        answer = "".join(text)
        usage = end.usage
        unsaid = usage.output_tokens == 0 and usage.input_tokens == 0
        estimated = usage.input_tokens == 0 or (usage.output_tokens == 0 and bool(answer))
        if usage.output_tokens == 0 and answer:  # no usage given: at most what was asked
            generated = raw if raw is not None else text  # (a continuation's repeat too)
            unseen = reasoning_unseen(model, env.config)
            out = partial_output_tokens(generated, out_tokens, unseen=unseen)
            usage = attrs.evolve(usage, output_tokens=out)
        if usage.input_tokens == 0:  # (the bound a cut attempt is billed: fair to plain text)
            usage = attrs.evolve(usage, input_tokens=billed_input_tokens(model, call, continued))
        # what the provider says it billed, when it says (fees included), else list price;
        # with no usage at all, its fees at the most they can be (Perplexity's come with it)
        if end.cost_usd is not None:
            cost = end.cost_usd
        elif unsaid:
            cost = most_cost(model, usage.input_tokens, usage.output_tokens)
        else:
            cost = model.cost(usage.input_tokens, usage.output_tokens, end.cached_input_tokens)
            if end.fees is not None:  # its fees as counted, not one a request
                cost += (end.fees - 1) * model.request_fee_usd
        told = False
        if (
            end.cost_usd is not None  # (a cost from usage in bounds is in bounds)
            or end.fees is not None
            or usage.input_tokens > model.context_window
            or usage.output_tokens > model.max_output_tokens
        ):
            bill = possible_bill(model, usage, cost, end.fees)
            if bill.held:
                told = True
                log.warning(
                    "%s reported %d input and %d output tokens%s, $%.6f: more than any "
                    "request could produce (context window %d, max output %d, %d request "
                    "fees); billed $%.6f at most",
                    model.alias,
                    usage.input_tokens,
                    usage.output_tokens,
                    f" and {end.fees} request fees" if end.fees is not None else "",
                    cost,
                    model.context_window,
                    model.max_output_tokens,
                    MOST_FEES,
                    bill.cost_usd,
                )
            usage, cost = bill.usage, bill.cost_usd
        if usage.output_tokens > out_tokens and not told:  # it ignored the limit: it bills
            told = True
            log.warning(
                "%s reported %d output tokens, past the max_tokens %d it was sent: billed "
                "as reported, $%.6f",
                model.alias,
                usage.output_tokens,
                out_tokens,
                cost,
            )
        record = AttemptRecord(
            outcome="success",
            status_code=status_code or 200,
            usage=usage,
            cost_usd=cost,
            usage_estimated=estimated,
            **base,
        )
        run.attempts.append(record)
        if env.hub.active:
            run.event(env, "attempt.finished", **record_data(record))
        return Success(
            model=model,
            text=answer,
            usage=usage,
            cost_usd=cost,
            ttft_ms=ttft_ms,
            first_token_at=started + ttft if ttft is not None else None,
            provider_model_id=end.model_id or model.model_id,
            finish_reason=normal_finish(end.finish_reason),
            told=told,
            citations=end.citations,
        )
    assert error is not None
    if error.provider is None:
        error.provider = model.provider
    billed = {}
    unseen = reasoning_unseen(model, env.config)
    # a reasoning model answering may have reasoned, unseen, before it failed (a first
    # token too late, an error event): billed as if cut
    thought = unseen and answering(status_code) and may_have_run(error)
    if error.billed is None and (received or closing.texts or thought):
        # the stream broke, stalled or errored after output began: the provider billed
        # what it generated, though the answer is not whole (its usage, when it said)
        error.billed = (0, 0)
    if error.billed is not None:  # an answer the provider bills though it failed here
        billed_in, billed_out = error.billed
        # (a continuation's repeat too, and what was sent but left unread)
        generated = (raw if raw is not None else text) + closing.texts
        # (where it did not say)
        cut = cut_usage(model, call, continued, generated, out_tokens, unseen=unseen)
        usage = Usage(
            input_tokens=billed_in or cut.input_tokens,
            # (no text and no word of output, as a refusal reports it: none)
            output_tokens=billed_out or (cut.output_tokens if generated or thought else 0),
            cached_input_tokens=min(error.billed_cached, billed_in),
        )
        if error.billed_cost_usd is None:
            i, o = usage.input_tokens, usage.output_tokens
            # (fees: unsaid, at the most they can be)
            error.billed_cost_usd = (
                model.cost(i, o, error.billed_cached)
                if billed_in or billed_out
                else most_cost(model, i, o)
            )
        billed = {
            "usage": usage,
            "cost_usd": error.billed_cost_usd,
            "usage_estimated": not billed_in or (not billed_out and (bool(generated) or thought)),
        }
    refusal_redacted(error, run, env)
    record = AttemptRecord(
        outcome=attempt_outcome(error),  # type: ignore[arg-type]
        status_code=error.status,
        error=error.message,
        **base,
        **billed,
    )
    run.attempts.append(record)
    info = error_info(error)
    run.errors.append(info)
    if run.stream and run.sent_raw and run.break_error is None:
        run.break_error = info
    if env.hub.active:
        run.event(env, "attempt.finished", **record_data(record))
    return error


def _cancel_attempt(
    env: DispatchEnv, model: ModelSpec, attempt_id: int, reason: ProviderError | None = None
) -> None:
    try:
        env.providers[model.provider].send_nowait(CancelAttempt(id=attempt_id, reason=reason))
    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the attempt still ends at its own deadline
