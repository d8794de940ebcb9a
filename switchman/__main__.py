"""``python -m switchman``: the ``switchman`` command (``switchman.cli.main``; the installed
command enters through ``_switchman_command``, which starts it faster)."""

from __future__ import annotations

from switchman.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
