"""An embedded router left by a cancellation, used from outside its trio run, or handed
something other than a Call: every caller hears, and nothing hangs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import trio

import switchman
from switchman import Call, Result
from switchman._router import OTHER_RUN
from tests._simfleet import fleet, sim_model

CALL = Call(prompt="hi", model="sim/fast")
#: a router whose one model never fails, for tests whose subject is not the defaults: the
#: built-in simulator's sim/fast fails one call in a few hundred (its error and rate-limit
#: draws), which made an assertion that its call completes fail now and then
STEADY = fleet(sim_model("sim/fast"))
STOPPED = "the router stopped before the call finished"
# a call the dispatcher had already handed to its provider when the block was cancelled
MID_ATTEMPT = "provider actor stopped during the attempt"


async def test_calls_waiting_when_the_block_is_cancelled_end_failed() -> None:
    """Calls submitted just before ``open_router``'s block is cancelled (still in the
    dispatcher's inbox) each get a failed result, streams their one final result."""
    results: list[Result] = []
    streamed: list[list[Any]] = []

    async def call(router: switchman.Router) -> None:
        results.append(await router.call(CALL))

    async def stream(router: switchman.Router) -> None:
        items: list[Any] = []
        async with router.stream(CALL) as replies:
            async for item in replies:
                items.append(item)
        streamed.append(items)

    with trio.fail_after(10):
        async with trio.open_nursery() as callers:
            with trio.CancelScope() as block:
                async with switchman.open_router() as router:
                    for _ in range(50):  # more than the dispatcher routes in the pause
                        callers.start_soon(call, router)
                        callers.start_soon(stream, router)
                    await trio.sleep(0.001)  # the callers submit
                    block.cancel()
    assert len(results) == 50 and len(streamed) == 50
    assert all(r.status == "failed" for r in results)
    # (on a slow machine a call may get as far as its attempt before the cancellation)
    messages = {r.errors[0].message for r in results}
    assert STOPPED in messages and messages <= {STOPPED, MID_ATTEMPT}
    for items in streamed:
        assert isinstance(items[-1], Result) and items[-1].status == "failed"
        assert [i for i in items if isinstance(i, Result)] == [items[-1]]


async def test_a_router_left_by_a_cancellation_answers_at_once() -> None:
    with trio.CancelScope() as block:
        async with switchman.open_router() as router:
            block.cancel()
            await trio.sleep_forever()
    with trio.fail_after(5):
        result = await router.call(CALL)
        assert (result.status, result.errors[0].message) == ("failed", "the router is closed")
        async with router.stream(CALL) as replies:
            items = [item async for item in replies]
        assert len(items) == 1 and isinstance(items[0], Result) and items[0].status == "failed"
        with pytest.raises(switchman.RouterClosed):
            await router.spend()
        with pytest.raises(switchman.RouterClosed):
            await router.feedback("call-x", 1.0)
        with router.subscribe() as events:  # the hub has ended: so does the channel
            assert [event async for event in events] == []


async def test_a_router_used_from_another_trio_run_says_so_and_keeps_serving() -> None:
    """Another run's task on the router's channels would wedge its dispatcher for good."""
    seen: list[BaseException] = []

    def elsewhere(router: switchman.Router) -> None:
        async def use() -> None:
            await router.call(CALL)

        for run in (use, router.aclose):  # (closing it from there would wedge it too)
            try:
                trio.run(run)
            except BaseException as exc:
                seen.append(exc)

    with trio.fail_after(20):
        async with switchman.open_router(STEADY) as router:
            worker = threading.Thread(target=elsewhere, args=(router,), daemon=True)
            worker.start()
            await trio.to_thread.run_sync(worker.join, 10.0)
            assert not worker.is_alive()
            with pytest.raises(RuntimeError, match="another trio run"):
                await trio.to_thread.run_sync(router.status)
            assert (await router.call(CALL)).status == "complete"
            # the way trio gives: from a thread, into the router's own run
            token = trio.lowlevel.current_trio_token()
            result = await trio.to_thread.run_sync(
                lambda: trio.from_thread.run(router.call, CALL, trio_token=token)
            )
            assert result.status == "complete"
    assert [str(e) for e in seen] == [OTHER_RUN, OTHER_RUN]


