"""Redaction of secrets and personal data from model output, whole or streamed.

``redact(text)`` replaces every secret it finds by ``[REDACTED:<kind>]``; kinds are
``api_key``, ``bearer_token``, ``private_key``, ``jwt``, ``url_password``,
``password``, ``email``, ``phone`` and ``card_number``. Only model output goes through
here, never the prompt. A value is also taken for a secret by the name before it
(``password=...``, ``"password": "..."``, ``aws_secret_access_key = ...``), unless it
is a placeholder or code (``_named_value`` says which).
``redact(text, secrets)`` (and ``StreamRedactor(secrets)``) also replace the exact values
of ``secrets`` (``known_secrets``: the router's provider keys and gateway key secrets),
as ``api_key``, whatever their shape.

What counts as a phone or card number
-------------------------------------
Numbers are looked for in *runs*: digits with at most three separators (space,
no-break space, ``. / ( ) -``) between two of them; a newline or a tab ends a run.

* An international phone number starts a run with ``+`` (or with ``00`` and a
  country code set apart, the next group not led by a zero), and is valid for
  ``phonenumbers``, however it is grouped (``+44 20 7946 0958``, ``+14155552671``,
  ``0044 20 7946 0958``); a run may go on after it (``+1 415 555 2671 2 times``).
* A number without one is taken for a phone only when grouped and punctuated the way
  a US number is (``(415) 555-2671``, ``415-555-2671``, ``415.555.2671``,
  ``1-800-555-0199``), and valid. Digits grouped by spaces alone (``202 555 0143``,
  a row of a table) or not at all (``4155552671``, an order number) are not phones.
* A card number is 13 to 19 digits, unbroken or grouped 4-4-4-4(-3) or 4-6-5 by
  spaces or by dashes, or 4.4.4.4 by dots (not amid a longer list of groups of four),
  of a major network's prefix and length, passing the Luhn check, and not right
  after a digit and a dot (the decimals of ``0.5401996580683129``).

``phonenumbers`` makes the final decision, but only on candidates of those shapes:
text without a ``+``/``00`` run or a punctuated 3-3-4 group never reaches it.

How the text is cut, and why streaming gives the same answer
------------------------------------------------------------
The text is cut into *blocks* at *breaks*. A break is a *cut* where no secret can be
open; a cut is a position ``c`` just after whitespace, after CJK or fullwidth
punctuation (the ideographic full stop and comma, corner brackets...) or after JSON's
``, { } [ ]``: characters no pattern takes, but for URL passwords and named values
(``password=...``), which may hold JSON's. Whether ``c`` is a break depends on the
previous break ``b`` and on ``text[b:c]``; the rules reading further back give the
same answer at ``c`` whatever lies before ``b``. A cut after JSON's punctuation is a
break if no ``://`` nor a password's or secret key's name lies in ``text[b:c]``
within its last 512 characters (no such match is longer) and no private key, curl
command or table's row keeps it (the rules below); any other cut if all of these hold
(a rule reading back past ``b`` takes a cut character there, JSON's too, for the text's
start):

* no phone or card number may go on across it. One may if the whitespace is a space
  (or no-break space) after a digit and at most two more separators, ``c - b'`` is at
  most ``NUMBER_HOLD_LIMIT``, and a place where a number can start (the start of the
  run, a ``+``, a ``(``, or ``b'``) lies at most 32 characters before ``c``, ``b'``
  being ``b`` or, in a longer block, just after the last of JSON's punctuation in
  ``text[b:c]`` (a cut a URL or a name kept: numbers in compact JSON are kept whole);
* the text before it does not end in ``bearer`` (or ``basic``) and at most 32
  whitespace characters, nor in ``Authorization:`` (its scheme follows), nor in a
  secret's name (and its ``=``, ``:`` or a table's
  ``|``, markdown's ``**`` or ``__`` before or after it) and a few spaces or tabs, nor
  in a ``|`` after whitespace and spaces or tabs (a table's cell), nor in curl's
  ``-u`` or ``--user`` and spaces or tabs, nor less than ``CURL_REACH`` (200)
  characters after the word ``curl`` on its line or a line it continues (``\\`` at
  a line's end; curl's ``-u user:password`` is redacted only with its curl in the
  block), nor in ``ssh``
  (``scp``, ``sftp``, ``mosh``, ``rsync``, ``clone``) and a space, nor in a quoted
  value (double or single quotes, backticks) after a secret's name opened less than
  ``QUOTED_SPACED`` (48) characters before (``password: "correct horse``), nor in a
  table's cell after a cell naming a secret (``| password | my pass``), nor in a
  quoted ``user:password`` after ``-u`` (``-u 'bob:p@ss``), nor inside a row of a
  table whose header names a secret (``TableColumns``: from the row's first ``|`` to its
  line's end, ``ROW_LIMIT`` (512) characters at most; whether a line is such a row
  depends on the lines before it, read once, so a block holds a row whole and its
  secret column's cells are judged there);
* it is not inside what may still become a private key header (``-----BEGIN`` and
  capitals, digits and spaces), and no private key header keeps it: a header
  ``-----BEGIN ... PRIVATE KEY-----`` keeps the cuts after it until its END line (the
  same label) has ended, for ``PEM_HOLD_LIMIT`` characters from its BEGIN at most;
  while one header keeps cuts, a later one starts no hold of its own.

Such a cut meeting the number rule without looking at ``b`` at all (no digit before
it) is a break whatever came before, so ``redact`` finds the breaks near a secret by
going back to such a cut and forward from there. ``StreamRedactor`` holds back the
text after the last break, which starts at a break too. Both therefore cut a text
into the same blocks, whatever the chunking, and redact each block on its own: the
concatenation of everything the streamer returns equals ``redact(whole).text``, with
equal counts, by construction rather than by luck.

Every secret fits inside one block: patterns that never contain a cut character
trivially so, and the rules above keep together those that may (URL passwords and
named values, phone and card numbers, ``Bearer <token>``, private keys up to
``PEM_HOLD_LIMIT`` characters). Secrets found by value: a character one of them
holds is no cut character for ``redact(text, secrets)`` and its stream. The
exception: a number starting more than 32 characters into its run (a card number at
the end of a long list of numbers set apart by single spaces), or in a block already
``NUMBER_HOLD_LIMIT`` long since ``b'`` (runs chained without a free whitespace,
``x=1 y=2 ...``),
may be cut in two, and is then taken for part of the list.

Hold-back: outside a ``Bearer`` or PEM hold, the held-back text is at most
``NUMBER_HOLD_LIMIT`` (96) characters followed by the word still arriving (the text
after its last cut). Chinese or Japanese prose goes out at each punctuation mark,
compact JSON at each ``,`` (but for 512 characters after a URL or a password's
name). A list of numbers separated by spaces lets go about every 32 characters; a
table or a CSV at each line end (a table with a secret's column at each row's end, a
curl command after 200 characters or its line's end). A certificate or a public key is
not held (its label is known before its first line ends).

Work grows in proportion to the text, whatever it holds: every rule reads a bounded
distance back from a cut, PEM holds and the places URLs and names start come from
one scan of the text (or of each chunk once, streamed), and a stream examines each
cut once however long it is held (``tests/policy/test_redaction_work.py`` counts it);
the rows of tables with a secret's column come from one scan too.

Cost: a text with no trigger at all (no ``@``, none of the key prefixes, no
``bearer``, no ``Basic``, no ``authorization`` with a ``:``, no ``-u``, no
``-----BEGIN``, no password's or secret key's name, no ``+``/``00`` and seven digits,
no card-shaped group, no 3-3-4 group) costs
about twenty substring tests, plus one regular-expression scan if it has digits:
1.4 µs for 300 characters of prose, 5 µs with numbers in it, 1.5 ms for a 2,000-line
table of numbers (43 KB), 1 ms for a CSV that size. Otherwise only the blocks holding a
trigger are examined
(an email in 300 characters: ~9 µs; a phone number: ~49 µs, mostly ``phonenumbers``
at ~25 µs a look-up, which is asked about the candidates above only, at most eight
times for one run).

Everything here is synchronous and pure; nothing can be cancelled midway. What a block
holds (the kinds, their patterns and triggers) lives in ``_patterns``, the number rules
in ``_numbers``; this module cuts text into blocks and a stream at its breaks.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from switchman._result import RedactionItem, RedactionReport
from switchman.policy._numbers import NUMBER_HOLD_LIMIT as NUMBER_HOLD_LIMIT
from switchman.policy._numbers import digit_before as _digit_before
from switchman.policy._numbers import number_held as _number_held
from switchman.policy._patterns import (
    _AUTH_NAME,
    _BEFORE_HOST,
    _NAME_TAIL,
    _OPEN_CELL,
    _OPEN_USER,
    _OPEN_VALUE,
    _PEM_END,
    _PEM_HEADER,
    _WS,
    CURL_REACH,
    KINDS,
    PEM_HOLD_LIMIT,
    QUOTED_SPACED,
    TABLE_GATE,
    TableColumns,
    _Columns,
    _maybe_triggered,
    _redact_block,
    _trigger_spans,
    curl_before,
    tag,
)

# -- breaks -----------------------------------------------------------------------------

_OPEN: Final = sys.maxsize  # the end of a hold not yet known
_PEM_LABEL_CHARS = re.compile(r"[A-Z0-9 ]*")
_PEM_LABEL_MAX: Final = 57  # 40 + len("PRIVATE KEY BLOCK")
_PEM_LINE_MAX: Final = 72  # the longest header: "-----BEGIN", a label, "-----"
# what a stream keeps of the text before its last checked cut: every rule below reads
# at most this far back from a cut
_LOOKBACK: Final = 256  # > CURL_REACH
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
# how the words of _NAME_TAIL end, whitespace and a quote or separator aside
_NAME_WORD_ENDS: Final = (
    *("assword", "ASSWORD", "asswd", "ASSWD", "ey", "EY"),
    *("ecret", "ECRET", "ccess", "CCESS"),
)
_COMMAND_ENDS: Final = frozenset(("ssh", "scp", "ftp", "osh", "ync", "one"))  # _BEFORE_HOST


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
    JSON's punctuation may start (found when first asked, for a whole text)."""

    __slots__ = ("_blockers", "chars", "cut", "off", "pem", "t", "tables")

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

    def json_blocked(self, lo: int, c: int) -> bool:
        """Whether a secret holding JSON's punctuation may start in ``lo..c``."""
        if self._blockers is None:  # a whole text: read it now
            self._blockers = _Blockers()
            self._blockers.read(self.t, self.off)
        return self._blockers.blocks(self.off + lo, self.off + c)


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
    ``user:password``, a remote shell (``ssh``) waiting for
    its ``user@host``, or a quoted value after a secret's name, opened less than
    ``QUOTED_SPACED`` characters before ``c`` and still open (it may hold spaces);
    reads at most 110 characters back."""
    if _in_open_value(t, c) or _in_open_cell(t, c) or _in_open_user(t, c):
        return True
    if _curl_held(t, c):  # its -u user:password may follow: a block holds the curl
        return True

    j = c
    while j > c - _BEARER_GAP and j > 0 and t[j - 1].isspace():
        j -= 1
    if j == c or (j > 0 and t[j - 1].isspace()):  # no whitespace, or too much
        return False
    if j >= 6 and t[j - 6 : j].lower() == "bearer":
        return True
    if j >= 5 and t[j - 5 : j].lower() == "basic":  # Basic <user:password in base64>
        return True
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
    if last in "hpce" and t[j - 3 : j] in _COMMAND_ENDS:  # ssh user@host follows
        return _BEFORE_HOST.search(t, max(c - 24, 0), c) is not None
    if last.isalpha():  # the name ends here: password, passwd, secret key, secret access
        if not t.endswith(_NAME_WORD_ENDS, max(j - 8, 0), j):
            return False
    elif last not in "\"'`:=>*_|":  # or its quote, separator (a table's |), markdown's bold
        return False
    lo = max(j - 48, 0)
    return (
        t.find("assw", lo, j) >= 0
        or t.find("ASSW", lo, j) >= 0
        or t.find("ecret", lo, j) >= 0
        or t.find("ECRET", lo, j) >= 0
    ) and _NAME_TAIL.search(t, max(c - 80, 0), c) is not None


def _row_held(x: _Cuts, c: int) -> bool:
    """Whether a row of a table with a secret's column keeps the cut ``c``."""
    return x.tables.holds(x.off + c) if x.tables is not None else False


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
            and not _pem_held(x, c)
            and not _row_held(x, c)
        )
    return (
        not _number_held(t, _number_from(x, b, c), c)
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
        _digit_before(t, c, 0) < 0
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


# -- public API ---------------------------------------------------------------------------


_NO_COUNTS: Final[Mapping[str, int]] = types.MappingProxyType({})


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    if not counts:
        return _NO_COUNTS
    return types.MappingProxyType({k: counts[k] for k in KINDS if counts.get(k)})


@attrs.frozen(kw_only=True)
class Redacted:
    """A redacted text and, per kind found, how many secrets were replaced."""

    text: str
    counts: Mapping[str, int] = attrs.field(converter=_frozen_counts, factory=dict)

    def report(self) -> RedactionReport:
        """The ``Result.redaction`` record for these counts."""
        return redaction_report(self.counts)


def redaction_report(counts: Mapping[str, int]) -> RedactionReport:
    """A ``RedactionReport`` listing ``counts`` in ``KINDS`` order."""
    items = tuple(RedactionItem(kind=k, count=counts[k]) for k in KINDS if counts.get(k))
    return RedactionReport(performed=bool(items), items=items)


#: an answer longer than this is redacted in a worker thread by the router (linear, but
#: 1 MB of dense phone numbers takes about a second); a shorter one on its trio loop
REDACT_IN_THREAD_ABOVE: Final = 32_768

#: a configured secret shorter than this is not looked for by its value (too likely to
#: be ordinary text); real provider keys are far longer
KNOWN_SECRET_MIN: Final = 12


def known_secrets(values: Iterable[str | None]) -> tuple[str, ...]:
    """The secrets ``redact`` should find by their exact value (the router's provider
    keys and gateway key secrets): those of ``KNOWN_SECRET_MIN`` characters or more,
    without whitespace, longest first (so that one holding another goes whole)."""
    found = {v for v in values if v and len(v) >= KNOWN_SECRET_MIN and not _WS.search(v)}
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def _known(text: str, secrets: tuple[str, ...], counts: dict[str, int]) -> str:
    """``text`` with every exact occurrence of ``secrets`` replaced (as ``api_key``).

    A secret holds no whitespace, so it never spans a break: a streamed answer, cut at
    breaks, has each occurrence whole in one piece, as the whole answer has."""
    for secret in secrets:
        if secret in text:
            counts["api_key"] = counts.get("api_key", 0) + text.count(secret)
            text = text.replace(secret, tag("api_key"))
    return text


def redact(text: str, secrets: tuple[str, ...] = ()) -> Redacted:
    """Replace every secret in ``text`` by ``[REDACTED:<kind>]`` and count them.

    ``secrets`` (from ``known_secrets``) are also found by their exact value, whatever
    their shape: the router passes its own provider keys and gateway key secrets."""
    if not secrets:
        return _redact_patterns(text)
    return _redact(text, secrets, None, 0)


def _redact(text: str, secrets: tuple[str, ...], tables: TableColumns | None, off: int) -> Redacted:
    """``redact``, of the text from ``off`` on of a stream whose tables ``tables`` read."""
    if not secrets:
        return _redact_patterns(text, _CUTS, tables, off)
    done = _redact_patterns(text, _cut_set(secrets), tables, off)
    counts = dict(done.counts)
    out = _known(done.text, secrets, counts)
    return done if out is done.text else Redacted(text=out, counts=counts)


@functools.lru_cache(maxsize=64)
def _cut_set(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str]]:
    """The characters a text is cut after, as a pattern, and those but whitespace:
    whitespace, JSON's ``, { } [ ]`` and CJK punctuation, but those some of
    ``secrets`` hold (a break must not split a secret found by value)."""
    held = set("".join(secrets))
    chars = "".join(ch for ch in _JSON_CUTS + _CJK_CUTS if ch not in held)
    return re.compile(rf"[\s{re.escape(chars)}]"), frozenset(chars)


