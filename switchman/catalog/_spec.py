"""Configuration values: providers, models, routes, budgets, gateway keys.

These are the shapes the TOML keys of DESIGN.md map onto, merged over the
built-in catalog by ``load_config``. All frozen; ``attrs.evolve`` to change.

Constructing one checks nothing (a ``Config`` is assembled piece by piece).
Each class's ``_problems`` names what is wrong with one value, its types and
ranges, field by field; ``validate_config`` applies them to a whole ``Config``
with the references between its parts, and ``load_config`` uses the same.
The edge converter also calls ``_problems`` when a TOML table does not
structure, so a wrong type in one field does not hide a bad value beside it.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

import attrs

from switchman._call import INTENTS, MAX_NAME_CHARS, TRUST_TIERS, Intent, TrustTier, unprintable
from switchman._errors import FieldError
from switchman.catalog._hints import unknown_field

Kind = Literal["openai", "anthropic", "gemini", "ollama", "sim"]
KINDS: Final = get_args(Kind)
#: the keys of a per-provider or per-caller budget table
LIMIT_KEYS: Final = ("hourly_usd", "daily_usd", "monthly_usd")
#: the largest budget limit (USD) and price (USD per million tokens, or a request's fee)
#: taken: far above any real one, and below what the ledger's nano-dollars can count (a
#: limit of 1e300 passed, then crashed the ledger at every reservation)
MAX_BUDGET_USD: Final = 1e12
MAX_PRICE_USD: Final = 1e6
#: a bound this high is there for the ledger's sake: a number below the low end is told
#: only that (not "between 0 and 1e+12")
BIG: Final = MAX_PRICE_USD
_INTENT_LIST: Final = ", ".join(sorted(INTENTS))
#: the largest integer any numeric field takes (a seed, a count): a 64-bit one's
MAX_INT: Final = 2**63 - 1


def _kind(value: object) -> str:
    return type(value).__name__


def _number(
    errors: list[FieldError],
    name: str,
    value: object,
    low: float,
    *,
    high: float | None = None,
    integer: bool = False,
    optional: bool = False,
    strict: bool = False,
    finite: bool = True,
) -> None:
    """A number (an ``int`` if ``integer``; never a bool) of at least ``low`` (above it if
    ``strict``), at most ``high``; ``None`` only if ``optional``. An integer is at most
    ``MAX_INT`` either way, whatever the bounds (no float holds a 310-digit one)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        kind = "an integer" if integer else "a number"
        errors.append(FieldError(name, f"must be {kind}; got {_kind(value)}"))
    elif isinstance(value, int) and abs(value) > MAX_INT:  # (not echoed: it may be huge)
        if value > 0:
            most = high if high is not None and high < MAX_INT else MAX_INT
            errors.append(FieldError(name, f"must be at most {_bound(most)}"))
        else:
            least = low if low > -MAX_INT else -MAX_INT
            errors.append(FieldError(name, f"must be at least {_bound(least)}"))
    elif isinstance(value, float) and (math.isnan(value) or (finite and math.isinf(value))):
        errors.append(FieldError(name, "must be finite"))
    elif high is not None and not low <= value <= high and not (high >= BIG and value < low):
        errors.append(FieldError(name, f"must be between {low:g} and {high:g}; got {value!r}"))
    elif value < low or (strict and value == low):
        word = "greater than" if strict else "at least"
        errors.append(FieldError(name, f"must be {word} {low:g}; got {value!r}"))


