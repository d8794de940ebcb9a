"""``Call``: what a caller asks for, as a frozen, self-validating value.

Every class here checks all of its fields on construction and raises one
``ValidationError`` naming each bad field, so a bad ``Call`` built in Python
fails as clearly as a bad JSON body at the gateway (which goes through
``switchman._convert``).
"""

from __future__ import annotations

import functools
import math
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

MAX_PROMPT_CHARS: Final = 1_000_000
MAX_TIMEOUT_MS: Final = 600_000
MAX_SEED: Final = 2**31 - 1
#: acknowledgements a caller must give to turn redaction off
REDACTION_ACKNOWLEDGEMENTS: Final = frozenset(
    {"output_may_contain_secrets", "output_may_contain_personal_data"}
)


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationError(errors)


@functools.cache
def _options(allowed: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` (cached: ``get_args`` is slow, and every call validates)."""
    return get_args(allowed)


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
    elif not low <= float(value) <= high:  # type: ignore[arg-type]
        errors.append(
            FieldError(name, f"must be between {_fmt(low)} and {_fmt(high)}; got {value!r}")
        )


@attrs.frozen(kw_only=True)
class Message:
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


@attrs.frozen(kw_only=True)
class Caller:
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
        return errors


@attrs.frozen(kw_only=True)
class Params:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _number(errors, "temperature", v.temperature, 0, 2)
        _number(errors, "top_p", v.top_p, 0, 1)
        _number(errors, "max_tokens", v.max_tokens, 1, 10_000_000, integer=True)
        _number(errors, "seed", v.seed, 0, MAX_SEED, integer=True)
        if len(v.stop) > 4 or not all(isinstance(s, str) and s for s in v.stop):
            errors.append(FieldError("stop", "must be at most 4 non-empty strings"))
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
    enabled: bool = False
    acknowledgements: tuple[str, ...] = ()
    reason: str = ""


@attrs.frozen(kw_only=True)
class RedactionOptions:
    mode: RedactionMode = "auto"
    override: RedactionOverride | None = None

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _choice(errors, "mode", v.mode, RedactionMode)
        return errors


@attrs.frozen(kw_only=True)
class Options:
    verbosity: Verbosity = "standard"
    determinism: Determinism = "off"
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    redaction: RedactionOptions = attrs.field(factory=RedactionOptions)
    max_cost_usd: float | None = None
    fallback: tuple[str, ...] = ()

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
        if not all(isinstance(a, str) and a for a in v.fallback):
            errors.append(FieldError("fallback", "must be a list of model aliases"))
        return errors


def _messages(value: Any) -> tuple[Message, ...] | None:
    if value is None:
        return None
    return tuple(m if isinstance(m, Message) else Message(**m) for m in value)


@attrs.frozen(kw_only=True)
class Call:
    """One request to the router. Give ``prompt`` or ``messages``, not both."""

    prompt: str | None = None
    messages: tuple[Message, ...] | None = attrs.field(default=None, converter=_messages)
    model: str = "auto"
    intent: Intent = "unknown"
    caller: Caller = attrs.field(factory=Caller)
    min_trust: TrustTier = "untrusted"
    capabilities: tuple[str, ...] = ()
    params: Params = attrs.field(factory=Params)
    options: Options = attrs.field(factory=Options)
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        _raise_if(self._problems(self))

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        if (v.prompt is None) == (v.messages is None):
            errors.append(FieldError("prompt", "give exactly one of prompt or messages"))
        elif v.prompt is not None:
            if not isinstance(v.prompt, str) or not v.prompt.strip():
                errors.append(FieldError("prompt", "must be a non-empty string"))
        elif v.messages is not None and not any(m.role == "user" for m in v.messages):
            errors.append(FieldError("messages", "must contain at least one user message"))
        chars = len(v.prompt) if isinstance(v.prompt, str) else 0
        chars += sum(len(m.content) for m in v.messages or () if isinstance(m, Message))
        if not errors and chars > MAX_PROMPT_CHARS:
            errors.append(
                FieldError("prompt", f"is too large: more than {MAX_PROMPT_CHARS} characters")
            )
        if not isinstance(v.model, str) or not v.model:
            errors.append(FieldError("model", "must be a model alias, a route name or 'auto'"))
        _choice(errors, "intent", v.intent, Intent)
        _choice(errors, "min_trust", v.min_trust, TrustTier)
        for name, kind in (("caller", Caller), ("params", Params), ("options", Options)):
            if not isinstance(getattr(v, name), kind):
                errors.append(FieldError(name, f"must be a {kind.__name__}"))
        if not all(isinstance(c, str) and c for c in v.capabilities):
            errors.append(FieldError("capabilities", "must be a list of capability tags"))
        return errors

    def prompt_chars(self) -> int:
        if self.prompt is not None:
            return len(self.prompt)
        return sum(len(m.content) for m in self.messages or ())

    def chat(self) -> tuple[Message, ...]:
        """The conversation as messages (a bare prompt becomes one user turn)."""
        if self.messages is not None:
            return self.messages
        return (Message(role="user", content=self.prompt or ""),)
