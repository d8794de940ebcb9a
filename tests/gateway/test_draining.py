"""Draining for shutdown is visible: the gateway keeps listening while jobs finish, and
answers 503 (``/health`` draining, a new call shutting_down) instead of refusing."""

from __future__ import annotations

from functools import partial

import httpx
import trio

from switchman.gateway import serve_gateway
from tests.gateway._fakes import FakeRouter, make_config, running_gateway


async def test_health_and_new_calls_answer_503_while_jobs_drain_then_it_stops_listening() -> None:
    grace = 1.5
    router = FakeRouter(make_config(grace_s=grace), slow_s=0.8)
    shutdown = trio.Event()
    stopped = trio.Event()

    async def gateway(*, task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        await serve_gateway(
            router,
            host="127.0.0.1",
            port=0,
            shutdown_trigger=shutdown.wait,
            task_status=task_status,
        )
        stopped.set()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(gateway)
            base = f"http://{host}:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                job = (await client.post("/call", json={"prompt": "p", "model": "slow"})).json()
                await router.wait_for_calls(1)
                shutdown.set()
                await trio.sleep(0.1)
                # a new connection each time: what a load balancer's health check makes
                async with httpx.AsyncClient(base_url=base, timeout=10) as fresh:
                    health = await fresh.get("/health")
                    refused = await fresh.post("/call", json={"prompt": "late", "model": "fast"})
                    # the job in flight can still be read while it finishes
                    polled = await fresh.get(f"/result/{job['job_id']}?wait=5")
            assert health.status_code == 503 and health.json()["status"] == "draining"
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
            # a client (the openai SDK among them) waits a moment and tries again
            assert refused.headers["retry-after"] == "1"
            assert polled.status_code == 200 and polled.json()["status"] == "complete"
            await stopped.wait()
            # drained: now the listener is closed
            async with httpx.AsyncClient(base_url=base, timeout=2) as after:
                try:
                    await after.get("/health")
                except httpx.ConnectError:
                    pass
                else:
                    raise AssertionError("the gateway still listens after it stopped")
    assert len(router.calls) == 1


async def test_an_idle_gateway_stops_at_once() -> None:
    router = FakeRouter(make_config(grace_s=30.0))
    shutdown = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(
                    serve_gateway, router, host="127.0.0.1", port=0, shutdown_trigger=shutdown.wait
                )
            )
            began = trio.current_time()
            shutdown.set()
        assert trio.current_time() - began < 5.0  # no job to wait for: no grace spent


async def test_a_call_being_stored_as_a_stop_begins_runs_to_its_end() -> None:
    """A stop that began while a ``POST /call`` was writing its job found no job in flight
    and closed the jobs' nursery under it: the client got a 500, and the job stayed
    ``running`` in the store, ``interrupted`` at the next start. Now the stop waits."""
    from switchman.store import open_store

    router = FakeRouter(make_config(grace_s=5.0))
    async with open_store(":memory:") as store:
        add_job = store.add_job

        async def slow_add(**kwargs: object) -> None:
            await trio.sleep(1.0)  # (a busy disk; the stop begins meanwhile)
            await add_job(**kwargs)  # type: ignore[arg-type]

        store.add_job = slow_add  # type: ignore[method-assign]

        with trio.fail_after(20):
            async with running_gateway(router, store=store) as gw, trio.open_nursery() as stops:

                async def stop_soon() -> None:
                    await trio.sleep(0.3)
                    gw.shutdown.set()

                stops.start_soon(stop_soon)
                answer = await gw.client.post("/call?wait=5", json={"prompt": "p", "model": "fast"})
        assert answer.status_code == 200, answer.text
        job = await store.get_job(answer.json()["job_id"])
        assert job is not None and job.status == "complete"
