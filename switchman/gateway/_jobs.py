"""Jobs: every call the gateway takes is a job, stored before its id is handed out.

A :class:`JobRunner` runs each job as a task in the nursery it is given (owned
by ``serve_gateway``), so a job outlives the HTTP request that submitted it: a
client may disconnect, the call still finishes and its result is stored.

Lifecycle in the store: ``running`` (stored on submit, as its task starts at
once) → ``complete`` | ``failed``. A job whose call waits for one of the router's slots is
shown ``queued`` meanwhile (``_app.shown``, from ``Router.queued_jobs``), and its finish
writes when it took the slot as its ``started_at``.
A job a shutdown cuts short is stored ``failed`` with reason ``"shutdown"``: the
router's own result for it when the router ends it in time (``cut_short``), else a bare
one, in a shielded, bounded clean-up: nothing vanishes. A store that cannot be written
(disk full, locked) refuses new jobs (``HttpError`` 503 ``store_unavailable``) and keeps
the results of the jobs in flight in memory until it can write them (see ``store``).

Waiting: each in-flight job has a ``trio.Event`` set once its final record is
stored, so long-polls and ``?wait=`` wake at once instead of polling the store.
The map of in-flight jobs is this runner's private bookkeeping, not a channel
between actors.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Final

import attrs
import trio

from switchman._call import Call
from switchman._channels import send_soon
from switchman._convert import to_jsonable
from switchman._errors import ValidationError
from switchman._result import Delta, ErrorInfo, Result
from switchman.actors._dispatcher import SLOT_WAIT
from switchman.gateway._http import HttpError
from switchman.gateway._limits import Holdings
from switchman.gateway._protocol import RouterHandle
from switchman.store import JobStore, StoreUnavailable

log = logging.getLogger("switchman.gateway")

StreamSink = trio.MemorySendChannel[Delta | Result]
#: how long a cancelled job may take to store its "shutdown" failure and tell its stream
_CLEANUP_S = 5.0
#: how long the router has to end the jobs a shutdown cuts short, with their own results
_CUT_S = 2.0
#: what a job cut short by a shutdown says
SHUT_DOWN = "the gateway shut down before the call finished"
#: the longest a finished job waits for its spend to be saved before its result is stored
#: (a store refusing writes: the result is not held up for it)
_SPEND_SAVED_S: Final = 1.0
#: the ``retry-after`` of a call refused because the store cannot be written
STORE_RETRY = b"2"


def store_unavailable(exc: StoreUnavailable) -> HttpError:
    """The answer to a request the store cannot serve now (full, locked, a file gone bad):
    503 ``store_unavailable`` with its reason, and when to try again."""
    return HttpError(503, "store_unavailable", str(exc), headers=[(b"retry-after", STORE_RETRY)])


class Draining(Exception):
    """The gateway is shutting down and takes no new jobs."""


class Overloaded(Exception):
    """Too many jobs in flight: the gateway's, or (``owner_full``) the caller's own share;
    or too much prompt text in them (``said``: which, in words)."""

    def __init__(self, *, owner_full: int | None = None, said: str | None = None) -> None:
        super().__init__()
        #: the caller's jobs in flight, when it is its share that is full
        self.owner_full = owner_full
        self.said = said


def prompt_chars(call: Call) -> int:
    """The characters of a call's prompt or messages: what its job holds (a few times over:
    the request, the call, the stored job, the provider's request)."""
    if call.messages is not None:
        return sum(len(m.content) for m in call.messages)
    return len(call.prompt or "")


def _mb(chars: int) -> str:
    return f"{chars / 1_048_576:.1f} MB"


def new_job_id() -> str:
    return "job_" + uuid.uuid4().hex


def failed_result(job_id: str, code: str, message: str) -> Result:
    """A failed result for a job that never got one from the router."""
    return Result(
        call_id="",
        job_id=job_id,
        status="failed",
        errors=(ErrorInfo(code=code, message=message),),
    )


