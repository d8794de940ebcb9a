"""one_for_one supervision on trio, after Erlang/OTP.

::

    run_supervisor(name, specs)                     one nursery, one loop
     ├─ wrapper(child a)   own cancel scope; catches Exception; reports its exit
     ├─ wrapper(child b)         │
     └─ ...                      └──> exits channel ──> loop: record, restart or escalate

Children start in order, each awaited with ``nursery.start`` so it is ready before
the next one starts. A wrapper catches the ``Exception`` its child raises, so a
crash never cancels the siblings, and sends the exit to the supervisor's loop. The
loop alone owns the children's state: it restarts only the child that exited
(``one_for_one``), counting every restart against the restart intensity
(:mod:`switchman.policy._intensity`). One restart too many cancels the remaining
children in reverse start order and raises :class:`SupervisorEscalation`, which a
parent supervisor sees as a crash of that child.

Stopping a child (shutdown): ``spec.stop()`` asks it to finish, the supervisor waits
up to ``spec.shutdown_s`` for it to return, then cancels its scope. Giving up cancels
at once: a ``stop`` (an inbox closed) could end what a restart by the parent needs.

A wrapper is protected from ``KeyboardInterrupt`` (and so are the tasks the actors start
for a call or an attempt): Ctrl-C reaches the application's own task, whose leaving the
router's block stops it as a cancellation does. Raised inside an actor, it killed that
actor mid-message (a ledger that had not taken in the cut calls' holds left each counted,
at the next start, at the most it could cost).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Sequence

import attrs
import trio

from switchman.policy._intensity import Intensity, record_restart
from switchman.supervisor._spec import (
    ChildSpec,
    ChildStatistics,
    ExitReason,
    SupervisorEscalation,
    SupervisorStatistics,
)

_log = logging.getLogger("switchman.supervisor")


@attrs.frozen
class _Started:
    """What a wrapper passes to ``task_status.started``: how to cancel it, its handle."""

    scope: trio.CancelScope
    handle: object


@attrs.frozen
class _Exited:
    """A wrapper's report: its child stopped running, and why."""

    child_id: str
    reason: ExitReason
    error: Exception | None


@attrs.frozen
class _ShutdownRequested:
    """``Supervisor.shutdown()`` was called."""


_Message = _Exited | _ShutdownRequested


class _Escalate(Exception):
    """Internal: the loop must stop everything and escalate (never leaves this module)."""

    def __init__(self, child_id: str, error: Exception | None) -> None:
        super().__init__(child_id)
        self.child_id = child_id
        self.error = error


class _ChildStatus:
    """The ``task_status`` a child gets: its ``started(handle)`` starts the wrapper."""

    def __init__(self, outer: trio.TaskStatus[_Started], scope: trio.CancelScope) -> None:
        self._outer = outer
        self._scope = scope
        self.called = False

    def started(self, value: object = None) -> None:
        if self.called:
            raise RuntimeError("called 'started' twice on the same task status")
        self.called = True
        self._outer.started(_Started(self._scope, value))


@trio.lowlevel.enable_ki_protection  # (see the module's docstring)
async def _run_child(
    spec: ChildSpec,
    reports: trio.MemorySendChannel[_Message],
    *,
    task_status: trio.TaskStatus[_Started],
) -> None:
    """Run one child inside its own cancel scope and report how it exited.

    An exception raised before the child called ``started`` propagates out of the
    supervisor's ``nursery.start`` (a failed start); one raised after is caught and
    reported as a crash. Cancelling the scope from ``_Started`` ends the child and
    is reported as ``killed``. If the supervisor's nursery is cancelled, the
    ``Cancelled`` propagates and nothing is reported.
    """
    scope = trio.CancelScope()
    status = _ChildStatus(task_status, scope)
    reason: ExitReason
    error: Exception | None = None
    try:
        with scope:
            await spec.start(task_status=status)
    except Exception as exc:
        if not status.called:
            raise
        reason, error = "crash", exc
    else:
        if not status.called:
            raise RuntimeError(f"child {spec.id!r} returned without calling task_status.started")
        reason = "killed" if scope.cancelled_caught else "normal"
    await reports.send(_Exited(spec.id, reason, error))


@attrs.define
class _Child:
    """The supervisor's own, mutable view of one child; only its loop touches it."""

    spec: ChildSpec
    running: bool = False
    stopping: bool = False
    scope: trio.CancelScope | None = None
    handle: object = None
    restarts: int = 0
    last_exit: ExitReason | None = None
    last_error: str | None = None


