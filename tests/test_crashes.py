"""Crashes injected into the actors other tests leave alone, through the whole router on
the simulator: a burst of provider crashes that makes their supervisor give up, a
provider crashing with a half-open probe out or while it admits an attempt, the
dispatcher's own loop, the trace hub. Every call ends, with a cause, and what restarts
serves again."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

import switchman
from switchman import Call
from switchman._result import TraceEvent
from switchman.actors import _attempts, _dispatcher, _persister, _provider
from switchman.actors._board import StatusBoard
from switchman.actors._hub import TraceHub, run_trace_hub
from switchman.catalog import BudgetsConfig, SimProfile
from switchman.policy._breaker import Breaker, BreakerConfig
from switchman.policy._learning import LearningConfig
from switchman.store import open_store

from ._simfleet import drained, fleet, sim_model

FAST = SimProfile(latency_ms=50)


def _two_providers() -> switchman.Config:
    a = sim_model("a", FAST, provider="sim-a")
    b = sim_model("b", FAST, provider="sim-b")
    return fleet(a, b, routes={"ab": ("a", "b")})


def _fail_the_first_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the router once an answer has ended (the provider billed it): the first
    call's finish raises."""
    real = _attempts.normal_finish
    calls = 0

    def buggy(reason: str | None) -> str | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected bug after the answer")
        return real(reason)

    monkeypatch.setattr(_attempts, "normal_finish", buggy)


def _crash_admissions(
    monkeypatch: pytest.MonkeyPatch, providers: set[str], times: int | None = None
) -> dict[str, int]:
    """Provider actors of ``providers`` crash as they admit an attempt (``times`` each at
    most): the crashes so far, by provider."""
    real_admit = _provider._ProviderState.admit
    crashes = dict.fromkeys(providers, 0)

    def admit(state: _provider._ProviderState, msg: object, now: float) -> object:
        name = state.spec.name
        if name in providers and (times is None or crashes[name] < times):
            crashes[name] += 1
            raise RuntimeError("injected crash")
        return real_admit(state, msg, now)  # type: ignore[arg-type]

    monkeypatch.setattr(_provider._ProviderState, "admit", admit)
    return crashes


