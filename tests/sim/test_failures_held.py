"""The simulator's failures leave nothing behind: it raised one cached error object per kind
of failure, and each raise added its frames to that object's traceback, each attempt's
request and prompt kept alive with them for the life of the process."""

from __future__ import annotations

import gc

import trio

import switchman
from switchman import Call
from switchman.catalog import SimProfile
from tests._simfleet import fleet, sim_model


def _frames_held() -> int:
    """Traceback entries that live switchman errors hold."""
    held = 0
    for o in gc.get_objects():
        if isinstance(o, switchman.SwitchmanError):
            tb = o.__traceback__
            while tb is not None:
                held += 1
                tb = tb.tb_next
    return held


async def test_failed_attempts_hold_no_frames_once_their_calls_end(
    autojump_clock: trio.abc.Clock,
) -> None:
    failing = sim_model("failing", SimProfile(error_rate=1.0))
    async with switchman.open_router(fleet(failing)) as router:
        for i in range(50):
            result = await router.call(Call(prompt=f"call {i} " + "x" * 2_000, model="failing"))
            assert result.status == "failed"
            await trio.sleep(120.0)  # (its breaker closes again: every call is attempted)
        gc.collect()
        assert _frames_held() < 50