def _bound(value: float) -> str:
    """A bound as a message gives it: an integer in full, a float as ``%g`` does."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _choice(errors: list[FieldError], name: str, value: object, options: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in options:
        errors.append(FieldError(name, f"must be one of {', '.join(options)}; got {value!r}"))


def _flag(errors: list[FieldError], name: str, value: object) -> None:
    if not isinstance(value, bool):
        errors.append(FieldError(name, f"must be true or false; got {_kind(value)}"))


def _string(errors: list[FieldError], name: str, value: object, *, optional: bool = False) -> None:
    """A string, maybe empty; ``None`` only if ``optional``."""
    if not (isinstance(value, str) or (optional and value is None)):
        kind = "a string or None" if optional else "a string"
        errors.append(FieldError(name, f"must be {kind}; got {_kind(value)}"))


#: an environment variable's name, as a shell takes it
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(errors: list[FieldError], name: str, value: object, *, optional: bool) -> None:
    """The name of an environment variable. The value is never echoed: a key pasted in
    its place must not reach a log through the error."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        errors.append(FieldError(name, f"must be a string; got {_kind(value)}"))
    elif not _ENV_NAME.fullmatch(value):
        errors.append(
            FieldError(
                name,
                "must be the name of an environment variable (letters, digits and _, not "
                "starting with a digit); the key itself goes in that variable, not in the file",
            )
        )


#: an HTTP header's name: RFC 9110's token (its tchar, one or more)
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: what an HTTP header's value may hold here: visible ASCII, spaces and tabs
_FIELD_VALUE: Final = re.compile(r"[\x20-\x7e\t]*")


def _header(errors: list[FieldError], name: object, value: object, *, which: str) -> None:
    """An HTTP header a provider is sent with every request: a token for its name, a
    string of visible ASCII (spaces and tabs too) for its value. Neither is echoed if
    wrong, either may hold a credential (a whole ``Authorization: Bearer KEY`` pasted as a
    name): a bad name's problems are the table's, its header named by ``which``."""
    where, whose = f"headers.{name}", ""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        where, whose = "headers", f"{which} value "
        hint = ' (a header is "Name" = "value", not "Name: value")' if ":" in str(name) else ""
        unseen = "; the name is not shown" if isinstance(name, str) and name else ""
        errors.append(
            FieldError(
                where,
                f"{which} name is not an HTTP header name (letters, digits and "
                f"!#$%&'*+-.^_`|~ only): {_name_trouble(name)}{hint}{unseen}",
            )
        )
    if not isinstance(value, str):
        errors.append(FieldError(where, f"{whose}must be a string"))
    elif not _FIELD_VALUE.fullmatch(value):
        errors.append(
            FieldError(
                where,
                f"{whose}must be visible ASCII, spaces and tabs (no line break or other "
                "control character, no letter beyond ASCII); the value is not shown",
            )
        )


#: how a message names a character no header name may hold that ``repr`` would not show well
_SAID: Final = {" ": "a space", "\t": "a tab", "\\": "a backslash"}


def _name_trouble(name: object) -> str:
    """What is wrong with a header's ``name`` that is no token, without showing it: the
    characters no name may hold (three at most), each once (a space, ``':'``, ``U+00E9``)."""
    if not isinstance(name, str) or not name:
        return "it is empty" if name == "" else f"it is not a string ({_kind(name)})"
    bad = list(dict.fromkeys(c for c in name if not _TOKEN.fullmatch(c)))
    said = [_SAID.get(c) or (repr(c) if "!" <= c <= "~" else f"U+{ord(c):04X}") for c in bad[:3]]
    if len(bad) > 3:
        said.append(f"{len(bad) - 3} other characters no name may hold")
    listed = said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"
    return f"it holds {listed}"


def _plain_url(errors: list[FieldError], name: str, value: str) -> None:
    """No user, password, query or fragment in a provider's URL: keys go in headers,
    from the environment, and what rides in a URL ends up in error messages and logs."""
    try:
        parts = urllib.parse.urlsplit(value)
        secret = parts.username is not None or parts.password is not None
    except ValueError:  # (its message quotes the host: not shown)
        host = re.split(r"[/?#]", value.partition("://")[2], maxsplit=1)[0]
        why = (
            ": a host in brackets must be an IPv6 address (such as http://[::1]:8000/v1)"
            if "[" in host or "]" in host
            else ""
        )
        errors.append(FieldError(name, f"is not a valid URL{why}"))
        return
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # (out of range, not a number, or 0: no connection could be made)
        errors.append(FieldError(name, "has a port that is not a number from 1 to 65535"))
    if not parts.hostname:
        errors.append(FieldError(name, "has no host (such as https://api.example.com/v1)"))
    if secret or parts.query or parts.fragment:
        errors.append(
            FieldError(
                name,
                "must not carry a user, a password, a query or a fragment: the key comes "
                "from api_key_env (other credentials from headers)",
            )
        )


