"""``Call``: what a caller asks for, as a frozen, self-validating value.

Every class here checks all of its fields on construction and raises one
``ValidationError`` naming each bad field, so a bad ``Call`` built in Python
fails as clearly as a bad JSON body at the gateway (which goes through
``switchman._convert``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

import attrs

from switchman._errors import FieldError, ValidationError

Intent = Literal[
    "lookup",
    "summarize",
    "extract",
    "compare",
    "draft",
    "classify",
    "reason",
    "critique",
    "translate",
    "code",
    "unknown",
]
TrustTier = Literal["untrusted", "standard", "trusted"]
Role = Literal["system", "user", "assistant"]
Verbosity = Literal["minimal", "standard", "full"]
Determinism = Literal["strict", "best_effort", "off"]
RedactionMode = Literal["auto", "off"]

INTENTS: Final = frozenset(get_args(Intent))
TRUST_TIERS: Final = ("untrusted", "standard", "trusted")
TRUST_RANK: Final = {tier: rank for rank, tier in enumerate(TRUST_TIERS)}

MAX_PROMPT_CHARS: Final = 4_000_000
MAX_TIMEOUT_MS: Final = 600_000
MAX_SEED: Final = 2**31 - 1
#: the longest model, route or capability name a call may give (every catalog name is far
#: shorter; an error quoting a longer one would echo it back)
MAX_NAME_CHARS: Final = 256
#: the most models ``options.fallback`` may list, and capabilities a call may require (an
#: unknown name is looked up for what it may have meant: a list of thousands held the loop)
MAX_FALLBACK: Final = 32
MAX_CAPABILITIES: Final = 32
#: acknowledgements a caller must give to turn redaction off
REDACTION_ACKNOWLEDGEMENTS: Final = frozenset(
    {"output_may_contain_secrets", "output_may_contain_personal_data"}
)


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationError(errors)


def _tuple(value: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A list of strings as a tuple (so the frozen value holds a tuple, and a list may be
    given); anything else is kept as given, for validation to name (a lone string
    stays a string: ``stop="END"`` is an error, not three stop sequences)."""
    return tuple(value) if isinstance(value, list) else value


#: id of a ``Literal`` -> (the Literal, its values); by identity, since hashing a
#: ``Literal`` hashes all its values (about 1 µs for ``Intent``), and every call validates
_OPTIONS: dict[int, tuple[Any, tuple[str, ...]]] = {}


