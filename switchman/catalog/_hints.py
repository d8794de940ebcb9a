"""What a mistaken name was likely meant to be: ``(did you mean 'port'?)``.

Pure and quick; nothing to cancel.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` naming the option closest to ``name`` (difflib's measure,
    at 0.6 or more), or ``""`` when none is close enough (or ``name`` is no string)."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, sorted(set(options)), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
