"""Wall time for a trace: moving with trio's clock, anchored to the system's."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Final

import trio

#: how far the wall clock may have moved from trio's before a trace's times follow it (an
#: NTP step; a machine resumed from sleep, which trio's monotonic clock does not count)
REANCHOR_S: Final = 1.0


def anchored_wall_clock() -> Callable[[], float]:
    """Wall time for humans that moves with trio's clock: the times of one call's trace
    agree with its durations, and MockClock tests see it move. Under the system clock it
    follows the wall clock when that moves more than ``REANCHOR_S`` away (it was anchored
    once, at start: after a resume from sleep, traces read hours behind their jobs)."""
    offset = time.time() - trio.current_time()
    testing = sys.modules.get("trio.testing")  # (not imported for it: 60 ms of imports)
    if testing is not None and isinstance(trio.lowlevel.current_clock(), testing.MockClock):
        return lambda: offset + trio.current_time()

    def wall() -> float:
        nonlocal offset
        now = trio.current_time()
        anchored = offset + now
        real = time.time()
        if abs(real - anchored) <= REANCHOR_S:
            return anchored
        offset = real - now
        return real

    return wall
