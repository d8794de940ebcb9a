"""The dispatcher actor: every call, from admission to result.

Each ``Submit`` becomes a task in the dispatcher's nursery (at most
``router.capacity`` at once; past that the inbox waits, which is backpressure on
callers), so one slow call never blocks another. A call goes through:

    bouncer → eligibility → scoring → attempts with fallback → redaction → result

The bouncer refuses what must not run (redaction off without its override and
acknowledgements, a model the caller's key is not allowed). Eligibility and
scoring are the pure policies, fed with the providers' published snapshots.
Attempts and fallback are ``switchman.actors._attempts``.

When the inbox ends (the router is closing) the dispatcher stops taking calls,
lets running ones finish for ``grace_s`` and then cancels the rest; a cancelled
call still answers its caller with a failed ``Result`` (code ``cancelled``), and so
does a call the router's own cancellation stops at once (within ``STOPPED_REPLY_S``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from switchman._call import REDACTION_ACKNOWLEDGEMENTS, TRUST_RANK, Call, TrustTier
from switchman._channels import send_soon
from switchman._errors import PermissionDenied
from switchman._result import (
    BudgetTrace,
    EligibilityTrace,
    ErrorInfo,
    Exclusion,
    Ranked,
    RedactionItem,
    RedactionReport,
    Result,
    Trace,
    failed,
)
from switchman.actors._attempts import SHORT_WAIT_S, run_attempts
from switchman.actors._callrun import CallRun, Success
from switchman.actors._env import DispatchEnv
from switchman.actors._failure import no_eligible, soonest_back, summarise, told_left_out
from switchman.actors._messages import (
    CancelCall,
    DispatcherMessage,
    Feedback,
    FeedbackAnswer,
    FeedbackFor,
    SpendQuery,
    Spent,
    Submit,
)
from switchman.actors._slots import Slots
from switchman.actors._unavailable import unavailable_models
from switchman.actors._waits import paused_reason, short_wait, too_late
from switchman.catalog._config import allowed_for
from switchman.catalog._spec import ModelSpec
from switchman.policy._candidates import named_aliases, plan_attempt_order, reachable
from switchman.policy._eligibility import Eligibility, check_eligibility
from switchman.policy._estimate import estimate_input_tokens
from switchman.policy._known import KnownValues, hide_known
from switchman.policy._redaction import (
    REDACT_IN_THREAD_ABOVE,
    StreamRedactor,
    redact,
    redaction_report,
)
from switchman.policy._scoring import rank

log = logging.getLogger("switchman.dispatcher")

#: calls remembered for feedback (call id -> alias, intent)
FEEDBACK_MEMORY = 10_000
#: how often, at most, spend that no budget covers is handed to the ledger
SPEND_BATCH_S = 0.02
#: calls that may wait for a slot (beyond ``router.capacity``) before the inbox waits too
BACKLOG = 1024
#: what a call says when the router stopped at once under it (its nursery cancelled)
STOPPED = "the router stopped before the call finished"
#: ... and when the dispatcher failed (a bug) and was restarted: the call may be made again
DISPATCHER_FAILED = "the router's dispatcher failed (a bug) and restarted: make the call again"
#: how long such a call may take to tell its caller what it did and cost
STOPPED_REPLY_S = 1.0
#: why a call ends whose caller left while it waited (its cancel undelivered)
LEFT = "its caller left while it waited"
#: a call that waited this long, or longer, for its task to start has that wait traced
INBOX_WAIT_S = 0.001
#: how a call's wait for one of the router's capacity slots begins, in its trace's
#: ``waits`` (a gateway reads from it when its job started)
SLOT_WAIT = "a free slot"


def redaction_enabled(call: Call) -> bool:
    """False only for mode "off"; the bouncer has already checked the override."""
    return call.options.redaction.mode != "off"


def check_redaction_override(call: Call) -> None:
    """Raise ``PermissionDenied`` unless turning redaction off is fully acknowledged."""
    red = call.options.redaction
    if red.mode != "off":
        return
    ov = red.override
    missing = sorted(REDACTION_ACKNOWLEDGEMENTS - set(ov.acknowledgements if ov else ()))
    if ov is None or not ov.enabled or missing or not ov.reason.strip():
        need = ", ".join(sorted(REDACTION_ACKNOWLEDGEMENTS))
        raise PermissionDenied(
            "turning redaction off needs options.redaction.override with enabled=true, "
            f"a reason and the acknowledgements [{need}]"
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )


class _Dispatcher:
    def __init__(self, env: DispatchEnv) -> None:
        self.env = env
        self.scopes: dict[str, trio.CancelScope] = {}
        #: job id -> call id of the running calls submitted for a job (the gateway's)
        self.jobs: dict[str, str] = {}
        #: call id -> what it has done, for a call a bug ends (its attempts' bills)
        self.runs: dict[str, CallRun] = {}
        self.recent: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()
        #: calls already rated (feedback counts once per call)
        self.rated: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._idle = trio.Event()
        #: calls that may run at once; the others wait for a slot inside their own task,
        #: under their own deadline (the inbox keeps moving: cancels, feedback)
        self.slots = Slots(env.config.router.capacity, env.board)
        #: its loop failed (a bug): the calls cancelled with it say so, not "stopped"
        self.failed = False
        #: spend no budget covers, not yet handed to the ledger: per scopes and UTC hour
        #: its attempts began in (which sets its periods), USD
        self.unsent: dict[tuple[tuple[str, ...], int], float] = {}
        #: set when spend waits in ``unsent``: the flusher hands it over within a batch time
        self.spend_waiting = trio.Event()

    def track(self, scopes: tuple[str, ...], usd: float, at: float) -> None:
        """Spend of a call that no budget covered, in the periods of ``at``: the ledger
        gets it within ``SPEND_BATCH_S`` (one message for the calls of that time), before
        any spend query, and at shutdown. Only budgets need it at once, and those go
        through reservations."""
        key = (scopes, int(at // 3600.0))
        self.unsent[key] = self.unsent.get(key, 0.0) + usd
        self.spend_waiting.set()  # (a no-op while the flusher already has it in hand)

    async def flush_spend(self) -> None:
        """Hand over spend left waiting at most ``SPEND_BATCH_S`` after it was tracked, so
        it reaches the ledger (and the store) while the router is idle too. Runs until
        cancelled."""
        while True:
            await self.spend_waiting.wait()
            await trio.sleep(SPEND_BATCH_S)
            self.spend_waiting = trio.Event()
            self.send_spend()
            if self.unsent:  # the ledger's inbox was full: try again a batch time later
                self.spend_waiting.set()

    def send_spend(self) -> None:
        """Hand the ledger the spend tracked so far (what its inbox cannot take now
        waits for the next time; a closed ledger means the router is closing)."""
        for key, usd in list(self.unsent.items()):
            scopes, hour = key
            try:
                self.env.ledger.send_nowait(Spent(scopes=scopes, actual_usd=usd, at=hour * 3600.0))
            except trio.WouldBlock:
                return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            del self.unsent[key]

    async def wait_idle(self) -> None:
        """Return once no call is running."""
        await self.wait_for_room(1)

    async def wait_for_room(self, capacity: int) -> None:
        """Return once fewer than ``capacity`` calls are running."""
        while len(self.scopes) >= capacity:
            self._idle = trio.Event()
            await self._idle.wait()

    def allowed_patterns(self, call: Call) -> tuple[tuple[str, ...], TrustTier]:
        """The models the caller's key lets this call use (a route the key names grants
        that route's chain, for a call to it only: ``allowed_for``, as the gateway checks
        it) and the trust it asks for; any model for a caller without a key."""
        key = self.env.keys_by_handle.get(call.caller.handle)
        if key is None:
            return ("*",), call.min_trust
        trust = max(call.min_trust, key.min_trust, key=TRUST_RANK.__getitem__)
        config = self.env.config
        return allowed_for(key.models, call.model, config.routes, config.providers), trust

    async def _unless_left(self, run: CallRun, scope: trio.CancelScope) -> None:
        """End ``run`` as cancelled now when its caller has left (its reply channel has no
        reader) while the call waited: in an overload, the caller's cancel may have found
        the inbox full and given up (``Router._cancel``), and the call must not then take
        a slot and spend for nobody."""
        if run.reply_to.statistics().open_receive_channels == 0:
            self.env.cancel_reasons[run.call_id] = LEFT
            scope.cancel()
            await trio.lowlevel.checkpoint()  # (raises: the call's scope catches it)

    @trio.lowlevel.enable_ki_protection  # (Ctrl-C: see switchman.supervisor._supervisor)
    async def run_call(self, msg: Submit, scope: trio.CancelScope) -> None:
        """Run one call and always answer it: a bug in one call fails that call only."""
        with msg.reply_to:
            try:
                result = await self._call(msg, scope)
            except Exception as exc:
                log.exception("internal error in call %s", msg.call_id)
                run = self.runs.get(msg.call_id)
                result = Result(
                    call_id=msg.call_id,
                    job_id=msg.job_id,
                    status="failed",
                    errors=(
                        ErrorInfo(
                            code="internal_error",
                            message=f"internal error: {type(exc).__name__}: {exc}",
                        ),
                    ),
                    # what its attempts were billed, as a budget counted it: a caller
                    # told 0 would pay again for what it retried
                    cost_usd=0.0 if run is None else run.settled_usd + run.tracked_usd,
                    trace=Trace(
                        outcome="internal_error",
                        attempts=() if run is None else tuple(run.attempts),
                    ),
                )
                if run is not None:  # (live subscribers see the call end)
                    run.event(
                        self.env,
                        "call.failed",
                        code="internal_error",
                        message=result.errors[0].message,
                        attempts=len(run.attempts),
                    )
            finally:
                self.runs.pop(msg.call_id, None)
                del self.scopes[msg.call_id]
                if msg.job_id is not None:
                    self.jobs.pop(msg.job_id, None)
                if self.env.cancel_reasons:
                    self.env.cancel_reasons.pop(msg.call_id, None)
                self.env.board.calls_in_flight = len(self.scopes)
                self._idle.set()  # room for one more (and idle when none is left)
            try:
                msg.reply_to.send_nowait(result)
            except trio.WouldBlock:  # a streaming caller still reading: wait, briefly
                with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                    try:
                        await msg.reply_to.send(result)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the caller left

    async def _call(self, msg: Submit, scope: trio.CancelScope) -> Result:
        env = self.env
        call = msg.call
        now = trio.current_time()
        started = now  # the caller's clock started when it submitted
        if msg.submitted_at is not None and msg.submitted_at < now:
            started = msg.submitted_at
        hard = (call.options.timeouts.hard_ms or env.config.router.default_hard_ms) / 1000.0
        run = CallRun(
            call=call,
            call_id=msg.call_id,
            job_id=msg.job_id,
            stream=msg.stream,
            reply_to=msg.reply_to,
            input_tokens=estimate_input_tokens(call),
            deadline=started + hard,
            started=started,
            redact=redaction_enabled(call),
            scope=scope,
            spend=self.track,
        )
        self.runs[msg.call_id] = run
        if msg.stream and run.redact:
            run.redactor = StreamRedactor(env.secrets)
        elif msg.stream and env.secrets:  # redaction off: the router's own keys still go
            run.redactor = KnownValues(env.secrets)
        if env.hub.active:  # (the event's fields are not even built for nobody)
            run.event(env, "call.accepted", model=call.model, intent=call.intent)
        eligibility = EligibilityTrace()
        ranking: tuple[Any, ...] = ()
        success: Success | None = None
        scope.deadline = run.deadline  # the call's hard deadline (set before entering: cheaper)
        slot = queued = False
        who = call.caller.handle  # (whose turn a freed slot is: see ``Slots``)
        try:
            with scope:
                if now - started >= INBOX_WAIT_S:  # the dispatcher was busy: in the trace
                    run.waited(started, "its turn in the dispatcher's inbox")
                    await self._unless_left(run, scope)
                if not self.slots.take_nowait(who):  # wait (bounded by the call's deadline)
                    full = f"{SLOT_WAIT}: the router's {self.slots.capacity} were all taken"
                    job = msg.job_id
                    try:
                        if job is not None:  # (its job shows queued meanwhile)
                            env.board.queued_jobs.add(job)
                        with run.waiting(full):
                            await self.slots.take(who)
                        if job is not None:  # (its job shows when it started)
                            env.board.started_jobs[job] = run.wall_at(env, trio.current_time())
                    finally:
                        if job is not None:
                            env.board.queued_jobs.discard(job)
                    slot = queued = True  # (released however the call ends from here)
                    await self._unless_left(run, scope)
                    now = trio.current_time()
                slot = True
                check_redaction_override(call)
                patterns, min_trust = self.allowed_patterns(call)
                if min_trust != call.min_trust:
                    call = attrs.evolve(call, min_trust=min_trust)
                    run.call = call
                back_at: dict[str, float] = {}
                elig, ranking, candidates = self._select(call, run, patterns, now, back_at)
                waited = 0.0
                while not candidates:
                    wait = short_wait(elig.excluded, back_at, now, run.deadline)
                    if wait is None or waited + wait > SHORT_WAIT_S:
                        break
                    # e.g. a 429 paused the provider for a moment, or a half-open breaker's
                    # probe is out: wait for it, briefly, and choose again
                    waited += wait
                    with run.waiting(paused_reason(elig.excluded, back_at)):
                        await trio.sleep(wait)
                    now = trio.current_time()
                    back_at = {}
                    elig, ranking, candidates = self._select(call, run, patterns, now, back_at)
                eligibility = EligibilityTrace(
                    eligible=tuple([m.alias for m in elig.eligible]), excluded=elig.excluded
                )
                if env.hub.active:
                    run.event(
                        env,
                        "call.routed",
                        candidates=[m.alias for m in candidates],
                        order=run.order,
                        excluded=[{"alias": e.alias, "reason": e.reason} for e in elig.excluded],
                        ranking=[
                            {"alias": r.alias, "score": round(r.score, 4)} for r in ranking[:5]
                        ],
                    )
                if not candidates:
                    soonest = soonest_back(elig.excluded, back_at, now)
                    run.errors.append(no_eligible(call, elig, env.config.models, soonest))
                elif queued and (
                    late := too_late(
                        call.intent,
                        candidates,
                        self._stats(),
                        now=now,
                        started=run.started,
                        deadline=run.deadline,
                    )
                ):
                    run.errors.append(ErrorInfo(code="timeout", message=late))
                else:
                    success = await run_attempts(env, run, candidates)
            timed_out = success is None and trio.current_time() >= run.deadline
            if timed_out and (not run.errors or run.errors[-1].code != "timeout"):
                run.errors.append(ErrorInfo(code="timeout", message=f"no answer within {hard:g}s"))
            elif scope.cancelled_caught and not timed_out:
                why = env.cancel_reasons.get(run.call_id, "the call was cancelled")
                run.errors.append(ErrorInfo(code="cancelled", message=why))
        except PermissionDenied as exc:
            run.errors.append(ErrorInfo(code=exc.code, message=str(exc)))
        except trio.Cancelled:
            # the router stops at once (its nursery was cancelled, not this call's scope):
            # the caller still learns what the call did and what its attempts cost
            run.errors.append(
                ErrorInfo(code="internal_error", message=DISPATCHER_FAILED)
                if self.failed
                else ErrorInfo(code="cancelled", message=STOPPED)
            )
            with trio.CancelScope(shield=True), trio.move_on_after(STOPPED_REPLY_S):
                result = await self._finish(run, success, eligibility, ranking)
                try:
                    await run.reply_to.send(result)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the caller left too
            raise
        finally:
            if slot:
                self.slots.release(who)
            if env.board.started_jobs and msg.job_id is not None:
                env.board.started_jobs.pop(msg.job_id, None)
        return await self._finish(run, success, eligibility, ranking)

    def _select(
        self,
        call: Call,
        run: CallRun,
        patterns: tuple[str, ...],
        now: float,
        back_at: dict[str, float],
    ) -> tuple[Eligibility, tuple[Ranked, ...], list[ModelSpec]]:
        """Eligibility, ranking and the attempt order for ``call`` as of ``now``;
        ``back_at`` gets when each model that is only paused can serve again."""
        env = self.env
        reach = reachable(call, env.config)  # None: any model; else only what it names
        elig = check_eligibility(
            call,
            env.models if reach is None else [env.by_alias[a] for a in reach if a in env.by_alias],
            input_tokens=run.input_tokens,
            unavailable=unavailable_models(env, now, reach, back_at),
            allowed=patterns,
            # (what ``_prefer_others`` keeps: only a call reaching several models can need it)
            named=named_aliases(call, env.config) if reach is None or len(reach) > 1 else (),
        )
        named = _out_of_service(env, reach)
        if named:
            elig = Eligibility(eligible=elig.eligible, excluded=(*named, *elig.excluded))
        by_alias = env.by_alias  # every model of the call's eligibility is one of these
        if reach is None:  # every eligible model can be reached: all are scored
            ranking = self._rank(call, run, elig.eligible, now)
            fresh = ranking and "freshness" in ranking[0].factors
            run.fresh_look = ranking[0].alias if fresh else None
            order = plan_attempt_order(call, env.config, elig.eligible, ranking)
            return elig, ranking, [by_alias[a] for a in order]
        # a named model or route reaches only its own chain: only those were checked,
        # and only those are scored (a trace of the models the call could use)
        run.order = "named"
        order = plan_attempt_order(call, env.config, elig.eligible, ())
        candidates = [by_alias[a] for a in order]
        return elig, self._rank(call, run, candidates, now, freshen=False), candidates

    def _rank(
        self,
        call: Call,
        run: CallRun,
        models: Sequence[ModelSpec],
        now: float,
        *,
        freshen: bool = True,
    ) -> tuple[Ranked, ...]:
        env = self.env
        return rank(
            call,
            models,
            self._stats(),
            now=now,
            input_tokens=run.input_tokens,
            rng=env.rng,
            weights=env.weights,
            learning=env.learning,
            exploration=env.config.router.exploration,
            freshen=freshen,
        )

    def _stats(self) -> dict[tuple[str, str], Any]:
        stats: dict[tuple[str, str], Any] = {}
        for snap in self.env.board.snapshots().values():
            stats.update(snap.stats)
        return stats

    async def _finish(
        self,
        run: CallRun,
        success: Success | None,
        eligibility: EligibilityTrace,
        ranking: tuple[Any, ...],
    ) -> Result:
        env = self.env
        latency_ms = (trio.current_time() - run.started) * 1000.0
        items: tuple[RedactionItem, ...] = ()
        answer = ""
        if run.stream and run.redactor is not None:
            # an answer that ended flushed what the redactor held back as it ended; what it
            # holds now is a failed stream's, cut where it broke, and is not sent: it may be
            # a secret's start, too short to be told from prose (a key's first characters,
            # a private key's block without its END line)
            items = redaction_report(run.redactor.counts).items
            answer = "".join(run.sent_redacted)
        elif success is not None:
            if run.redact:
                if len(success.text) > REDACT_IN_THREAD_ABOVE:  # off the loop; a cancel waits
                    red = await trio.to_thread.run_sync(redact, success.text, env.secrets)
                else:
                    red = redact(success.text, env.secrets)
                answer = red.text
                items = redaction_report(red.counts).items
            else:  # off: only the router's own keys (``policy._known``)
                answer, hidden = hide_known(success.text, env.secrets)
                items = redaction_report(hidden).items
        elif run.stream:
            answer = "".join(run.sent_redacted)
        redaction = RedactionReport(performed=bool(items), items=items)
        budget = BudgetTrace(
            reserved_usd=run.reserved_usd, settled_usd=run.settled_usd, scopes=run.budget_scopes
        )
        if success is not None:
            self._remember(run.call_id, success.model.alias, run.call.intent)
            result = Result(
                call_id=run.call_id,
                job_id=run.job_id,
                status="complete",
                answer=answer,
                model=success.model.alias,
                provider=success.model.provider,
                provider_model_id=success.provider_model_id,
                usage=success.usage,
                # what the call cost: the answer, and what attempts cut short were billed
                cost_usd=_spent(run),
                latency_ms=latency_ms,
                # as the caller saw it, from the call's start: a stream's first text (an
                # earlier attempt may have sent it before breaking), else the answering
                # attempt's first token (after the attempts and waits before it)
                ttft_ms=(
                    (run.first_text_at - run.started) * 1000.0
                    if run.first_text_at is not None
                    else (success.first_token_at - run.started) * 1000.0
                    if success.first_token_at is not None
                    else None
                ),
                redaction=redaction,
                errors=(),
                trace=_trace(env, run, eligibility, ranking, budget, "success"),
                simulated=env.config.simulated or success.model.provider == "sim",
                finish_reason=success.finish_reason or "stop",
                citations=_shown_sources(success.citations, run.redact, env.secrets)
                if success.citations
                else (),
            )
            if env.hub.active:
                run.event(
                    env,
                    "call.completed",
                    model=result.model,
                    provider=result.provider,
                    cost_usd=result.cost_usd,
                    latency_ms=round(latency_ms, 3),
                    attempts=len(run.attempts),
                    # what was hidden of the answer, live (the result has the same counts)
                    redacted={i.kind: i.count for i in items},
                )
            return result
        errors = told_left_out(summarise(run), run.call, env.config, eligibility.excluded)
        result = Result(
            call_id=run.call_id,
            job_id=run.job_id,
            status="failed",
            answer=answer,
            latency_ms=latency_ms,
            ttft_ms=(
                (run.first_text_at - run.started) * 1000.0
                if run.first_text_at is not None
                else None
            ),
            cost_usd=_spent(run),
            redaction=redaction,
            errors=errors,
            trace=_trace(env, run, eligibility, ranking, budget, errors[0].code),
            simulated=env.config.simulated,
        )
        run.event(
            env,
            "call.failed",
            code=errors[0].code,
            message=errors[0].message,
            attempts=len(run.attempts),
            latency_ms=round(latency_ms, 3),  # a slow failure counts in latency figures too
            redacted={i.kind: i.count for i in items},  # (of the text it had sent)
        )
        return result

    def _remember(self, call_id: str, alias: str, intent: str) -> None:
        self.recent[call_id] = (alias, intent)
        if len(self.recent) > FEEDBACK_MEMORY:
            self.recent.popitem(last=False)

    async def feedback(self, msg: FeedbackFor) -> None:
        """Credit the score to the model that answered, once per call: a rated call is
        forgotten (``"rated"`` from then on), so one client cannot outweigh the others by
        rating the same answer again."""
        known = self.recent.pop(msg.call_id, None)
        remembered = known
        answer: FeedbackAnswer = "unknown"
        if (
            known is None
            and msg.model is not None
            and msg.intent is not None
            and msg.call_id not in self.rated
        ):  # forgotten (a restart), but the caller kept who answered it
            known = (msg.model, msg.intent)
        model = self.env.by_alias.get(known[0]) if known is not None else None
        inbox = self.env.providers.get(model.provider) if model is not None else None
        if known is not None and inbox is None:
            # its provider is not in service this run (no key): nothing could learn of the
            # score, which must not count as given (the caller may rate it once it is back)
            if remembered is not None:
                self.recent[msg.call_id] = remembered
            answer = "out_of_service"
        elif known is not None and inbox is not None:
            answer = "ok"
            self.rated[msg.call_id] = None
            if len(self.rated) > FEEDBACK_MEMORY:
                self.rated.popitem(last=False)
            alias, intent = known
            intent = msg.intent or intent  # the caller may say what kind of call it was
            await inbox.send(Feedback(alias=alias, intent=intent, score=msg.score))
        elif msg.call_id in self.rated:
            answer = "rated"
        with msg.reply_to:
            try:
                msg.reply_to.send_nowait(answer)
            except (trio.BrokenResourceError, trio.WouldBlock):
                pass


def _shown_sources(
    citations: tuple[str, ...], redacting: bool, secrets: tuple[str, ...]
) -> tuple[str, ...]:
    """The answer's sources, ``""`` in place of any whose URL carries what redaction hides
    (a token in its query, an address, credentials), so the numbers still match: the
    provider's output, redacted as its answer is (one of the router's own keys, whatever
    the call's redaction)."""
    if redacting:
        return tuple(url if redact(url, secrets).text == url else "" for url in citations)
    return tuple("" if hide_known(url, secrets)[1] else url for url in citations)