def _not_http(value: str) -> str:
    """Why ``value``, a provider's ``base_url`` not starting ``http://`` or ``https://``,
    is wrong. It is never echoed (but empty): a key pasted in its place, or a user and
    password in it, must not reach a log through the error."""
    if not value:
        return "must be an http(s) URL; got ''"
    scheme, sep, _ = value.partition("://")
    if not sep:
        why = "it does not start with http:// or https://"
    elif scheme.lower() in ("http", "https"):
        why = "its scheme must be written in lower case (http:// or https://)"
    else:
        why = "its scheme is not http or https"
    return (
        f"must be an http(s) URL (such as https://api.example.com/v1): {why}; the value is "
        "not shown"
    )


#: the ends of a ``base_url`` that are an endpoint's path, not the API root: each wire
#: kind adds its own (``/chat/completions``, ``/v1/messages``, ``/models/M:action``,
#: ``/api/chat``), and would add it again after these
_ENDPOINTS: Final[Mapping[str, tuple[str, ...]]] = {
    "openai": ("/chat/completions", "/completions", "/responses"),
    "anthropic": ("/v1/messages", "/messages", "/v1"),
    "gemini": ("/models", ":generatecontent", ":streamgeneratecontent"),
    "ollama": ("/api/chat", "/api/generate", "/api/tags", "/api", "/v1"),
}
#: a path segment under which a kind's endpoints live, nothing of an API root after it (a
#: Gemini model's own path; a proxy's prefix may well hold ``/api/``, so not Ollama's)
_INNER: Final[Mapping[str, str]] = {"gemini": "/models/"}
_ADDS: Final[Mapping[str, str]] = {
    "openai": "/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/models/MODEL:streamGenerateContent",
    "ollama": "/api/chat",
}


def _api_root(errors: list[FieldError], kind: object, value: str) -> None:
    """A ``base_url`` is the API root its provider's docs give; one ending in the path of
    the endpoint switchman adds for its kind would be sent to that path twice (a 404 on
    every call, and its models' calls quietly falling to others)."""
    if not isinstance(kind, str) or kind not in _ENDPOINTS:
        return
    try:
        path = urllib.parse.urlsplit(value).path.rstrip("/").lower()
    except ValueError:  # (``_plain_url`` says it is not a valid URL)
        return
    tail = next((t for t in _ENDPOINTS[kind] if path.endswith(t)), None)
    inner = _INNER.get(kind)
    if tail is None and inner is not None and inner in path:  # a model's path
        tail = path[path.index(inner) :]
    if tail is None:
        return
    hint = (
        ' (Ollama\'s OpenAI-compatible /v1 is kind = "openai")'
        if kind == "ollama" and tail == "/v1"
        else ""
    )
    errors.append(
        FieldError(
            "base_url",
            f"is the API root, without {tail!r}: switchman adds {_ADDS[kind]} to it for "
            f"kind {kind!r}{hint}",
        )
    )


def _name(errors: list[FieldError], name: str, value: object) -> None:
    """A non-empty string of printable characters."""
    if not isinstance(value, str):
        errors.append(FieldError(name, f"must be a string; got {_kind(value)}"))
    elif not value:
        errors.append(FieldError(name, "must not be empty"))
    elif (why := unprintable(value)) is not None:
        errors.append(FieldError(name, why))


