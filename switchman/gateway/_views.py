"""What a key that is not an admin's sees of the platform in call results and events.

A result's trace says why each model was left out, and its errors repeat those
reasons (``alias: reason; ...``). Shown as they are to every key, they would tell
one team the configuration's other models (an ``auto`` call lists every model
with why it was left out) and the platform's own state: the variable a
provider's missing key should be in, the words a provider answered switchman's
key with. So for a principal that does not see everything (a key that is not an
admin's, when keys are configured) results and trace events pass through a
:class:`PlatformView`:

- an exclusion of a model the key cannot use (neither allowed by its ``models``
  nor in a route it was granted) is dropped, from ``trace.eligibility.excluded``,
  from the ``call.routed`` event and from every message that names it;
- a reason that a provider is disabled, not configured or held out (for its key,
  its quota, or a model it does not serve) reads ``provider NAME unavailable``,
  in the trace, the attempts, the errors and the events alike.

Error codes stay as they are (the ``/v1`` status is decided on the whole
result first). The admin, and the gateway without keys, see everything; so does
``/providers`` with an admin key. Pure functions over JSON values and the
configuration: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from switchman._result import Exclusion
from switchman.catalog import Config
from switchman.gateway._auth import Principal, may_reach
from switchman.policy._eligibility import exclusions_to_tell

#: how an attempt's error begins when its provider was held out as it was tried, or its
#: model turned away as silent (how long another team's call has waited on it: not a
#: key's to read)
_HELD_OUT: Final = ("provider held out:", "silent:")
#: (old, new) text: each ``old`` is replaced, in that order, wherever it appears
Replacements = tuple[tuple[str, str], ...]
#: the ``old`` of the pair whose ``new`` tells the exclusions a key may read, for a "no
#: eligible model" message left with none (the router chose which to tell among all)
_TOLD: Final = "\x00told"
#: how a failure's list of the models it named and eligibility left out begins
#: (``actors._failure.told_left_out``)
_NOT_TRIED: Final = "; not tried"
#: how such a message ends once every exclusion it told was cut
_BARE: Final = ("no eligible model", "has no eligible member", "for this request")


def unavailable(provider: str) -> str:
    """The reason a key is given for a provider it may not know more of."""
    return f"provider {provider} unavailable"


def internal_reason(reason: str, provider: str) -> bool:
    """Whether an exclusion's ``reason`` is the provider's own state (disabled, not
    configured, held out, a model it does not serve): the dispatcher's wordings."""
    return reason.startswith(
        ("provider disabled:", f"provider {provider} ", f"not served by {provider}:")
    )