@attrs.define
class _Job:
    owner: str | None = None
    #: its prompt's characters (``prompt_chars``)
    chars: int = 0
    #: scopes cancelled when it ends (``JobRunner.interrupted_when_done``)
    interrupts: list[trio.CancelScope] = attrs.field(factory=list)
    done: trio.Event = attrs.field(factory=trio.Event)
    result: Result | None = None
    #: why it was cancelled (``JobRunner.cancel``), perhaps before its call reached the
    #: router: it never does then
    cancelled: str | None = None


class JobRunner:
    """Submits calls as jobs into ``nursery`` and lets requests wait for them.

    ``max_in_flight`` bounds how many jobs run at once (past it, submit raises
    :class:`Overloaded`), and one owner (a key's handle) may hold at most half of them,
    so that one team cannot fill the gateway for the others (the gateway without keys,
    owner None, is one caller and may use it all); after :meth:`start_draining`, submit
    raises :class:`Draining`. Whoever owns ``nursery`` cancels it to stop the jobs.
    """

    def __init__(
        self,
        router: RouterHandle,
        store: JobStore,
        nursery: trio.Nursery,
        *,
        max_in_flight: int,
        max_prompt_chars: int | None = None,
        job_ids: Callable[[], str] = new_job_id,
        on_result: Callable[[Result], None] | None = None,
    ) -> None:
        """``on_result`` sees every job's final result (the gateway's metrics count them)."""
        self._router = router
        self._on_result = on_result
        self._store = store
        self._nursery = nursery
        self._max = max_in_flight
        #: the most one owner may hold
        self._owner_max = max(max_in_flight // 2, 1)
        self._by_owner = Holdings()
        #: the prompt text jobs in flight may hold, and one owner half of it
        self._max_chars = max_prompt_chars
        self._chars_by_owner = Holdings()
        self._chars = 0
        self._job_ids = job_ids
        self._jobs: dict[str, _Job] = {}
        #: jobs being stored, not yet in ``_jobs``: the runner is not idle while any is (a
        #: stop closed the jobs' nursery under one, a 500 and its job stored running)
        self._storing = 0
        self._idle = trio.Event()
        self._idle.set()
        #: set when draining starts (``start_draining``)
        self.stopping = trio.Event()
        #: set when the jobs left are being cut short (``cut_short``)
        self._cutting = False
        self.drained = trio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._jobs)

    async def submit(self, call: Call, *, owner: str | None, sink: StreamSink | None = None) -> str:
        """Store ``call`` as a running job and start it; returns the job id.

        With ``sink`` the call is streamed: ``Delta`` items then the final
        ``Result`` are sent to ``sink``, which the job closes when done (a sink
        whose receiver went away is simply dropped; the job still completes).
        If cancelled before the job is stored, nothing is submitted. A store that cannot
        be written now: ``HttpError`` 503 ``store_unavailable`` with ``retry-after``.
        """
        if self.draining:
            raise Draining
        # (those being stored count: the store's write is a checkpoint, and a burst let
        # 10 times the bound in while the first of it waited for the store)
        if len(self._jobs) + self._storing >= self._max:
            raise Overloaded
        held = self._by_owner.held(owner)
        if owner is not None and held >= self._owner_max:
            raise Overloaded(owner_full=held)
        size = prompt_chars(call)
        self._check_room(owner, size)
        job_id = self._job_ids()
        self._by_owner.take(owner)  # (counted from here: the store's write is a checkpoint)
        self._take_chars(owner, size)
        self._storing += 1
        self._idle = trio.Event()
        try:
            # stored as running: the job starts right below (a separate queued -> running
            # write cost a thread round trip before the call could begin)
            await self._store.add_job(
                job_id=job_id,
                owner=owner,
                handle=call.caller.handle,
                call=to_jsonable(call),
                running=True,
            )
        except StoreUnavailable as exc:  # full, locked: said once in the log by the store
            self._by_owner.give_back(owner)
            self._take_chars(owner, -size)
            raise store_unavailable(exc) from None
        except BaseException:
            self._by_owner.give_back(owner)
            self._take_chars(owner, -size)
            raise
        finally:
            self._storing -= 1
            if not self._jobs and not self._storing:
                self._idle.set()
        self._jobs[job_id] = _Job(owner=owner, chars=size)
        self._idle = trio.Event()
        try:
            self._nursery.start_soon(self._run, job_id, call, sink, name=f"job {job_id}")
        except RuntimeError:  # the jobs' nursery closed during the write (a stop's end)
            job = self._jobs[job_id]
            with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_S):
                await self._finish_cancelled(job, job_id, None)
            self._release(job_id)
            raise Draining from None
        return job_id

    def _check_room(self, owner: str | None, size: int) -> None:
        """``Overloaded`` when a prompt of ``size`` characters would take the prompt text
        held in flight past ``max_prompt_chars``, or its owner's past half of it (one job
        alone always has room)."""
        most = self._max_chars
        if most is None:
            return
        if self._chars and self._chars + size > most:
            raise Overloaded(
                # (not how much: the other teams' prompts are theirs)
                said=f"the calls in flight hold the most prompt text the gateway holds at"
                f" once ({_mb(most)}); retry shortly"
            )
        held = self._chars_by_owner.held(owner)
        if owner is not None and held and held + size > most // 2:
            raise Overloaded(
                said=f"this key's team has {_mb(held)} of prompts in calls in flight, half of"
                " what the gateway holds at once; retry when some finish"
            )

    def _take_chars(self, owner: str | None, size: int) -> None:
        self._chars += size
        if size >= 0:
            self._chars_by_owner.take(owner, size)
        else:
            self._chars_by_owner.give_back(owner, -size)

    def is_running(self, job_id: str) -> bool:
        return job_id in self._jobs

    async def wait(self, job_id: str) -> Result | None:
        """Wait for a job of this process to finish; its result, or None when not in flight.

        For a job that is not in flight here (finished earlier, or unknown),
        returns None at once: read the store then. Callers bound the wait with
        their own cancel scope; cancelling the wait does not touch the job.
        """
        job = self._jobs.get(job_id)
        if job is None:
            return None
        await job.done.wait()
        return job.result

    @contextlib.contextmanager
    def interrupted_when_done(self, job_id: str) -> Iterator[Callable[[], Result | None]]:
        """A block cancelled when the job ends (at once if it is not running here), which
        gives what reads the job's result once it has ended: a request waits in it for
        something else, its client's disconnect, without a task of its own to wait for
        the job."""
        scope = trio.CancelScope()
        job = self._jobs.get(job_id) or _Job()
        if job.result is not None or job_id not in self._jobs:
            scope.cancel()
        else:
            job.interrupts.append(scope)
        try:
            with scope:
                yield lambda: job.result
        finally:
            if scope in job.interrupts:
                job.interrupts.remove(scope)

    async def cancel(self, job_id: str, reason: str) -> bool:
        """End the job's call now, if it is still running here (whether it was): it is
        stored failed, code ``cancelled`` with ``reason``, with the attempts it made and
        what they were billed."""
        job = self._jobs.get(job_id)
        if job is None or job.result is not None:
            return False
        job.cancelled = reason
        await self._router.cancel_job(job_id, reason)
        return True

    @property
    def draining(self) -> bool:
        """Whether it takes no new jobs (``start_draining`` was called)."""
        return self.stopping.is_set()

    def start_draining(self) -> None:
        """Take no new jobs from now on."""
        self.stopping.set()

    async def wait_idle(self) -> None:
        """Wait until no job is in flight."""
        while self._jobs or self._storing:
            await self._idle.wait()

    async def cut_short(self, *, within: float = _CUT_S) -> None:
        """Have the router end every job still running, now (the grace period is over):
        each stores the router's own failed result, with the attempts it made and what
        they were billed, as a ``shutdown`` failure. Returns once no job is left, or
        after ``within`` seconds; the owner of the nursery cancels what is left."""
        self._cutting = True
        with trio.move_on_after(within):
            for job_id in list(self._jobs):
                await self._router.cancel_job(job_id, SHUT_DOWN)
            await self.wait_idle()

    async def _run(self, job_id: str, call: Call, sink: StreamSink | None) -> None:
        job = self._jobs[job_id]
        try:
            result = await self._execute(job_id, call, sink)
            if result.cost_usd > 0:  # its spend saved first: a kill between loses none
                # (shielded: a stop now must not turn the finished call into a cut one)
                with trio.CancelScope(shield=True), trio.move_on_after(_SPEND_SAVED_S):
                    await self._router.spend_saved(within=_SPEND_SAVED_S)
            cut = self._cutting and any(e.code == "cancelled" for e in result.errors)
            await self._stored(job_id, result, reason="shutdown" if cut else None)
            job.result = result
            if sink is not None:
                await _deliver(sink, result)
        finally:
            if job.result is None:  # cancelled before its result was stored
                with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_S):
                    await self._finish_cancelled(job, job_id, sink)
            self._release(job_id)

    async def _execute(self, job_id: str, call: Call, sink: StreamSink | None) -> Result:
        """The router's result for the job; raises only ``trio.Cancelled``."""
        reason = self._jobs[job_id].cancelled
        if reason is not None:
            # (its client left as it came: the router's cancel, sent first, found no call
            # and was dropped, and the call ran to its end, billed)
            await trio.lowlevel.checkpoint()
            return failed_result(job_id, "cancelled", reason)
        try:
            if sink is None:
                result = await self._router.call(call, job_id=job_id)
            else:
                result = await self._stream(call, job_id, sink)
        except ValidationError as exc:
            result = failed_result(job_id, exc.code, str(exc))
        except Exception:  # a router bug must not take the gateway down
            log.exception("job %s: the router raised", job_id)
            result = failed_result(job_id, "internal_error", "internal error in the router")
        if result.job_id != job_id:
            result = attrs.evolve(result, job_id=job_id)
        return result

    async def _finish_cancelled(self, job: _Job, job_id: str, sink: StreamSink | None) -> None:
        job.result = failed_result(job_id, "cancelled", SHUT_DOWN)
        await self._stored(job_id, job.result, reason="shutdown")
        if sink is not None:
            await _deliver(sink, job.result)

    async def _stored(self, job_id: str, result: Result, *, reason: str | None) -> None:
        """Store ``result`` as the job's final record. A store that cannot be written now
        keeps it in memory and writes it later (``JobStore.finish_job``); any other failure
        to store it is logged, never raised: the job's result is still delivered (and the
        job reads as the store has it, ``interrupted`` after a restart)."""
        try:
            await self._store.finish_job(
                job_id,
                status=result.status,
                result=to_jsonable(result),
                reason=reason,
                started_at=_slot_taken_at(result),
            )
        except Exception:
            log.exception("job %s: its result could not be stored", job_id)

    def _release(self, job_id: str) -> None:
        job = self._jobs.pop(job_id)
        self._by_owner.give_back(job.owner)
        self._take_chars(job.owner, -job.chars)
        if self._on_result is not None and job.result is not None:
            try:
                self._on_result(job.result)
            except Exception:  # counting must never fail a job
                log.exception("job %s: counting its result failed", job_id)
        job.done.set()
        for scope in job.interrupts:
            scope.cancel()
        if not self._jobs and not self._storing:
            self._idle.set()

    async def _stream(self, call: Call, job_id: str, sink: StreamSink) -> Result:
        result: Result | None = None
        live: StreamSink | None = sink
        async with self._router.stream(call, job_id=job_id) as items:
            async for item in items:
                if isinstance(item, Result):
                    result = item
                elif live is not None:
                    try:  # deltas that arrived together stay together
                        await send_soon(live, item)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        live = None  # the client left; the call still completes
        if result is None:
            return failed_result(job_id, "internal_error", "the stream ended without a result")
        return result


async def _deliver(sink: StreamSink, result: Result) -> None:
    try:
        await sink.send(result)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await sink.aclose()


def _slot_taken_at(result: Result) -> float | None:
    """When ``result``'s call took one of the router's slots, if it waited for one (its job,
    stored running at its submit, was ``queued`` until then: see ``_app.shown``)."""
    waited = sum(
        w.ms for w in result.trace.waits if w.after_attempt == 0 and w.reason.startswith(SLOT_WAIT)
    )
    if not waited or not result.trace.started_at:
        return None
    return result.trace.started_at + waited / 1000.0
