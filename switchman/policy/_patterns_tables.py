"""The markdown tables whose header names a secret (``| Service | Password |`` then
``|---|---|``, or without the outer pipes: ``Service | Password`` then ``--- | ---``):
which header cells name one (``_secret_columns``), which lines are the rows of such a
table over a text read in one piece or many (``TableColumns``, which also keeps each
row's cuts so a block holds a row whole, and where the rows of any table without outer
pipes start), and which of a row's cells in those columns hold a secret
(``_column_hits``). ``_patterns`` redacts those cells; ``_redaction`` and
``_redact_breaks`` read ``TableColumns``.

Pure and synchronous.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Final

from switchman.policy._patterns_values import (
    _CELL_PROSE,
    _LENGTH_RULE,
    _PASSWORD_NAME,
    _PASSWORD_SYMBOLS,
    _SECRET_KEY_NAME,
    _has_digit,
    is_code,
    is_placeholder,
)

#: a table's row longer than this (from its first character but spaces) holds no cut
#: further on
ROW_LIMIT: Final = 512
_OPEN_ROW: Final = 1 << 62  # the end of a row not yet known
# A table's delimiter row, beneath its header: cells of dashes, a colon at either end,
# set apart by |, the outer ones optional (``|---|:--:|``, ``--- | ---:``); it must hold
# a | (``---`` alone is a thematic break, or a heading's underline)
_SEPARATOR = re.compile(r"[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)*[ \t]*:?-+:?[ \t]*\|?[ \t]*\r?")
TABLE_GATE = re.compile(r"-:?[ \t]*\||\|[ \t]*:?-")  # what every delimiter row holds
# a header's cell naming a secret: the name ends it, a word or two may lead. A token
# only with a word saying whose (access, auth, API, refresh): a tokenizer's Token, a
# usage table's Input tokens are no secret
_TOKEN_LEAD = r"(?:[Aa]ccess|ACCESS|O?[Aa]uth|O?AUTH|API|[Aa]pi|[Rr]efresh|REFRESH)[ _.-]?"
_TOKEN_NAME = _TOKEN_LEAD + r"(?:[Tt]oken|TOKEN)"
_BEFORE_TOKEN = re.compile(_TOKEN_LEAD + r"\Z")


def names_a_token(text: str) -> bool:
    """Whether ``text`` holds a token's name a secret column may be headed by
    (``_TOKEN_NAME``: ``Access token``, ``API_TOKEN``): a look at the few characters
    before each ``oken`` or ``OKEN``, no scan of the text by a regular expression."""
    for word in ("oken", "OKEN"):
        i = text.find(word, 1)
        while i >= 0:
            if _BEFORE_TOKEN.search(text, max(i - 10, 0), i - 1):
                return True
            i = text.find(word, i + 1)
    return False


_COLUMN_NAME = re.compile(
    rf"(?:\A|(?<=[ _.-]))(?:(?P<password>{_PASSWORD_NAME})|{_SECRET_KEY_NAME}|[Ss]ecret|SECRET"
    rf"|{_TOKEN_NAME})[sS]?(?:[ \t]*\([^()]{{0,32}}\))?\Z"
)
_Columns = tuple[tuple[int, str], ...]  # (the cell's index from the row's first, kind)


def _cells(line: str) -> list[str]:
    """The cells of a table's line: its text between its |, the outer ones optional."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return line.split("|")


def _secret_columns(header: str) -> _Columns:
    """The cells of a table's header row that name a secret, and the kinds of their values."""
    found = []
    for k, cell in enumerate(_cells(header), 1):
        name = cell.strip(" \t*`")
        if len(name) <= 64 and (m := _COLUMN_NAME.search(name)):
            found.append((k, "password" if m["password"] else "api_key"))
    return tuple(found)


_PIPED, _PIPELESS = 1, 2  # a table's rows: lines led by a |, or lines holding one