def _strings(
    errors: list[FieldError],
    name: str,
    value: object,
    *,
    allowed: frozenset[str] | None = None,
) -> None:
    """A list or tuple of non-empty strings (of ``allowed`` ones, when given). A bare
    string is refused: it would be read character by character."""
    if isinstance(value, str):
        errors.append(FieldError(name, "must be a list of strings, not a string"))
        return
    if not isinstance(value, list | tuple):
        errors.append(FieldError(name, f"must be a list of strings; got {_kind(value)}"))
        return
    for i, item in enumerate(value):
        if allowed is not None:
            if not isinstance(item, str) or item not in allowed:
                errors.append(FieldError(f"{name}[{i}]", f"must be one of {_INTENT_LIST}"))
        elif not isinstance(item, str) or not item:
            errors.append(FieldError(f"{name}[{i}]", "must be a non-empty string"))


def _nested(errors: list[FieldError], name: str, value: object, cls: type[Any]) -> None:
    """``value`` is a ``cls`` (or None): its own problems, under ``name``."""
    if value is None:
        return
    if not isinstance(value, cls):
        errors.append(FieldError(name, f"must be a {cls.__name__} or None; got {_kind(value)}"))
        return
    errors.extend(FieldError(f"{name}.{e.field}", e.message) for e in cls._problems(value))


@attrs.frozen(kw_only=True)
class SimProfile:
    """Behaviour of one simulated model (used by ``kind = "sim"`` and the fake server).

    Times in milliseconds, rates in 0..1. ``quality`` maps intent to a 0..1 answer
    quality the router can learn from feedback; missing intents use ``default_quality``.

    Scheduled outages (seconds of trio time since the simulated provider started):
    from ``outage_after_s`` on, the model answers every attempt with a 503 for
    ``outage_for_s`` seconds; with ``outage_every_s`` the outage starts again every
    that many seconds. ``outage_after_s = None`` (the default) means no outages.
    """

    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    tokens_per_s: float = 0.0  # 0 = instant
    error_rate: float = 0.0
    refusal_rate: float = 0.0
    rate_limit_rate: float = 0.0
    stall_rate: float = 0.0
    cut_rate: float = 0.0
    default_quality: float = 0.7
    quality: Mapping[str, float] = attrs.field(factory=dict)
    outage_after_s: float | None = None
    outage_for_s: float = 0.0
    outage_every_s: float | None = None

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        for name in ("latency_ms", "ttft_ms", "tokens_per_s"):
            _number(errors, name, getattr(v, name), 0)
        for name in _SIM_RATES:
            _number(errors, name, getattr(v, name), 0, high=1)
        if not isinstance(v.quality, Mapping):
            errors.append(FieldError("quality", f"must be a table; got {_kind(v.quality)}"))
        else:
            for intent, value in v.quality.items():
                where = f"quality.{intent}"
                if intent not in INTENTS:
                    errors.append(FieldError(where, f"not an intent; use one of {_INTENT_LIST}"))
                elif not _fraction(value):
                    errors.append(
                        FieldError(where, f"must be a number between 0 and 1; got {value!r}")
                    )
        _number(errors, "outage_after_s", v.outage_after_s, 0, optional=True, finite=False)
        _number(errors, "outage_for_s", v.outage_for_s, 0, finite=False)
        _number(errors, "outage_every_s", v.outage_every_s, 0, optional=True, finite=False)
        return errors


_SIM_RATES: Final = (
    "error_rate",
    "refusal_rate",
    "rate_limit_rate",
    "stall_rate",
    "cut_rate",
    "default_quality",
)


