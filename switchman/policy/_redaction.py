"""Redaction of secrets and personal data from model output, whole or streamed.

``redact(text)`` replaces every secret it finds by ``[REDACTED:<kind>]``; kinds are
``api_key``, ``bearer_token``, ``private_key``, ``jwt``, ``url_password``, ``email``,
``phone`` and ``card_number``. Only model output goes through here, never the prompt.

How the text is cut, and why streaming gives the same answer
------------------------------------------------------------
The text is cut into *blocks* at *breaks*. A break is a position ``c`` just after a
whitespace character where, judging by ``text[:c]`` alone, no secret can be open:

* no digit among the three characters before that whitespace (a phone or card number
  may go on after a space, a dot, a dash or a parenthesis);
* the text before it, trailing whitespace aside, does not end in ``bearer``;
* no ``-----BEGIN`` within the last ``PEM_HOLD_LIMIT`` characters still waits for its
  ``-----END ...-----`` line or for a character that cannot occur in a PEM block.

Each block is redacted on its own. Whether ``c`` is a break depends only on the text
before ``c``, and never on text before the previous break, so a streamed text
cuts into the same blocks whatever its chunking. ``StreamRedactor`` emits a block
as soon as the break that ends it has arrived; what follows the last break is held
back. Hence the concatenation of everything it returns equals ``redact(whole).text``,
with equal counts, by construction rather than by luck.

Every pattern fits inside one block: patterns that never contain whitespace trivially
so, and the three rules above keep together those that may (phone and card numbers,
``Bearer <token>``, PEM blocks up to ``PEM_HOLD_LIMIT`` characters).

Cost: a text with no trigger at all (no ``@``, no run of seven digits, none of the
key prefixes, no ``bearer``, no ``-----BEGIN``) costs about twenty substring tests,
most of them single characters: 1.5 to 3 µs for 300 characters. Otherwise only the
blocks holding a trigger are examined (an email in 300 characters: ~15 µs).
``phonenumbers`` (~25 µs a look-up) runs only on runs of at least seven digits.

Everything here is synchronous and pure; nothing can be cancelled midway.
"""

from __future__ import annotations

import bisect
import re
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import attrs
import phonenumbers

from switchman._result import RedactionItem, RedactionReport

#: Redaction kinds, in report order.
KINDS: Final = (
    "api_key",
    "bearer_token",
    "private_key",
    "jwt",
    "url_password",
    "email",
    "phone",
    "card_number",
)

#: A ``-----BEGIN`` holds a stream back for at most this many characters.
PEM_HOLD_LIMIT: Final = 16_384


def tag(kind: str) -> str:
    """The replacement text for a secret of ``kind``."""
    return f"[REDACTED:{kind}]"


# -- patterns ------------------------------------------------------------------------

# characters a key or token is made of; a key must not be glued to more of them
_KEY = "A-Za-z0-9_-"
_API_KEY = re.compile(
    rf"(?<![{_KEY}])(?:"
    r"sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|A[KS]IA[A-Z0-9]{16}"  # AWS access key id
    r"|gh[opsur]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,}"  # GitHub fine-grained token
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|[sr]k_live_[A-Za-z0-9]{16,}"  # Stripe
    r"|AIza[A-Za-z0-9_-]{35}"  # Google
    rf")(?![{_KEY}])"
)
_JWT = re.compile(rf"(?<![{_KEY}])eyJ[{_KEY}]{{10,}}\.[{_KEY}]{{10,}}\.[{_KEY}]*(?![{_KEY}])")
_BEARER = re.compile(
    r"\b(?:[Bb]earer|BEARER)[ \t]+"
    r"(?P<token>[A-Za-z0-9._~+/-]*[A-Za-z0-9_~+/-]=*)(?![A-Za-z0-9_~+/=-])"
)
_PEM_LABEL = r"-----{}[A-Z0-9 ]{{0,40}}PRIVATE KEY(?: BLOCK)?-----"
_PEM = re.compile(
    _PEM_LABEL.format("BEGIN")
    + r"(?:[A-Za-z0-9+/=:,\s]|-(?!----))*"  # body: base64 lines and Proc-Type style headers
    + "(?P<footer>"
    + _PEM_LABEL.format("END")
    + ")?"
)
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)"
    r"(?P<password>[^\s/?#@]+)@"
)
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-]|\.[\w-])")
# phone and card separators: at most three of them between two digits
_SEP = r"[ \u00a0./()-]"
_DIGIT_RUN = re.compile(rf"(?<![\w+])\+?\(?[0-9](?:{_SEP}{{0,3}}[0-9])*(?!\w)")
_SEVEN_DIGITS = re.compile(rf"[0-9](?:{_SEP}{{0,3}}[0-9]){{6}}")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_DIGIT = re.compile(r"[0-9]")
_WS = re.compile(r"\s")