class TableColumns:
    """The markdown tables over a text read from its start in one piece or many;
    positions count from the text's start. A table is a header row (a line holding a
    ``|``) and its delimiter row beneath (``|---|---|``, ``--- | ---``), of as many
    cells if the header has no leading ``|``. Its rows are the lines after, until one
    that is none: a line whose first character but spaces is a ``|`` if its header's
    is, else a line holding a ``|`` (GitHub's tables without outer pipes:
    ``mysql | root | x``).

    Kept: the rows of the tables whose header names a secret (``| Service | Password
    |``), with those columns, each held from its first character but spaces to its
    line's end (``ROW_LIMIT`` characters at most) so that a block holds it whole
    (``pipes``, ``ends``, ``cols``; a line of a table without outer pipes is held before
    it is known to hold a ``|``, and ends the table if it holds none); and where each
    row of any table without outer pipes starts, when its first character is no ``|``
    (``lines``: a cell naming a secret opens it, ``password | x``). Whether a line is a
    row depends on the lines before it only; reading a text costs one scan of it, in
    any number of pieces.
    """

    __slots__ = (
        "_cols",
        "_first",
        "_len",
        "_line",
        "_prev",
        "_seen",
        "_table",
        "cols",
        "ends",
        "lines",
        "pipes",
    )

    def __init__(self) -> None:
        self._seen = 0
        self._first = ""  # the current line's first character but spaces, once read
        self._line: list[str] = []  # the current line from that character (capped)
        self._len = 0  # its length
        self._prev: str | None = None  # the line before, if it holds a | and is no row
        self._table = 0  # _PIPED or _PIPELESS in a table's rows, else 0
        self._cols: _Columns = ()  # the secret columns of the table the line is in
        self.pipes: list[int] = []  # the rows' first character but spaces, sorted
        self.ends: list[int] = []  # where each ends (its newline)
        self.cols: list[_Columns] = []
        self.lines: list[int] = []  # where the rows without a leading | start, sorted

    def read(self, t: str, off: int) -> None:
        """Read ``t``, the text from ``off`` on, reaching past what was read."""
        i, end = max(self._seen - off, 0), len(t)
        if self._first and self._len >= ROW_LIMIT and t.find("\n", i) < 0:
            self._seen = max(self._seen, off + end)  # the same line goes on: nothing to keep
            return
        while i < end:
            if not self._first and not self._table:  # at a line's start, in no table
                k = t.rfind("\n", i, _find(t, "|", i, end))
                if k >= 0:  # whole lines without a |: no header, no delimiter row
                    self._prev, i = None, k + 1
                    continue
            n = t.find("\n", i)
            stop = end if n < 0 else n
            if not self._first and (m := _NOT_BLANK.search(t, i, stop)):
                self._first, i = m.group(), m.start()
                self._start_line(off + i)
            if self._first and self._len < ROW_LIMIT:
                self._line.append(t[i : min(stop, i + ROW_LIMIT - self._len)])
                self._len += len(self._line[-1])
            if n < 0:
                break
            self._end_line(off + n)
            i = n + 1
        self._seen = max(self._seen, off + end)

    def _start_line(self, at: int) -> None:
        """A line's first character but spaces is at ``at``: a row's start, in a table."""
        led = self._first == "|"
        if self._table == _PIPELESS or (self._table == _PIPED and led):
            if self._cols:
                self.pipes.append(at)
                self.ends.append(_OPEN_ROW)
                self.cols.append(self._cols)
            if not led:
                self.lines.append(at)

    def _end_line(self, n: int) -> None:
        line = "".join(self._line) if self._first else None
        self._first, self._line, self._len = "", [], 0
        if self.pipes and self.ends[-1] == _OPEN_ROW:
            self.ends[-1] = n
        if self._table:
            if line is not None and (line[0] == "|" if self._table == _PIPED else "|" in line):
                return  # a row: the table goes on
            self._table, self._cols = 0, ()
        if line is None or "|" not in line:
            self._prev = None
        elif (
            self._prev is not None
            and _SEPARATOR.fullmatch(line)
            and (self._prev[0] == "|" or len(_cells(self._prev)) == len(_cells(line)))
        ):
            self._table = _PIPED if self._prev[0] == "|" else _PIPELESS
            self._cols, self._prev = _secret_columns(self._prev), None
        else:
            self._prev = line

    def holds(self, c: int) -> bool:
        """Whether a row keeps the cut ``c`` (the text before ``c`` has been read)."""
        k = bisect.bisect_left(self.pipes, c) - 1
        return k >= 0 and c <= self.ends[k] and c - self.pipes[k] <= ROW_LIMIT

    def has_rows(self, lo: int, n: int) -> bool:
        """Whether a row starts in ``lo..lo + n``."""
        k = bisect.bisect_left(self.pipes, lo)
        return k < len(self.pipes) and self.pipes[k] < lo + n

    def rows(self, lo: int, hi: int) -> list[tuple[int, int, _Columns]]:
        """The rows starting in ``lo..hi``: their start, their end, their columns."""
        a, b = bisect.bisect_left(self.pipes, lo), bisect.bisect_left(self.pipes, hi)
        return [(self.pipes[k], self.ends[k], self.cols[k]) for k in range(a, b)]

    def line_starts(self, lo: int, hi: int) -> list[int]:
        """Where the rows without a leading | that start in ``lo..hi`` start."""
        return self.lines[bisect.bisect_left(self.lines, lo) : bisect.bisect_left(self.lines, hi)]

    def forget(self, before: int) -> None:
        """Drop the rows starting before ``before`` (once there are enough of them)."""
        if len(self.pipes) > 64 and (k := bisect.bisect_left(self.pipes, before)) > 32:
            del self.pipes[:k], self.ends[:k], self.cols[:k]
        if len(self.lines) > 64 and (k := bisect.bisect_left(self.lines, before)) > 32:
            del self.lines[:k]


