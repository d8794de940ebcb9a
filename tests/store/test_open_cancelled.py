"""An ``open_store`` cancelled while it opens ends at once: a deadline landing as the
writer task started left it, shielded, draining a queue nothing would close, and the
process hung for good (Ctrl-C included). Swept over deadlines in a child process, which
the test can kill: a shielded hang is beyond any trio deadline."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SWEEP = textwrap.dedent(
    """
    import sys, trio
    from switchman.store import open_store

    async def main(folder):
        outcomes = {"cancelled": 0, "opened": 0}
        for existing in (False, True):
            for step in range(120):
                path = f"{folder}/{'kept' if existing else step}.db"
                with trio.move_on_after(step * 0.0001) as scope:
                    async with open_store(path):
                        pass
                outcomes["cancelled" if scope.cancelled_caught else "opened"] += 1
        print(outcomes)

    trio.run(main, sys.argv[1])
    """
)


def test_an_open_store_cancelled_as_it_opens_ends(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SWEEP, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "'cancelled': " in done.stdout and "'opened': " in done.stdout, done.stdout