async def test_a_dict_for_a_call_is_told_to_become_a_call() -> None:
    told = r"must be a switchman\.Call, not dict.*call_from_dict"
    async with switchman.open_router() as router:
        with pytest.raises(TypeError, match=told):
            await router.call({"prompt": "hi"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=told):
            async with router.stream({"prompt": "hi"}):  # type: ignore[arg-type]
                pass


async def test_a_config_with_no_models_says_so() -> None:
    async with switchman.open_router(switchman.Config()) as router:
        result = await router.call(Call(prompt="hi"))
    assert result.errors[0].code == "no_eligible_model"
    assert result.errors[0].message == "no eligible model: the configuration has no models"


async def test_a_call_the_dispatcher_holds_waiting_for_room_is_answered_too(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Past ``capacity`` + the backlog, the dispatcher waits for room with the next call in
    hand: cancelled there, that call is answered as those in its inbox are."""
    from switchman.actors._dispatcher import BACKLOG
    from switchman.catalog import SimProfile

    config = fleet(sim_model("slow", SimProfile(latency_ms=3_000.0)), capacity=1)
    calls = 1 + BACKLOG + 20
    results: list[Result] = []

    async def call(router: switchman.Router) -> None:
        results.append(await router.call(Call(prompt="hi", model="slow")))

    with trio.fail_after(60):
        async with trio.open_nursery() as callers:
            with trio.CancelScope() as block:
                async with switchman.open_router(config) as router:
                    for _ in range(calls):
                        callers.start_soon(call, router)
                    await trio.sleep(0.5)
                    block.cancel()
    assert len(results) == calls
    assert {r.status for r in results} == {"failed"}


async def test_feedback_waiting_when_the_block_is_cancelled_hears_the_router_closed() -> None:
    """Not ``UnknownCall``: the router knew the call; it stopped before it took the score."""
    told: list[str] = []

    async def rate(router: switchman.Router, call_id: str) -> None:
        try:
            await router.feedback(call_id, 0.5)
            told.append("taken")
        except switchman.RouterClosed:
            told.append("closed")
        except switchman.UnknownCall:
            told.append("unknown")

    with trio.fail_after(10):
        async with trio.open_nursery() as callers:
            with trio.CancelScope() as block:
                async with switchman.open_router(STEADY) as router:
                    answered = [await router.call(CALL) for _ in range(10)]
                    for result in answered:
                        callers.start_soon(rate, router, result.call_id)
                    await trio.lowlevel.checkpoint()
                    block.cancel()
    assert len(told) == 10 and "unknown" not in told and "closed" in told


def test_opening_a_router_under_asyncio_says_what_to_do() -> None:
    """It raised ``AttributeError: 'RunContext' object has no attribute 'runner'`` from
    inside trio's nursery: nothing an asyncio developer could act on."""
    import asyncio

    async def open_it() -> None:
        async with switchman.open_router():
            pass

    with pytest.raises(RuntimeError, match="needs a trio run") as info:
        asyncio.run(open_it())
    assert "from asyncio, run the router in a thread" in str(info.value)
    assert "over HTTP" in str(info.value)


def test_opening_a_store_under_asyncio_says_what_to_do(tmp_path: object) -> None:
    """README's store recipe under asyncio raised trio's "must be called from async
    context" from inside the store."""
    import asyncio

    from switchman.store import open_store

    async def open_it() -> None:
        async with open_store(Path(str(tmp_path)) / "s.db"):
            pass

    with pytest.raises(RuntimeError, match="open_store needs a trio run"):
        asyncio.run(open_it())


async def test_one_store_handed_to_a_second_router_is_refused_while_the_first_runs(
    tmp_path: Any,
) -> None:
    """Two routers on one store each counted only their own spend and wrote it over the
    other's: after a restart a budget had half of what was spent. The second is refused;
    once the first has closed, the store is free again."""
    from switchman.store import StoreError, open_store

    assert issubclass(StoreError, switchman.SwitchmanError)
    with trio.fail_after(20):
        async with open_store(str(tmp_path / "one.db")) as store:
            async with switchman.open_router(STEADY, store=store) as first:
                with pytest.raises(StoreError, match="in use by another router in this process"):
                    async with switchman.open_router(STEADY, store=store):
                        pass  # pragma: no cover
                assert (await first.call(CALL)).status == "complete"
            async with switchman.open_router(STEADY, store=store) as again:
                assert (await again.call(CALL)).status == "complete"


async def test_run_router_awaited_without_a_nursery_says_how_to_start_it() -> None:
    """It ran forever, with no handle to call it by."""
    with trio.fail_after(5), pytest.raises(TypeError, match=r"nursery\.start"):
        await switchman.run_router(None)
    async with trio.open_nursery() as nursery:
        router: switchman.Router = await nursery.start(switchman.run_router, STEADY)
        assert (await router.call(CALL)).status == "complete"
        await router.aclose()


async def test_a_config_given_as_a_path_or_a_dict_says_how_to_make_one() -> None:
    with pytest.raises(switchman.ValidationError, match=r"got str: from a file, switchman\.load"):
        async with switchman.open_router("switchman.toml"):  # type: ignore[arg-type]
            pass  # pragma: no cover
    with pytest.raises(switchman.ValidationError, match=r"got dict: from a dict, switchman\.cat"):
        async with switchman.open_router({"router": {}}):  # type: ignore[arg-type]
            pass  # pragma: no cover
    with pytest.raises(TypeError, match=r"config_from_dict"):
        switchman.load_config({"router": {}})  # type: ignore[arg-type]
    with pytest.raises(switchman.ValidationError, match=r"got PosixPath: from a file"):
        async with switchman.open_router(Path("switchman.toml")):  # type: ignore[arg-type]
            pass  # pragma: no cover


async def test_a_store_used_after_its_block_says_so(tmp_path: Path) -> None:
    """It raised a bare ``trio.ClosedResourceError()``."""
    from switchman.store import StoreError, open_store

    async with open_store(str(tmp_path / "gone.db")) as store:
        pass
    with trio.fail_after(10), pytest.raises(StoreError, match="the store is closed: use it inside"):
        async with switchman.open_router(store=store):
            pass  # pragma: no cover


async def test_ctrl_c_leaves_the_block_at_once_not_after_the_drain(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A ``KeyboardInterrupt`` out of the block stops the router as a cancellation does:
    it had drained the calls of the application's other tasks for ``grace_s`` first, the
    user's Ctrl-C unanswered (10 s, nothing said)."""
    from switchman.catalog import SimProfile

    slow = sim_model("slow", SimProfile(latency_ms=5_000, ttft_ms=100, error_rate=0.0))
    results: list[Result] = []

    async def call(router: switchman.Router) -> None:
        results.append(await router.call(Call(prompt="hi", model="slow")))

    left_at = 0.0
    interrupted = False
    try:
        async with trio.open_nursery() as app, switchman.open_router(fleet(slow)) as router:
            app.start_soon(call, router)
            await trio.sleep(1.0)
            left_at = trio.current_time()
            raise KeyboardInterrupt
    except* KeyboardInterrupt:
        interrupted = True
    assert interrupted
    assert trio.current_time() - left_at < 0.5  # (the drain would have run 4 s more)
    (result,) = results
    assert result.status == "failed" and result.errors[0].code == "cancelled"
