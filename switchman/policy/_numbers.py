"""Phone and card numbers in one block of model output (``switchman.policy._redaction``).

What counts as one is described in that module's docstring ("What counts as a phone or
card number"); this module finds them: ``number_hits(block)`` gives the span and kind
(``phone`` or ``card_number``) of each. It also says where one may be: whether a text
may hold one at all (``number_triggered``), and whether one may go on across a cut of
a stream (``number_held``, the redactor's number rule). Pure and synchronous.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Final

import phonenumbers

#: (start, end, kind) of a number found in a block
NumberHit = tuple[int, int, str]

# the spaces a number's groups may be set apart by: a space, a no-break space (U+00A0), a
# thin space (U+2009) or a narrow no-break space (U+202F); and the dashes a phone's may
# be: a hyphen-minus, a non-breaking hyphen (U+2011) or an en dash (U+2013)
_SPACES = " \u00a0\u2009\u202f"
_DASHES = "\u2011\u2013-"
# phone and card separators: at most three of them between two digits
SEP = rf"[{_SPACES}./(){_DASHES}]"
# what a number must not be glued to: an ASCII letter, digit or _, or a Latin letter with
# an accent (Latin-1, Latin Extended-A and B). A letter of another script may touch it
# (Chinese, Japanese, Korean and Cyrillic text glue numbers to words: 卡号4111..., тел+7...)
WORD = "A-Za-z0-9_\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_DIGIT_GROUP = re.compile(r"[0-9]+")
_DIGIT_RUN = re.compile(rf"(?<![{WORD}+])\+?\(?[0-9](?:{SEP}{{0,3}}[0-9])*(?![{WORD}])")
# a US number as people write it: 3-3-4, the area code in parentheses or the groups
# apart (its punctuation is checked after: spaces alone do not make a phone number)
_US_SEP = rf"[{_SPACES}.{_DASHES}]"
_US_PHONE = re.compile(
    rf"(?<![{WORD}+])(?<![{WORD}][./{_DASHES}])"
    rf"(?:1{_US_SEP})?"
    rf"(?:\([0-9]{{3}}\)[{_SPACES}]?|[0-9]{{3}}{_US_SEP})"
    rf"[0-9]{{3}}{_US_SEP}[0-9]{{4}}"
    rf"(?![{WORD}])(?![./{_DASHES}][{WORD}])"
)
# the separators phonenumbers does not read as such, as ones it does
_US_PUNCTUATED = re.compile(rf"[.({_DASHES}]")  # a US number's punctuation (not spaces alone)
_PHONE_SEPARATORS: Final = str.maketrans({"\u2009": " ", "\u202f": " "})


def _luhn_ok(digits: str) -> bool:
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = int(ch)
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix_ok(digits: str, n: int) -> bool:
    """A number of ``n`` digits starting with ``digits`` (four of them, or more)
    starts like a card of a major network of that length (IIN ranges)."""
    if digits[0] not in "2345689":
        return False
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa (and Elo's 4 ranges)
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if two in (34, 37):  # American Express
        return n == 15
    if 300 <= three <= 305 or two in (36, 38, 39):  # Diners Club
        return n >= 14
    if n >= 16 and (
        digits.startswith(("6011", "65", "62")) or 644 <= three <= 649 or 3528 <= four <= 3589
    ):
        return True  # Discover, UnionPay, JCB
    if 2200 <= four <= 2204:  # Mir
        return n >= 16
    # Maestro (50, 56-69) at 16 to 19 digits, which holds Elo's, Verve's and RuPay's 50,
    # 60 and 65 ranges; its 12 to 15 are left: too many other numbers have them (an
    # EAN-13 barcode, 690... in China)
    if two == 50 or 56 <= two <= 69:
        return n >= 16
    if two in (81, 82) or three == 508:  # RuPay
        return n == 16
    return four == 9792 and n == 16  # Troy


#: what may set a card's groups apart (one of them throughout)
_CARD_SEPARATORS: Final = frozenset((*_SPACES, "-"))


def _card_shape_ok(run: str, groups: list[re.Match[str]], a: int, b: int) -> bool:
    """Groups ``a..b`` of ``run`` look like a card number: 4-4-4-4(-3) or 4-6-5 set apart
    by spaces (or no-break, thin or narrow no-break spaces) or by dashes, 4.4.4.4, or
    unbroken."""
    if a == b:
        return True
    seps = {run[groups[i].end() : groups[i + 1].start()] for i in range(a, b)}
    sizes = [len(groups[i].group()) for i in range(a, b + 1)]
    if seps == {"."}:
        return sizes == [4, 4, 4, 4]
    if len(seps) != 1 or (seps.pop() not in _CARD_SEPARATORS):
        return False
    return sizes[0] == 4 and all(s in (4, 6) for s in sizes[1:-1]) and 1 <= sizes[-1] <= 6


def _after_a_decimal_point(block: str, start: int) -> bool:
    """The digits at ``start`` follow ``<digit>.``: a fraction (0.5401996580683129)."""
    return start >= 2 and block[start - 1] == "." and "0" <= block[start - 2] <= "9"


def _in_list_of_fours(run: str, groups: list[re.Match[str]], a: int, b: int) -> bool:
    """Groups ``a..b`` follow a group of four digits, or come before two, set apart
    like them: a list (``2221 2222 2223 2224 2225 2226``) rather than a card."""
    sep = run[groups[a].end() : groups[a + 1].start()]

    def linked(k: int) -> bool:  # groups k - 1 and k hold four digits, set apart by sep
        return (
            len(groups[k - 1].group()) == 4 == len(groups[k].group())
            and run[groups[k - 1].end() : groups[k].start()] == sep
        )

    return (a > 0 and linked(a)) or (b + 2 < len(groups) and linked(b + 1) and linked(b + 2))


def _windows(
    groups: list[re.Match[str]], lo: int, hi: int, take: Callable[[int, int, int], bool]
) -> None:
    """Offer ``take(a, b, n)`` each window of groups ``a..b`` holding ``n`` digits,
    ``lo <= n <= hi``: leftmost first, then longest; after a taken window, go on
    after it."""
    cum = [0]
    for g in groups:
        cum.append(cum[-1] + len(g.group()))
    a = 0
    while a < len(groups):
        following = a + 1
        b = bisect.bisect_right(cum, cum[a] + hi) - 2  # the last b within ``hi`` digits
        while b >= a and cum[b + 1] - cum[a] >= lo:
            if take(a, b, cum[b + 1] - cum[a]):
                following = b + 1
                break
            b -= 1
        a = following


def _card_hits(block: str, m: re.Match[str], groups: list[re.Match[str]]) -> list[NumberHit]:
    """The card numbers in the run ``m`` of ``block``, its groups of digits ``groups``."""
    run, offset = m.group(), m.start()
    hits: list[NumberHit] = []

    def take(a: int, b: int, n: int) -> bool:
        head = groups[a].group()
        if a < b and (len(head) != 4 or _in_list_of_fours(run, groups, a, b)):
            return False
        if _after_a_decimal_point(block, offset + groups[a].start()):
            return False
        if not _card_prefix_ok(head, n):
            return False
        if not _card_shape_ok(run, groups, a, b):
            return False
        if not _luhn_ok("".join(g.group() for g in groups[a : b + 1])):
            return False
        start, end = offset + groups[a].start(), offset + groups[b].end()
        hits.append((start, end, "card_number"))
        return True

    _windows(groups, 13, 19, take)
    return hits


#: at most this many phonenumbers look-ups for one international run (~25 µs each)
_PHONE_TRIES: Final = 8


def _valid_phone(text: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(text.translate(_PHONE_SEPARATORS), region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def _international_hit(run: str, offset: int, groups: list[re.Match[str]]) -> NumberHit | None:
    """The longest valid number made of the first groups of a run that starts with
    ``+`` or ``00``, however it is grouped; what follows is left to the rest."""
    plus = run.startswith("+")
    skip = 0 if plus else 2  # the digits of the 00 prefix
    cum = 0
    ends = []  # (digits, end) after each group
    for g in groups:
        cum += len(g.group())
        ends.append((cum - skip, g.end()))
    tries = _PHONE_TRIES
    for digits, end in reversed(ends):
        if digits > 17:  # E.164 allows 15, a "(0)" and an odd digit aside
            continue
        if digits < 7 or tries == 0:
            break
        tries -= 1
        candidate = run[:end] if plus else "+" + run[2:end]
        if _valid_phone(candidate, None):
            return (offset, offset + end, "phone")
    return None


def _dialled_abroad(groups: list[re.Match[str]]) -> bool:
    """The groups start with "00" and a country code, then a group not led by a zero
    (unlike a column of zero-padded numbers: ``0053 0323 00068``)."""
    first = groups[0].group()
    if not first.startswith("00") or len(first) > 5:
        return False
    if len(first) == 2:  # "00 44 20 ..."
        groups = groups[1:]
        first = "00" + groups[0].group() if groups else "000"
    return first[2] != "0" and len(groups) > 1 and not groups[1].group().startswith("0")


def number_hits(block: str) -> list[NumberHit]:
    hits: list[NumberHit] = []
    for m in _DIGIT_RUN.finditer(block):
        run = m.group()
        if len(run) < 7:
            continue
        groups = list(_DIGIT_GROUP.finditer(run))
        ndigits = sum(len(g.group()) for g in groups)
        if ndigits < 7:
            continue
        if run.startswith("+") or _dialled_abroad(groups):
            hit = _international_hit(run, m.start(), groups)
            if hit is not None:
                hits.append(hit)
        if ndigits >= 13 and not run.startswith("+"):
            hits.extend(_card_hits(block, m, groups))
    if "-" in block or "." in block or "(" in block or not block.isascii():
        for m in _US_PHONE.finditer(block):
            number = m.group()
            if _US_PUNCTUATED.search(number) and _valid_phone(number, "US"):
                hits.append((m.start(), m.end(), "phone"))
    return hits


# -- the redactor's hold on numbers (switchman.policy._redaction) --------------------

#: Digits hold a stream back for at most this many characters before the word still
#: arriving: a cut further from the last break is a break.
NUMBER_HOLD_LIMIT: Final = 96
# a phone or card number is kept whole if it starts at most this many characters
# before a cut inside it, counted from its run's start, a "+" or a "("
_NUMBER_SPAN: Final = 32

_SEPARATORS: Final = frozenset(f"{_SPACES}./(){_DASHES}")
# a run of digits and separators starts after this: a character other than those, a
# "(" (which may start a number), or four separators in a row
_RUN_START = re.compile(rf"[^0-9{_SPACES}./){_DASHES}]|{SEP}{{4}}")
_GLUED = re.compile(f"[{WORD}]")
_SIX_MORE = rf"(?:{SEP}{{0,3}}[0-9]){{6}}"
# Every phone or card number number_hits finds contains a match of this, which starts
# where a group of digits does. One character class comes first, so that re skips
# fast to a digit, "+" or "(" (40 times faster on prose than alternatives each led by
# a look-behind), and the look-behind right after it skips fast through digits.
NUMBER_TRIGGER = re.compile(
    r"[+(0-9](?<![0-9].)(?:"
    rf"(?<=\+)\(?[0-9]{_SIX_MORE}"  # international: "+" and seven digits
    rf"|(?<=0)0{SEP}{{0,3}}[1-9]{_SIX_MORE}"  # international: "00" and seven digits
    r"|(?<=[2-689])(?<![0-9]\.[2-689])[0-9]{3}"  # card
    rf"(?:[0-9]{{9}}|[{_SPACES}.-][0-9]{{4}}(?:[0-9]{{2}})?(?![0-9]))"
    rf"|(?<=[0-9])[0-9]{{2}}(?:\)[{_SPACES}]?|{_US_SEP})[0-9]{{3}}{_US_SEP}[0-9]{{4}}"  # US
    r")"
)


def number_triggered(text: str) -> bool:
    """Whether ``text`` may hold a phone or card number (a ``NUMBER_TRIGGER`` match)."""
    return has_ascii_digit(text) and NUMBER_TRIGGER.search(text) is not None


def has_ascii_digit(text: str) -> bool:
    """Whether ``text`` holds a digit 0 to 9."""
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


def digit_before(text: str, c: int, b: int) -> int:
    """The digit a number could go on from across the cut ``c``, or -1.

    That is a digit in ``text[b:c]`` followed only by separators up to ``c``, at most
    three of them, the last the whitespace before ``c``, a space, a no-break space, a
    thin space or a narrow no-break space.
    """
    if text[c - 1] not in _SPACES:
        return -1
    low = max(b, c - 4)
    for d in range(c - 2, low - 1, -1):
        ch = text[d]
        if "0" <= ch <= "9":
            return d
        if ch not in _SEPARATORS:
            return -1
    return -1


def number_held(text: str, b: int, c: int) -> bool:
    """Whether a phone or card number may go on across the cut ``c`` of the block
    starting at ``b``; reads ``text[b:c]`` only.

    It may if a place where one can start lies at most ``_NUMBER_SPAN`` characters
    before ``c``, with only digits and separators in between: the start of the run
    (of its second group if the first is glued to a word), a ``(``, a ``+``, the end
    of four separators in a row, or ``b``.
    """
    d = digit_before(text, c, b)
    if d < 0 or c - b > NUMBER_HOLD_LIMIT:
        return False
    g = d  # the group of digits holding d starts at g
    while g > b and "0" <= text[g - 1] <= "9":
        g -= 1
    if g == b:
        return c - b <= _NUMBER_SPAN
    ch = text[g - 1]
    if ch not in _SEPARATORS:  # the run starts at g, unless glued to a word (_DIGIT_RUN's)
        return _GLUED.match(ch) is None and c - g <= _NUMBER_SPAN
    # g is a later group of a run: whatever ends the run before it is within reach
    low = max(b, c - _NUMBER_SPAN)
    return low == b or _RUN_START.search(text, low, g) is not None