# Whatever a pattern matches contains a match of _TRIGGER; a block without one is
# left as it is.
_TRIGGER = re.compile(
    r"sk-|[sr]k_live_|A[KS]IA|gh[opsur]_|github_pat_|xox[abprs]-|AIza|[Bb]earer|BEARER"
    rf"|-----BEGIN|eyJ|[^\s@]@[^\s@]|{_SEVEN_DIGITS.pattern}"
)
# Every match of a _TRIGGER alternative but the last two contains one of these.
_TRIGGER_LITERALS: Final = (
    "sk-",
    "_live_",
    "AKIA",
    "ASIA",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "github_pat_",
    "xox",
    "AIza",
    "earer",
    "EARER",
    "-----BEGIN",
    "eyJ",
)


def _maybe_triggered(text: str) -> bool:
    """A cheap necessary condition for ``_TRIGGER.search(text)``.

    One-character tests are nearly free (memchr); longer ones are asked only when
    a character they need is there.
    """
    return (
        "@" in text
        or "IA" in text  # AKIA, ASIA
        or "earer" in text
        or "EARER" in text
        or ("-" in text and ("sk-" in text or "xox" in text or "-----BEGIN" in text))
        or ("_" in text and ("_live_" in text or "gh" in text))
        or ("z" in text and "AIza" in text)
        or ("J" in text and "eyJ" in text)
        or (_has_ascii_digit(text) and _SEVEN_DIGITS.search(text) is not None)
    )


def _has_ascii_digit(text: str) -> bool:
    # ten memchr scans beat one regex scan by a factor of ten
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


def _plain_char(ch: str) -> bool:
    return ch != "@" and not ch.isspace()


def _trigger_spans(text: str) -> list[tuple[int, int]]:
    """Spans such that every block holding a ``_TRIGGER`` match overlaps one of them."""
    spans = []
    for literal in _TRIGGER_LITERALS:
        i = text.find(literal)
        while i >= 0:
            spans.append((i, i + len(literal)))
            i = text.find(literal, i + 1)
    i = text.find("@")
    while i >= 0:
        if 0 < i < len(text) - 1 and _plain_char(text[i - 1]) and _plain_char(text[i + 1]):
            spans.append((i - 1, i + 2))
        i = text.find("@", i + 1)
    # a digit run found in a block alone overlaps one found in the whole text
    spans.extend(m.span() for m in _SEVEN_DIGITS.finditer(text))
    spans.sort()
    return spans


# -- one block ------------------------------------------------------------------------


@attrs.frozen
class _Hit:
    start: int
    end: int
    rank: int  # breaks ties between hits with the same span
    kind: str
    replacement: str


def _has_digit(s: str) -> bool:
    return _DIGIT.search(s) is not None


def _api_key_hit(m: re.Match[str]) -> str | None:
    key = m.group()
    # a real key is random enough to hold a digit; AWS ids are checked by their shape
    if key.startswith(("AKIA", "ASIA")) or _has_digit(key):
        return tag("api_key")
    return None


def _jwt_hit(m: re.Match[str]) -> str | None:
    return tag("jwt")


def _bearer_hit(m: re.Match[str]) -> str | None:
    token = m.group("token")
    if len(token) >= 32 or (len(token) >= 16 and _has_digit(token)):
        return m.group()[: m.start("token") - m.start()] + tag("bearer_token")
    return None


def _url_password_hit(m: re.Match[str]) -> str | None:
    return m.group("head") + tag("url_password") + "@"


def _email_hit(m: re.Match[str]) -> str | None:
    return tag("email")