@attrs.frozen(kw_only=True)
class ProviderSpec:
    name: str
    kind: Kind
    base_url: str = ""
    api_key_env: str | None = None
    max_concurrency: int = 64
    rpm: int | None = None
    tpm: int | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    #: set by load_config: why the provider cannot be used (missing key), else None
    disabled_reason: str | None = None
    #: kind sim only: its random draws (None: drawn from the router's)
    seed: int | None = None

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _name(errors, "name", v.name)
        _choice(errors, "kind", v.kind, KINDS)
        if not isinstance(v.base_url, str):
            errors.append(FieldError("base_url", f"must be a string; got {_kind(v.base_url)}"))
        elif v.kind != "sim" and not v.base_url.startswith(("http://", "https://")):
            errors.append(FieldError("base_url", _not_http(v.base_url)))
            if "://" in v.base_url:  # (a user or password in it is a mistake of its own)
                _plain_url(errors, "base_url", v.base_url)
        elif v.base_url:
            _plain_url(errors, "base_url", v.base_url)
            _api_root(errors, v.kind, v.base_url)
        _env_name(errors, "api_key_env", v.api_key_env, optional=True)
        _number(errors, "max_concurrency", v.max_concurrency, 1, integer=True)
        _number(errors, "rpm", v.rpm, 1, integer=True, optional=True)
        _number(errors, "tpm", v.tpm, 1, integer=True, optional=True)
        if not isinstance(v.headers, Mapping):
            errors.append(FieldError("headers", f"must be a table; got {_kind(v.headers)}"))
        else:
            for n, (k, value) in enumerate(v.headers.items(), 1):
                which = "the header's" if len(v.headers) == 1 else f"header {n}'s"
                _header(errors, k, value, which=which)
        _number(errors, "connect_timeout_s", v.connect_timeout_s, 0, strict=True)
        _number(errors, "read_timeout_s", v.read_timeout_s, 0, strict=True)
        _string(errors, "disabled_reason", v.disabled_reason, optional=True)
        _number(errors, "seed", v.seed, -math.inf, integer=True, optional=True)
        if v.seed is not None and v.kind != "sim":
            errors.append(
                FieldError("seed", 'is for kind = "sim" only: a real provider draws its own')
            )
        return errors


