"""How the CLI shows things to people: colour when the stream is a terminal, costs,
and a result's trace (its attempts, the waits between them, the models not tried)."""

from __future__ import annotations

import math
import os
import sys
from typing import Any, TextIO


def color(text: str, code: str, stream: TextIO) -> str:
    """``text`` in the ANSI colour ``code`` when ``stream`` (where it is printed) is a
    terminal and ``NO_COLOR`` is unset; else as it is."""
    if stream.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[{code}m{text}\033[0m"
    return text


def note(text: str, code: str) -> None:
    """``text`` on stderr, in the colour ``code`` when stderr is a terminal."""
    print(color(text, code, sys.stderr), file=sys.stderr)


def usd(amount: float) -> str:
    """A cost for people: to the micro-dollar, or to two significant digits below $0.00001,
    so that a cheap call reads ``$0.00000042``, not ``$0.000000``; below a nano-dollar (what
    spend is counted in) ``<$0.000000001``."""
    if 0.0 < amount < 1e-9:
        return "<$0.000000001"
    if 0.0 < amount < 1e-5:
        digits = 1 - math.floor(math.log10(amount))
        if round(amount, digits) < 1e-5:  # (9.96e-6 rounds to $0.000010: shown as such)
            return f"${amount:.{digits}f}"
    return f"${amount:.6f}"


def print_trace(result: dict[str, Any]) -> None:
    """On stderr, the result's attempts in order, each wait before the attempt it held
    back (and after the last), and the candidates not tried, with why."""
    trace = result.get("trace") or {}
    attempts = trace.get("attempts") or ()
    waits = [w for w in trace.get("waits") or () if isinstance(w, dict)]
    for k, a in enumerate(attempts):
        _print_waits(waits, k)
        line = f"  attempt {a['n']}: {a['alias']} ({a['provider']}) {a['outcome']}"
        if a.get("error"):
            line += f": {a['error']}"
        took = _took_ms(a)
        if took is not None:
            line += f" ({took:,.0f} ms)"
        note(line, "2" if a["outcome"] == "success" else "33")
    _print_waits(waits, len(attempts))
    for skip in trace.get("skipped") or ():
        note(f"  not tried: {skip.get('alias')}: {skip.get('reason')}", "33")


def _took_ms(attempt: dict[str, Any]) -> float | None:
    """How long an attempt took (an ``unavailable`` one: the asks for a paused model)."""
    start, end = attempt.get("started_at"), attempt.get("ended_at")
    if isinstance(start, int | float) and isinstance(end, int | float) and end >= start:
        return (end - start) * 1000.0
    return None


#: a wait shorter than this is left out of what people read (``--json`` has it): a
#: millisecond in the dispatcher's inbox is no news
SHOWN_WAIT_MS = 10.0


def _print_waits(waits: list[dict[str, Any]], after: int) -> None:
    """The trace's waits that came after attempt ``after`` (0: before any)."""
    for wait in waits:
        if wait.get("after_attempt") == after and (wait.get("ms") or 0) >= SHOWN_WAIT_MS:
            note(f"  waited {wait.get('ms', 0):.0f} ms for {wait.get('reason')}", "2")


def errors_to_show(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The cause (the first error) and any other error no line already says: each
    attempt's own error is on its attempt line, and each model not tried has its reason
    on its own line, so neither is printed again."""
    errors = [e for e in result.get("errors") or () if isinstance(e, dict)]
    if not errors:
        return []
    trace = result.get("trace") or {}
    said = [str(errors[0].get("message"))]
    said += [str(a["error"]) for a in trace.get("attempts") or () if a.get("error")]
    said += [str(skip.get("reason")) for skip in trace.get("skipped") or () if skip.get("reason")]
    shown = [errors[0]]
    for err in errors[1:]:
        message = str(err.get("message"))
        if not any(message in s or s in message for s in said if s):
            shown.append(err)
            said.append(message)
    return shown
