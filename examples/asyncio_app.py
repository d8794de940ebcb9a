"""Calling switchman from an asyncio application: ``AsyncRouter``, to copy into your code.

switchman runs on trio. ``AsyncRouter`` runs ``switchman.open_router`` under ``trio.run``
in a thread of its own and carries each call across: a call is a task of that trio run
(not a thread, so no thread pool limits how many run at once), an asyncio task cancelled
while it waits cancels its call, and leaving ``async with`` stops it all.

Run the demo with ``python examples/asyncio_app.py``: with no provider key in the
environment it runs on the built-in simulator, and every result says so (``simulated``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import trio

import switchman
from switchman.store import open_store

T = TypeVar("T")
StreamEvent = switchman.Delta | switchman.Result


class AsyncRouter:
    """``switchman.open_router(config, **kw)`` for asyncio: ``async with AsyncRouter(config)
    as router: result = await router.call(call)``.

    Entering starts the router's thread and raises what opening raised (``ValidationError``
    for a bad config). Router exceptions reach asyncio as themselves (``ValidationError``
    for a call it cannot serve, ``UnknownCall``...). An asyncio task cancelled while it
    waits (``asyncio.wait_for``, ``task.cancel()``) cancels its call: the provider's
    request ends, billed what it generated. Leaving the block, by an exception or a
    cancellation too (Ctrl-C under ``asyncio.run``), cancels the calls still in flight
    (each waiter gets ``RouterClosed``, as does any use afterwards), closes the router
    (its spend written to the store at ``store_path``, when given) and ends the thread.
    """

    def __init__(
        self,
        config: switchman.Config | None = None,
        *,
        store_path: str | os.PathLike[str] | None = None,
        **open_router_kw: Any,
    ) -> None:
        self._config, self._store_path, self._kw = config, store_path, open_router_kw
        self._token: trio.lowlevel.TrioToken | None = None
        self._open = self._closing = False

    async def __aenter__(self) -> AsyncRouter:
        if hasattr(self, "_thread"):  # (its trio run has one life: entered again, it hung)
            raise RuntimeError("an AsyncRouter is entered once: make a new one to go on")
        self._loop = asyncio.get_running_loop()
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._ended: asyncio.Future[None] = self._loop.create_future()
        self._stop = trio.Event()
        self._thread = threading.Thread(target=self._run, name="switchman-router")
        self._thread.start()
        try:
            await self._opened
        except BaseException:  # opening failed, or we were cancelled while it opened
            await self._shut()
            self._ended.exception()  # (the same error, raised here: told once)
            raise
        self._open = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await self._shut()
        if exc_type is None and (error := self._ended.exception()) is not None:
            raise error  # closing failed (the router crashed)

    async def call(self, call: switchman.Call) -> switchman.Result:
        """``Router.call`` from asyncio: the result, complete or failed."""
        return await self._await(lambda: self._router.call(call))

    async def stream(self, call: switchman.Call) -> AsyncIterator[StreamEvent]:
        """``Delta`` values as the answer arrives, then the ``Result``. Leaving the loop
        early stops the call: at once inside ``contextlib.aclosing(router.stream(call))``,
        else when asyncio finalizes the generator (right after a ``break``, in CPython).
        Nothing waits for a slow reader: the answer waits in memory, as the router's does."""
        events: asyncio.Queue[StreamEvent | BaseException | None] = asyncio.Queue()  # None: the end

        async def pump() -> None:
            async with self._router.stream(call) as replies:
                async for event in replies:
                    self._tell(events.put_nowait, event)

        scope = self._start(pump, lambda _, error: events.put_nowait(error))
        try:
            while (item := await events.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:  # left early (break, exception, cancellation): the call stops
            self._soon(scope.cancel)

    async def status(self) -> switchman.RouterStatus:
        """``Router.status()``: providers, breakers, calls in flight."""

        async def now() -> switchman.RouterStatus:
            return self._router.status()

        return await self._await(now)

    async def spend(self, scope: str = "global") -> dict[str, float]:
        """``Router.spend``: USD spent this hour, day and month."""
        return await self._await(lambda: self._router.spend(scope))

    async def feedback(self, call_id: str, score: float, **kw: Any) -> None:
        """``Router.feedback``: how good an answer was, 0..1."""
        await self._await(lambda: self._router.feedback(call_id, score, **kw))

    # -- the trio side: one thread, one trio run, a nursery holding every call's task

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            trio.run(self._main)
        except BaseException as exc:  # handed to asyncio: __aenter__ or __aexit__ raises it
            error = exc
        self._tell(_settle, self._opened, None, error)
        self._tell(_settle, self._ended, None, error)

    async def _main(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            store = None
            if self._store_path is not None:
                store = await stack.enter_async_context(open_store(self._store_path))
            opening = switchman.open_router(self._config, store=store, **self._kw)
            self._router = await stack.enter_async_context(opening)
            async with trio.open_nursery() as self._calls:
                self._token = trio.lowlevel.current_trio_token()
                if not self._closing:  # (asyncio may have given up while we opened)
                    self._tell(_settle, self._opened, None, None)
                    await self._stop.wait()
                self._calls.cancel_scope.cancel()  # calls in flight end, then the router closes

    def _start(
        self, work: Callable[[], Awaitable[T]], deliver: Callable[[T | None, Exception | None], Any]
    ) -> trio.CancelScope:
        """Run ``work()`` as a task of the trio run; ``deliver(value, error)`` runs in the
        event loop with its outcome, unless the task was cancelled through the returned
        scope (asyncio gave up on it). Raises ``RouterClosed`` once closed."""
        scope = trio.CancelScope()

        async def task() -> None:
            value: T | None = None
            error: Exception | None = switchman.RouterClosed()  # (what closing leaves)
            try:
                with scope:
                    try:
                        value, error = await work(), None
                    except Exception as exc:
                        error = exc
            finally:
                if not scope.cancelled_caught:
                    self._tell(deliver, value, error)

        def spawn() -> None:  # in the trio thread: must not raise
            try:
                if self._stop.is_set():
                    raise RuntimeError("closing")
                self._calls.start_soon(task)
            except RuntimeError:  # closing, or closed to new tasks (the router crashed)
                self._tell(deliver, None, switchman.RouterClosed())

        if not self._open or self._token is None:
            raise switchman.RouterClosed()
        try:
            self._token.run_sync_soon(spawn)
        except trio.RunFinishedError:
            raise switchman.RouterClosed() from None
        return scope

    async def _await(self, work: Callable[[], Awaitable[T]]) -> T:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        scope = self._start(work, lambda value, error: _settle(done, value, error))
        try:
            return await done
        except asyncio.CancelledError:  # this task was cancelled: so is its call
            self._soon(scope.cancel)
            raise

    def _soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` in the trio thread soon (nothing, once the run has ended)."""
        try:
            if self._token is not None:
                self._token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    def _tell(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` in the event loop's thread soon (nothing, once it has closed)."""
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass

    async def _shut(self) -> None:
        """Stop the trio run (calls in flight are cancelled) and wait for its thread."""
        self._open, self._closing = False, True
        self._soon(self._stop.set)
        await asyncio.wait({self._ended})
        self._thread.join()  # (it has returned from trio.run: a moment at most)


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


async def main() -> None:
    async with AsyncRouter(switchman.load_config(None)) as router:
        questions = ["What is the capital of France?", "Name a prime above 100", "Define HTTP"]
        calls = [switchman.Call(prompt=q, model="auto", intent="lookup") for q in questions]
        for result in await asyncio.gather(*(router.call(call) for call in calls)):
            simulated = "simulated" if result.simulated else result.provider
            print(f"{result.model} ({simulated}) ${result.cost_usd:.6f}: {result.answer[:60]}")

        explain = switchman.Call(prompt="Explain recursion", model="claude")
        async for event in router.stream(explain):  # Delta(text) items, then the Result
            if isinstance(event, switchman.Delta):
                print(event.text, end="", flush=True)
            else:
                print(f"\n-- answered by {event.model}")

        essay = switchman.Call(prompt="Write an essay on the history of Rome", model="sim/smart")
        try:  # (its answer takes about 2.5 s) the timeout cancels the call, not just the wait
            await asyncio.wait_for(router.call(essay), timeout=1.0)
        except TimeoutError:
            print("the essay took too long: cancelled (billed what it generated)")
        print(f"spent today: ${(await router.spend())['day']:.6f}")


if __name__ == "__main__":
    asyncio.run(main())