_CUTS: Final = _cut_set(())


def _redact_patterns(
    text: str,
    cuts: tuple[re.Pattern[str], frozenset[str]] = _CUTS,
    tables: TableColumns | None = None,
    off: int = 0,
) -> Redacted:
    if not _maybe_triggered(text) and (tables is None or not tables.has_rows(off, len(text))):
        return Redacted(text=text)
    return _redact_found(text, cuts, tables, off)


def _redact_found(
    text: str, cuts: tuple[re.Pattern[str], frozenset[str]], tables: TableColumns | None, off: int
) -> Redacted:
    """``_redact_patterns`` of a text with a trigger (apart, so that its comprehensions
    cost the text without any nothing)."""
    rows = tables.rows(off, off + len(text)) if tables is not None and tables.pipes else []
    if tables is None and "\n" in text and TABLE_GATE.search(text):
        tables = TableColumns()  # a whole text: its tables with a secret's column
        tables.read(text, 0)
        rows = tables.rows(0, len(text))
    counts: dict[str, int] = {}
    pem = None
    if "-----BEGIN" in text:
        pem = _PemHolds()
        pem.read(text, off)
    x = _Cuts(text, off, cuts, pem, None, tables)
    spans = _trigger_spans(text)
    if rows:  # a row's values are found by its table's header, perhaps in earlier blocks
        spans = sorted([*spans, *((p - off, min(e, off + len(text)) - off) for p, e, _ in rows)])
    starts = [p - off for p, _, _ in rows]
    out: list[str] = []
    done = 0  # text[:done] is in out; it ends at a break
    for first, last in spans:
        if last <= done:  # inside the blocks just redacted
            continue
        b, end = _last_break(x, max(first, done), done, done)
        out.append(text[done:b])
        while True:  # the blocks overlapping first..last
            if end < 0:
                end = len(text)
            inside: tuple[tuple[int, _Columns], ...] = ()
            if starts:  # the rows of a table with a secret's column starting in the block
                lo, hi = bisect.bisect_left(starts, b), bisect.bisect_left(starts, end)
                inside = tuple((starts[k] - b, rows[k][2]) for k in range(lo, hi))
            out.append(_redact_block(text[b:end], counts, inside))
            b = end
            if b >= last:
                break
            end = _next_break(x, b, b)
        done = b
    out.append(text[done:])
    return Redacted(text="".join(out), counts=counts)