def _describe(exc: BaseException) -> str:
    """Type and message only (no traceback, no locals); a group names what it holds."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


class Supervisor:
    """The handle ``run_supervisor`` passes to ``task_status.started``.

    It reads the children's current handles and statistics and asks the supervisor
    to shut down; the children themselves belong to ``run_supervisor``'s nursery.
    """

    def __init__(
        self,
        name: str,
        specs: Sequence[ChildSpec],
        intensity: Intensity,
        inbox: trio.MemorySendChannel[_Message],
    ) -> None:
        self._name = name
        self._children = {spec.id: _Child(spec) for spec in specs}
        self._intensity = intensity
        self._inbox = inbox
        self._finished = trio.Event()

    def __repr__(self) -> str:
        return f"<Supervisor {self._name!r}>"

    @property
    def name(self) -> str:
        return self._name

    def handle(self, child_id: str) -> object:
        """The handle the running child ``child_id`` passed to ``task_status.started``.

        It changes after every restart, so look it up again rather than keep it.
        Raises ``KeyError`` for an unknown id, ``LookupError`` while the child is not
        running (exited and not restarted, or being restarted).
        """
        child = self._children[child_id]
        if not child.running:
            raise LookupError(f"child {child_id!r} of supervisor {self._name!r} is not running")
        return child.handle

    def statistics(self) -> SupervisorStatistics:
        return SupervisorStatistics(
            name=self._name,
            children=tuple(
                ChildStatistics(
                    id=child.spec.id,
                    running=child.running,
                    restarts=child.restarts,
                    last_exit=child.last_exit,
                    last_error=child.last_error,
                )
                for child in self._children.values()
            ),
        )

    async def shutdown(self) -> None:
        """Stop every child in reverse start order, then let ``run_supervisor`` return.

        Each child is asked with its ``stop`` (a nested supervisor with its own
        ``shutdown``), given up to its ``shutdown_s`` to return, then cancelled.
        Returns once ``run_supervisor`` has finished (at once if it already has,
        however it ended). Calling it again, or from several tasks, is harmless.
        Cancelled before the supervisor has taken the request, it requests nothing;
        cancelled after, the shutdown goes on and only the wait for it ends. Called
        from inside one of the supervisor's own children, that child is stopped like
        the others and so is this call.
        """
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._inbox.send(_ShutdownRequested())  # fails once it has finished
        await self._finished.wait()

    # --- the loop: everything below runs in run_supervisor's task only ---

    async def _supervise(
        self,
        nursery: trio.Nursery,
        exits: trio.MemoryReceiveChannel[_Message],
        task_status: trio.TaskStatus[Supervisor],
    ) -> _Escalate | None:
        try:
            for child in self._children.values():
                await self._start(nursery, child)
            task_status.started(self)
            while True:
                match await exits.receive():
                    case _ShutdownRequested():
                        _log.info("supervisor %r: shutting down", self._name)
                        break
                    case _Exited() as exited:
                        await self._on_exit(nursery, exited)
        except _Escalate as escalate:
            await self._cancel_all(exits)
            return escalate
        await self._stop_all(exits)
        return None

    async def _start(self, nursery: trio.Nursery, child: _Child) -> None:
        """Start ``child``, restarting it while its start fails and policy allows."""
        while True:
            try:
                started: _Started = await nursery.start(_run_child, child.spec, self._inbox)
            except Exception as exc:
                self._record_exit(child, "crash", exc)
                if child.spec.restart == "temporary":
                    return
                self._count_restart(child, exc)
                continue
            child.running, child.scope, child.handle = True, started.scope, started.handle
            return

    async def _on_exit(self, nursery: trio.Nursery, exited: _Exited) -> None:
        child = self._children[exited.child_id]
        self._record_exit(child, exited.reason, exited.error)
        restart = child.spec.restart
        if restart == "permanent" or (restart == "transient" and exited.reason == "crash"):
            self._count_restart(child, exited.error)
            await self._start(nursery, child)

    def _count_restart(self, child: _Child, error: Exception | None) -> None:
        allowed, self._intensity = record_restart(self._intensity, trio.current_time())
        if not allowed:
            _log.error(
                "supervisor %r: more than %d restarts in %gs (last: child %r); giving up",
                self._name,
                self._intensity.max_restarts,
                self._intensity.period_s,
                child.spec.id,
            )
            raise _Escalate(child.spec.id, error)
        child.restarts += 1
        _log.info("supervisor %r: restarting child %r", self._name, child.spec.id)

    def _record_exit(self, child: _Child, reason: ExitReason, error: Exception | None) -> None:
        if reason == "normal" and child.stopping:
            reason = "shutdown"
        child.running, child.scope, child.handle = False, None, None
        child.last_exit = reason
        child.last_error = None if error is None else _describe(error)
        if error is None:
            # (a child stopped by cancelling it, as one without a ``stop`` is at shutdown,
            # ended as asked: not news for the operator's log)
            level = logging.DEBUG if child.stopping and reason == "killed" else logging.INFO
            _log.log(
                level, "supervisor %r: child %r exited (%s)", self._name, child.spec.id, reason
            )
            return
        _log.warning(
            "supervisor %r: child %r crashed: %s", self._name, child.spec.id, child.last_error
        )
        # the traceback only at debug level: a crash is a bug, and that is where it shows
        _log.debug("supervisor %r: traceback of %r", self._name, child.spec.id, exc_info=error)
        if child.spec.on_crash is not None:
            try:
                child.spec.on_crash(error)
            except Exception as hook_exc:
                _log.warning(
                    "supervisor %r: on_crash hook of child %r failed: %s",
                    self._name,
                    child.spec.id,
                    _describe(hook_exc),
                )

    async def _stop_all(self, exits: trio.MemoryReceiveChannel[_Message]) -> None:
        """Stop the running children in reverse start order; restart none of them."""
        for child in reversed(self._children.values()):
            if child.running:
                await self._stop(child, exits)

    async def _cancel_all(self, exits: trio.MemoryReceiveChannel[_Message]) -> None:
        """Cancel the running children in reverse start order, without their ``stop``:
        giving up is a failure, and a ``stop`` may end what a restart needs again (an
        actor's inbox closed is closed for the actor a parent restarts, which then ended
        at once: one burst of crashes left every provider dead for good)."""
        for child in reversed(self._children.values()):
            if child.running:
                child.stopping = True
                assert child.scope is not None
                child.scope.cancel()
                await self._wait_exit(child, exits)

    async def _stop(self, child: _Child, exits: trio.MemoryReceiveChannel[_Message]) -> None:
        child.stopping = True
        with trio.move_on_after(child.spec.shutdown_s):
            if await self._ask_to_stop(child):
                await self._wait_exit(child, exits)
        if child.running:
            assert child.scope is not None
            child.scope.cancel()
            await self._wait_exit(child, exits)

    async def _ask_to_stop(self, child: _Child) -> bool:
        """Ask ``child`` to finish; False if there is no way to ask (cancel it at once)."""
        stop = child.spec.stop
        try:
            if stop is not None:
                result = stop()
                if inspect.isawaitable(result):
                    await result
                return True
            if isinstance(child.handle, Supervisor):
                await child.handle.shutdown()
                return True
        except Exception as exc:
            _log.warning(
                "supervisor %r: stopping child %r failed: %s",
                self._name,
                child.spec.id,
                _describe(exc),
            )
        return False

    async def _wait_exit(self, child: _Child, exits: trio.MemoryReceiveChannel[_Message]) -> None:
        """Receive exits until ``child``'s; others are recorded, not restarted."""
        while child.running:
            match await exits.receive():
                case _Exited() as exited:
                    self._record_exit(self._children[exited.child_id], exited.reason, exited.error)
                case _ShutdownRequested():
                    pass  # already stopping