@attrs.frozen(kw_only=True)
class ModelSpec:
    alias: str
    provider: str
    model_id: str
    trust_tier: TrustTier = "standard"
    context_window: int = 128_000
    max_output_tokens: int = 8_192
    #: the output counts against ``context_window`` (input + max_tokens must fit it, as
    #: Anthropic's do); false where the window is the input's alone and output has its own
    #: limit, ``max_output_tokens`` (OpenAI's GPT-5 family, Gemini). True is the safe side
    context_includes_output: bool = True
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    intents: tuple[Intent, ...] = ()  # empty = all
    capabilities: tuple[str, ...] = ()
    supports_seed: bool = False
    supports_prefill: bool = False
    #: takes ``stop`` sequences (xAI's grok-4 models and Perplexity's Agent API do not)
    supports_stop: bool = True
    #: a request whose input is above this many tokens is billed, whole, at the ``long_``
    #: prices (OpenAI above 272k, Gemini above 200k, ...); None: one price at any size
    long_input_above: int | None = None
    long_input_per_mtok: float | None = None
    long_output_per_mtok: float | None = None
    #: USD per 1M input tokens the provider reports served from its cache (DeepSeek's
    #: ``prompt_cache_hit_tokens``); None: they cost ``input_per_mtok`` like the rest
    cached_input_per_mtok: float | None = None
    #: USD a request costs on top of its tokens (Perplexity's web search: $0.005)
    request_fee_usd: float = 0.0
    #: the most one request's fees can come to, where the provider bills a number of them
    #: the request does not bound (Perplexity's web searches, $0.005 each, as many as its
    #: model makes): reserved before each attempt, and the most a reported cost is held to
    #: beside the tokens; None: ``request_fee_usd``
    max_request_fee_usd: float | None = None
    enabled: bool = True
    sim: SimProfile | None = None

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        alias = v.alias
        if not isinstance(alias, str) or not alias or alias != alias.strip() or alias == "auto":
            errors.append(FieldError("alias", f"{alias!r} cannot be an alias"))
        elif len(alias) > MAX_NAME_CHARS:  # (no call could name it)
            errors.append(FieldError("alias", f"must be at most {MAX_NAME_CHARS} characters"))
        elif (why := unprintable(alias)) is not None:
            errors.append(FieldError("alias", why))
        _string(errors, "provider", v.provider)
        _name(errors, "model_id", v.model_id)
        _choice(errors, "trust_tier", v.trust_tier, TRUST_TIERS)
        _number(errors, "context_window", v.context_window, 1, integer=True)
        _number(errors, "max_output_tokens", v.max_output_tokens, 1, integer=True)
        _number(errors, "input_per_mtok", v.input_per_mtok, 0, high=MAX_PRICE_USD)
        _number(errors, "output_per_mtok", v.output_per_mtok, 0, high=MAX_PRICE_USD)
        _strings(errors, "intents", v.intents, allowed=INTENTS)
        _strings(errors, "capabilities", v.capabilities)
        for name in (
            "context_includes_output",
            "supports_seed",
            "supports_prefill",
            "supports_stop",
            "enabled",
        ):
            _flag(errors, name, getattr(v, name))
        long_fields = ("long_input_above", "long_input_per_mtok", "long_output_per_mtok")
        _number(errors, "long_input_above", v.long_input_above, 1, integer=True, optional=True)
        for name in ("long_input_per_mtok", "long_output_per_mtok", "cached_input_per_mtok"):
            _number(errors, name, getattr(v, name), 0, high=MAX_PRICE_USD, optional=True)
        fee, most = v.request_fee_usd, v.max_request_fee_usd
        _number(errors, "request_fee_usd", fee, 0, high=MAX_PRICE_USD)
        _number(errors, "max_request_fee_usd", most, 0, high=MAX_PRICE_USD, optional=True)
        if (
            isinstance(most, int | float)
            and isinstance(fee, int | float)
            and not isinstance(most, bool)
            and most < fee
        ):
            errors.append(FieldError("max_request_fee_usd", "must be at least request_fee_usd"))
        given = [name for name in long_fields if getattr(v, name) is not None]
        if given and len(given) != len(long_fields):
            errors.extend(
                FieldError(name, f"is required with {', '.join(given)}")
                for name in long_fields
                if name not in given
            )
        _nested(errors, "sim", v.sim, SimProfile)
        return errors

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        """USD for the given token counts at this model's list prices (the long-input
        prices when the input is above ``long_input_above``), plus its request fee.

        ``cached_input_tokens`` of the input (at most all of it) cost
        ``cached_input_per_mtok`` where the model has one (not at long-input prices, which
        bill the whole request)."""
        above = self.long_input_above
        if above is not None and input_tokens > above:
            return (
                input_tokens * (self.long_input_per_mtok or 0.0)
                + output_tokens * (self.long_output_per_mtok or 0.0)
            ) / 1e6 + self.request_fee_usd
        cached_price = self.cached_input_per_mtok
        if cached_input_tokens > 0 and cached_price is not None:
            cached = min(cached_input_tokens, input_tokens)
            return (
                (input_tokens - cached) * self.input_per_mtok
                + cached * cached_price
                + output_tokens * self.output_per_mtok
            ) / 1e6 + self.request_fee_usd
        return (
            input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok
        ) / 1e6 + self.request_fee_usd


@attrs.frozen(kw_only=True)
class RouteSpec:
    name: str
    chain: tuple[str, ...]
    #: fall back when a provider rejects the request's content (HTTP 400 policy)
    fallback_on_content_rejection: bool = False

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _name(errors, "name", v.name)
        if isinstance(v.name, str) and len(v.name) > MAX_NAME_CHARS:  # (no call could name it)
            errors.append(FieldError("name", f"must be at most {MAX_NAME_CHARS} characters"))
        _strings(errors, "chain", v.chain)
        if isinstance(v.chain, list | tuple) and not v.chain:
            errors.append(FieldError("chain", "must name at least one model"))
        _flag(errors, "fallback_on_content_rejection", v.fallback_on_content_rejection)
        return errors


