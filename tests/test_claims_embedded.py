"""What ``docs/embedding.md`` says of an embedded router's calls waiting for a slot: the
real router on the in-process simulator (so trio's autojump clock runs its 10-second calls
in milliseconds)."""

from __future__ import annotations

import time

import trio

import switchman
from switchman import Call
from switchman.catalog import SimProfile
from tests._simfleet import fleet, sim_model

#: every call takes 10 s
SLOW = sim_model("slow", SimProfile(latency_ms=10_000.0))


async def test_queued_and_started_jobs_list_the_calls_that_wait_for_a_slot(
    autojump_clock: trio.abc.Clock,
) -> None:
    """docs/embedding.md: "`router.queued_jobs()` the `job_id`s of the calls waiting for one
    of its `capacity` slots, and `router.started_jobs()` those that waited and run now, with
    when each took its slot". With `capacity = 1` and three calls, the first runs, the other
    two wait; once it ends the second takes the slot, at that (wall-clock) time."""
    results: dict[str, switchman.Result] = {}
    first_done = trio.Event()
    with trio.fail_after(600):
        async with switchman.open_router(fleet(SLOW, capacity=1)) as router:

            async def call(job: str) -> None:
                results[job] = await router.call(Call(prompt=job, model="slow"), job_id=job)
                if job == "job-0":
                    first_done.set()

            wall0, trio0 = time.time(), trio.current_time()
            async with trio.open_nursery() as nursery:
                for n in range(3):
                    nursery.start_soon(call, f"job-{n}")
                    await trio.sleep(0.01)
                await trio.sleep(1.0)
                queued_while_first_ran = router.queued_jobs()
                started_while_first_ran = dict(router.started_jobs())
                await first_done.wait()
                await trio.sleep(0.01)
                took = trio.current_time()
                queued_after = router.queued_jobs()
                started_after = dict(router.started_jobs())
            queued_at_end = router.queued_jobs()
            started_at_end = dict(router.started_jobs())
    assert queued_while_first_ran == {"job-1", "job-2"}
    assert started_while_first_ran == {}  # (the first call never waited)
    assert queued_after == {"job-2"}
    assert list(started_after) == ["job-1"]
    # when it took the slot, some 10 s after it was submitted (its wall time follows
    # trio's clock here: the autojump clock ran those 10 s in no time)
    assert abs(started_after["job-1"] - (wall0 + (took - trio0))) < 1.0
    assert took - trio0 > 9.0
    assert queued_at_end == set() and started_at_end == {}
    assert {r.status for r in results.values()} == {"complete"}
