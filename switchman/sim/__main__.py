"""``python -m switchman.sim``: run the fake provider server."""

from __future__ import annotations

import sys

from switchman.sim._server import main

if __name__ == "__main__":
    sys.exit(main())
