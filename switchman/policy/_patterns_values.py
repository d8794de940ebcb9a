"""The words redaction's rules share: the kinds and their replacement text, the names
that say a value is a secret (a password's, a secret key's), and the tests telling a
secret's value from what only stands for one or describes it (a placeholder, code, a
length, a field's description), with ``_KEEP``, which a rule answers for a placeholder.

Read by ``_patterns`` (one block's rules), ``_patterns_credentials`` (HTTP and
command-line credentials) and ``_patterns_tables`` (a table's secret columns).
Pure and synchronous.
"""

from __future__ import annotations

import re
from typing import Final

#: Redaction kinds, in report order.
KINDS: Final = (
    "api_key",
    "bearer_token",
    "private_key",
    "jwt",
    "url_password",
    "password",
    "email",
    "phone",
    "card_number",
)

#: A private key is redacted from its header to its END line if that ends within this
#: many characters of its BEGIN (else through its body's base64 run); a stream is held
#: back that long at most.
PEM_HOLD_LIMIT: Final = 65_536


#: a quoted value after a secret's name (or curl's -u) may hold spaces if it is this long at most
QUOTED_SPACED: Final = 48


def tag(kind: str) -> str:
    """The replacement text for a secret of ``kind``."""
    return f"[REDACTED:{kind}]"


def _ascii_but(chars: str) -> str:
    """A character class body: printable ASCII but a space and ``chars``."""
    return "".join(re.escape(chr(n)) for n in range(0x21, 0x7F) if chr(n) not in chars)


def _value_but(chars: str) -> str:
    """A character class body: a value's characters, printable ASCII but a space and
    ``chars``, and the letters and digits of any script (``Contraseña2024!``, Cyrillic,
    Chinese; no whitespace, punctuation of other scripts or control character)."""
    return r"\w" + _ascii_but(chars)