@attrs.frozen(kw_only=True)
class KeySpec:
    key_env: str
    handle: str
    daily_usd: float | None = None
    hourly_usd: float | None = None
    monthly_usd: float | None = None
    #: aliases, provider names and fnmatch globs of models it may call, and names of
    #: routes it may call (a route's name grants the route, its models through it only:
    #: ``switchman.catalog._keys.allowed_for``)
    models: tuple[str, ...] = ("*",)
    min_trust: TrustTier = "untrusted"
    admin: bool = False
    #: requests a minute the gateway takes from this key (``/call``, ``/v1/chat/completions``
    #: and websocket calls together; a token bucket of this size), None for no limit
    rpm: int | None = None
    #: resolved from the environment by load_config; never printed
    secret: str | None = attrs.field(default=None, repr=False)

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _env_name(errors, "key_env", v.key_env, optional=False)
        _name(errors, "handle", v.handle)
        for name in LIMIT_KEYS:
            _number(errors, name, getattr(v, name), 0, high=MAX_BUDGET_USD, optional=True)
        _number(errors, "rpm", v.rpm, 1, integer=True, optional=True)
        _strings(errors, "models", v.models)
        if isinstance(v.models, list | tuple) and not v.models and v.admin is not True:
            errors.append(
                FieldError(
                    "models",
                    'must name at least one model, route or provider ("*" for all): with none '
                    "the key may call nothing (an admin key may have none: it sees all)",
                )
            )
        _choice(errors, "min_trust", v.min_trust, TRUST_TIERS)
        _flag(errors, "admin", v.admin)
        if v.secret is not None and not isinstance(v.secret, str):
            errors.append(FieldError("secret", f"must be a string; got {_kind(v.secret)}"))
        return errors


@attrs.frozen(kw_only=True)
class BudgetsConfig:
    global_hourly_usd: float | None = None
    global_daily_usd: float | None = None
    global_monthly_usd: float | None = None
    #: per provider name: {"daily_usd": ...}
    providers: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)
    #: per caller handle (embedding without gateway keys): {"daily_usd": ...}
    callers: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        for name in ("global_hourly_usd", "global_daily_usd", "global_monthly_usd"):
            _number(errors, name, getattr(v, name), 0, high=MAX_BUDGET_USD, optional=True)
        for group in ("providers", "callers"):
            tables = getattr(v, group)
            if not isinstance(tables, Mapping):
                errors.append(FieldError(group, f"must be a table; got {_kind(tables)}"))
                continue
            for name, limits in tables.items():
                where = f"{group}.{name}"
                if isinstance(name, str) and (why := unprintable(name)) is not None:
                    errors.append(FieldError(where, why))
                if not isinstance(limits, Mapping):
                    errors.append(FieldError(where, "must be a table"))
                    continue
                for key, value in limits.items():
                    if key in LIMIT_KEYS:
                        _number(errors, f"{where}.{key}", value, 0, high=MAX_BUDGET_USD)
                    else:
                        errors.append(unknown_field(f"{where}.{key}", key, LIMIT_KEYS))
        return errors