class PlatformView:
    """Results and events as ``principal`` may see them (see the module's docstring)."""

    def __init__(self, principal: Principal, config: Config) -> None:
        self.principal = principal
        self.config = config
        #: False for the admin and the gateway without keys: everything as it is
        self.limited = not principal.sees_everything

    def _provider(self, alias: str) -> str:
        spec = self.config.models.get(alias)
        return spec.provider if spec is not None else "?"

    def exclusion(self, alias: str, reason: str) -> str | None:
        """An exclusion's reason as shown; None when it is not shown at all."""
        if not self.limited:
            return reason
        if not may_reach(self.principal, alias, self.config):
            return None
        provider = self._provider(alias)
        return unavailable(provider) if internal_reason(reason, provider) else reason

    def attempt_error(self, provider: str, outcome: Any, error: Any) -> Any:
        """An attempt's error as shown: a held-out provider's or silent model's reason is
        cut."""
        if (
            self.limited
            and outcome == "unavailable"
            and isinstance(error, str)
            and error.startswith(_HELD_OUT)
        ):
            return unavailable(provider)
        return error

    def replacements(
        self,
        excluded: Iterable[Mapping[str, Any]],
        attempts: Iterable[Mapping[str, Any]] = (),
    ) -> Replacements:
        """What to change in the messages of a call whose trace has these exclusions
        and attempts (JSON entries): ``alias: reason`` of a model not shown goes with
        its separator, a cut reason is cut there too."""
        if not self.limited:
            return ()
        out: list[tuple[str, str]] = []
        visible: list[Exclusion] = []
        cut = False
        for entry in excluded:
            alias, reason = entry.get("alias"), entry.get("reason")
            if not isinstance(alias, str) or not isinstance(reason, str):
                continue
            shown = self.exclusion(alias, reason)
            fragment = f"{alias}: {reason}"
            if shown is None:
                cut = True
                out += [(f"; {fragment}", ""), (f"{fragment}; ", ""), (fragment, "")]
                continue
            visible.append(Exclusion(alias=alias, reason=shown))
            if shown != reason:
                out.append((fragment, f"{alias}: {shown}"))
        if cut and visible:
            told = "; ".join(f"{e.alias}: {e.reason}" for e in exclusions_to_tell(visible))
            out.append((_TOLD, told))
        for attempt in attempts:
            provider, error = attempt.get("provider"), attempt.get("error")
            if not isinstance(provider, str) or not isinstance(error, str):
                continue
            shown = self.attempt_error(provider, attempt.get("outcome"), error)
            if shown != error:
                out.append((error, shown))
        return tuple(out)

    def text(self, text: str, replacements: Replacements) -> str:
        """``text`` with ``replacements`` made (a message left ending in ``: `` loses it); a
        "no eligible model" message left with no exclusion tells those the key may read."""
        if not replacements:
            return text
        told = ""
        for old, new in replacements:
            if old == _TOLD:
                told = new
            elif old in text:
                text = text.replace(old, new)
        text = text.removesuffix(": ")
        # (a failure's list of the models it named and eligibility left out, all cut)
        text = text.replace(f"{_NOT_TRIED}: ;", ";").removesuffix(_NOT_TRIED)
        if told and text.endswith(_BARE):
            text = f"{text}: {told}"
        return text

    def result(self, body: Any) -> Any:
        """A result's JSON (``to_jsonable(result)``, or as stored) as shown."""
        if not self.limited or not isinstance(body, Mapping):
            return body
        trace = body.get("trace")
        if not isinstance(trace, Mapping):
            return body
        eligibility = trace.get("eligibility")
        excluded = _entries(eligibility.get("excluded") if isinstance(eligibility, Mapping) else ())
        attempts = _entries(trace.get("attempts"))
        swaps = self.replacements(excluded, attempts)
        out = dict(body)
        new_trace = dict(trace)
        if isinstance(eligibility, Mapping):
            new_trace["eligibility"] = {**eligibility, "excluded": self._excluded(excluded)}
        if isinstance(trace.get("attempts"), list):
            new_trace["attempts"] = [
                {
                    **a,
                    "error": self.attempt_error(
                        a.get("provider", "?"), a.get("outcome"), a.get("error")
                    ),
                }
                for a in attempts
            ]
        out["trace"] = new_trace
        errors = body.get("errors")
        if isinstance(errors, list):
            out["errors"] = [
                {**e, "message": self.text(e["message"], swaps)}
                if isinstance(e, Mapping) and isinstance(e.get("message"), str)
                else e
                for e in errors
            ]
        return out

    def _excluded(self, excluded: Sequence[Mapping[str, Any]]) -> list[Any]:
        out: list[Any] = []
        for entry in excluded:
            alias, reason = entry.get("alias"), entry.get("reason")
            if isinstance(alias, str) and isinstance(reason, str):
                shown = self.exclusion(alias, reason)
                if shown is not None:
                    out.append({**entry, "reason": shown})
            else:
                out.append(entry)
        return out

    def event(self, message: dict[str, Any], replacements: Replacements = ()) -> dict[str, Any]:
        """A trace event's wire form as shown; ``replacements`` are those of its call so far
        (from its ``call.routed`` and ``attempt.finished`` events, see :class:`CallTexts`)."""
        if not self.limited:
            return message
        kind = message.get("type")
        if kind == "call.routed" and isinstance(message.get("excluded"), list):
            return {**message, "excluded": self._excluded(_entries(message["excluded"]))}
        if kind == "attempt.finished":
            error = self.attempt_error(
                message.get("provider", "?"), message.get("outcome"), message.get("error")
            )
            return {**message, "error": error}
        if kind == "call.failed" and isinstance(message.get("message"), str):
            return {**message, "message": self.text(message["message"], replacements)}
        return message


def _entries(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, Mapping)]


class CallTexts:
    """The replacements of each call in flight, gathered from its events, for the
    message of its ``call.failed``: one connection's private bookkeeping, bounded."""

    #: calls remembered at once (the oldest is forgotten past it)
    LIMIT: Final = 4096

    def __init__(self, view: PlatformView) -> None:
        self.view = view
        self._calls: dict[str, Replacements] = {}

    def shown(self, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` (an event's wire form) as the view shows it, remembering what its
        call's later messages need."""
        if not self.view.limited:
            return message
        call_id = message.get("call_id")
        kind = message.get("type")
        if isinstance(call_id, str) and call_id:
            found: Replacements = ()
            if kind == "call.routed":
                found = self.view.replacements(_entries(message.get("excluded")))
            elif kind == "attempt.finished":
                found = self.view.replacements((), [message])
            if found:
                if len(self._calls) >= self.LIMIT and call_id not in self._calls:
                    self._calls.pop(next(iter(self._calls)))
                self._calls[call_id] = (*self._calls.get(call_id, ()), *found)
            if kind in ("call.completed", "call.failed"):
                return self.view.event(message, self._calls.pop(call_id, ()))
        return self.view.event(message)
