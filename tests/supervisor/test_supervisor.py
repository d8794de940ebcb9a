from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import attrs
import pytest
import trio
import trio.testing

from switchman.policy._intensity import Intensity
from switchman.supervisor import (
    ChildSpec,
    Restart,
    Supervisor,
    SupervisorEscalation,
    run_supervisor,
)


class Worker:
    """A fake child: logs what happens to it; the test makes it crash or return."""

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        ready_after: float = 0.0,
        crash_every: float | None = None,
        ignore_stop: bool = False,
        stop_takes: float = 0.0,
        failing_starts: int = 0,
    ) -> None:
        self.name = name
        self.log = log
        self.ready_after = ready_after
        self.crash_every = crash_every
        self.ignore_stop = ignore_stop
        self.stop_takes = stop_takes
        self.failing_starts = failing_starts
        self.starts = 0
        self._wake = trio.Event()
        self._command: BaseException | str = ""

    async def run(self, *, task_status: trio.TaskStatus[str]) -> None:
        self.starts += 1
        self._wake = trio.Event()
        self.log.append(f"start {self.name}")
        await trio.sleep(self.ready_after)
        if self.starts <= self.failing_starts:
            raise OSError(f"{self.name} cannot start")
        task_status.started(f"{self.name}#{self.starts}")
        self.log.append(f"ready {self.name}")
        try:
            if self.crash_every is not None:
                await trio.sleep(self.crash_every)
                raise ValueError(f"{self.name} periodic crash")
            await self._wake.wait()
            if isinstance(self._command, BaseException):
                raise self._command
            if self._command == "stop":
                await trio.sleep(self.stop_takes)
        finally:
            self.log.append(f"exit {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if not self.ignore_stop:
            self._command = "stop"
            self._wake.set()

    def crash(self, exc: BaseException) -> None:
        self._command = exc
        self._wake.set()

    def finish(self) -> None:
        self._command = "return"
        self._wake.set()

    def spec(
        self,
        *,
        restart: Restart = "permanent",
        shutdown_s: float = 5.0,
        on_crash: Callable[[BaseException], object] | None = None,
        with_stop: bool = True,
    ) -> ChildSpec:
        return ChildSpec(
            id=self.name,
            start=self.run,
            restart=restart,
            shutdown_s=shutdown_s,
            stop=self.stop if with_stop else None,
            on_crash=on_crash,
        )


@attrs.define
class Outcome:
    error: BaseException | None = None
    returned: bool = False


async def _supervise(
    name: str,
    specs: list[ChildSpec],
    outcome: Outcome,
    *,
    intensity: Intensity = Intensity(),  # noqa: B008
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> None:
    """run_supervisor, keeping its escalation for the test to look at."""
    try:
        await run_supervisor(name, specs, intensity=intensity, task_status=task_status)
    except SupervisorEscalation as exc:
        outcome.error = exc
    else:
        outcome.returned = True


async def test_starts_in_order_and_stops_in_reverse(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    a, b, c = (Worker(n, log, ready_after=1.0) for n in "abc")
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(
            run_supervisor, "root", [a.spec(), b.spec(), c.spec()]
        )
        # each child was ready before the next one started
        assert log == ["start a", "ready a", "start b", "ready b", "start c", "ready c"]
        assert trio.current_time() == pytest.approx(3.0)
        log.clear()
        await sup.shutdown()
        assert log == ["stop c", "exit c", "stop b", "exit b", "stop a", "exit a"]
        stats = sup.statistics()
        assert [s.id for s in stats.children] == ["a", "b", "c"]
        assert all(not s.running and s.last_exit == "shutdown" for s in stats.children)
        # shutdown returns only once run_supervisor has
        with pytest.raises(LookupError):
            sup.handle("a")
    # a second shutdown after the end returns at once
    await sup.shutdown()


async def test_crash_restarts_only_that_child(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    crashes: list[BaseException] = []
    a, b, c = (Worker(n, log) for n in "abc")
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(
            run_supervisor, "root", [a.spec(), b.spec(on_crash=crashes.append), c.spec()]
        )
        assert sup.handle("b") == "b#1"
        log.clear()
        boom = ValueError("boom")
        with caplog.at_level(logging.INFO, logger="switchman.supervisor"):
            b.crash(boom)
            await trio.testing.wait_all_tasks_blocked()
        assert log == ["exit b", "start b", "ready b"]
        assert (a.starts, b.starts, c.starts) == (1, 2, 1)
        assert crashes == [boom]
        assert sup.handle("b") == "b#2"
        assert sup.handle("a") == "a#1"
        stats = sup.statistics()
        assert stats.child("b").restarts == 1
        assert stats.child("b").running
        assert stats.child("b").last_exit == "crash"
        assert stats.child("b").last_error == "ValueError: boom"
        assert stats.child("a").restarts == 0
        assert stats.child("a").last_exit is None
        crash_logs = [r for r in caplog.records if "crashed" in r.getMessage()]
        assert len(crash_logs) == 1
        assert "'b' crashed: ValueError: boom" in crash_logs[0].getMessage()
        assert crash_logs[0].exc_info is None  # no traceback in the log
        await sup.shutdown()


async def test_sixth_crash_within_period_escalates(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    a = Worker("a", log)
    flaky = Worker("flaky", log, crash_every=1.0)
    c = Worker("c", log)
    outcome = Outcome()
    async with trio.open_nursery() as nursery:
        await nursery.start(_supervise, "root", [a.spec(), flaky.spec(), c.spec()], outcome)
    assert isinstance(outcome.error, SupervisorEscalation)
    assert outcome.error.supervisor == "root"
    assert outcome.error.child_id == "flaky"
    assert isinstance(outcome.error.__cause__, ValueError)
    assert str(outcome.error.__cause__) == "flaky periodic crash"
    # five restarts allowed, the sixth crash within 30 s escalates
    assert flaky.starts == 6
    assert trio.current_time() == pytest.approx(6.0)
    # the remaining children were cancelled in reverse order, not asked to stop (a stop
    # may end what a restart by a parent needs: an actor's inbox, closed)
    assert log[-2:] == ["exit c", "exit a"]
    assert "stop c" not in log and "stop a" not in log


async def test_crashes_spread_over_time_do_not_escalate(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    flaky = Worker("flaky", log, crash_every=7.0)
    outcome = Outcome()
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(_supervise, "root", [flaky.spec()], outcome)
        await trio.sleep(7.0 * 20 + 1.0)
        assert sup.statistics().child("flaky").restarts == 20
        await sup.shutdown()
    assert outcome.error is None
    assert outcome.returned


async def test_custom_intensity(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    flaky = Worker("flaky", log, crash_every=1.0)
    outcome = Outcome()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(_supervise, intensity=Intensity(max_restarts=2, period_s=10.0)),
            "root",
            [flaky.spec()],
            outcome,
        )
    assert isinstance(outcome.error, SupervisorEscalation)
    assert flaky.starts == 3


@pytest.mark.parametrize(
    ("restart", "how", "restarted"),
    [
        ("permanent", "return", True),
        ("permanent", "crash", True),
        ("transient", "return", False),
        ("transient", "crash", True),
        ("temporary", "return", False),
        ("temporary", "crash", False),
    ],
)
async def test_restart_types(
    autojump_clock: trio.abc.Clock, restart: Restart, how: str, restarted: bool
) -> None:
    log: list[str] = []
    w = Worker("w", log)
    sibling = Worker("sibling", log)
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(
            run_supervisor, "root", [w.spec(restart=restart), sibling.spec()]
        )
        if how == "crash":
            w.crash(RuntimeError("bug"))
        else:
            w.finish()
        await trio.testing.wait_all_tasks_blocked()
        stats = sup.statistics().child("w")
        assert stats.last_exit == ("crash" if how == "crash" else "normal")
        assert stats.running is restarted
        assert stats.restarts == int(restarted)
        assert w.starts == 1 + int(restarted)
        if not restarted:
            with pytest.raises(LookupError):
                sup.handle("w")
        assert sibling.starts == 1
        await sup.shutdown()
    # the sibling was never disturbed: it ran until asked to stop
    assert log.count("exit sibling") == 1
    assert log[log.index("stop sibling") + 1] == "exit sibling"


async def test_child_ignoring_stop_is_cancelled_after_grace(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    stubborn = Worker("stubborn", log, ignore_stop=True)
    slow = Worker("slow", log, stop_takes=1.0)
    plain = Worker("plain", log)
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(
            run_supervisor,
            "root",
            [plain.spec(with_stop=False), slow.spec(shutdown_s=5.0), stubborn.spec(shutdown_s=2.0)],
        )
        log.clear()
        t0 = trio.current_time()
        await sup.shutdown()
        # 2 s grace for stubborn, then cancelled; slow needs 1 s; plain is cancelled at once
        assert trio.current_time() - t0 == pytest.approx(3.0)
    assert log == ["stop stubborn", "exit stubborn", "stop slow", "exit slow", "exit plain"]
    stats = sup.statistics()
    assert stats.child("stubborn").last_exit == "killed"
    assert stats.child("slow").last_exit == "shutdown"
    assert stats.child("plain").last_exit == "killed"


async def test_a_child_stopped_by_cancelling_it_is_not_news_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A child without ``stop`` is cancelled at shutdown, as meant: every normal stop of a
    router logged its persister and trace hub as ``exited (killed)`` at INFO."""
    log: list[str] = []
    plain = Worker("plain", log)
    with caplog.at_level(logging.DEBUG, logger="switchman.supervisor"):
        async with trio.open_nursery() as nursery:
            sup: Supervisor = await nursery.start(
                run_supervisor, "root", [plain.spec(with_stop=False)]
            )
            await sup.shutdown()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "exited" in r.getMessage()]
    assert said == [(logging.DEBUG, "supervisor 'root': child 'plain' exited (killed)")]


async def test_async_stop_is_awaited_within_grace(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    w = Worker("w", log)

    async def stop_slowly() -> None:
        await trio.sleep(1.0)
        w.stop()

    spec = attrs.evolve(w.spec(shutdown_s=3.0), stop=stop_slowly)
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(run_supervisor, "root", [spec])
        await sup.shutdown()
    assert trio.current_time() == pytest.approx(1.0)
    assert sup.statistics().child("w").last_exit == "shutdown"


async def test_failing_stop_cancels_at_once(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    w = Worker("w", log)

    def broken_stop() -> None:
        raise RuntimeError("cannot stop")

    spec = attrs.evolve(w.spec(shutdown_s=3.0), stop=broken_stop)
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(run_supervisor, "root", [spec])
        await sup.shutdown()
    assert trio.current_time() == pytest.approx(0.0)
    assert sup.statistics().child("w").last_exit == "killed"
    assert any("RuntimeError: cannot stop" in r.getMessage() for r in caplog.records)


async def test_crash_while_stopping_is_recorded_not_restarted(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    crashes: list[BaseException] = []
    w = Worker("w", log)
    spec = attrs.evolve(w.spec(on_crash=crashes.append), stop=lambda: w.crash(ValueError("bye")))
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(run_supervisor, "root", [spec])
        await sup.shutdown()
    stats = sup.statistics().child("w")
    assert (stats.last_exit, stats.last_error, stats.running) == ("crash", "ValueError: bye", False)
    assert [str(e) for e in crashes] == ["bye"]
    assert w.starts == 1


async def test_handle_follows_restarts(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    w = Worker("w", log)
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(run_supervisor, "root", [w.spec()])
        for n in range(1, 4):
            assert sup.handle("w") == f"w#{n}"
            w.crash(ValueError("again"))
            await trio.testing.wait_all_tasks_blocked()
        assert sup.handle("w") == "w#4"
        with pytest.raises(KeyError):
            sup.handle("nobody")
        await sup.shutdown()


async def test_failed_start_counts_as_crash_and_is_retried(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    crashes: list[BaseException] = []
    a = Worker("a", log)
    w = Worker("w", log, failing_starts=2)
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(
            run_supervisor, "root", [a.spec(), w.spec(on_crash=crashes.append)]
        )
        assert sup.handle("w") == "w#3"
        assert [str(e) for e in crashes] == ["w cannot start"] * 2
        assert sup.statistics().child("w").restarts == 2
        assert a.starts == 1
        await sup.shutdown()


async def test_start_failing_for_ever_escalates_before_started(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    a = Worker("a", log)
    w = Worker("w", log, failing_starts=100)
    never = Worker("never", log)
    async with trio.open_nursery() as nursery:
        # an error before started leaves nursery.start unwrapped
        with pytest.raises(SupervisorEscalation) as info:
            await nursery.start(run_supervisor, "root", [a.spec(), w.spec(), never.spec()])
    assert info.value.child_id == "w"
    assert isinstance(info.value.__cause__, OSError)
    assert w.starts == 6
    assert never.starts == 0
    assert log[-1:] == ["exit a"] and "stop a" not in log


async def test_temporary_child_failing_to_start_is_left_out(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    w = Worker("w", log, failing_starts=1)
    b = Worker("b", log)
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(
            run_supervisor, "root", [w.spec(restart="temporary"), b.spec()]
        )
        stats = sup.statistics().child("w")
        assert (stats.running, stats.last_exit, stats.restarts) == (False, "crash", 0)
        assert stats.last_error == "OSError: w cannot start"
        assert sup.handle("b") == "b#1"
        await sup.shutdown()


async def test_child_returning_without_started_is_a_crash(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def lazy(*, task_status: trio.TaskStatus[None]) -> None:
        return

    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(
            run_supervisor, "root", [ChildSpec(id="lazy", start=lazy, restart="temporary")]
        )
        stats = sup.statistics().child("lazy")
        assert stats.last_exit == "crash"
        assert stats.last_error is not None
        assert stats.last_error.startswith("RuntimeError: child 'lazy' returned without")
        await sup.shutdown()


async def test_nested_escalation_is_a_crash_of_the_parent_child(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    parent_crashes: list[BaseException] = []
    inner = Worker("inner", log)
    sibling = Worker("sibling", log)
    providers = ChildSpec(
        id="providers",
        start=functools.partial(
            run_supervisor,
            "providers",
            [inner.spec()],
            intensity=Intensity(max_restarts=1, period_s=30.0),
        ),
        on_crash=parent_crashes.append,
    )
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(run_supervisor, "root", [providers, sibling.spec()])
        first = sup.handle("providers")
        assert isinstance(first, Supervisor)
        assert first.handle("inner") == "inner#1"
        inner.crash(ValueError("one"))
        await trio.testing.wait_all_tasks_blocked()
        assert first.handle("inner") == "inner#2"  # within the inner intensity
        inner.crash(ValueError("two"))
        await trio.testing.wait_all_tasks_blocked()
        # the inner supervisor gave up; the root restarted it (permanent)
        assert len(parent_crashes) == 1
        escalation = parent_crashes[0]
        assert isinstance(escalation, SupervisorEscalation)
        assert escalation.supervisor == "providers"
        assert str(escalation.__cause__) == "two"
        second = sup.handle("providers")
        assert isinstance(second, Supervisor)
        assert second is not first
        assert second.handle("inner") == "inner#3"
        assert sup.statistics().child("providers").restarts == 1
        assert sibling.starts == 1
        await sup.shutdown()


async def test_nested_escalation_can_escalate_the_parent(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    inner = Worker("inner", log, crash_every=1.0)
    providers = ChildSpec(
        id="providers",
        start=functools.partial(
            run_supervisor, "providers", [inner.spec()], intensity=Intensity(max_restarts=0)
        ),
    )
    outcome = Outcome()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(_supervise, intensity=Intensity(max_restarts=1)),
            "root",
            [providers],
            outcome,
        )
    assert isinstance(outcome.error, SupervisorEscalation)
    assert (outcome.error.supervisor, outcome.error.child_id) == ("root", "providers")
    cause = outcome.error.__cause__
    assert isinstance(cause, SupervisorEscalation)
    assert (cause.supervisor, cause.child_id) == ("providers", "inner")
    assert isinstance(cause.__cause__, ValueError)
    assert inner.starts == 2


async def test_parent_shutdown_stops_nested_children_gracefully(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    x, y, z = (Worker(n, log) for n in "xyz")
    providers = ChildSpec(
        id="providers",
        start=functools.partial(run_supervisor, "providers", [x.spec(), y.spec()]),
    )
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(run_supervisor, "root", [providers, z.spec()])
        log.clear()
        await sup.shutdown()
    assert log == ["stop z", "exit z", "stop y", "exit y", "stop x", "exit x"]
    assert sup.statistics().child("providers").last_exit == "shutdown"


async def test_cancelled_from_outside_cancels_children(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    a, b = Worker("a", log), Worker("b", log)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            sup: Supervisor = await nursery.start(run_supervisor, "root", [a.spec(), b.spec()])
            log.clear()
            scope.cancel()
    assert sorted(log) == ["exit a", "exit b"]  # cancelled, never asked to stop
    # shutdown on a finished supervisor returns at once
    await sup.shutdown()


async def test_shutdown_from_several_tasks(autojump_clock: trio.abc.Clock) -> None:
    log: list[str] = []
    w = Worker("w", log, stop_takes=2.0)
    done: list[float] = []

    async def stop_it(sup: Supervisor) -> None:
        await sup.shutdown()
        done.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(run_supervisor, "root", [w.spec()])
        nursery.start_soon(stop_it, sup)
        nursery.start_soon(stop_it, sup)
    assert done == [pytest.approx(2.0)] * 2
    assert log.count("stop w") == 1


async def test_duplicate_ids_are_rejected() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="duplicate"):
        await run_supervisor("root", [Worker("a", log).spec(), Worker("a", log).spec()])


@pytest.mark.parametrize(
    "kwargs",
    [{"id": ""}, {"id": "x", "restart": "sometimes"}, {"id": "x", "shutdown_s": -1.0}],
)
def test_child_spec_validation(kwargs: dict[str, object]) -> None:
    async def start(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()

    with pytest.raises(ValueError):
        ChildSpec(start=start, **kwargs)  # type: ignore[arg-type]


def test_escalation_message() -> None:
    exc = SupervisorEscalation("providers", "openai")
    assert str(exc) == (
        "supervisor 'providers' gave up: restart intensity exceeded by child 'openai'"
    )


async def test_a_crash_inside_a_childs_own_nursery_is_named_by_its_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def child(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started("c")

        async def inner() -> None:
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")

        async with trio.open_nursery() as nursery:  # the group wraps the real cause
            nursery.start_soon(inner)

    spec = ChildSpec(id="c", start=child, restart="temporary")
    with caplog.at_level(logging.DEBUG, logger="switchman.supervisor"):
        async with trio.open_nursery() as nursery:
            sup: Supervisor = await nursery.start(run_supervisor, "root", [spec])
            await trio.testing.wait_all_tasks_blocked()
            stats = sup.statistics().child("c")
            await sup.shutdown()
    assert stats.last_error is not None
    assert stats.last_error.startswith("UnicodeEncodeError: 'utf-8' codec can't encode")
    (warning,) = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert "UnicodeEncodeError" in warning.getMessage() and warning.exc_info is None
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)


async def test_actors_a_parent_restarts_after_their_supervisor_gave_up_serve_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Actors reading inboxes that outlive them (their ``stop`` closes the inbox, as a
    provider actor's does): one actor's burst of crashes makes their supervisor give
    up, the parent restarts it, and its sibling serves its same inbox again. (A
    graceful stop on giving up closed the sibling's inbox: every later incarnation of
    it ended at once, and a healthy provider was dead for good.)"""
    inboxes = {name: trio.open_memory_channel[int](8) for name in ("flaky", "healthy")}
    served: list[tuple[str, int]] = []

    def actor(name: str) -> ChildSpec:
        send, receive = inboxes[name]

        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            async for n in receive:
                if name == "flaky":
                    raise ValueError(f"crash on {n}")
                served.append((name, n))

        return ChildSpec(id=name, start=run, stop=send.close, shutdown_s=1.0)

    providers = ChildSpec(
        id="providers",
        start=functools.partial(
            run_supervisor,
            "providers",
            [actor("flaky"), actor("healthy")],
            intensity=Intensity(max_restarts=1, period_s=30),
        ),
    )
    async with trio.open_nursery() as nursery:
        sup: Supervisor = await nursery.start(run_supervisor, "root", [providers])
        for n in (1, 2):  # two crashes: one restart too many
            await inboxes["flaky"][0].send(n)
            await trio.testing.wait_all_tasks_blocked()
        assert sup.statistics().child("providers").restarts == 1
        await inboxes["healthy"][0].send(3)
        await trio.testing.wait_all_tasks_blocked()
        assert served == [("healthy", 3)]
        await sup.shutdown()