@attrs.frozen(kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8265
    max_body_bytes: int = 4 * 1024 * 1024
    db: str | None = None
    job_retention_count: int = 10_000
    job_retention_days: float = 7.0
    #: megabytes (2**20 bytes) of calls and results the job store keeps, shared fairly
    job_retention_mb: float = 1024.0
    grace_s: float = 10.0

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _name(errors, "host", v.host)
        _number(errors, "port", v.port, 0, high=65535, integer=True)
        _number(errors, "max_body_bytes", v.max_body_bytes, 1, integer=True)
        _string(errors, "db", v.db, optional=True)
        if v.db == "":
            errors.append(
                FieldError(
                    "db",
                    'must not be empty: a file\'s path, ":memory:", or left out for the '
                    "default ($XDG_DATA_HOME/switchman/switchman.db)",
                )
            )
        # (none is 0, which would delete each job as it ends: "no limit" is a large number)
        _number(errors, "job_retention_count", v.job_retention_count, 1, integer=True)
        _number(errors, "job_retention_days", v.job_retention_days, 0, strict=True)
        _number(errors, "job_retention_mb", v.job_retention_mb, 0, strict=True)
        _number(errors, "grace_s", v.grace_s, 0)
        return errors


#: the most a ranking factor's weight can be: far past any trade-off between factors
MAX_WEIGHT: Final = 1_000.0


@attrs.frozen(kw_only=True)
class Weights:
    """How much each of the ranking's factors (``switchman.policy._scoring``) counts: each
    factor, 0..1, is multiplied by its weight. With these, a model one trust tier up is
    worth about 32 times the price (a factor of 1000 in price costs the whole ``cost``
    weight, on a log scale), and a feedback score 0.3 higher about 22 times."""

    trust: float = 1.0
    capability: float = 0.5
    cost: float = 1.0
    context: float = 0.25
    latency: float = 0.75
    ttft: float = 0.5
    success: float = 2.0
    refusal: float = 1.0
    feedback: float = 1.5

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        for name in attrs.fields_dict(Weights):
            # (1e308 made every score infinite, and a result's JSON invalid)
            _number(errors, name, getattr(v, name), 0, high=MAX_WEIGHT)
        return errors


@attrs.frozen(kw_only=True)
class RouterConfig:
    """Runtime knobs of the dispatcher."""

    capacity: int = 1024
    default_ttft_ms: int = 15_000
    default_soft_ms: int = 60_000
    default_hard_ms: int = 120_000
    stall_ms: int = 15_000
    seed: int | None = None
    exploration: float = 1.0
    #: what was learned of a model (per intent) counts half after this long without news
    learning_half_life_s: float = 21_600.0
    #: ... and its failures in a row after this long (outages end; a failure alone
    #: between answers lasts as they do); a speed measured this long ago gives way to a
    #: new measure
    failure_half_life_s: float = 600.0
    weights: Weights = attrs.field(factory=Weights)

    @staticmethod
    def _problems(v: Any) -> list[FieldError]:
        errors: list[FieldError] = []
        _number(errors, "capacity", v.capacity, 1, integer=True)
        for name in ("default_ttft_ms", "default_soft_ms", "default_hard_ms", "stall_ms"):
            _number(errors, name, getattr(v, name), 1, integer=True)
        if not errors:
            # Set above the whole call's, it would never cut anything (a call's own
            # timeouts are held to the same order); left as it was, it gives way to a
            # shorter default_hard_ms.
            fields = attrs.fields_dict(RouterConfig)
            for name in ("default_ttft_ms", "default_soft_ms"):
                value = getattr(v, name)
                if value != fields[name].default and value > v.default_hard_ms:
                    errors.append(
                        FieldError(name, f"must not exceed default_hard_ms ({v.default_hard_ms})")
                    )
        _number(errors, "seed", v.seed, -math.inf, integer=True, optional=True)
        _number(errors, "exploration", v.exploration, 0)
        _number(errors, "learning_half_life_s", v.learning_half_life_s, 0, strict=True)
        _number(errors, "failure_half_life_s", v.failure_half_life_s, 0, strict=True)
        if isinstance(v.weights, Weights):
            errors.extend(
                FieldError(f"weights.{e.field}", e.message) for e in Weights._problems(v.weights)
            )
        else:
            errors.append(FieldError("weights", "must be a table of the factors' weights"))
        return errors


@attrs.frozen(kw_only=True)
class Config:
    """Everything a router runs with: providers, models (by alias), routes, budgets,
    gateway keys, the server's and the router's settings. ``load_config(path)`` reads one
    from TOML merged over the built-in catalog; one built in Python is checked by the same
    rules when a router opens it (``validate_config``)."""

    providers: Mapping[str, ProviderSpec] = attrs.field(factory=dict)
    models: Mapping[str, ModelSpec] = attrs.field(factory=dict)
    routes: Mapping[str, RouteSpec] = attrs.field(factory=dict)
    budgets: BudgetsConfig = attrs.field(factory=BudgetsConfig)
    keys: tuple[KeySpec, ...] = ()
    server: ServerConfig = attrs.field(factory=ServerConfig)
    router: RouterConfig = attrs.field(factory=RouterConfig)
    #: true when every enabled provider is the simulator: answers are simulated
    simulated: bool = False
