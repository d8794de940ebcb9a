"""``python -m switchman`` and the ``switchman`` command: ``switchman.cli.main``, imported
here so that a Ctrl-C while the command starts ends it as one after (exit 130), not with
a traceback of whatever module it was importing."""

from __future__ import annotations

import signal


def main() -> int:
    try:
        from switchman.cli import main as cli_main

        return cli_main()  # (it tells Ctrl-C itself once running; this covers its start)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    raise SystemExit(main())