class StreamRedactor:
    """Redacts a stream chunk by chunk with a hold-back window, so a secret split across
    chunks is still caught.

    The concatenation of everything ``feed()``/``flush()`` returned equals
    ``redact(whole text).text`` exactly, for any chunking, and after ``flush()``
    ``counts`` equals ``redact(whole text).counts`` (see the module docstring).

    What is held back is the text after the last break: usually the last word; more
    after a digit, but never more than ``NUMBER_HOLD_LIMIT`` characters before the
    word still arriving; more after ``Bearer``, or after a private key's header (until
    its END line, ``PEM_HOLD_LIMIT`` characters at most). Each character is examined
    a bounded number of times, however the text is cut into chunks and however long
    it is held. Not thread-safe; one instance per stream. Dropping it without
    ``flush()`` discards the held text, which is what a cancelled stream wants.
    """

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self._secrets = secrets  # found by value too (see ``redact``)
        self._cuts = _cut_set(secrets)
        self._base = 0  # where the text held back starts (a break), from the stream's start
        self._examined: list[str] = []  # the held text up to _checked
        self._tail = ""  # its last _LOOKBACK characters
        self._checked = 0  # no cut c with _base < c <= _checked is a break
        self._pending: list[str] = []  # chunks since, not yet examined
        self._pem = _PemHolds()
        self._tables = TableColumns()
        self._blockers = _Blockers()
        self._counts: dict[str, int] = {}
        self._flushed = False

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the part now safe to emit (may be ``""``)."""
        if self._flushed:
            raise ValueError("feed() after flush(): the stream has ended")
        if not chunk:
            return ""
        self._pending.append(chunk)
        if not self._cuts[0].search(chunk):  # no new cut, so no new break
            return ""
        new = chunk if len(self._pending) == 1 else "".join(self._pending)
        self._pending.clear()
        off = self._checked - len(self._tail)  # the window: the tail, then the new text
        window = self._tail + new
        self._pem.read(window, off)
        self._blockers.read(window, off)
        self._tables.read(window, off)
        x = _Cuts(window, off, self._cuts, self._pem, self._blockers, self._tables)
        cut, _ = _last_break(x, len(window), self._base - off, self._checked - off)
        self._checked = off + len(window)  # the cuts after `cut` are not breaks, and stay so
        if off + cut == self._base:  # no break in the new text
            self._examined.append(new)
            self._tail = window[-_LOOKBACK:]
            return ""
        split = cut - len(self._tail)  # where the new text is cut
        ready = "".join(self._examined) + new[:split]
        rest = new[split:]
        done = self._take(ready, self._base)
        self._base = off + cut
        self._examined, self._tail = [rest], rest[-_LOOKBACK:]
        self._pem.forget(self._base)
        self._blockers.forget(self._base)
        self._tables.forget(self._base)
        return done

    def flush(self) -> str:
        """End of stream: everything held back, redacted. Later calls return ``""``."""
        pending = "".join(self._pending)
        self._tables.read(pending, self._checked)  # what no cut came after
        text = "".join(self._examined) + pending
        self._examined, self._pending, self._tail = [], [], ""
        self._flushed = True
        return self._take(text, self._base) if text else ""

    @property
    def counts(self) -> Mapping[str, int]:
        """Secrets replaced so far, per kind (final after ``flush()``)."""
        return _frozen_counts(self._counts)

    def _take(self, text: str, off: int) -> str:
        """Redact ``text``, the stream from ``off`` on (from a break to a break)."""
        if self._secrets:
            done = _redact(text, self._secrets, self._tables, off)
        else:
            done = _redact_patterns(text, self._cuts, self._tables, off)
        for kind, n in done.counts.items():
            self._counts[kind] = self._counts.get(kind, 0) + n
        return done.text
