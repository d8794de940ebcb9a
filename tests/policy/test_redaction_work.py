"""The work redaction does grows in proportion to the text, whatever the text.

Measured as the lines of ``switchman.policy._redaction``, the modules it reads
(``_redact_breaks``, ``_patterns*``) and ``_numbers`` run (a trace, not a clock):
doubling a text at most about doubles them, for ``redact`` and for a stream fed four
characters at a time. Texts built to be slow (a private key header repeated, ``Bearer``
and a sea of spaces...) took time growing with the square of their length before: 256 KB
of ``-----BEGIN `` held the loop 14 s, a 32 KB stream of it cost 157 s. No clock is read
here: the work is counted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from switchman.policy import (
    _numbers,
    _patterns,
    _patterns_credentials,
    _patterns_tables,
    _patterns_values,
    _redact_breaks,
    _redaction,
)
from switchman.policy._redaction import StreamRedactor, redact

KEY_HEADER = "-----BEGIN RSA " + "PRIVATE KEY----- "

TEXTS: dict[str, Callable[[int], str]] = {
    "repeated -----BEGIN": lambda n: ("-----BEGIN " * n)[:n],
    "repeated key headers": lambda n: (KEY_HEADER * n)[:n],
    "key headers, one a line": lambda n: ((KEY_HEADER + "\n") * n)[:n],
    "prose about PEM": lambda n: ("-----BEGIN is how PEM starts, then END lines " * n)[:n],
    "Bearer and spaces": lambda n: "Bearer" + " " * (n - 7) + "x",
    "@ soup": lambda n: ("a@b " * n)[:n],
    "digits and spaces": lambda n: ("1 2 3 4 5 6 7 8 9 0 " * n)[:n],
    "URL chain": lambda n: ("a://b:c@" * n)[:n],
    "empty table cells": lambda n: ("| " * n)[:n],
    "a table of passwords": lambda n: ("| password | " * n)[:n],
    "a table of Basic": lambda n: ("| Basic | x1 " * n)[:n],
    "curl -u chain": lambda n: ("-u " * n)[:n],
    "curl and spaces": lambda n: ("curl " + " " * n)[:n],
    "Python credentials left open": lambda n: ('auth=("u", "p, ' * n)[:n],
    "auth and spaces": lambda n: ("auth = ( " + " " * n)[:n],
    "auth and indented lines": lambda n: (("auth=(\n" + " " * 39) * n)[:n],
    "a user and indented lines": lambda n: (("auth=('u'\n" + " " * 39 + ",\n" + " " * 39) * n)[:n],
    "dict credentials left open": lambda n: ("{'auth': ('u', 'p, " * n)[:n],
    "a dict's auth and spaces": lambda n: ('"auth" : ( ' + " " * n)[:n],
    "Digest credentials and indented lines": lambda n: (
        ("DigestAuth(\n" + " " * 39 + "'u',\n" + " " * 39) * n
    )[:n],
    "a table of passwords by column": lambda n: (
        "| user | password |\n|---|---|\n" + "| a | b2!x |\n" * n
    )[:n],
    "one row under a password column": lambda n: ("| password |\n|---|\n" + "| a b " * n)[:n],
    "table headers and separators": lambda n: ("| password |\n|---|\n" * n)[:n],
    # tables without outer pipes: rows with no delimiter row, a table of passwords, rows a
    # password's name opens, delimiter rows without a header, one endless row or line
    "a | b | c rows without a delimiter row": lambda n: ("a | b | c\n" * n)[:n],
    "a pipeless table of passwords": lambda n: ("user | password\n--- | ---\n" + "a | b2!x\n" * n)[
        :n
    ],
    "pipeless rows opened by a password's name": lambda n: (
        "k | v\n--- | ---\n" + "password | hunter2!x z\n" * n
    )[:n],
    "delimiter rows without a header": lambda n: ("--- | --- | x\n" * n)[:n],
    "one endless delimiter row": lambda n: ("a | b\n" + "--- | " * n)[:n],
    "one endless pipeless row": lambda n: ("user | password\n--- | ---\n" + "a b | " * n)[:n],
    "headers and delimiter rows": lambda n: ("a | password\n--- | ---\n" * n)[:n],
    "compact JSON with URLs": lambda n: json.dumps(
        [{"u": f"https://h{i}.example.com/x", "password": f"p{i}!"} for i in range(n)],
        separators=(",", ":"),
    )[:n],
}


def _work(fn: Callable[[], Any]) -> int:
    """How many lines of the redaction modules ``fn()`` runs."""
    modules = (_redaction, _redact_breaks, _patterns, _patterns_credentials, _patterns_tables)
    files = {m.__file__ for m in (*modules, _patterns_values, _numbers)}
    lines = 0

    def local(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def calls(frame: FrameType, event: str, arg: object) -> Any:
        return local if frame.f_code.co_filename in files else None

    sys.settrace(calls)
    try:
        fn()
    finally:
        sys.settrace(None)
    return lines


def _stream(text: str) -> str:
    redactor = StreamRedactor()
    out = [redactor.feed(text[i : i + 4]) for i in range(0, len(text), 4)]
    return "".join([*out, redactor.flush()])


def assert_linear_work(make: Callable[[int], str]) -> None:
    """Redacting ``make(3000)`` takes about twice the work of ``make(1500)``, whole and
    streamed (4 characters at a time), and the two agree."""
    small, large = make(1500), make(3000)
    assert _stream(large) == redact(large).text
    for run in (redact, _stream):
        a, b = _work(lambda: run(small)), _work(lambda: run(large))  # noqa: B023
        assert b <= 2.3 * a + 200, (run.__name__, a, b)


@pytest.mark.parametrize("name", list(TEXTS))
def test_work_grows_linearly(name: str) -> None:
    assert_linear_work(TEXTS[name])
