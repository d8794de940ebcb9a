"""Running an example of ``examples/`` as a user would: its own process, no provider key
in its environment (the built-in simulator answers), a home of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "examples"


def run_example(name: str, home: Path, *, timeout: float = 120) -> tuple[int, str, str]:
    """Run ``examples/<name>``: its exit code, its stdout, and both outputs for a message."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