# a password's and a secret key's names (see _patterns: the values they give)
_PASSWORD_NAME = r"(?:[Pp]assw(?:or)?d|PASSW(?:OR)?D)"
_SECRET_KEY_NAME = (
    r"(?:[Ss]ecret[ _.-]?(?:[Aa]ccess[ _.-]?)?[Kk]ey|SECRET[ _.-]?(?:ACCESS[ _.-]?)?KEY)"
)
# the names of a key or token without a provider's prefix (their values: _patterns): an
# API key's (api_key, apiKey, x-api-key, DATADOG_API_KEY, --api-key), a token's or a
# secret's after a word (GITHUB_TOKEN, TWILIO_AUTH_TOKEN, access_token, x-auth-token,
# client_secret, API_SECRET; accessToken, clientSecret), an account key's (Azure's
# AccountKey=) and a passphrase's; not max_tokens, api_key_id
_WORD_PART = r"[A-Za-z0-9]{1,32}+[_-]"
_TOKEN_NAME = (
    r"(?<![A-Za-z0-9_-])-{0,2}(?:"
    rf"(?:{_WORD_PART}){{0,4}}(?:[Aa]pi|API)[_-]?(?:[Kk]ey|KEY)"
    rf"|(?:{_WORD_PART}){{1,4}}(?:[Tt]oken|TOKEN|[Ss]ecret|SECRET)"
    r"|[a-z][a-z0-9]{1,31}+(?:[A-Z][a-z0-9]{1,31}+){0,3}(?:Token|Secret)"
    r"|(?:[Aa]ccount|ACCOUNT)[_-]?(?:[Kk]ey|KEY)"
    r"|[Pp]assphrase|PASSPHRASE"
    # (alone: ``Secret: <an AWS secret key>`` beside its key id; not an ARN's ``:secret:``)
    r"|(?<!:)(?:[Ss]ecret|SECRET)"
    r")(?![A-Za-z0-9_-])"
)
# A value that stands for a secret rather than being one: wrapped or a variable
# (<password>, {{x}}, ${X}, $X, %X%, [REDACTED:...]), masked (****, xxx, ...), an
# upper-case name (PASSWORD, YOUR_PASSWORD), or words that are one as a whole, in any
# case, run together or joined by spaces, _ or - (password, your-password-here,
# mysecret, changeme, example, db_pass): a word standing for the secret, perhaps after
# words saying whose or which and before words saying where; one holding such a word
# among others is a password (supersecret, compass, secretpw, Secretariat)
_PH_SEP = r"[ _-]?"
_PH_BEFORE = r"(?:your|my|the|some|a|an|new|old|example|sample|dummy|fake|test|user|db|app)"
_PH_WORD = (
    r"(?:pass(?:[ _-]?word|wd|[ _-]?phrase)?s?|pwd|secrets?|(?:api[ _-]?)?key|token"
    r"|change[ _-]?me|example|placeholder|redacted|value)"
)
_PH_AFTER = r"(?:here|goes[ _-]?here|value|placeholder|example)"
_PLACEHOLDER = re.compile(
    r"[<{\[].*|\$(?:[{(].*|\d+|[A-Za-z_]\w*)|%\w+%"
    r"|[*xX.#_?-]+|[A-Z][A-Z_]*"
    rf"|(?i:(?:{_PH_BEFORE}{_PH_SEP}){{0,3}}{_PH_WORD}(?:{_PH_SEP}(?:{_PH_WORD}|{_PH_AFTER})){{0,3}})"
)
# a table's cell with spaces that describes a field rather than holding its value
# (required, 12+ chars; min 8 characters): prose punctuation, a rule's words, many words
_CELL_PROSE = re.compile(
    r".*(?:[,;:] |\.\Z|(?i:\b(?:chars?|characters?|min|minimum|max|maximum|required"
    r"|optional|least|most|digits?|letters?|symbols?|length|long|string|default|none)\b))"
    r"|(?:\S+ +){5,}\S+"
)
# a table's cell giving a length rather than a value (8-64, 12 to 128 chars, 8..64)
_LENGTH_RULE = re.compile(
    r"[0-9]{1,4}[ \t]*(?:-|\u2013|\.\.|to)[ \t]*[0-9]{1,4}(?:[ \t]*(?i:chars?|characters?))?"
)
# code rather than a value: a call, an index, a dotted name (os.environ[, self.password,
# getenv(, {{ vault }}), its names words rather than a password's run of letters and
# digits (``Ab3xY9kQ(m7Zp``, ``Ab3xY9kQ.m7Zp`` are passwords: see ``is_code``)
_CODE = re.compile(
    r"(?P<head>\$?[A-Za-z_]\w*(?:(?:\??\.|->|::)[A-Za-z_]\w*)*)?(?P<open>[(\[{<])(?P<rest>.*)"
    r"|[A-Za-z_]\w*(?:\??\.[A-Za-z_]\w*)+"
)
# what the rest of a call or an index never holds, a password often does
_NOT_CODE = re.compile(r"[!#%^&*+?@|~;</]")
# a regular expression's syntax (``password:\s*(\S+)``, ``(?:password:)``, ``[^&]*``,
# ``\d{4,}``): a pattern matching passwords, not one
_REGEX = re.compile(r"\\[sSdDwWbB]|\(\?[:=!<]|\[\^|\{\d+,\d*\}|\(\.[*+]\??\)")
# a format string's field (``{0}``, ``{}``, ``{name}``) at a value's start
_FIELD = re.compile(r"[{\[<]\w*[}\]>](?:\\[rnt0])*")
_NAMES = re.compile(r"[A-Za-z0-9]+")
_TYPE_ARGS = re.compile(r"[(\[{<]\w*[)\]}>]")  # a bracket of a word alone: [u8], (x), [0]
# a run of letters and digits as a password has them: a digit, upper and lower case
_MIXED = re.compile(r"(?=[^.]*[0-9])(?=[^.]*[A-Z])(?=[^.]*[a-z])[^.]*")
_CLOSER: Final = {"(": ")", "[": "]", "{": "}", "<": ">"}
_PASSWORD_SYMBOLS: Final = frozenset("!#$%*+/=?@^|~")
_DIGIT = re.compile(r"[0-9]")
# Chinese, Japanese and Korean letters (Han, kana, Hangul, and their marks): a value
# written without quotes ends before them, as a sentence in those scripts runs on
# without a space (``password: 至少8个字符``, ``api_key: 在控制台获取apikey2024``)
_CJK_LETTER = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c"
    "\u3040-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\uff66-\uffdc\U00020000-\U0003ffff]"
)