async def test_a_burst_of_provider_crashes_leaves_every_provider_serving(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider actor crashes, and its restarts fail as they start, more often than the
    providers' supervisor allows (five a provider in 30 s): it gives up and the root
    restarts it; every provider then serves again (its siblings' inboxes were closed by a
    graceful stop before, and the router died of the churn)."""
    models = [sim_model(n, FAST, provider=f"sim-{n}") for n in "abcd"]
    limit = 5 * len(models)  # (the providers' supervisor's restarts in 30 s)
    starts = {"failing": 0}
    real_init = _provider._ProviderState.__init__

    def init(state: _provider._ProviderState, spec: object, *args: object) -> None:
        if getattr(spec, "name", "") == "sim-a" and 0 < starts["failing"] <= limit:
            starts["failing"] += 1
            raise RuntimeError("injected start failure")
        real_init(state, spec, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_provider._ProviderState, "__init__", init)
    crashes = _crash_admissions(monkeypatch, {"sim-a"}, times=1)
    async with switchman.open_router(fleet(*models, routes={"r": tuple("abcd")})) as router:
        starts["failing"] = 1  # (from its first crash on, its starts fail)
        during = await router.call(Call(prompt="hi", model="r"))
        await trio.sleep(1)
        after = [await router.call(Call(prompt="hi", model=n)) for n in "abcd"]
    assert crashes == {"sim-a": 1} and starts["failing"] == limit + 1
    # (on b, or past it: the restart of every provider cuts the attempt then in flight)
    assert during.status == "complete" and during.model in ("b", "c", "d"), during.errors
    assert all(r.status == "complete" for r in after), [r.errors for r in after]


async def test_a_provider_crashing_on_every_attempt_is_held_out_and_the_router_lives_on(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider whose actor crashes on every attempt (a bug its upstream's answers meet),
    a call a second for two minutes: it had restarted more often than the supervisors
    allow and the router gave up (``SupervisorEscalation``: a shared gateway exited),
    failing calls of every provider on the way. Its second crash in a row holds it out,
    longer each time, its calls going to the fallback; only its own crashes count as its
    restarts."""
    crashes = _crash_admissions(monkeypatch, {"sim-a"})
    async with switchman.open_router(_two_providers()) as router:
        results = []
        for _ in range(120):
            results.append(await router.call(Call(prompt="hi", model="ab")))
            await trio.sleep(1)
        status = {p.name: p for p in router.status().providers}
        held = await router.call(Call(prompt="hi", model="a"))
    assert all(r.status == "complete" and r.model == "b" for r in results)
    # holds of 10, 20, 40 s...: a handful of crashes in two minutes, not one a call
    assert 3 <= crashes["sim-a"] <= 6, crashes
    assert (status["sim-a"].restarts, status["sim-b"].restarts) == (crashes["sim-a"], 0)
    assert status["sim-a"].held_for_s > 0 and status["sim-b"].held_for_s == 0.0
    said = str(held.errors)
    assert "its actor crashed" in said and "(the last: RuntimeError)" in said, said
    assert "injected crash" not in said  # (a bug's message may quote an upstream: the log)


async def test_an_attempt_whose_admission_crashed_fails_at_once(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider actor crashes while it admits an attempt: the call learns it at
    once and falls back (it waited out the whole time to first token before)."""
    real_admit = _provider._ProviderState.admit
    crashed = False

    def admit(state: _provider._ProviderState, msg: object, now: float) -> object:
        nonlocal crashed
        if state.spec.name == "sim-a" and not crashed:
            crashed = True
            raise RuntimeError("injected crash")
        return real_admit(state, msg, now)  # type: ignore[arg-type]

    monkeypatch.setattr(_provider._ProviderState, "admit", admit)
    async with switchman.open_router(_two_providers()) as router:
        started = trio.current_time()
        result = await router.call(Call(prompt="hi", model="ab"))
        took = trio.current_time() - started
    assert result.status == "complete" and result.model == "b", result.errors
    assert took < 1.0, took  # not the 15 s first-token limit


async def test_a_provider_restarted_with_a_probe_out_lets_the_next_call_probe(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A restart loses the attempts the crashed actor ran, its half-open probe with
    them: the restarted actor starts with no probe out (the model was half-open with a
    probe in flight for good, every call refused, until the router restarted)."""
    config = _two_providers()
    spec, models = config.providers["sim-a"], (config.models["a"],)
    board, hub = StatusBoard(), TraceHub()
    first = _provider._ProviderState(
        spec, models, board, hub, BreakerConfig(), LearningConfig(), {}
    )
    first.breakers["a"] = Breaker(state="half_open", probe_in_flight=True, probe_started_at=0.0)
    first.publish()
    board.crashed("sim-a", RuntimeError("injected crash"))  # (as its supervisor tells it)
    restarted = _provider._ProviderState(
        spec, models, board, hub, BreakerConfig(), LearningConfig(), {}
    )
    assert restarted.restarts == 1
    assert not restarted.breakers["a"].probe_in_flight
    assert restarted.breakers["a"].state == "half_open"  # its next call is the probe


async def test_a_crash_of_the_dispatchers_loop_answers_the_message_in_hand(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher's loop fails while it handles a feedback query: the query is
    answered (it waited for ever before), the restarted dispatcher serves the next
    calls, and no spend is lost."""
    real = _dispatcher._Dispatcher.feedback
    crashed = False

    async def feedback(self: _dispatcher._Dispatcher, msg: object) -> None:
        nonlocal crashed
        if not crashed:
            crashed = True
            raise RuntimeError("injected crash")
        await real(self, msg)  # type: ignore[arg-type]

    monkeypatch.setattr(_dispatcher._Dispatcher, "feedback", feedback)
    async with switchman.open_router(_two_providers()) as router:
        first = await router.call(Call(prompt="hi", model="a"))
        with trio.fail_after(30), pytest.raises(switchman.RouterFailed):
            await router.feedback(first.call_id, 0.9)
        second = await router.call(Call(prompt="hi again", model="a"))
        spent = (await router.spend("global"))["day"]
    assert second.status == "complete"
    assert spent == pytest.approx(first.cost_usd + second.cost_usd)


async def test_calls_in_flight_when_the_dispatcher_fails_say_it_failed_not_stopped(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calls in flight when the dispatcher's loop fails end with it: they had said
    "the router stopped before the call finished" (``cancelled``, as if their caller had
    left), while the router went on. They say the dispatcher failed and was restarted
    (``internal_error``: a gateway's 500, which clients retry)."""
    real = _dispatcher._Dispatcher.feedback

    async def feedback(self: _dispatcher._Dispatcher, msg: object) -> None:
        raise RuntimeError("injected crash")

    monkeypatch.setattr(_dispatcher._Dispatcher, "feedback", feedback)
    slow = sim_model("slow", SimProfile(latency_ms=5_000), provider="sim-a")
    async with switchman.open_router(fleet(slow)) as router:
        first = await router.call(Call(prompt="hi", model="slow"))
        results: list[switchman.Result] = []
        async with trio.open_nursery() as nursery:

            async def one(i: int) -> None:
                results.append(await router.call(Call(prompt=f"call {i}", model="slow")))

            for i in range(5):
                nursery.start_soon(one, i)
            await trio.sleep(1)
            with pytest.raises(switchman.RouterFailed):
                await router.feedback(first.call_id, 0.9)
        monkeypatch.setattr(_dispatcher._Dispatcher, "feedback", real)
        again = await router.call(Call(prompt="hi again", model="slow"))
    assert [r.errors[0].code for r in results] == ["internal_error"] * 5
    assert "dispatcher failed (a bug) and restarted" in results[0].errors[0].message
    assert again.status == "complete"


async def test_a_restarted_trace_hub_takes_subscriptions_again() -> None:
    """The hub's actor ended (a crash: its way out closes every subscription) and its
    supervisor starts it again: subscriptions are taken again (closed for good before)."""
    hub = TraceHub()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_trace_hub, hub)
        hub.close()  # what the crashed actor's way out did
        await nursery.start(run_trace_hub, hub)  # the restart
        subscription = hub.subscribe()
        assert hub.statistics().subscribers == 1
        hub.publish(TraceEvent(type="call.accepted", call_id="c1", job_id=None, ts=0.0))
        assert subscription.receive_nowait().call_id == "c1"
        nursery.cancel_scope.cancel()


async def test_a_bug_after_an_answer_was_billed_counts_its_hold_spent(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call fails inside the router after the provider answered (and billed): its
    hold is counted spent at the most the attempt could cost, not released (the bill no
    budget then counted could take the spend past a limit)."""
    paid = sim_model("paid", FAST, input_per_mtok=100.0, output_per_mtok=100.0)
    config = fleet(paid, budgets=BudgetsConfig(global_daily_usd=10.0))
    _fail_the_first_finish(monkeypatch)
    async with switchman.open_router(config) as router:
        failed = await router.call(Call(prompt="hi", model="paid"))
        spent = (await router.spend("global"))["day"]
        fine = await router.call(Call(prompt="hi", model="paid"))
        after = (await router.spend("global"))["day"]
    assert failed.status == "failed" and failed.errors[0].code == "internal_error"
    assert spent > fine.cost_usd > 0  # the most it could cost, above what an answer costs
    assert failed.cost_usd == pytest.approx(spent)
    assert after == pytest.approx(spent + fine.cost_usd)


async def test_a_bug_in_saving_spend_fails_the_save_not_the_router(
    autojump_clock: trio.abc.Clock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every save of the spend raises (a bug, not the store refusing): it is logged once
    and tried again; calls go on (the persister crashed on each, and the root supervisor
    gave up within a second, the router dead); statistics saved meanwhile do not say that
    spend is saved again."""

    def broken(ledger: object) -> object:
        raise TypeError("injected bug in the snapshot")

    monkeypatch.setattr(_persister, "ledger_snapshot", broken)
    async with (
        open_store(str(tmp_path / "jobs.db")) as store,
        switchman.open_router(_two_providers(), store=store) as router,
    ):
        results = []
        for _ in range(20):
            results.append(await router.call(Call(prompt="hi", model="a")))
            await trio.sleep(0.5)
        persister = router._root.statistics().child("persister")
    assert all(r.status == "complete" for r in results)
    assert persister.restarts == 0
    said = [r.getMessage() for r in caplog.records if r.name == "switchman.persister"]
    assert sum(m.startswith("cannot save spend") for m in said) == 1, said
    assert not any("saved again" in m for m in said), said


async def test_a_bug_before_an_attempt_is_sent_charges_nothing(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call fails inside the router before its attempt reaches the provider: nothing
    was billed, so nothing is counted, and its hold is released."""
    paid = sim_model("paid", FAST, input_per_mtok=100.0, output_per_mtok=100.0)
    config = fleet(paid, budgets=BudgetsConfig(global_daily_usd=10.0))

    def buggy(*args: object, **kwargs: object) -> object:
        raise RuntimeError("injected bug before the attempt is sent")

    monkeypatch.setattr(_attempts, "request_params", buggy)
    async with switchman.open_router(config) as router:
        failed = await router.call(Call(prompt="hi", model="paid"))
        spent = (await router.spend("global"))["day"]
    assert failed.status == "failed" and failed.errors[0].code == "internal_error"
    assert failed.cost_usd == 0.0 and spent == 0.0


async def test_a_bug_after_an_answer_without_a_budget_is_spend_all_the_same(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No budget holds it, yet the provider billed it: the spend is tracked (at the most
    it could cost), the result says so, and live subscribers see the call fail."""
    paid = sim_model("paid", FAST, input_per_mtok=100.0, output_per_mtok=100.0)
    _fail_the_first_finish(monkeypatch)
    async with switchman.open_router(fleet(paid)) as router:
        with router.subscribe() as events:
            failed = await router.call(Call(prompt="hi", model="paid"))
            await trio.sleep(1)
            seen = drained(events)
        spent = (await router.spend("global"))["day"]
    assert failed.errors[0].code == "internal_error"
    assert spent > 0 and failed.cost_usd == pytest.approx(spent)
    ends = [e for e in seen if e.type == "call.failed" and e.call_id == failed.call_id]
    assert ends and ends[0].data["code"] == "internal_error"


async def test_open_router_gives_up_with_the_escalation_under_it_as_its_cause(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SupervisorEscalation.__cause__`` is the escalation under it, down to the crash
    (``open_router`` had dropped it, raising the escalation ``from None``)."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected bug")

    monkeypatch.setattr(_provider._ProviderState, "__init__", broken)
    with pytest.raises(switchman.SupervisorEscalation) as caught:
        async with switchman.open_router(_two_providers()):
            pass
    root = caught.value
    assert root.supervisor == "root"
    providers = root.__cause__
    while isinstance(providers, BaseExceptionGroup):
        providers = providers.exceptions[0]
    assert isinstance(providers, switchman.SupervisorEscalation), repr(root.__cause__)
    assert providers.supervisor == "providers"


async def test_a_provider_crashing_now_and_then_between_answers_keeps_serving(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An actor that crashes once every 20 attempts, answering the rest, at a call a
    second: each crash comes after it recovered (answers, time in service), so restarts
    alone meet it and it is never held out (its crashes in a row had grown holds of
    minutes, most of its calls failing)."""
    real_admit = _provider._ProviderState.admit
    admitted = 0

    def admit(state: _provider._ProviderState, msg: object, now: float) -> object:
        nonlocal admitted
        if state.spec.name == "sim-a":
            admitted += 1
            if admitted % 20 == 0:
                raise RuntimeError("injected crash")
        return real_admit(state, msg, now)  # type: ignore[arg-type]

    monkeypatch.setattr(_provider._ProviderState, "admit", admit)
    async with switchman.open_router(_two_providers()) as router:
        results = []
        for _ in range(200):
            results.append(await router.call(Call(prompt="hi", model="ab")))
            await trio.sleep(1)
        restarts = {p.name: p.restarts for p in router.status().providers}
    served_by_a = sum(r.model == "a" for r in results)
    assert all(r.status == "complete" for r in results)
    assert restarts["sim-a"] == admitted // 20 and served_by_a >= 180, (restarts, served_by_a)


async def test_several_providers_crashing_now_and_then_at_once_stop_nothing(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight providers whose actors each crash on one attempt in 12 (a bug their answers
    share), a call a second each, answering between: each crash comes after its actor
    recovered and is met by a restart. Counted together against five restarts in 30 s,
    they had made the providers' supervisor give up every few seconds, cutting the
    healthy fallback's calls, and the root then gave up: the router died in a minute."""
    real_admit = _provider._ProviderState.admit
    admitted: dict[str, int] = {}

    def admit(state: _provider._ProviderState, msg: object, now: float) -> object:
        name = state.spec.name
        if name != "sim-z":
            admitted[name] = admitted.get(name, 0) + 1
            if admitted[name] % 12 == 0:
                raise RuntimeError("injected crash")
        return real_admit(state, msg, now)  # type: ignore[arg-type]

    monkeypatch.setattr(_provider._ProviderState, "admit", admit)
    names = "abcdefgh"
    models = [sim_model(n, FAST, provider=f"sim-{n}") for n in f"{names}z"]
    routes = {f"r{n}": (n, "z") for n in names}
    results: list[switchman.Result] = []
    async with switchman.open_router(fleet(*models, routes=routes)) as router:

        async def caller(n: str) -> None:
            for _ in range(120):
                results.append(await router.call(Call(prompt="hi", model=f"r{n}")))
                await trio.sleep(1)

        async with trio.open_nursery() as nursery:
            for i, n in enumerate(names):
                nursery.start_soon(caller, n)
                await trio.sleep(i * 0.13)  # (not all in step)
        restarts = sum(p.restarts for p in router.status().providers)
    assert all(r.status == "complete" for r in results), [r.errors for r in results][:3]
    assert restarts >= 8 * 8  # (each crashed every 12 s or so: met by restarts)
