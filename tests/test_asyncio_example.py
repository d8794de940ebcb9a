"""examples/asyncio_app.py: an asyncio application's way into the router, through the real
path (the router's own trio run in a thread; the fake provider server, over sockets, in
another). Plain tests, each running ``asyncio.run``; no assertion on how long anything
took, only on what the provider saw and what the application got."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio

import switchman
from switchman.catalog import Config
from switchman.sim import FakeProviderServer, ReceivedRequest, serve_fake_provider
from tests._examples import run_example
from tests._httpfleet import ENV, http_fleet, model

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "asyncio_app.py"
#: each answer of 2000 words comes in 500 chunks 50 ms apart: 25 s, longer than any wait
#: below, so a request that ends "complete" was not cancelled
LONG = "long-2000-50"
#: the longest any test waits for something to happen (a loaded CI machine is slow)
PATIENCE = 60.0


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asyncio_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = load_example()


class FakeServerThread:
    """The fake provider server in a trio run of its own thread, as a provider is: apart
    from the router's run and from the test's asyncio loop."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=trio.run, args=(self._main,))

    async def _main(self) -> None:
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self.server: FakeProviderServer = await nursery.start(serve_fake_provider)
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def __enter__(self) -> FakeServerThread:
        self._thread.start()
        assert self._ready.wait(PATIENCE)
        return self

    def __exit__(self, *exc: object) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()

    def clear(self) -> None:
        trio.from_thread.run_sync(self.server.clear, trio_token=self._token)

    def requests(self, behaviour: str) -> list[ReceivedRequest]:
        """What the server received for the model playing ``behaviour``."""
        records = trio.from_thread.run_sync(self.server.requests, trio_token=self._token)
        return [r for r in records if r.model == f"openai/{behaviour}"]

    async def wait_for(
        self, behaviour: str, done: Callable[[list[ReceivedRequest]], bool]
    ) -> list[ReceivedRequest]:
        """Poll (from asyncio) until ``done`` holds of the requests for ``behaviour``."""
        async with asyncio.timeout(PATIENCE):
            # (nothing to wait on: the server runs in a thread of its own)
            while not done(records := self.requests(behaviour)):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return records

    def config(self, *behaviours: str, grace_s: float = 60.0) -> Config:
        """Models playing ``behaviours`` on this server, no limit below 256 calls at once;
        ``grace_s`` long, so that a router left to drain its calls would let them finish."""
        config = http_fleet(
            self.server,
            [model("openai", b) for b in behaviours],
            default_ttft_ms=20_000,
            default_soft_ms=60_000,
            default_hard_ms=90_000,
        )
        openai = attrs.evolve(config.providers["openai"], max_concurrency=256, read_timeout_s=60)
        return attrs.evolve(
            config,
            providers={"openai": openai},
            server=attrs.evolve(config.server, grace_s=grace_s),
        )