def _has_digit(s: str) -> bool:
    return _DIGIT.search(s) is not None


def password_run(text: str) -> bool:
    """Whether ``text`` holds a run of six letters and digits or more mixing a digit, upper
    and lower case, as a password does (``Hx7qLp2Vz9Rk``)."""
    return any(len(name) >= 6 and _MIXED.fullmatch(name) for name in _NAMES.findall(text))


def is_code(value: str, after: str = "") -> bool:
    """Whether ``value`` (``after`` the text right after it) is code rather than a
    secret's value: a call, an index or a dotted name whose names are words (a name
    holding a digit, upper and lower case is a password's run: ``Ab3xY9kQ(m7Zp``), a
    call's or an index's rest holding none of a password's symbols (``g{oRqG*9h``), a
    value opening with a bracket that closes at its end or right after it
    (``(optional)``, ``{password}``: a value stops before a closing bracket), or a
    regular expression (``\\s*(\\S+)``: ``_REGEX``)."""
    if _REGEX.search(value):  # (a password a regex's pieces are glued to is none)
        return not password_run(_REGEX.sub(" ", value))
    m = _CODE.fullmatch(value.lstrip("&*"))  # (a reference, a pointer: &[u8], *buf[0])
    if m is None:
        return False
    if m["open"] is None:  # a dotted name (``form?.password``: JavaScript's optional chaining)
        return not any(_MIXED.fullmatch(name) for name in value.replace("?", "").split("."))
    if not m["head"]:  # (opens with its bracket)
        value = value.lstrip("&*")
        return _bracketed(value, after) or (  # (&[u8])->Vec<u8>{)
            _TYPE_ARGS.match(value) is not None and not password_run(value)
        )
    rest = m["rest"].replace("?.", ".").removesuffix("+")  # (arr[i]?.pw, pw[:8]+"...")
    return _NOT_CODE.search(rest) is None and not any(
        _MIXED.fullmatch(name) for name in _NAMES.findall(m["head"] + " " + rest)
    )


def _bracketed(value: str, after: str) -> bool:
    """Whether ``value``, opening with a bracket, closes it at its end or right after it
    (``after``: a bare value stops before a closing bracket), no password's run inside
    (``[Hx7qLp2Vz9Rk]`` is a password)."""
    closer = _CLOSER[value[0]]
    closed = value.endswith(closer) or after.startswith(closer)
    return closed and not password_run(value)


def is_placeholder(value: str, after: str = "") -> bool:
    """Whether ``value`` stands for a secret (``_PLACEHOLDER``), ``after`` the text right
    after it: not a value opening with a bracket that does not close at its end or right
    after it (``{m7Zp#Ab3x`` is a password), nor a ``$`` and a password's run of letters
    and digits (``$Ab3xY9kQ2``)."""
    if not _PLACEHOLDER.fullmatch(value):
        return False
    if _FIELD.fullmatch(value):
        return True  # "password={0}\r\n".format(x)
    first = value[0]
    if first in _CLOSER:
        return _bracketed(value, after)
    return not (first == "$" and _MIXED.fullmatch(value[1:]) is not None)


def _bare_value(value: str) -> str:
    """A value written without quotes, up to its first Chinese, Japanese or Korean
    letter (``_CJK_LETTER``)."""
    m = _CJK_LETTER.search(value)
    return value if m is None else value[: m.start()]


def _other_script_prose(value: str) -> bool:
    """Whether ``value``, written without quotes, holds a letter other than ASCII's
    yet not letters, digits and a symbol (``_PASSWORD_SYMBOLS``) all three: a word of
    prose (``größer8Zeichen``) rather than a password (``Contraseña2024!``)."""
    if value.isascii() or not any(ch.isalpha() and not ch.isascii() for ch in value):
        return False
    return not (_has_digit(value) and any(ch in _PASSWORD_SYMBOLS for ch in value))


#: what a pattern's replace function returns for a placeholder: it is left as it is,
#: and no other pattern finds anything inside it (``user:pass@example.com``)
_KEEP: Final = "\x00keep"
