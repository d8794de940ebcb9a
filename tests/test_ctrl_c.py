"""Ctrl-C landing inside one of the router's own tasks (an actor, a call's or an attempt's
task) reaches the application's task instead, whose leaving the block stops the router as
a cancellation does. Raised in the persister, it killed it before its last save: the next
start counted each call in flight at the most it could cost ($1.01 for five calls that
cost nothing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("_ctrl_c_in_an_actor.py")


@pytest.mark.parametrize("where", ["persister", "writer"])
def test_ctrl_c_in_the_routers_tasks_leaves_no_call_counted_at_its_most(
    tmp_path: Path, where: str
) -> None:
    """In the persister's task (an actor) or the store's writer task (the store's own)."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "spend.db"), where],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"interrupted {where}", done.stdout
    assert lines[-1] == "spent 0.0", (done.stdout, done.stderr[-2000:])
    assert "in flight when switchman last stopped" not in done.stderr