@pytest.fixture
def fake() -> Iterator[FakeServerThread]:
    with FakeServerThread() as server:
        yield server


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())``; then the router's thread must be gone (trio's idle worker
    threads, daemons, may stay: they end with the interpreter; a router's would hold its
    exit)."""

    def threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if not t.daemon}

    before = threads()
    asyncio.run(main())
    assert threads() == before


def ask(behaviour: str, max_tokens: int = 4000) -> switchman.Call:
    return switchman.Call(
        prompt="What is the capital of France?",
        model=f"openai/{behaviour}",
        params=switchman.Params(max_tokens=max_tokens),
    )


def peak(records: list[ReceivedRequest]) -> int:
    """The most requests the server was answering at once."""
    moments = sorted(
        [(r.received_at, 1) for r in records] + [(r.ended_at or 0.0, -1) for r in records],
        key=lambda m: (m[0], m[1]),  # (an end before a start at the same moment)
    )
    now = most = 0
    for _, step in moments:
        now += step
        most = max(most, now)
    return most


def test_the_demo_runs_on_the_simulator(tmp_path: Path) -> None:
    code, out, output = run_example("asyncio_app.py", tmp_path)
    assert code == 0, output
    assert "(simulated)" in out and "-- answered by sim/" in out, output
    assert "cancelled" in out, output


def test_two_hundred_calls_run_at_once_not_one_per_thread(fake: FakeServerThread) -> None:
    """Each call is a task of the router's trio run: none waits for a thread (asyncio's
    default executor would run 5 + the CPU count, 32 at most, at a time)."""
    slow = "healthy-latency-2000"

    in_flight: list[int] = []

    async def main() -> None:
        async with app.AsyncRouter(fake.config(slow), env=ENV) as router:
            calls = asyncio.gather(*(router.call(ask(slow, 200)) for _ in range(200)))
            while not calls.done():  # (what the router's status says meanwhile)
                in_flight.append((await router.status()).in_flight_calls)
                await asyncio.wait([calls], timeout=0.05)
            assert [r.status for r in calls.result()] == ["complete"] * 200

    run(main)
    records = fake.requests(slow)
    assert len(records) == 200 and {r.outcome for r in records} == {"complete"}
    assert peak(records) > 32 and max(in_flight) > 32, (peak(records), max(in_flight))


def test_a_cancelled_asyncio_task_cancels_its_call_billed_what_it_generated(
    fake: FakeServerThread, tmp_path: Path
) -> None:
    store = tmp_path / "switchman.db"
    spent: list[float] = []

    async def main() -> None:
        config = fake.config(LONG, "long-2000")
        async with app.AsyncRouter(config, env=ENV, store_path=store) as router:
            whole = await router.call(ask("long-2000"))  # the same answer, uncut
            assert whole.ok and whole.cost_usd > 0
            task = asyncio.create_task(router.call(ask(LONG)))
            await fake.wait_for(LONG, lambda rs: bool(rs) and rs[-1].first_byte_at is not None)
            await asyncio.sleep(1.0)  # (a few of the answer's 500 chunks are sent)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            ended = await fake.wait_for(LONG, lambda rs: rs[-1].outcome != "in_progress")
            assert ended[-1].outcome == "client_closed"
            async with asyncio.timeout(PATIENCE):  # (until the cut attempt's bill is in)
                while (day := (await router.spend())["day"]) <= whole.cost_usd:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert 0 < day - whole.cost_usd < whole.cost_usd
            spent.append(day)

    async def reopened() -> None:  # all of it was stored, the cut attempt too
        async with app.AsyncRouter(fake.config(LONG), env=ENV, store_path=store) as router:
            assert (await router.spend())["day"] == pytest.approx(spent[0])

    run(main)
    run(reopened)


def test_a_stream_gives_deltas_then_the_result_and_leaving_it_early_stops_the_call(
    fake: FakeServerThread,
) -> None:
    async def main() -> None:
        async with app.AsyncRouter(fake.config(LONG, "long-200"), env=ENV) as router:
            events = [event async for event in router.stream(ask("long-200"))]
            *deltas, result = events
            assert len(deltas) > 1 and all(isinstance(d, switchman.Delta) for d in deltas)
            assert isinstance(result, switchman.Result) and result.ok
            assert "".join(d.text for d in deltas) == result.answer

            seen = 0
            async for event in router.stream(ask(LONG)):
                assert isinstance(event, switchman.Delta)
                seen += 1
                if seen == 3:
                    break  # (asyncio closes the generator: the call stops)
            ended = await fake.wait_for(LONG, lambda rs: rs[-1].outcome != "in_progress")
            assert ended[-1].outcome == "client_closed"

            async def read_it_all() -> None:
                async for _ in router.stream(ask(LONG)):
                    pass

            task = asyncio.create_task(read_it_all())
            await fake.wait_for(LONG, lambda rs: len(rs) == 2 and rs[-1].first_byte_at is not None)
            task.cancel()  # (a task cancelled while it reads the stream)
            with pytest.raises(asyncio.CancelledError):
                await task
            ended = await fake.wait_for(LONG, lambda rs: rs[-1].outcome != "in_progress")
            assert ended[-1].outcome == "client_closed"

    run(main)


def test_the_router_s_exceptions_reach_asyncio_as_themselves(fake: FakeServerThread) -> None:
    unknown = switchman.Call(prompt="hi", model="no-such-model")

    async def main() -> None:
        async with app.AsyncRouter(fake.config("healthy"), env=ENV) as router:
            with pytest.raises(switchman.ValidationError, match="no-such-model"):
                await router.call(unknown)
            with pytest.raises(switchman.ValidationError, match="no-such-model"):
                async for _ in router.stream(unknown):
                    pass
            with pytest.raises(TypeError, match=r"switchman\.Call"):
                await router.call({"prompt": "hi"})
            with pytest.raises(switchman.UnknownCall):
                await router.feedback("call-that-never-was", 0.5)
            with pytest.raises(switchman.ValidationError, match="scope"):
                await router.spend("nowhere")
            assert (await router.call(ask("healthy", 200))).ok  # (it still serves)
        with pytest.raises(switchman.RouterClosed):
            await router.call(ask("healthy", 200))

    run(main)


def test_a_bad_config_raises_on_entering_and_leaves_no_thread(fake: FakeServerThread) -> None:
    config = fake.config("healthy")
    bad = attrs.evolve(config, server=attrs.evolve(config.server, grace_s=-1.0))

    entered = []

    async def main() -> None:
        with pytest.raises(switchman.ValidationError, match="grace_s"):
            async with app.AsyncRouter(bad, env=ENV) as router:
                entered.append(router)
        assert entered == []

    run(main)


def test_an_async_router_entered_again_says_so(fake: FakeServerThread) -> None:
    """Entered twice (nested, or after leaving) it hung the process or served a router
    closed at once."""

    async def main() -> None:
        router = app.AsyncRouter(fake.config("healthy"), env=ENV)
        async with router:
            with pytest.raises(RuntimeError, match="entered once"):
                async with router:
                    pass
            assert (await router.call(ask("healthy"))).status == "complete"
        with pytest.raises(RuntimeError, match="entered once"):
            async with router:
                pass

    run(main)


def test_leaving_the_block_cancels_the_calls_in_flight_and_ends_the_thread(
    fake: FakeServerThread,
) -> None:
    """With a minute's grace, a router left to drain would let the 25 s answers finish:
    these are cancelled (their waiters told ``RouterClosed``), also when the block is
    left by an exception."""

    async def main() -> None:
        for leave in (None, KeyError("the application's own")):
            fake.clear()
            with contextlib.suppress(KeyError):
                async with app.AsyncRouter(fake.config(LONG), env=ENV) as router:
                    calls = [asyncio.create_task(router.call(ask(LONG))) for _ in range(20)]
                    await fake.wait_for(LONG, lambda rs: len(rs) == 20)
                    if leave is not None:
                        raise leave
            async with asyncio.timeout(PATIENCE):
                outcomes = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(o, switchman.RouterClosed) for o in outcomes), outcomes
            ended = await fake.wait_for(LONG, lambda rs: all(r.ended_at is not None for r in rs))
            assert [r.outcome for r in ended] == ["client_closed"] * 20

    run(main)


CTRL_C = """
import asyncio, importlib.util, sys
sys.path.insert(0, {root!r})
import attrs
from tests._httpfleet import ENV, http_fleet, model
import switchman
spec = importlib.util.spec_from_file_location("asyncio_app", {example!r})
app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)