async def run_supervisor(
    name: str,
    specs: Sequence[ChildSpec],
    *,
    intensity: Intensity = Intensity(),  # noqa: B008 - frozen value
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Start ``specs`` in order and keep them running, one_for_one, until shut down.

    Each child is started with ``nursery.start`` before the next; once all have
    started, ``task_status.started(supervisor)`` hands over the :class:`Supervisor`.
    A child that exits is restarted according to its ``restart``; a start that raises
    is a crash like any other. Every restart counts against ``intensity``; one too
    many stops the remaining children in reverse start order and raises
    :class:`SupervisorEscalation` (before ``started`` if it happens while starting).

    Returns after ``Supervisor.shutdown()`` has stopped every child. Cancelled from
    outside, it cancels every child at once (no ``stop``, no grace) and re-raises.
    The supervisor owns its children and their wrappers; each child owns and closes
    what it opens. Raises ``ValueError`` if two specs share an id.
    """
    ids = [spec.id for spec in specs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"supervisor {name!r}: duplicate child ids in {ids}")
    # unbuffered: a wrapper or a shutdown() caller waits until the loop takes its message
    send, exits = trio.open_memory_channel[_Message](0)
    supervisor = Supervisor(name, specs, intensity, send)
    try:
        with exits:
            async with trio.open_nursery() as nursery:
                escalate = await supervisor._supervise(nursery, exits, task_status)
    finally:
        supervisor._finished.set()
    if escalate is not None:
        raise SupervisorEscalation(name, escalate.child_id) from escalate.error