def _options(allowed: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` (cached: ``get_args`` is slow, and every call validates)."""
    hit = _OPTIONS.get(id(allowed))
    if hit is not None and hit[0] is allowed:
        return hit[1]
    options: tuple[str, ...] = get_args(allowed)
    _OPTIONS[id(allowed)] = (allowed, options)  # (kept alive here: its id stays its own)
    return options


def _choice(errors: list[FieldError], name: str, value: object, allowed: Any) -> None:
    options = _options(allowed)
    if value not in options:
        errors.append(FieldError(name, f"must be one of {', '.join(options)}; got {value!r}"))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _number(
    errors: list[FieldError],
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    integer: bool = False,
) -> None:
    if value is None:
        return
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        errors.append(FieldError(name, f"must be {kind}; got {type(value).__name__}"))
    elif isinstance(value, float) and not math.isfinite(value):
        errors.append(FieldError(name, "must be finite"))
    elif not low <= value <= high:  # type: ignore[operator]
        # (compared as they are: an integer too large for a float is out of range, not an
        # OverflowError)
        errors.append(
            FieldError(name, f"must be between {_fmt(low)} and {_fmt(high)}; got {_shown(value)}")
        )


def _shown(value: object) -> str:
    """``value`` as an error names it: a huge integer by its size (its repr could be
    thousands of digits, and Python refuses past 4,300)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    return repr(value)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent on as UTF-8 text (a lone surrogate), or None.

    ``json.loads`` accepts ``"\\ud800"``; such a string can be neither encoded for a
    provider nor written back in a JSON reply, so it is refused where it comes in.
    """
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must be valid Unicode text: lone surrogate at position {exc.start}"
    return None


#: a UTF-16 surrogate: never a character of its own in a Python string from valid text
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")


def valid_text(value: str) -> str:
    """``value`` with every lone surrogate (an upstream's ``"\\ud800"`` in JSON, which
    ``json.loads`` keeps) replaced by U+FFFD, as a decoder replaces bytes it cannot read:
    text that can be encoded, written back as JSON and stored. Cheap for ASCII."""
    if value.isascii():
        return value
    return _SURROGATE.sub("\ufffd", value)


def unprintable(value: str) -> str | None:
    """Why ``value`` cannot be a name: a control or format character in it (a line break
    made every answer's ``x-switchman-model`` header a 500, a tab split the learned
    records' keys, bidi controls make a log line read otherwise). None if it can."""
    if value.isprintable():  # (in C: none of those, nor a space but ASCII's)
        return None
    for at, char in enumerate(value):
        if unicodedata.category(char) in _UNPRINTABLE:
            return f"must hold no control or format character; got U+{ord(char):04X} at {at}"
    return None


_UNPRINTABLE: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _text(
    errors: list[FieldError],
    name: str,
    value: object,
    *,
    empty: bool = False,
    blank: bool = False,
    max_chars: int | None = None,
) -> None:
    """A string that can be encoded; non-blank unless ``empty`` (anything) or ``blank``
    (whitespace, as a stop sequence ``"\n"``, but not ``""``); at most ``max_chars``."""
    if not isinstance(value, str) or not (empty or value.strip() or (blank and value)):
        errors.append(
            FieldError(name, "must be a string" if empty else "must be a non-empty string")
        )
        return
    if max_chars is not None and len(value) > max_chars:
        errors.append(FieldError(name, f"must be at most {max_chars} characters; got {len(value)}"))
        return
    problem = text_problem(value)
    if problem is not None:
        errors.append(FieldError(name, problem))


def _strings(
    errors: list[FieldError],
    name: str,
    value: object,
    *,
    max_items: int | None = None,
    blank: bool = False,
    max_chars: int | None = None,
) -> None:
    """A list or tuple of at most ``max_items`` non-empty strings (whitespace-only ones too
    if ``blank``) of at most ``max_chars`` each. A bare string is refused: it would be taken
    character by character (``stop="END"`` as three stop strings)."""
    if isinstance(value, str):
        errors.append(FieldError(name, "must be a list of strings, not a string"))
        return
    if not isinstance(value, list | tuple):
        errors.append(FieldError(name, f"must be a list of strings; got {type(value).__name__}"))
        return
    if max_items is not None and len(value) > max_items:
        errors.append(FieldError(name, f"must be at most {max_items} strings; got {len(value)}"))
        return  # (not one error per item of a list of thousands)
    for i, item in enumerate(value):
        _text(errors, f"{name}[{i}]", item, blank=blank, max_chars=max_chars)


#: how deep free-form JSON (``metadata``) may nest: results, traces and the job store
#: write it back, and a document of hundreds of levels is no one's metadata
MAX_JSON_DEPTH = 32
#: how large free-form JSON may be, in characters as JSON (about: strings and keys with
#: their quotes, a number's digits, separators): every job stores it, and retention counts
#: jobs, not bytes (3.5 MB a job, of text or of numbers, let one key fill a disk)
MAX_JSON_CHARS = 65_536


def _json_text(errors: list[FieldError], name: str, value: object) -> None:
    """Every string inside ``value`` (keys too) must be encodable, it nests at most
    ``MAX_JSON_DEPTH`` levels and comes to at most ``MAX_JSON_CHARS`` characters as JSON;
    walked without recursion."""
    pending: deque[tuple[str, object, int]] = deque([(name, value, 0)])
    chars = 0
    while pending:
        path, item, depth = pending.popleft()
        chars += 1  # (its separator)
        if isinstance(item, str):
            chars += len(item) + 2
            problem = text_problem(item)
            if problem is not None:
                errors.append(FieldError(path, problem))
        elif isinstance(item, Mapping | list | tuple) and depth >= MAX_JSON_DEPTH:
            errors.append(FieldError(name, f"nests deeper than {MAX_JSON_DEPTH} levels"))
            return
        elif isinstance(item, Mapping):
            chars += 2
            for key, sub in item.items():
                chars += len(key) + 3 if isinstance(key, str) else 3
                if isinstance(key, str) and text_problem(key) is not None:
                    errors.append(FieldError(path, f"key {key!r} {text_problem(key)}"))
                    continue
                pending.append((f"{path}.{key}", sub, depth + 1))
        elif isinstance(item, list | tuple):
            chars += 2
            pending.extend((f"{path}[{i}]", sub, depth + 1) for i, sub in enumerate(item))
        elif item is None or isinstance(item, bool):
            chars += 5
        elif isinstance(item, int):  # (its digits, without writing a number of 400 out)
            chars += int(item.bit_length() * 0.302) + 2
        elif isinstance(item, float):
            chars += 24
            if not math.isfinite(item):
                errors.append(FieldError(path, "must be a finite number (JSON has no NaN)"))
        else:
            errors.append(FieldError(path, f"is not a JSON value ({type(item).__name__})"))
        if chars > MAX_JSON_CHARS:
            errors.append(
                FieldError(name, f"comes to more than {MAX_JSON_CHARS:,} characters as JSON")
            )
            return


def field_name(key: object) -> str:
    """``key`` as it can appear in an error's field path: a lone surrogate is escaped
    (``\\ud800``), so the error itself can always be written back as JSON."""
    name = str(key)
    if text_problem(name) is None:
        return name
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


@attrs.frozen(kw_only=True)
class Message:
    """One turn. The ``Call`` carrying it also checks ``content`` is non-empty, valid text
    (``messages[1].content``); adapters and the simulator's wire build messages too."""

    role: Role
    content: str

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _choice(errors, "role", v.role, Role)
        if not isinstance(v.content, str):
            errors.append(FieldError("content", "must be a string"))
        return errors


_MESSAGE_KEYS: Final = ("role", "content")


@attrs.frozen(kw_only=True)
class Caller:
    """Who makes the call: ``handle`` names the team or application (its spend, its
    ``[budgets.callers.HANDLE]`` budget, its jobs); ``account_id`` is free for the
    application's own use; ``key_id`` is the gateway key's variable name, which the gateway
    sets (never the secret)."""

    handle: str = "anonymous"
    account_id: str = ""
    key_id: str | None = None

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        if not isinstance(v.handle, str) or not v.handle or len(v.handle) > 200:
            errors.append(FieldError("handle", "must be a non-empty string of at most 200 chars"))
        else:
            found = len(errors)
            _text(errors, "handle", v.handle)
            # (it names spend, jobs and log lines)
            if len(errors) == found and (why := unprintable(v.handle)) is not None:
                errors.append(FieldError("handle", why))
        _text(errors, "account_id", v.account_id, empty=True)
        if v.key_id is not None:
            _text(errors, "key_id", v.key_id, empty=True)
        return errors


@attrs.frozen(kw_only=True)
class Params:
    """Sampling, passed on to the model: ``temperature`` 0..2, ``top_p`` 0..1,
    ``max_tokens`` ≥ 1 (None: what the verbosity asks for, within the model's room),
    ``seed`` 0..2^31-1, ``stop`` at most 4 strings. Out-of-range values raise
    ``ValidationError`` naming each field."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _number(errors, "temperature", v.temperature, 0, 2)
        _number(errors, "top_p", v.top_p, 0, 1)
        _number(errors, "max_tokens", v.max_tokens, 1, 10_000_000, integer=True)
        _number(errors, "seed", v.seed, 0, MAX_SEED, integer=True)
        _strings(errors, "stop", v.stop, max_items=4, blank=True)  # "\n" is a common stop
        return errors


@attrs.frozen(kw_only=True)
class Timeouts:
    """Milliseconds. ``ttft_ms``: first token; ``soft_ms``: one attempt; ``hard_ms``: the call."""

    ttft_ms: int | None = None
    soft_ms: int | None = None
    hard_ms: int | None = None

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        for name in ("ttft_ms", "soft_ms", "hard_ms"):
            _number(errors, name, getattr(v, name), 1, MAX_TIMEOUT_MS, integer=True)
        if not errors:
            hard = v.hard_ms
            if hard is not None and v.soft_ms is not None and v.soft_ms > hard:
                errors.append(FieldError("soft_ms", "must not exceed hard_ms"))
            if hard is not None and v.ttft_ms is not None and v.ttft_ms > hard:
                errors.append(FieldError("ttft_ms", "must not exceed hard_ms"))
        return errors


@attrs.frozen(kw_only=True)
class RedactionOverride:
    """Turning redaction off: ``enabled`` must be ``True`` itself (not merely truthy), with
    every acknowledgement and a reason; the dispatcher refuses anything less."""

    enabled: bool = False
    acknowledgements: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        if not isinstance(v.enabled, bool):
            errors.append(
                FieldError("enabled", f"must be true or false; got {type(v.enabled).__name__}")
            )
        _strings(errors, "acknowledgements", v.acknowledgements)
        _text(errors, "reason", v.reason, empty=True)
        return errors


@attrs.frozen(kw_only=True)
class RedactionOptions:
    """Redaction of the answer: ``auto`` (always on); ``off`` only with an ``override``
    whose acknowledgements are all given, else the call fails ``permission_denied``."""

    mode: RedactionMode = "auto"
    override: RedactionOverride | None = None

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _choice(errors, "mode", v.mode, RedactionMode)
        if v.override is not None and not isinstance(v.override, RedactionOverride):
            errors.append(FieldError("override", "must be a RedactionOverride or None"))
        return errors


@attrs.frozen(kw_only=True)
class Options:
    """How the call is run.

    ``verbosity`` (``minimal``/``standard``/``full``) sets the output room a model must
    have and the default ``max_tokens``; ``determinism`` ``strict`` needs a seed, forces
    temperature 0 and skips models that cannot take a seed (``best_effort``: temperature 0
    unless given, the seed where the model takes one); ``timeouts`` bound the first token,
    each attempt and the whole call; ``max_cost_usd`` skips models whose estimated cost is
    above it; ``fallback`` lists the models (aliases, or ``auto``) that may be tried after the
    named model or route's own chain.
    """

    verbosity: Verbosity = "standard"
    determinism: Determinism = "off"
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    redaction: RedactionOptions = attrs.field(factory=RedactionOptions)
    max_cost_usd: float | None = None
    fallback: tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _choice(errors, "verbosity", v.verbosity, Verbosity)
        _choice(errors, "determinism", v.determinism, Determinism)
        _number(errors, "max_cost_usd", v.max_cost_usd, 0, 1_000_000)
        if not isinstance(v.timeouts, Timeouts):
            errors.append(FieldError("timeouts", "must be a Timeouts"))
        if not isinstance(v.redaction, RedactionOptions):
            errors.append(FieldError("redaction", "must be a RedactionOptions"))
        _strings(errors, "fallback", v.fallback, max_items=MAX_FALLBACK, max_chars=MAX_NAME_CHARS)
        return errors


def _messages(value: Any) -> Any:
    """Messages as a tuple; a ``{"role", "content"}`` mapping that makes a valid
    ``Message`` becomes one. Anything else is kept as given, for ``Call`` to name
    (``messages[1].role``) beside its other errors instead of raising here."""
    if not isinstance(value, list | tuple):
        return value
    return tuple(_message(m) for m in value)


def _message(m: Any) -> Any:
    if isinstance(m, Mapping) and set(m) == set(_MESSAGE_KEYS):
        try:
            return Message(role=m["role"], content=m["content"])
        except ValidationError:
            pass
    return m


def _message_problems(errors: list[FieldError], value: object) -> int:
    """Problems of ``messages``; returns the characters of its valid contents."""
    if isinstance(value, str):
        errors.append(FieldError("messages", "must be a list of messages, not a string"))
        return 0
    if not isinstance(value, list | tuple):
        kind = type(value).__name__
        errors.append(FieldError("messages", f"must be a list of messages; got {kind}"))
        return 0
    before = len(errors)
    roles: set[object] = set()
    chars = 0
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        role: object
        content: object
        if isinstance(m, Message):
            role, content = m.role, m.content
        elif isinstance(m, Mapping):
            errors.extend(
                FieldError(f"{where}.{field_name(k)}", "unknown field")
                for k in m
                if k not in _MESSAGE_KEYS
            )
            errors.extend(
                FieldError(f"{where}.{k}", "is required") for k in _MESSAGE_KEYS if k not in m
            )
            role, content = m.get("role"), m.get("content", "")
            if "role" in m:
                _choice(errors, f"{where}.role", role, Role)
        else:
            kind = type(m).__name__
            errors.append(
                FieldError(where, f"must be a Message or a role/content mapping; got {kind}")
            )
            continue
        if not isinstance(m, Mapping) or "content" in m:
            _text(errors, f"{where}.content", content)
        roles.add(role)
        chars += len(content) if isinstance(content, str) else 0
    if len(errors) == before and "user" not in roles:
        errors.append(FieldError("messages", "must contain at least one user message"))
    return chars


@attrs.frozen(kw_only=True)
class Call:
    """One request to the router. Give ``prompt`` or ``messages``, not both.

    ``messages`` may be ``Message`` values or ``{"role": ..., "content": ...}`` mappings
    (converted); every string must be valid Unicode text (no lone surrogates).
    """

    prompt: str | None = None
    messages: tuple[Message, ...] | None = attrs.field(default=None, converter=_messages)
    model: str = "auto"
    intent: Intent = "unknown"
    caller: Caller = attrs.field(factory=Caller)
    min_trust: TrustTier = "untrusted"
    capabilities: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    params: Params = attrs.field(factory=Params)
    options: Options = attrs.field(factory=Options)
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        chars = 0
        if (v.prompt is None) == (v.messages is None):
            errors.append(FieldError("prompt", "give exactly one of prompt or messages"))
        elif v.prompt is not None:
            _text(errors, "prompt", v.prompt)
            chars = len(v.prompt) if isinstance(v.prompt, str) else 0
        else:
            chars = _message_problems(errors, v.messages)
        if not errors and chars > MAX_PROMPT_CHARS:
            where = "prompt" if v.prompt is not None else "messages"
            errors.append(
                FieldError(where, f"is too large: more than {MAX_PROMPT_CHARS:,} characters")
            )
        if not isinstance(v.model, str) or not v.model:
            errors.append(FieldError("model", "must be a model alias, a route name or 'auto'"))
        else:
            _text(errors, "model", v.model, max_chars=MAX_NAME_CHARS)
        _choice(errors, "intent", v.intent, Intent)
        _choice(errors, "min_trust", v.min_trust, TrustTier)
        for name, kind, like in (
            ("caller", Caller, 'handle="team-a"'),
            ("params", Params, "max_tokens=200"),
            ("options", Options, 'fallback=("auto",)'),
        ):
            if not isinstance(value := getattr(v, name), kind):
                shown = f"switchman.{kind.__name__}"
                problem = f"must be a {shown}, such as {shown}({like}); got {type(value).__name__}"
                errors.append(FieldError(name, problem))
        _strings(
            errors,
            "capabilities",
            v.capabilities,
            max_items=MAX_CAPABILITIES,
            max_chars=MAX_NAME_CHARS,
        )
        if not isinstance(v.metadata, Mapping):
            errors.append(FieldError("metadata", "must be a mapping (a JSON object)"))
        else:
            _json_text(errors, "metadata", v.metadata)
        return errors

    def chat(self) -> tuple[Message, ...]:
        """The conversation as messages (a bare prompt becomes one user turn)."""
        if self.messages is not None:
            return self.messages
        return (Message(role="user", content=self.prompt or ""),)
