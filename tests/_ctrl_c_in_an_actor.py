"""Ctrl-C landing in the persister's task while calls are in flight (the store's save
meets it): the next start must read what the calls cost, not each at its most.

Run as its own process by ``test_ctrl_c.py`` (a ``KeyboardInterrupt`` in the test
process would end the test session): ``python _ctrl_c_in_an_actor.py DB [WHERE]``, WHERE
``persister`` (its save meets Ctrl-C: the default) or ``writer`` (the store's writer task
meets it, at the first line it runs once the calls are in flight)."""

import signal
import sys
from typing import Any

import trio

import switchman
from switchman.catalog import config_from_dict
from switchman.store import open_store

CONFIG = config_from_dict(
    {
        "providers": {"sim": {"kind": "sim"}},
        "models": [
            {
                "alias": "slow",
                "provider": "sim",
                "model_id": "slow",
                "context_window": 100000,
                "input_per_mtok": 100.0,
                "output_per_mtok": 200.0,
                "sim": {"latency_ms": 60000, "ttft_ms": 30000, "error_rate": 0.0},
            }
        ],
        "budgets": {"global_daily_usd": 1000.0},
    }
)


class Tripwire:
    """The store, whose second save of spend (in the persister's task) meets Ctrl-C."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.saves = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _trip(self) -> None:
        self.saves += 1
        if self.saves == 2:
            signal.raise_signal(signal.SIGINT)

    async def save_spend(self, data: Any) -> None:
        self._trip()
        await self.inner.save_spend(data)

    async def save_spend_change(self, *args: Any) -> None:
        self._trip()
        await self.inner.save_spend_change(*args)


def _in_the_writer(frame: Any, event: str, arg: Any) -> Any:
    """A trace hook: Ctrl-C at the first line the store's writer task runs."""
    if frame.f_code.co_filename.endswith("_sqlite.py") and frame.f_code.co_name == "_drain":

        def line(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                sys.settrace(None)
                signal.raise_signal(signal.SIGINT)
            return line

        return line
    return None


async def main(db: str, where: str) -> None:
    call = switchman.Call(prompt="x", model="slow", params=switchman.Params(max_tokens=1000))
    async with open_store(db) as store:
        wired = Tripwire(store) if where == "persister" else store
        try:
            async with (
                trio.open_nursery() as app,
                switchman.open_router(CONFIG, store=wired) as router,
            ):
                for _ in range(5):
                    app.start_soon(router.call, call)
                await trio.sleep(0.5)
                if where == "writer":
                    sys.settrace(_in_the_writer)
                    app.start_soon(router.call, call)  # (its hold is saved: the writer runs)
                await trio.sleep(20)
            print("not interrupted")
        except* KeyboardInterrupt:
            print("interrupted", where)
    async with open_store(db) as store, switchman.open_router(CONFIG, store=store) as router:
        print("spent", (await router.spend())["day"])


trio.run(main, sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "persister")