def _trace(
    env: DispatchEnv,
    run: CallRun,
    eligibility: EligibilityTrace,
    ranking: tuple[Any, ...],
    budget: BudgetTrace,
    outcome: str,
) -> Trace:
    return Trace(
        eligibility=eligibility,
        ranking=ranking,
        attempts=tuple(run.attempts),
        budget=budget,
        outcome=outcome,
        # (the wall clock as the call's attempts read it: their times and this agree)
        started_at=run.wall_at(env, run.started),
        order=run.order,
        waits=tuple(run.waits) if run.waits else (),
        skipped=tuple(run.skipped) if run.skipped else (),
    )


def _out_of_service(env: DispatchEnv, reach: tuple[str, ...] | None) -> tuple[Exclusion, ...]:
    """Exclusions for the models a call names (``reach``) whose provider is not in service."""
    if reach is None or not env.out_of_service:
        return ()
    return tuple(
        Exclusion(alias=a, reason=env.out_of_service[a]) for a in reach if a in env.out_of_service
    )


async def run_dispatcher(
    env: DispatchEnv,
    inbox: trio.MemoryReceiveChannel[DispatcherMessage],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Take calls until the inbox ends, then drain for the grace period and cancel the rest."""
    dispatcher = _Dispatcher(env)
    capacity = env.config.router.capacity
    backlog = max(capacity, BACKLOG)
    try:
        async with trio.open_nursery() as nursery:
            flusher = trio.CancelScope()

            @trio.lowlevel.enable_ki_protection
            async def flush_spend() -> None:
                with flusher:
                    await dispatcher.flush_spend()

            nursery.start_soon(flush_spend)
            task_status.started()
            held: list[DispatcherMessage] = []  # the message being handled, until it is
            try:
                await _serve_inbox(dispatcher, nursery, inbox, capacity, backlog, held)
            except trio.Cancelled:  # the router stops now: no one would take what waits
                _turn_away(held, inbox)
                raise
            except Exception:  # a bug: the restarted dispatcher serves what waits, but
                _turn_away(held, None)  # the message in hand would wait for ever
                dispatcher.failed = True  # (its calls, cancelled with it, say so)
                raise
            with trio.move_on_after(env.config.server.grace_s):
                await dispatcher.wait_idle()
            for running in list(dispatcher.scopes.values()):
                running.cancel()
            flusher.cancel()
    finally:
        dispatcher.send_spend()  # what the last calls spent (a crash loses none of it)


def _turn_away(
    held: list[DispatcherMessage], inbox: trio.MemoryReceiveChannel[DispatcherMessage] | None
) -> None:
    """The router stopped at once (cancelled): answer the message it ``held`` and every
    one still waiting in ``inbox`` (a call with its failed result, "the router stopped
    before the call finished"; a feedback query with ``closed`` and a spend query with the
    end of its channel, both ``RouterClosed`` to their callers), and close ``inbox``, so
    later sends fail at once instead of waiting for ever. Without ``inbox`` (the
    dispatcher crashed, and its restart serves what waits), the held message alone."""
    while True:
        if held:  # (the one the dispatcher held when cancelled, waiting for room or else)
            msg = held.pop()
        elif inbox is None:
            return
        else:
            try:
                msg = inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        if isinstance(msg, Submit):  # (its reply channel has room: the call is not begun)
            with contextlib.suppress(
                trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                msg.reply_to.send_nowait(failed(msg.call_id, msg.job_id, "cancelled", STOPPED))
        elif isinstance(msg, FeedbackFor):
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                msg.reply_to.send_nowait("closed")  # (not "unknown": the router stopped)
        if not isinstance(msg, CancelCall):
            msg.reply_to.close()
    inbox.close()


async def _serve_inbox(
    dispatcher: _Dispatcher,
    nursery: trio.Nursery,
    inbox: trio.MemoryReceiveChannel[DispatcherMessage],
    capacity: int,
    backlog: int,
    held: list[DispatcherMessage],
) -> None:
    """Take each message of ``inbox`` until it ends: calls start as tasks of ``nursery``.
    ``held`` has the message being handled while its handling waits (for room, for a
    provider's or the ledger's inbox), so a cancellation there still answers it."""
    env = dispatcher.env
    async for msg in inbox:
        held.append(msg)
        match msg:
            case Submit():
                # calls past ``capacity`` wait for a slot in their own task, under their
                # own deadline; past ``backlog`` more, the inbox itself waits
                if len(dispatcher.scopes) >= capacity + backlog:
                    await dispatcher.wait_for_room(capacity + backlog)
                scope = trio.CancelScope()
                dispatcher.scopes[msg.call_id] = scope
                if msg.job_id is not None:
                    dispatcher.jobs[msg.job_id] = msg.call_id
                env.board.calls_in_flight = len(dispatcher.scopes)
                nursery.start_soon(dispatcher.run_call, msg, scope)
            case CancelCall(call_id=call_id, job_id=job_id, reason=reason):
                if call_id is None and job_id is not None:
                    call_id = dispatcher.jobs.get(job_id)
                if call_id is not None and (target := dispatcher.scopes.get(call_id)):
                    if reason is not None:
                        env.cancel_reasons[call_id] = reason
                    target.cancel()
            case FeedbackFor():
                await dispatcher.feedback(msg)
            case SpendQuery():
                dispatcher.send_spend()  # (the ledger reads in order)
                try:
                    await send_soon(env.ledger, msg)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    msg.reply_to.close()  # the ledger is gone: the query ends
        held.clear()


def _spent(run: CallRun) -> float:
    """The call's cost: what each of its attempts was billed (the answer, and attempts cut
    short after output began, which the provider bills too)."""
    attempts = run.attempts
    if len(attempts) == 1:  # the usual call
        return attempts[0].cost_usd
    return sum(a.cost_usd for a in attempts)
