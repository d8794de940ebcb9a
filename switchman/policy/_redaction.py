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
no-break, thin or narrow no-break space, ``. / ( ) -``, a non-breaking hyphen, an en
dash) between two of them; a newline or a tab ends a run. A run is not glued to a Latin
letter (accented too), a digit or ``_``; letters of other scripts may touch it
(``卡号4111...``).

* An international phone number starts a run with ``+`` (or with ``00`` and a
  country code set apart, the next group not led by a zero), and is valid for
  ``phonenumbers``, however it is grouped (``+44 20 7946 0958``, ``+14155552671``,
  ``0044 20 7946 0958``); a run may go on after it (``+1 415 555 2671 2 times``).
* A number without one is taken for a phone only when grouped and punctuated the way
  a US number is (``(415) 555-2671``, ``415-555-2671``, ``415.555.2671``,
  ``1-800-555-0199``), and valid. Digits grouped by spaces alone (``202 555 0143``,
  a row of a table) or not at all (``4155552671``, an order number) are not phones.
* A card number is 13 to 19 digits, unbroken or grouped 4-4-4-4(-3) or 4-6-5 by
  spaces (of one kind) or by dashes, or 4.4.4.4 by dots (not amid a longer list of groups of four),
  of a major network's prefix and length, passing the Luhn check, and not right
  after a digit and a dot (the decimals of ``0.5401996580683129``).

``phonenumbers`` makes the final decision, but only on candidates of those shapes:
text without a ``+``/``00`` run or a punctuated 3-3-4 group never reaches it.

How the text is cut, and why streaming gives the same answer
------------------------------------------------------------
The text is cut into *blocks* at *breaks*: a break is a *cut* (a position just after
whitespace, CJK punctuation or JSON's ``, { } [ ]``) where no secret can be open. The
rules deciding which cuts are breaks, and why a break found in a stream is one in the
whole text, are in ``_redact_breaks``'s docstring.

Such a cut meeting the number rule without looking at ``b`` at all (no digit before
it) is a break whatever came before, so ``redact`` finds the breaks near a secret by
going back to such a cut and forward from there. ``StreamRedactor`` holds back the
text after the last break, which starts at a break too. Both therefore cut a text
into the same blocks, whatever the chunking, and redact each block on its own: the
concatenation of everything the streamer returns equals ``redact(whole).text``, with
equal counts, by construction rather than by luck.

Every secret fits inside one block: patterns that never contain a cut character
trivially so, and the rules of ``_redact_breaks`` keep together those that may (URL passwords and
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

Cost: a text with no trigger at all (no ``@``, none of the key prefixes, no ``bearer``,
no ``Basic``, no ``authorization`` with a ``:``, no ``auth`` or ``credentials`` with an
``=`` or a ``:`` and a parenthesis after them, no ``DigestAuth(``, no ``-u``, no
``-----BEGIN``, no password's or secret key's name, no table with ``token`` in it, no
``+``/``00`` and seven digits, no card-shaped group, no 3-3-4 group) costs
about twenty substring tests, plus one regular-expression scan if it has digits:
1.4 µs for 300 characters of prose, 5 µs with numbers in it, 1.5 ms for a 2,000-line
table of numbers (43 KB), 1 ms for a CSV that size. Otherwise only the blocks holding a
trigger are examined
(an email in 300 characters: ~9 µs; a phone number: ~49 µs, mostly ``phonenumbers``
at ~25 µs a look-up, which is asked about the candidates above only, at most eight
times for one run).

Everything here is synchronous and pure; nothing can be cancelled midway. What a block
holds (the kinds, their patterns and triggers) lives in ``_patterns`` (and the modules
it names), the number rules in ``_numbers``, the breaks in ``_redact_breaks``; this
module cuts text into blocks at those breaks, whole or streamed, and is the public API.
"""

from __future__ import annotations

import bisect
import re
import types
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from switchman._result import RedactionItem, RedactionReport
from switchman.policy._numbers import NUMBER_HOLD_LIMIT as NUMBER_HOLD_LIMIT
from switchman.policy._patterns import (
    _WS,
    _maybe_triggered,
    _redact_block,
    _trigger_spans,
)
from switchman.policy._patterns_tables import TABLE_GATE, TableColumns, _Columns
from switchman.policy._patterns_values import KINDS, tag
from switchman.policy._patterns_values import PEM_HOLD_LIMIT as PEM_HOLD_LIMIT
from switchman.policy._redact_breaks import (
    _CUTS,
    _LOOKBACK,
    _Blockers,
    _cut_set,
    _Cuts,
    _last_break,
    _next_break,
    _PemHolds,
)

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
    if tables is None and "\n" in text and TABLE_GATE.search(text):
        tables = TableColumns()  # a whole text: its tables
        tables.read(text, 0)
    rows = tables.rows(off, off + len(text)) if tables is not None and tables.pipes else []
    # where the rows of tables without outer pipes start (a secret's name may open them)
    lines = [p - off for p in tables.line_starts(off, off + len(text))] if tables else []
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
            opened: list[int] = []
            if lines:  # the rows without a leading | starting in it
                lo, hi = bisect.bisect_left(lines, b), bisect.bisect_left(lines, end)
                opened = [p - b for p in lines[lo:hi]]
            out.append(_redact_block(text[b:end], counts, inside, opened))
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
