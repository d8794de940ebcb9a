"""Which models may serve a call, and with which sampling parameters.

Pure functions over a ``Call`` and ``ModelSpec`` values: no I/O, no clock, no
randomness. The dispatcher calls them once per call, on the hot path.

``check_eligibility`` applies the rules of DESIGN.md in a fixed order and
reports, for each excluded model, the *first* rule it fails, with the numbers
that made it fail. ``request_params`` turns the call's params, verbosity and
determinism into the sampling parameters of one ``ProviderRequest``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from fnmatch import translate
from typing import Any, Final

import attrs

from switchman._call import TRUST_RANK, Call
from switchman._result import Exclusion
from switchman.catalog._spec import ModelSpec
from switchman.policy._estimate import fair_input, most_cost

#: output room a call needs when it does not set ``params.max_tokens`` (a model must have
#: it), and what it asks for then; "full" asks for more where there is room
VERBOSITY_OUTPUT_TOKENS: Final = {"minimal": 256, "standard": 1024, "full": 4096}
#: what verbosity "full" asks for, when the model's limit and its context window leave room
#: (what an OpenAI-compatible request without max_tokens means: as long as it takes)
FULL_OUTPUT_TOKENS: Final = 16_384
#: how much denser than estimated the input may be when "full" sizes its output room
FULL_INPUT_MARGIN: Final = 1.25
#: the least output room a call that did not set ``params.max_tokens`` is shrunk to (or
#: its verbosity's default, if smaller) on a model whose context window holds the output:
#: a model with less room left after the prompt is excluded (see ``output_tokens``)
MIN_DEFAULT_OUTPUT_TOKENS: Final = 1024


#: how the exclusion of a model whose context window is too small begins (the gateway
#: answers a call every model was excluded for this way as the request's own fault)
CONTEXT_EXCLUSION: Final = "context window "


def output_tokens(call: Call, model: ModelSpec, input_tokens: int | None = None) -> int:
    """The output room to ask ``model`` for: what a request's ``max_tokens`` is built from.

    ``params.max_tokens`` when the caller set it, capped at the model's
    ``max_output_tokens`` (never shrunk: if it does not fit the context window, the
    model is excluded; eligibility excludes a model below it too). Else a default budget:
    the call's verbosity (``VERBOSITY_OUTPUT_TOKENS``, which eligibility requires a model
    to have room for), verbosity "full" up to ``FULL_OUTPUT_TOKENS``; either way capped at
    ``max_output_tokens``.

    With ``input_tokens``, on a model whose window holds the output too
    (``context_includes_output``), a default budget shrinks to the room the window
    leaves (verbosity "full" keeps a quarter of the input spare beyond that, as the
    estimate may be low), but never below ``MIN_DEFAULT_OUTPUT_TOKENS`` or the default,
    whichever is smaller: a model with less room than that is then excluded for its
    context window, since ``input_tokens`` plus the result is above it. So a "full"
    budget shrinks from up to 16,384 tokens down to 1,024 to fit a long prompt, while
    "minimal" (256) and "standard" (1,024) are their own floor. Where the window is the
    input's alone, nothing shrinks.
    """
    # (``a if a < b else b``, not ``min``: a builtin's call, for every model of a catalog)
    wanted = call.params.max_tokens
    limit = model.max_output_tokens
    if wanted is not None:
        return wanted if wanted < limit else limit
    verbosity = call.options.verbosity
    default = VERBOSITY_OUTPUT_TOKENS[verbosity]
    if default > limit:
        default = limit
    full = verbosity == "full"
    out = (FULL_OUTPUT_TOKENS if limit > FULL_OUTPUT_TOKENS else limit) if full else default
    if input_tokens is None or not model.context_includes_output:
        return out
    window = model.context_window
    left = window - input_tokens
    if not full:
        if out <= left:  # the common case: it fits
            return out
        out = left
    else:
        # the input is an estimate (four characters a token): leave it a quarter more room,
        # so a prompt that tokenizes denser (code, CJK) does not overflow the window; but
        # never ask for less than the verbosity's own default where that fits
        out = max(
            min(out, window - math.ceil(input_tokens * FULL_INPUT_MARGIN)), min(default, left)
        )
    floor = default if default < MIN_DEFAULT_OUTPUT_TOKENS else MIN_DEFAULT_OUTPUT_TOKENS
    return out if out > floor else floor


def input_room(call: Call, model: ModelSpec, input_tokens: int) -> int:
    """The room ``model``'s context window leaves a call's input: all of it, or what its
    output room (``output_tokens``) leaves where the window holds the output too."""
    if not model.context_includes_output:
        return model.context_window
    return model.context_window - output_tokens(call, model, input_tokens)


def fits_window(model: ModelSpec, input_tokens: int, out_tokens: int) -> bool:
    """Whether ``model``'s context window holds ``input_tokens``, and ``out_tokens`` too
    where the output shares it (``context_includes_output``)."""
    if model.context_includes_output:
        return input_tokens + out_tokens <= model.context_window
    return input_tokens <= model.context_window


@attrs.frozen(kw_only=True)
class Eligibility:
    """The models that may serve a call (in the order given) and why the others may not."""

    eligible: tuple[ModelSpec, ...]
    excluded: tuple[Exclusion, ...]


@functools.lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    """One compiled regex matching any of ``patterns`` (memoised: callers reuse few sets)."""
    if not patterns:
        return re.compile(r"(?!)").match  # matches nothing
    return re.compile("|".join(translate(p) for p in patterns)).match


def is_allowed(model: ModelSpec, allowed: Sequence[str]) -> bool:
    """Whether a caller allowed ``allowed`` (fnmatch patterns) may use ``model``.

    A pattern matches the model's alias (``"claude-*"``) or ``provider/alias``
    (``"openai/*"``); a provider's name allows that provider's models (and no other's,
    whatever their aliases). Matching is case-sensitive, as aliases are.
    """
    if "*" in allowed or model.provider in allowed:
        return True
    match = _matcher(tuple(allowed))
    return match(model.alias) is not None or match(f"{model.provider}/{model.alias}") is not None


def _exclusion_reason(
    call: Call,
    model: ModelSpec,
    input_tokens: int,
    unavailable: Mapping[str, str],
    allowed: Sequence[str],
    cap_input: tuple[int, bool],
) -> str | None:
    """The first eligibility rule ``model`` fails for ``call``, as a reason; None if none
    (``cap_input``: the call's input as the cost cap counts it and whether it is data,
    ``fair_input``)."""
    if not model.enabled:
        return "disabled"
    intent = call.intent
    if model.intents and intent != "unknown" and intent not in model.intents:
        return f"intent {intent!r} not supported (supports: {', '.join(model.intents)})"
    if TRUST_RANK[model.trust_tier] < TRUST_RANK[call.min_trust]:
        return f"trust tier {model.trust_tier} below required {call.min_trust}"
    if call.capabilities:
        missing = [c for c in dict.fromkeys(call.capabilities) if c not in model.capabilities]
        if missing:
            return f"missing capabilities: {', '.join(missing)}"
    params = call.params
    if params.max_tokens is not None and params.max_tokens > model.max_output_tokens:
        return (
            f"max_tokens {params.max_tokens} above the model's limit of"
            f" {model.max_output_tokens} output tokens"
        )
    out = output_tokens(call, model, input_tokens)
    if not fits_window(model, input_tokens, out):
        window = model.context_window
        if input_tokens > window:
            return f"{CONTEXT_EXCLUSION}{window} too small for {input_tokens} input tokens"
        return (
            f"{CONTEXT_EXCLUSION}{window} too small for {input_tokens} input + {out} output tokens"
        )
    if call.options.determinism == "strict" and not model.supports_seed:
        return "determinism strict needs a seed, which the model does not support"
    if params.stop and not model.supports_stop:
        return "stop sequences, which the model does not take"
    if call.options.max_cost_usd is not None:
        over = cap_exceeded(call, model, out, counted=cap_input)
        if over is not None:
            return over
    if "*" not in allowed and not is_allowed(model, allowed):  # (the default: "*")
        return f"not allowed for this caller (allowed: {', '.join(allowed) or 'none'})"
    return unavailable.get(model.alias)


#: how far above its count a capped call's prompt is taken to be billed, where that decides
#: a model's long-input prices: ``fair_tokens`` counts base64 at about 0.76 of what
#: tokenizers make of it
LONG_INPUT_MARGIN: Final = 4 / 3


def cap_exceeded(
    call: Call,
    model: ModelSpec,
    out_tokens: int,
    *,
    continuation: str = "",
    spent: float = 0.0,
    counted: tuple[int, bool] | None = None,
) -> str | None:
    """Why an attempt of ``call`` on ``model`` asking for ``out_tokens`` could take the call
    past its ``max_cost_usd`` (with ``spent`` USD already billed to earlier attempts of
    it), or None. The input is counted by ``fair_input_tokens`` (a token per byte of text
    in other scripts than ASCII) and priced with the most the model's fees can come to:
    an estimate a prompt in any script is not billed far above at list prices
    (``counted``: that count and whether it is data, ``fair_input``, when the caller has
    them already). A prompt of data counted within ``LONG_INPUT_MARGIN`` of the model's
    ``long_input_above`` is priced at its long-input prices: it may be billed at them."""
    limit = call.options.max_cost_usd
    if limit is None:
        return None
    fair, dense = counted if counted is not None else fair_input(call, continuation)
    input_tokens = min(fair, model.context_window)
    cost = most_cost(model, input_tokens, out_tokens)
    long_prices = ""
    above = model.long_input_above
    if (
        dense
        and above is not None
        and input_tokens <= above < min(input_tokens * LONG_INPUT_MARGIN, model.context_window)
    ):  # (data's count may be a quarter low: the bill may be at the long-input prices)
        long_cost = most_cost(model, above + 1, out_tokens)
        if long_cost > cost:
            cost, long_prices = long_cost, f", at its prices above {above} input tokens"
    if spent + cost <= limit:
        return None
    estimate = (
        f"estimated cost ${cost:.6f} ({input_tokens} input + {out_tokens} output tokens"
        f"{long_prices})"
    )
    if spent > 0.0:
        estimate += f" with ${spent:.6f} already billed to the call"
    # (a cap under a millionth of a dollar in its own figures: $0.000000 said nothing)
    shown = f"{limit:.6f}" if limit == 0 or limit >= 1e-6 else f"{limit:.2g}"
    return f"{estimate} above max_cost_usd ${shown}"


def check_eligibility(
    call: Call,
    models: Iterable[ModelSpec],
    *,
    input_tokens: int,
    unavailable: Mapping[str, str],
    allowed: Sequence[str] = ("*",),
    named: Collection[str] = (),
) -> Eligibility:
    """Split ``models`` into those that may serve ``call`` and those that may not.

    Rules, in order; an excluded model's reason is the first rule it fails:

    1. disabled (``enabled`` false);
    2. the call's intent is not among the model's ``intents`` (an empty list,
       or intent ``"unknown"``, always passes);
    3. trust tier below ``call.min_trust`` (untrusted < standard < trusted);
    4. a capability the call requires is missing (each one named);
    5. ``params.max_tokens`` above the model's ``max_output_tokens``; without it, the
       model's ``max_output_tokens`` below the verbosity's room
       (``VERBOSITY_OUTPUT_TOKENS``: 256, 1,024, 4,096) when other eligible models have
       that room (``_prefer_others``), unless the call ``named`` it (``named_aliases``);
    6. the context window is below ``input_tokens``, or, on a model whose window holds
       the output too (``context_includes_output``), below ``input_tokens`` plus
       ``output_tokens()``: the caller's ``max_tokens``, else the default budget shrunk
       to the room left, at least ``MIN_DEFAULT_OUTPUT_TOKENS`` (or the verbosity's
       default, if smaller);
    7. determinism ``strict`` on a model without seed support; ``stop`` sequences on a
       model that does not take them (its provider would refuse the request, or ignore
       them);
    8. estimated cost above ``options.max_cost_usd`` (see ``cap_exceeded``);
    9. none of the ``allowed`` patterns match (see ``is_allowed``);
    10. ``unavailable`` names the alias (breaker open, rate budget empty,
        provider disabled...): its reason is reported verbatim;
    11. a conversation ending with the assistant's turn (a prefill): a model that takes
        no prefill, when other eligible models do, unless the call ``named`` it
        (``_prefer_others``).

    ``input_tokens`` is passed in (see ``estimate_input_tokens``) so one
    estimate serves the windows here and scoring.
    Eligible models keep the order of ``models``.
    """
    eligible: list[ModelSpec] = []
    excluded: list[Exclusion] = []
    # (counted once for every model: the prompt may be long, in a script encoded to count)
    cap_input = fair_input(call) if call.options.max_cost_usd is not None else (0, False)
    for model in models:
        reason = _exclusion_reason(call, model, input_tokens, unavailable, allowed, cap_input)
        if reason is None:
            eligible.append(model)
        else:
            excluded.append(Exclusion(alias=model.alias, reason=reason))
    if call.params.max_tokens is None and len(eligible) > 1:
        room = VERBOSITY_OUTPUT_TOKENS[call.options.verbosity]
        short = [m for m in eligible if m.max_output_tokens < room and m.alias not in named]
        _prefer_others(
            eligible,
            excluded,
            short,
            lambda m: (
                f"verbosity {call.options.verbosity} needs room for {room} output tokens;"
                f" the model's limit is {m.max_output_tokens} (others have it)"
            ),
        )
    if call.messages is not None and call.messages[-1].role == "assistant" and len(eligible) > 1:
        fresh = [m for m in eligible if not m.supports_prefill and m.alias not in named]
        _prefer_others(eligible, excluded, fresh, lambda m: PREFILL_EXCLUSION)
    return Eligibility(eligible=tuple(eligible), excluded=tuple(excluded))


#: why a model is left out of a call whose conversation ends with the assistant's turn: it
#: would answer that turn afresh (the caller, who meant the answer to go on from it, would
#: join the two), or its API refuses it
PREFILL_EXCLUSION: Final = (
    "the conversation ends with the assistant's turn (a prefill), which the model does not "
    "continue (others do)"
)


def _prefer_others(
    eligible: list[ModelSpec],
    excluded: list[Exclusion],
    lacking: list[ModelSpec],
    why: Callable[[ModelSpec], str],
) -> None:
    """Leave out the ``lacking`` models (those ``auto`` brought in that lack what the call
    wants: a model the call named serves it as named, before the others), saying ``why``,
    when other eligible models have it. The room a verbosity wants (a model below it was
    sent its own limit, and a "full" answer came back cut short: an OpenAI-style request
    without ``max_tokens`` asks for "full"); a prefill to continue (``supports_prefill``)."""
    if not lacking or len(lacking) == len(eligible):
        return
    for model in lacking:
        eligible.remove(model)
        excluded.append(Exclusion(alias=model.alias, reason=why(model)))


def request_params(call: Call, model: ModelSpec, input_tokens: int | None = None) -> dict[str, Any]:
    """Sampling parameters for one attempt of ``call`` on ``model``.

    Keys ``temperature, top_p, max_tokens, seed, stop`` (``None`` = provider
    default), ready for ``ProviderRequest(model_id=..., messages=..., **params)``.

    - ``max_tokens`` is always ``output_tokens(call, model)``, so verbosity
      bounds the answer even when the caller did not set it.
    - determinism ``strict``: temperature 0 and the caller's seed (eligibility
      already dropped models without seed support); ``top_p`` as given.
    - ``best_effort``: temperature 0 unless the caller set one; the seed is
      passed only when the model supports seeds.
    - ``off``: as given, the seed dropped when the model does not support it.
    """
    params = call.params
    determinism = call.options.determinism
    temperature = params.temperature
    if determinism == "strict" or (determinism == "best_effort" and temperature is None):
        temperature = 0.0
    seed = params.seed if model.supports_seed or determinism == "strict" else None
    return {
        "temperature": temperature,
        "top_p": params.top_p,
        "max_tokens": output_tokens(call, model, input_tokens),
        "seed": seed,
        "stop": params.stop,
    }


#: how many exclusions an error tells when no model may serve a call (the trace has all)
EXCLUSIONS_TOLD: Final = 6
_FIGURES: Final = re.compile(r"\d+(?:\.\d+)?")


def exclusions_to_tell(
    excluded: Sequence[Exclusion], first: Iterable[Exclusion] = ()
) -> list[Exclusion]:
    """The exclusions that tell most of why no model could serve a call: ``first``, then
    one of each kind of reason (alike but for the figures), the rarest kind first, so the
    one model that needs only a lower trust tier is not lost among ninety that lack a
    capability; then in the order given. At most ``EXCLUSIONS_TOLD``."""
    told: dict[str, Exclusion] = {e.alias: e for e in first}
    kinds: dict[str, list[Exclusion]] = {}
    for e in excluded:
        kinds.setdefault(_FIGURES.sub("#", e.reason), []).append(e)
    for group in sorted(kinds.values(), key=len):
        told.setdefault(group[0].alias, group[0])
    for e in excluded:
        told.setdefault(e.alias, e)
    return list(told.values())[:EXCLUSIONS_TOLD]
