"""Where redaction cuts a text into blocks, whole or streamed: the breaks.

The text is cut into *blocks* at *breaks*. A break is a *cut* where no secret can be
open; a cut is a position ``c`` just after whitespace, after CJK or fullwidth
punctuation (the ideographic full stop and comma, corner brackets...) or after JSON's
``, { } [ ]``: characters no pattern takes, but for URL passwords and named values
(``password=...``), which may hold JSON's. Whether ``c`` is a break depends on the
previous break ``b`` and on ``text[b:c]``; the rules reading further back give the same
answer at ``c`` whatever lies before ``b``. A cut after JSON's punctuation is a break if
no ``://`` nor a password's or secret key's name lies in ``text[b:c]`` within its last
512 characters (no such match is longer) and no private key, curl command, Python
client's credentials or table's row keeps it (the rules below); any other cut if all of
these hold (a rule reading back past ``b`` takes a cut character there, JSON's too, for
the text's start):

* no phone or card number may go on across it. One may if the whitespace is a space
  (or no-break space) after a digit and at most two more separators, ``c - b'`` is at
  most ``NUMBER_HOLD_LIMIT``, and a place where a number can start (the start of the
  run, a ``+``, a ``(``, or ``b'``) lies at most 32 characters before ``c``, ``b'``
  being ``b`` or, in a longer block, just after the last of JSON's punctuation in
  ``text[b:c]`` (a cut a URL or a name kept: numbers in compact JSON are kept whole);
* the text before it does not end in ``bearer`` (or ``basic``) and at most 32 whitespace
  characters, nor in ``Authorization:`` (its scheme follows), nor in a secret's name
  (and its ``=``, ``:`` or a table's ``|``, markdown's ``**`` or ``__`` before or after
  it) and a few spaces or tabs, nor in a ``|`` after whitespace and spaces or tabs (a
  table's cell), nor in curl's ``-u`` or ``--user`` and spaces or tabs, nor less than
  ``CURL_REACH`` (200) characters after the word ``curl`` on its line or a line it
  continues (``\\`` at a line's end), no ``;``, ``&&``, ``||`` nor ``|`` between (curl's
  ``-u user:password`` is redacted only with its curl in the block), nor in ``ssh``
  (``ssh-copy-id``, ``scp``, ``sftp``, ``mosh``, ``rsync``, ``clone``), its options on its
  line (a word led by ``-``, and its argument: ``-p 2222``) and a space, nor in a quoted value
  (double or single quotes, backticks) after a secret's name opened less than
  ``QUOTED_SPACED`` (48) characters before (``password: "correct horse``), nor in a
  table's cell after a cell naming a secret (``| password | my pass``), nor in a quoted
  ``user:password`` after ``-u`` (``-u 'bob:p@ss``), nor in a Python HTTP client's Basic
  or Digest credentials before its password's closing quote (``auth = (``, ``auth=("u",
  "my pa``, ``"auth": (``, ``AUTH = [``, ``credentials = ("u",``, ``BasicAuth("u",``,
  ``DigestAuth(``, ``AUTH: Tuple[str, ``, ``'auth' => array(``, ``auth=(u'u', rb'p``),
  nor inside a row of a table whose header names a secret (``TableColumns``: from the
  row's first character but spaces, its ``|`` or, in a table without outer pipes, its
  first cell's, to its line's end, ``ROW_LIMIT`` (512) characters at most; whether a
  line is such a row depends on the lines before it, read once, so a block holds a row
  whole and its secret column's cells are judged there);
* it is not inside what may still become a private key header (``-----BEGIN`` and
  capitals, digits and spaces), and no private key header keeps it: a header
  ``-----BEGIN ... PRIVATE KEY-----`` keeps the cuts after it until its END line (the
  same label) has ended, for ``PEM_HOLD_LIMIT`` characters from its BEGIN at most;
  while one header keeps cuts, a later one starts no hold of its own.

Such a cut meeting the number rule without looking at ``b`` at all (no digit before
it) is a break whatever came before (``_surely_break``): ``_last_break`` goes back to
one and forward from there, so ``redact`` and ``StreamRedactor`` (``_redaction``) find
the same breaks, whatever the chunking. What a stream has read is kept in
``_PemHolds`` (private key holds), ``_Blockers`` (where a secret holding JSON's
punctuation may start) and ``_patterns_tables.TableColumns`` (a table's secret rows),
each reading a text once in any number of pieces.

Pure and synchronous; nothing can be cancelled midway.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
from typing import Final

from switchman.policy._numbers import NUMBER_HOLD_LIMIT
from switchman.policy._numbers import digit_before as _digit_before
from switchman.policy._numbers import number_held as _number_held
from switchman.policy._patterns import (
    _BEFORE_HOST,
    _NAME_TAIL,
    _OPEN_CELL,
    _OPEN_VALUE,
    _PEM_END,
    _PEM_HEADER,
    _TOKEN_TAIL,
    before_host,
)
from switchman.policy._patterns_credentials import (
    _AUTH_NAME,
    _OPEN_PY_AUTH_REVERSED,
    _OPEN_USER,
    CRED_PARTS,
    CURL_REACH,
    PY_AUTH_REACH,
    curl_before,
)
from switchman.policy._patterns_tables import TableColumns
from switchman.policy._patterns_values import PEM_HOLD_LIMIT, QUOTED_SPACED

_NAME_TAIL_REACH: Final = 96  # a name (a longer one is not waited for), its separator, spaces
_OPEN: Final = sys.maxsize  # the end of a hold not yet known
_PEM_LABEL_CHARS = re.compile(r"[A-Z0-9 ]*")
_PEM_LABEL_MAX: Final = 57  # 40 + len("PRIVATE KEY BLOCK")
_PEM_LINE_MAX: Final = 72  # the longest header: "-----BEGIN", a label, "-----"
# what a stream keeps of the text before its last checked cut: every rule below reads
# at most this far back from a cut
_LOOKBACK: Final = 416  # > CURL_REACH, PY_AUTH_REACH, HOST_REACH, _NAME_TAIL_REACH
# a Bearer holds a cut when this much whitespace at most lies between it and the cut
_BEARER_GAP: Final = 32
# Besides whitespace, a text is cut after characters no secret holds: CJK and fullwidth
# punctuation (no pattern matches them: emails take letters and digits of any script,
# everything else ASCII), and JSON's , { } [ ] -- which a URL's password or a named
# value may hold, so a cut after one is no break within _JSON_REACH of where such a
# secret may start (a "://", a password's or secret key's name: _BLOCKER)
_CJK_CUTS: Final = "".join(
    ch
    for ch in map(chr, [*range(0x3000, 0x3040), *range(0xFE30, 0xFE50), *range(0xFF00, 0xFF66)])
    if not ch.isspace() and not re.fullmatch(r"\w", ch)
)
_JSON_CUTS: Final = ",{}[]"
_BLOCKER = re.compile(r"://|assw|ASSW|ecret|ECRET")
_JSON_REACH: Final = 512  # longer than any URL password or named value match
_BACK_PART: Final = 2048  # _Cuts.backwards
_PY_HELD_MAX: Final = 4096  # _Cuts.py_held
# how the words of _NAME_TAIL end, whitespace and a quote or separator aside
_NAME_WORD_ENDS: Final = (
    *("assword", "ASSWORD", "asswd", "ASSWD", "ey", "EY"),
    *("ecret", "ECRET", "ccess", "CCESS", "oken", "OKEN", "hrase", "HRASE"),
)
_COMMAND_ENDS: Final = frozenset(("ssh", "scp", "ftp", "osh", "ync", "one", "-id"))  # _BEFORE_HOST


def _label_end(t: str, i: int, end: int) -> int:
    """Where the run of label characters (capitals, digits, spaces) from ``i`` ends."""
    m = _PEM_LABEL_CHARS.match(t, i, end)
    return i if m is None else m.end()


def _pem_header_pending(t: str, i: int) -> bool:
    """Whether ``t[i:]`` (``-----BEGIN`` and what follows) may still become a
    private key header as more text arrives."""
    r = _label_end(t, i + 10, len(t))
    if r - i - 10 > _PEM_LABEL_MAX:
        return False
    if r == len(t):
        return True
    dashes = len(t) - r  # what follows the label must be the start of "-----"
    return (
        dashes < 5
        and t.startswith("-" * dashes, r)
        and t.endswith(("PRIVATE KEY", "PRIVATE KEY BLOCK"), i, r)
    )


class _PemHolds:
    """The cuts private key blocks keep, over a text read from its start in one piece
    (``redact``) or in many (``StreamRedactor``); positions count from the text's start.

    A header ``-----BEGIN <label>-----`` (the label ending in ``PRIVATE KEY``) ending at
    ``h`` keeps each cut ``c > h`` until its END line (same label, after it) has ended by
    ``c``, for at most ``PEM_HOLD_LIMIT`` characters from its BEGIN. While one header
    keeps cuts, a header after it starts no hold of its own (so holds never chain: a
    stream is held back for one key's length at most). Whether ``c`` is kept depends on
    the text before ``c`` only. Reading a text costs one scan of it, in any number of
    pieces.
    """

    __slots__ = ("_active", "_begin_from", "_hi", "_lo", "_seen", "seen_begin")

    def __init__(self) -> None:
        self._seen = 0  # the text before this has been read
        self._begin_from = 0  # a -----BEGIN from here on is not yet decided
        self._lo: list[int] = []  # the kept cuts: lo < c <= hi, sorted and disjoint
        self._hi: list[int] = []
        self._active: tuple[int, int, str] | None = None  # (BEGIN, header end, label)
        self.seen_begin = False  # a -----BEGIN was read

    def read(self, t: str, off: int) -> None:
        """Read ``t``, the text from ``off`` on: it reaches past what was read, and holds
        the ``_PEM_LINE_MAX`` characters before that (or starts at a break)."""
        end = off + len(t)
        if t.find("-----", max(min(self._begin_from, self._seen - _PEM_LINE_MAX) - off, 0)) < 0:
            self._begin_from = max(self._begin_from, end - 9)  # nothing new to read
            self._expire(end)
            self._seen = max(self._seen, end)
            return
        events: list[tuple[int, int, str]] = []  # (where it ends, where it starts, label)
        i = t.find("-----BEGIN", max(self._begin_from - off, 0))
        while i >= 0:
            self.seen_begin = True
            if m := _PEM_HEADER.match(t, i):
                events.append((off + m.end(), off + i, "+" + m["label"]))
            elif _pem_header_pending(t, i):
                break
            i = t.find("-----BEGIN", i + 1)
        self._begin_from = off + i if i >= 0 else max(self._begin_from, end - 9)
        for m in _PEM_END.finditer(t, max(self._seen - _PEM_LINE_MAX - off, 0)):
            if off + m.end() > self._seen:
                events.append((off + m.end(), off + m.start(), "-" + m["label"]))
        events.sort()
        for pos, start, label in events:
            self._expire(pos)
            if label[0] == "+":
                if self._active is None:  # a header starts a hold only if none runs
                    self._active = (start, pos, label[1:])
                    self._lo.append(pos)
                    self._hi.append(_OPEN)
            elif self._active is not None:
                _, h, held = self._active
                if label[1:] == held and start >= h:
                    self._hi[-1] = pos - 1
                    self._active = None
        self._expire(end)
        self._seen = max(self._seen, end)

    def _expire(self, pos: int) -> None:
        if self._active is not None and self._active[0] + PEM_HOLD_LIMIT < pos:
            self._hi[-1] = self._active[0] + PEM_HOLD_LIMIT
            self._active = None

    def keeps(self, c: int) -> bool:
        """Whether a header keeps the cut ``c`` (the text before ``c`` has been read)."""
        k = bisect.bisect_left(self._lo, c) - 1
        return k >= 0 and c <= self._hi[k]

    def forget(self, before: int) -> None:
        """Drop what only keeps cuts before ``before`` (once there is enough of it)."""
        if len(self._hi) > 64 and (k := bisect.bisect_left(self._hi, before)) > 32:
            del self._lo[:k], self._hi[:k]


class _Blockers:
    """Where a secret holding JSON's , { } [ ] may start (``_BLOCKER``), over a text
    read from its start in one piece or many; positions count from the text's start."""

    __slots__ = ("_ends", "_seen", "_starts")

    def __init__(self) -> None:
        self._seen = 0
        self._starts: list[int] = []
        self._ends: list[int] = []

    def read(self, t: str, off: int) -> None:
        """Read ``t``, the text from ``off`` on, past what was read (and from at most
        four characters after its start, or from a break)."""
        for m in _BLOCKER.finditer(t, max(self._seen - 4 - off, 0)):
            if off + m.end() > self._seen:
                self._starts.append(off + m.start())
                self._ends.append(off + m.end())
        self._seen = max(self._seen, off + len(t))

    def blocks(self, lo: int, c: int) -> bool:
        """Whether one starts at ``lo`` or after and ends by ``c``."""
        k = bisect.bisect_right(self._ends, c) - 1
        return k >= 0 and self._starts[k] >= lo

    def forget(self, before: int) -> None:
        """Drop those starting before ``before`` (once there are enough of them)."""
        if len(self._starts) > 64 and (k := bisect.bisect_left(self._starts, before)) > 32:
            del self._starts[:k], self._ends[:k]


class _Cuts:
    """A text, or the last part of a stream (``t[i]`` is the stream's character
    ``off + i``), with its cut characters, its PEM holds and where secrets holding
    JSON's punctuation may start (found when first asked, for a whole text), and
    whether a Python client's credentials may keep a cut (``py_auth``: the parts of
    their names in it, found once, so that a text without spends nothing on them at
    each cut) with a part of
    the text backwards, where they are looked for (made when first asked, and again
    when a cut lies outside it: a long text is not reversed whole for a few cuts) and
    the cuts they were found to keep (``py_held``)."""

    __slots__ = (
        "_back",
        "_blockers",
        "chars",
        "cut",
        "off",
        "pem",
        "py_auth",
        "py_held",
        "t",
        "tables",
    )

    def __init__(
        self,
        t: str,
        off: int,
        cuts: tuple[re.Pattern[str], frozenset[str]],
        pem: _PemHolds | None,
        blockers: _Blockers | None,
        tables: TableColumns | None = None,
    ) -> None:
        self.t, self.off, self._blockers = t, off, blockers
        self.tables = tables if tables is not None and tables.pipes else None  # rows to hold
        self.cut, self.chars = cuts  # all cut characters; those but whitespace
        self.pem = pem if pem is not None and pem.seen_begin else None
        # auth=(, BasicAuth(, AUTH = (, credentials = (
        self.py_auth = _cred_parts(t)
        self._back: tuple[str, int, int] | None = None  # t[lo:hi] backwards, lo, hi
        # cuts found held by a Python client's credentials: _last_break asks each cut
        # twice, back to a sure break and forward from it (_PY_HELD_MAX of them at most)
        self.py_held: set[int] | None = None

    def json_blocked(self, lo: int, c: int) -> bool:
        """Whether a secret holding JSON's punctuation may start in ``lo..c``."""
        if self._blockers is None:  # a whole text: read it now
            self._blockers = _Blockers()
            self._blockers.read(self.t, self.off)
        return self._blockers.blocks(self.off + lo, self.off + c)

    def backwards(self, lo: int, c: int) -> tuple[str, int]:
        """A part of the text backwards holding ``t[lo:c]``, and where ``c`` is in it
        (from there on, it reads ``t[c - 1]``, ``t[c - 2]``...); a new part reverses
        ``_BACK_PART`` characters each side, for the cuts near ``c``."""
        back = self._back
        if back is None or lo < back[1] or c > back[2]:
            part_lo, part_hi = max(lo - _BACK_PART, 0), min(c + _BACK_PART, len(self.t))
            back = self._back = (self.t[part_lo:part_hi][::-1], part_lo, part_hi)
        return back[0], back[2] - c


def _cred_parts(t: str) -> tuple[str, ...]:
    """The parts of the names of a Python client's credentials (``CRED_PARTS``) in ``t``."""
    if "uth" not in t and "red" not in t and "D" not in t and "H" not in t:
        return ()  # the usual text: four substring tests
    return tuple(p for g, p, _ in CRED_PARTS if (not g or g in t) and p in t)


def _in_open_value(t: str, c: int) -> bool:
    """Whether ``c`` lies in a quoted value after a secret's name (``_OPEN_VALUE``)."""
    lo = max(c - QUOTED_SPACED, 0)
    if t.rfind('"', lo, c) < 0 and t.rfind("'", lo, c) < 0 and t.rfind("`", lo, c) < 0:
        return False
    lo = max(c - 110, 0)  # a name, its quote, separator and spaces, and the value
    return _names_a_secret(t, lo, c) and _OPEN_VALUE.search(t, lo, c) is not None


def _in_open_cell(t: str, c: int) -> bool:
    """Whether ``c`` lies in a table's cell after a cell naming a secret, its closing
    ``|`` not yet there (``_OPEN_CELL``: ``| password | my pass``)."""
    bar = t.rfind("|", max(c - 67, 0), c)  # the cell's |, bold, spaces and its value
    if bar < 0:
        return False
    lo = max(bar - 40, 0)  # the name (17 characters at most), its quote, bold and spaces
    return _names_a_secret(t, lo, bar) and _OPEN_CELL.search(t, lo, c) is not None


def _names_a_secret(t: str, lo: int, hi: int) -> bool:
    """Whether ``t[lo:hi]`` may hold a password's or a secret's name (the quick test
    before a pattern is tried)."""
    return (
        t.find("assw", lo, hi) >= 0
        or t.find("ASSW", lo, hi) >= 0
        or t.find("ecret", lo, hi) >= 0
        or t.find("ECRET", lo, hi) >= 0
    )


def _in_open_user(t: str, c: int) -> bool:
    """Whether ``c`` lies in a quoted ``user:password`` after curl's ``-u`` or
    ``--user``, its closing quote not yet there (``_OPEN_USER``: ``-u 'bob:p@ss``)."""
    lo = max(c - 100, 0)  # --user, spaces, the quote, user:password
    return t.find("-u", lo, c) >= 0 and _OPEN_USER.search(t, lo, c) is not None


def _opens(ch: str) -> bool:
    """Whether a word after ``ch`` starts one (a table's ``|``, ``-u``): after any cut
    character, as at a block's start, which follows one."""
    return ch.isspace() or ch in _JSON_CUTS or ch in _CJK_CUTS


def _curl_held(t: str, c: int) -> bool:
    """Whether a curl command keeps the cut ``c`` (its ``-u user:password`` may follow)."""
    return t.rfind("curl", max(c - CURL_REACH, 0), c) >= 0 and curl_before(t, c)


def _word_held(t: str, c: int) -> bool:
    """Whether the words before the whitespace ending at ``c`` wait for what follows:
    ``Bearer`` or ``Basic`` and at most ``_BEARER_GAP`` whitespace characters, an
    ``Authorization`` header's name (``authorization:``, its scheme follows), a
    secret's name (and its ``=``, ``:`` or a table's ``|``) waiting for its value, a
    table's cell opened (a ``|`` after whitespace, then spaces or tabs: a block holding
    a cell that names a secret holds its ``|``), ``-u`` or ``--user`` waiting for its
    ``user:password``, a remote shell (``ssh``, its options after it) waiting for
    its ``user@host``, or a quoted value after a secret's name, opened less than
    ``QUOTED_SPACED`` characters before ``c`` and still open (it may hold spaces),
    ``Authorization: Token``; reads at most ``HOST_REACH`` (240) characters back."""
    if _in_open_value(t, c) or _in_open_cell(t, c) or _in_open_user(t, c):
        return True
    if _curl_held(t, c):  # its -u user:password may follow: a block holds the curl
        return True

    if not t[c - 1].isspace():  # no whitespace before c
        return False
    if c > 1 and not t[c - 2].isspace():
        j = c - 1  # one whitespace character, the usual
    else:  # where the run of whitespace before c starts, if _BEARER_GAP long at most
        run = t[max(c - _BEARER_GAP, 0) : c]
        j = c - len(run) + len(run.rstrip())
        if j > 0 and t[j - 1].isspace():
            return False
    if j >= 6 and t[j - 6 : j].lower() == "bearer":
        return True
    if j >= 5 and t[j - 5 : j].lower() == "basic":  # Basic <user:password in base64>
        return True
    if (
        j >= 5
        and t[j - 5 : j].lower() == "token"
        and _AUTH_NAME.search(t, max(j - 29, 0), j - 5) is not None
    ):
        return True  # Authorization: Token <token>
    if j == 0:
        return False
    last = t[j - 1]
    if (
        last in ":\"'"
        and t.find("uthorization", max(j - 24, 0), j) >= 0
        and _AUTH_NAME.search(t, max(j - 24, 0), j) is not None
    ):
        return True  # an Authorization header's name: its scheme follows
    if last == "|" and (j == 1 or _opens(t[j - 2])) and "\n" not in t[j:c]:
        return True  # a table's cell opened: the block holds its | (a name's cell)
    if last in "ur" and t.endswith(("-u", "--user"), max(j - 6, 0), j):  # curl -u user:pw
        return j - (2 if last == "u" else 6) == 0 or _opens(t[j - (3 if last == "u" else 7)])
    if last in "hpced" and t[j - 3 : j] in _COMMAND_ENDS:  # ssh user@host follows
        return _BEFORE_HOST.search(t, max(c - 24, 0), c) is not None
    if t.find("-", max(j - 128, 0), j) >= 0 and before_host(t, c):
        return True  # ssh -p 2222 (user@host follows)
    if last.isalpha():  # the name ends here: password, passwd, secret key, secret access
        if not t.endswith(_NAME_WORD_ENDS, max(j - 8, 0), j):
            return False
    elif last not in "\"'`:=>*_|":  # or its quote, separator (a table's |), markdown's bold
        return False
    lo = max(j - 48, 0)
    if (
        t.find("assw", lo, j) >= 0
        or t.find("ecret", lo, j) >= 0
        or t.find("ASSW", lo, j) >= 0
        or t.find("ECRET", lo, j) >= 0
    ) and _NAME_TAIL.search(t, max(c - 80, 0), c) is not None:
        return True
    return (
        t.find("ey", lo, j) >= 0
        or t.find("oken", lo, j) >= 0
        or t.find("ecret", lo, j) >= 0
        or t.find("EY", lo, j) >= 0
        or t.find("OKEN", lo, j) >= 0
        or t.find("ECRET", lo, j) >= 0
        or t.find("hrase", lo, j) >= 0
        or t.find("HRASE", lo, j) >= 0
    ) and _TOKEN_TAIL.search(t, max(c - _NAME_TAIL_REACH, 0), c) is not None


def _row_held(x: _Cuts, c: int) -> bool:
    """Whether a row of a table with a secret's column keeps the cut ``c``."""
    return x.tables.holds(x.off + c) if x.tables is not None else False


def _py_auth_held(x: _Cuts, c: int) -> bool:
    """Whether ``c`` lies in a Python client's Basic credentials before its password's
    closing quote (``auth = (``, ``AUTH=["u", "my pa``): ``_OPEN_PY_AUTH_REVERSED``
    matched from ``c`` back, in the reversed text; reads ``PY_AUTH_REACH`` characters
    back at most (the longest such match and the character before it)."""
    if not x.py_auth:
        return False
    if x.py_held is not None and c in x.py_held:
        return True
    lo = max(c - PY_AUTH_REACH, 0)
    if all(x.t.find(w, lo, c) < 0 for w in x.py_auth):
        return False
    back, at = x.backwards(lo, c)
    if _OPEN_PY_AUTH_REVERSED.match(back, at) is None:
        return False
    if x.py_held is None or len(x.py_held) >= _PY_HELD_MAX:
        x.py_held = set()
    x.py_held.add(c)
    return True


def _pem_held(x: _Cuts, c: int) -> bool:
    """Whether a private key block keeps the cut ``c``: a key's header keeps it, or
    ``c`` is in what may still become one (``-----BEGIN`` and label characters)."""
    if x.pem is None:
        return False
    if x.pem.keeps(x.off + c):
        return True
    i = x.t.rfind("-----BEGIN", max(c - 10 - _PEM_LABEL_MAX, 0), c)
    return i >= 0 and _label_end(x.t, i + 10, c) == c


def _number_from(x: _Cuts, b: int, c: int) -> int:
    """Where the number rule counts the block before the cut ``c`` from: ``b``, or
    just after the last of JSON's punctuation in ``t[b:c]`` if the block is longer
    than ``NUMBER_HOLD_LIMIT`` (a cut there was no break only because a URL or a
    secret's name came before: a number right after it is kept whole all the same);
    reads ``NUMBER_HOLD_LIMIT + 1`` characters back at most."""
    t = x.t
    if c - b <= NUMBER_HOLD_LIMIT or _digit_before(t, c, b) < 0:
        return b
    lo = c - NUMBER_HOLD_LIMIT - 1
    k = max((t.rfind(ch, lo, c) for ch in _JSON_CUTS if ch in x.chars), default=-1)
    return k + 1 if k >= 0 else b


def _is_break(x: _Cuts, b: int, c: int) -> bool:
    """Whether the cut ``c`` is a break, ``b`` being the break before it."""
    t = x.t
    ch = t[c - 1]
    if ch in _JSON_CUTS:
        return (
            not x.json_blocked(max(b, c - _JSON_REACH), c)
            and not _curl_held(t, c)
            and not _py_auth_held(x, c)
            and not _pem_held(x, c)
            and not _row_held(x, c)
        )
    return (
        not _py_auth_held(x, c)  # first: a quick no without a name, a quick yes inside
        and not _number_held(t, _number_from(x, b, c), c)
        and not _word_held(t, c)
        and not _pem_held(x, c)
        and not _row_held(x, c)
    )


def _surely_break(x: _Cuts, c: int) -> bool:
    """Whether the cut ``c`` is a break whatever the break before it (a cut after
    JSON's punctuation never is: it depends on where the break before it lies)."""
    t = x.t
    if t[c - 1] in _JSON_CUTS:
        return False
    return (
        not _py_auth_held(x, c)  # first, as in _is_break
        and _digit_before(t, c, 0) < 0
        and not _word_held(t, c)
        and not _pem_held(x, c)
        and not _row_held(x, c)
    )


def _next_break(x: _Cuts, b: int, start: int) -> int:
    """The first break after ``b`` among the cuts after ``start`` (no cut in
    ``b..start`` is one), or -1 if there is none."""
    for m in x.cut.finditer(x.t, start):
        if _is_break(x, b, m.end()):
            return m.end()
    return -1


def _last_break(x: _Cuts, upto: int, floor: int, checked: int) -> tuple[int, int]:
    """The last break at or before ``upto`` and the break after it (-1 if none),
    ``floor`` being a break before ``upto`` and no cut in ``floor..checked`` one.

    It goes back from ``upto`` to a cut that is a break whatever came before, then
    forward from there: the work is in proportion to ``upto - max(floor, checked)``."""
    b, start = floor, max(floor, checked)
    t, chars = x.t, x.chars
    for k in range(upto - 1, start - 1, -1):  # back to a sure break
        ch = t[k]
        if (ch.isspace() or ch in chars) and _surely_break(x, k + 1):
            b = start = k + 1
            break
    while (following := _next_break(x, b, start)) >= 0 and following <= upto:
        b = start = following
    return b, following


@functools.lru_cache(maxsize=64)
def _cut_set(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str]]:
    """The characters a text is cut after, as a pattern, and those but whitespace:
    whitespace, JSON's ``, { } [ ]`` and CJK punctuation, but those some of
    ``secrets`` hold (a break must not split a secret found by value)."""
    held = set("".join(secrets))
    chars = "".join(ch for ch in _JSON_CUTS + _CJK_CUTS if ch not in held)
    return re.compile(rf"[\s{re.escape(chars)}]"), frozenset(chars)


_CUTS: Final = _cut_set(())