_NOT_BLANK = re.compile(r"[^ \t\r\f\v]")


def _find(t: str, ch: str, i: int, end: int) -> int:
    """Where ``ch`` first is in ``t[i:end]``, or ``end``."""
    j = t.find(ch, i, end)
    return end if j < 0 else j


def _column_value(value: str, kind: str) -> bool:
    """Whether a cell of a secret's column holds one: not a placeholder, a type, code,
    a length or a cell describing the field; a password four characters or more with a
    digit or a symbol, a secret key's value 16 or more with a digit."""
    if len(value) > 1 and value[0] == value[-1] and value[0] in "`\"'":
        value = value[1:-1]
    if (
        not value
        or (" " in value and _CELL_PROSE.match(value))
        or _LENGTH_RULE.fullmatch(value)
        or is_code(value)
        or is_placeholder(value)
    ):
        return False
    if kind == "api_key":
        return len(value) >= 16 and _has_digit(value)
    return len(value) >= 4 and (_has_digit(value) or any(c in _PASSWORD_SYMBOLS for c in value))


def _column_hits(
    block: str, rows: Iterable[tuple[int, _Columns]]
) -> Iterable[tuple[int, int, str]]:
    """The values in the secret columns of the rows starting (their first character but
    spaces) in ``block``: where each starts and ends, and its kind. A row's outer |
    may be missing (its first cell starts it, its last runs to the line's end); a line
    of a table without outer pipes that holds no | is no row."""
    for start, cols in rows:
        stop = block.find("\n", start)
        stop = len(block) if stop < 0 else stop
        led = block[start] == "|"
        bars = [start if led else start - 1]
        j = block.find("|", start + 1, stop)
        while j >= 0:
            bars.append(j)
            j = block.find("|", j + 1, stop)
        if len(bars) == 1 and not led:
            continue
        rest = block[bars[-1] + 1 : stop]
        if rest and not rest.isspace():
            bars.append(stop)  # a last cell without its |
        for k, kind in cols:
            if k >= len(bars):
                break
            cell = block[bars[k - 1] + 1 : bars[k]]
            value = cell.strip()
            if _column_value(value, kind):
                start = bars[k - 1] + 1 + (len(cell) - len(cell.lstrip()))
                if value[0] == value[-1] and value[0] in "`\"'" and len(value) > 1:
                    start, value = start + 1, value[1:-1]
                yield start, start + len(value), kind