_Replace = Callable[[re.Match[str]], str | None]
_PATTERNS: Final[tuple[tuple[str, re.Pattern[str], _Replace], ...]] = (
    ("bearer_token", _BEARER, _bearer_hit),
    ("url_password", _URL_PASSWORD, _url_password_hit),
    ("jwt", _JWT, _jwt_hit),
    ("api_key", _API_KEY, _api_key_hit),
    ("email", _EMAIL, _email_hit),
)
_RANK: Final = {
    kind: n
    for n, kind in enumerate(("private_key", *(k for k, _, _ in _PATTERNS), "card_number", "phone"))
}


def _pem_hits(block: str) -> Iterable[_Hit]:
    for m in _PEM.finditer(block):
        end = m.end()
        if m.group("footer") is None:
            # an unterminated block ends where its body does, trailing whitespace aside
            end = m.start() + len(m.group().rstrip())
        yield _Hit(m.start(), end, _RANK["private_key"], "private_key", tag("private_key"))


def _luhn_ok(digits: str) -> bool:
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = int(ch)
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix_ok(digits: str) -> bool:
    """The number starts like a card of a major network of its length (IIN ranges)."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if two in (34, 37):  # American Express
        return n == 15
    if 300 <= int(digits[:3]) <= 305 or two in (36, 38, 39):  # Diners Club
        return n >= 14
    if (
        digits.startswith(("6011", "65", "62"))
        or 644 <= int(digits[:3]) <= 649
        or 3528 <= four <= 3589
    ):
        return n >= 16  # Discover, UnionPay, JCB
    return False


def _card_shape_ok(run: str, groups: list[re.Match[str]], a: int, b: int) -> bool:
    """Groups ``a..b`` of ``run`` look like a card number: 4-4-4-4(-3), 4-6-5, or unbroken."""
    if a == b:
        return True
    seps = {run[groups[i].end() : groups[i + 1].start()] for i in range(a, b)}
    if seps != {" "} and seps != {"-"}:
        return False
    sizes = [len(groups[i].group()) for i in range(a, b + 1)]
    return sizes[0] == 4 and all(s in (4, 6) for s in sizes[1:-1]) and 1 <= sizes[-1] <= 6


def _windows(
    groups: list[re.Match[str]],
    lo: int,
    hi: int,
    take: Callable[[int, int], bool],
    tries: int = sys.maxsize,
) -> None:
    """Offer ``take(a, b)`` each window of groups ``a..b`` holding ``lo..hi`` digits:
    leftmost first, then longest; after a taken window, go on after it. At most
    ``tries`` offers."""
    cum = [0]
    for g in groups:
        cum.append(cum[-1] + len(g.group()))
    a = 0
    while a < len(groups) and tries > 0:
        following = a + 1
        b = bisect.bisect_right(cum, cum[a] + hi) - 2  # the last b within ``hi`` digits
        while b >= a and cum[b + 1] - cum[a] >= lo and tries > 0:
            tries -= 1
            if take(a, b):
                following = b + 1
                break
            b -= 1
        a = following


def _card_hits(run: str, offset: int, groups: list[re.Match[str]]) -> list[_Hit]:
    hits: list[_Hit] = []

    def take(a: int, b: int) -> bool:
        digits = "".join(g.group() for g in groups[a : b + 1])
        if _card_prefix_ok(digits) and _card_shape_ok(run, groups, a, b) and _luhn_ok(digits):
            start, end = offset + groups[a].start(), offset + groups[b].end()
            hits.append(_Hit(start, end, _RANK["card_number"], "card_number", tag("card_number")))
            return True
        return False

    _windows(groups, 13, 19, take)
    return hits


#: at most this many phonenumbers look-ups per digit run (each costs ~25 µs)
_PHONE_TRIES: Final = 12
#: a longer digit run is only searched in windows of up to 17 digits
_LONG_RUN: Final = 64


def _phones_in(text: str) -> list[tuple[int, int]]:
    """Phone numbers in ``text``.

    With ``+`` any valid number counts, however it is grouped. Without, only a US
    number grouped as such (``(415) 555-2671``, ``415.555.2671``): a bare digit
    string (``4155552671``) is more often an order or account number, and loosely
    grouped digits (``1 2 3 4 5 6 7 8 9 10``) a list.
    """
    found = []
    rest = text
    if "+" in text:
        for m in phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.VALID):
            if m.raw_string.startswith("+"):
                found.append((int(m.start), int(m.end)))
                rest = rest.replace(m.raw_string, "")
    if len(_DIGIT.findall(rest)) < 7:
        return found
    for m in phonenumbers.PhoneNumberMatcher(
        text, "US", leniency=phonenumbers.Leniency.STRICT_GROUPING
    ):
        raw: str = m.raw_string
        if not raw.startswith("+") and not raw.isdigit():
            found.append((int(m.start), int(m.end)))
    return found


def _phone_hits(run: str, offset: int, groups: list[re.Match[str]]) -> list[_Hit]:
    def hits_in(start: int, end: int) -> list[_Hit]:
        return [
            _Hit(offset + start + s, offset + start + e, _RANK["phone"], "phone", tag("phone"))
            for s, e in _phones_in(run[start:end])
        ]

    whole = hits_in(0, len(run)) if len(run) <= _LONG_RUN else []
    if whole:
        return whole
    # a digit run may glue a number to its neighbours ("+1 415 555 2671 2 times"):
    # try windows of whole groups
    hits: list[_Hit] = []

    def take(a: int, b: int) -> bool:
        if (a, b) == (0, len(groups) - 1):  # tried above
            return False
        found = hits_in(0 if a == 0 else groups[a].start(), groups[b].end())
        hits.extend(found)
        return bool(found)

    _windows(groups, 7, 17, take, _PHONE_TRIES)
    return hits


def _digit_hits(block: str) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in _DIGIT_RUN.finditer(block):
        run = m.group()
        groups = list(_DIGIT_GROUP.finditer(run))
        ndigits = sum(len(g.group()) for g in groups)
        if ndigits < 7:
            continue
        if ndigits >= 13 and not run.startswith("+"):
            hits.extend(_card_hits(run, m.start(), groups))
        hits.extend(_phone_hits(run, m.start(), groups))
    return hits


def _redact_block(block: str, counts: dict[str, int]) -> str:
    """Redact one block, adding what it found to ``counts``."""
    if not _TRIGGER.search(block):
        return block
    hits: list[_Hit] = []
    for kind, pattern, replace in _PATTERNS:
        for m in pattern.finditer(block):
            replacement = replace(m)
            if replacement is not None:
                hits.append(_Hit(m.start(), m.end(), _RANK[kind], kind, replacement))
    if "-----BEGIN" in block:
        hits.extend(_pem_hits(block))
    hits.extend(_digit_hits(block))
    if not hits:
        return block
    # leftmost first, then longest, then by rank; overlapping later hits lose
    hits.sort(key=lambda h: (h.start, -h.end, h.rank))
    out: list[str] = []
    pos = 0
    for h in hits:
        if h.start < pos:
            continue
        out.append(block[pos : h.start])
        out.append(h.replacement)
        counts[h.kind] = counts.get(h.kind, 0) + 1
        pos = h.end
    out.append(block[pos:])
    return "".join(out)


# -- breaks -----------------------------------------------------------------------------

_FOREVER: Final = sys.maxsize
_PEM_STOP = re.compile(r"[^A-Za-z0-9+/=:,\s-]")  # a character no PEM block contains


def _pem_holds(text: str) -> list[tuple[int, int]]:
    """``(i, last)``: a ``-----BEGIN`` at ``i`` keeps every cut ``c`` with ``i < c <= last``.

    The hold ends at ``i + PEM_HOLD_LIMIT``, or before the end of the first closing
    found in ``text`` after the word BEGIN: an ``-----END`` followed by ``-----``, or a
    character no PEM block contains. A closing not yet in ``text`` holds every cut the
    text has so far, so the answer for a cut ``c`` depends on ``text[:c]`` only.
    """
    holds = []
    i = text.find("-----BEGIN")
    while i >= 0:
        body = i + len("-----BEGIN")
        close = _FOREVER
        stop = _PEM_STOP.search(text, body)
        if stop is not None:
            close = stop.end()
        end = text.find("-----END", body)
        if end >= 0:
            dashes = text.find("-----", end + len("-----END"))
            if dashes >= 0:
                close = min(close, dashes + len("-----"))
        holds.append((i, min(i + PEM_HOLD_LIMIT, close - 1)))
        i = text.find("-----BEGIN", i + 1)
    return holds


def _is_break(text: str, c: int, pem: list[tuple[int, int]]) -> bool:
    """Whether the cut ``c`` (``text[c - 1]`` is whitespace) is a break; reads ``text[:c]``."""
    if _DIGIT.search(text, max(c - 4, 0), c - 1):
        return False
    j = c - 1
    while j > 0 and text[j - 1].isspace():
        j -= 1
    if j >= 6 and text[j - 6 : j].lower() == "bearer":
        return False
    return not any(i < c <= last for i, last in pem)


def _block_start(text: str, p: int, floor: int, pem: list[tuple[int, int]]) -> int:
    """The last break at or before ``p``; ``floor`` is a known break (or 0) before it."""
    for k in range(p - 1, floor - 1, -1):
        if text[k].isspace() and _is_break(text, k + 1, pem):
            return k + 1
    return floor


def _block_end(text: str, q: int, pem: list[tuple[int, int]]) -> int:
    """The first break at or after ``q`` (the end of ``text`` if none)."""
    for m in _WS.finditer(text, max(q - 1, 0)):
        if _is_break(text, m.end(), pem):
            return m.end()
    return len(text)


def _last_break(text: str, after: int) -> int:
    """The last break of ``text`` beyond ``after``, or 0 if there is none."""
    pem = _pem_holds(text) if "-----BEGIN" in text else []
    for k in range(len(text) - 1, after - 1, -1):
        if text[k].isspace() and _is_break(text, k + 1, pem):
            return k + 1
    return 0


# -- public API ---------------------------------------------------------------------------


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
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


def redact(text: str) -> Redacted:
    """Replace every secret in ``text`` by ``[REDACTED:<kind>]`` and count them."""
    if not _maybe_triggered(text):
        return Redacted(text=text)
    counts: dict[str, int] = {}
    pem = _pem_holds(text) if "-----BEGIN" in text else []
    out: list[str] = []
    done = 0  # text[:done] is in out; it ends at a break
    for first, last in _trigger_spans(text):
        if last <= done:  # inside the blocks just redacted
            continue
        start = _block_start(text, max(first, done), done, pem)
        end = _block_end(text, last, pem)
        out.append(text[done:start])
        cut = start
        for ws in _WS.finditer(text, start, end - 1):
            if _is_break(text, ws.end(), pem):
                out.append(_redact_block(text[cut : ws.end()], counts))
                cut = ws.end()
        out.append(_redact_block(text[cut:end], counts))
        done = end
    out.append(text[done:])
    return Redacted(text="".join(out), counts=counts)


class StreamRedactor:
    """Redacts a stream chunk by chunk with a hold-back window, so a secret split across
    chunks is still caught.

    The concatenation of everything ``feed()``/``flush()`` returned equals
    ``redact(whole text).text`` exactly, for any chunking, and after ``flush()``
    ``counts`` equals ``redact(whole text).counts`` (see the module docstring).

    What is held back is the text after the last break: usually the last word, more
    after a number, after ``Bearer``, or inside a PEM block. Not thread-safe; one
    instance per stream. Dropping it without ``flush()`` discards the held text,
    which is what a cancelled stream wants.
    """

    def __init__(self) -> None:
        self._held = ""  # text since the last break
        self._pending: list[str] = []  # chunks since, not yet joined
        self._checked = 0  # no cut c <= _checked of the joined text is a break
        self._counts: dict[str, int] = {}
        self._flushed = False

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the part now safe to emit (may be ``""``)."""
        if self._flushed:
            raise ValueError("feed() after flush(): the stream has ended")
        if not chunk:
            return ""
        self._pending.append(chunk)
        if not _WS.search(chunk):  # no whitespace, so no new break
            return ""
        text = self._held + "".join(self._pending)
        self._pending.clear()
        cut = _last_break(text, self._checked)
        if cut == 0:
            self._held, self._checked = text, len(text)
            return ""
        # the cuts after `cut` were just found not to be breaks, and stay so
        self._held, self._checked = text[cut:], len(text) - cut
        return self._take(text[:cut])

    def flush(self) -> str:
        """End of stream: everything held back, redacted. Later calls return ``""``."""
        text = self._held + "".join(self._pending)
        self._held, self._pending, self._checked = "", [], 0
        self._flushed = True
        return self._take(text) if text else ""

    @property
    def counts(self) -> Mapping[str, int]:
        """Secrets replaced so far, per kind (final after ``flush()``)."""
        return _frozen_counts(self._counts)

    def _take(self, text: str) -> str:
        done = redact(text)
        for kind, n in done.counts.items():
            self._counts[kind] = self._counts.get(kind, 0) + n
        return done.text