class Server:
    base_url = {base_url!r}

config = http_fleet(Server, [model("openai", {long!r})], default_ttft_ms=20_000,
                    default_soft_ms=60_000, default_hard_ms=90_000)
config = attrs.evolve(config, server=attrs.evolve(config.server, grace_s=60.0))
call = switchman.Call(prompt="hi", model="openai/" + {long!r},
                      params=switchman.Params(max_tokens=4000))

async def main():
    async with app.AsyncRouter(config, env=ENV, store_path={store!r}) as router:
        await asyncio.gather(*(router.call(call) for _ in range(5)))

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_under_asyncio_run_cancels_the_calls_and_stores_their_spend(
    fake: FakeServerThread, tmp_path: Path
) -> None:
    store = tmp_path / "switchman.db"
    script = tmp_path / "ctrl_c.py"
    script.write_text(
        CTRL_C.format(
            root=str(ROOT),
            example=str(EXAMPLE),
            base_url=fake.server.base_url,
            long=LONG,
            store=str(store),
        )
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        async def started() -> None:
            await fake.wait_for(LONG, lambda rs: len(rs) == 5 and all(r.first_byte_at for r in rs))
            await asyncio.sleep(1.0)  # (a few of each answer's 500 chunks are sent)

        asyncio.run(started())
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=PATIENCE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and out == "interrupted\n", f"{out}\n{err}"

    async def ended() -> None:
        done = await fake.wait_for(LONG, lambda rs: all(r.ended_at is not None for r in rs))
        assert [r.outcome for r in done] == ["client_closed"] * 5

    asyncio.run(ended())

    async def reopened() -> None:  # the cut attempts were billed, and the bill stored
        async with app.AsyncRouter(fake.config(LONG), env=ENV, store_path=store) as router:
            assert (await router.spend())["day"] > 0

    run(reopened)
