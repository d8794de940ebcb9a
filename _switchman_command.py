"""The ``switchman`` command's entry point, outside the package so that it runs first: its
presence tells ``import switchman`` to import each public name on first use (a client of
the daemon needs none of the router: it starts in 0.2 s, not 1 s), where an application's
import takes them all at once. A Ctrl-C while the command starts exits 130, as after."""

from __future__ import annotations

import signal


def main() -> int:
    try:
        from switchman.cli import main as cli_main

        return cli_main()  # (it tells Ctrl-C itself once running; this covers its start)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
