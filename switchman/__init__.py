"""switchman: an LLM router and gateway built as an actor runtime on trio.

Embedding, inside a trio program::

    async with switchman.open_router() as router:      # or open_router(load_config(path))
        result = await router.call(switchman.Call(prompt="hi", model="auto"))
        print(result.answer, result.model, result.cost_usd)

``router.call`` returns a :class:`Result`, complete or failed, and never raises for a
failed call (``result.raise_for_status()`` does); bad input raises
:class:`ValidationError` naming every bad field. ``router.stream`` gives the redacted
text as :class:`Delta` values, then the :class:`Result`. ``router.subscribe`` gives live
:class:`TraceEvent` values, ``router.status()`` the providers' state, ``router.spend``
what was spent, ``router.feedback`` teaches the router how good an answer was. With no
provider key set, the built-in simulator answers and every result says so.
"""

import importlib
import sys
import threading
from typing import TYPE_CHECKING

from switchman._version import __version__

if TYPE_CHECKING:  # (at run time imported at once, or on first use: see ``_WHERE``)
    from switchman._call import (
        Call,
        Caller,
        Determinism,
        Intent,
        Message,
        Options,
        Params,
        RedactionMode,
        RedactionOptions,
        RedactionOverride,
        Role,
        Timeouts,
        TrustTier,
        Verbosity,
    )
    from switchman._convert import call_from_dict, to_jsonable
    from switchman._errors import (
        AttemptTimeout,
        AuthError,
        BadReply,
        BadRequest,
        BudgetExceeded,
        CallCancelled,
        CallFailed,
        ContentRejected,
        ContextExceeded,
        FieldError,
        NoEligibleModel,
        PermissionDenied,
        ProviderError,
        QuotaExhausted,
        RateLimited,
        Refused,
        RouterFailed,
        StreamBroken,
        SwitchmanError,
        TransientError,
        UnknownCall,
        UpstreamError,
        ValidationError,
    )
    from switchman._result import (
        AttemptRecord,
        BudgetTrace,
        Delta,
        EligibilityTrace,
        ErrorInfo,
        EventType,
        Exclusion,
        Outcome,
        Ranked,
        RedactionItem,
        RedactionReport,
        Result,
        Trace,
        TraceEvent,
        Usage,
        Wait,
    )
    from switchman._router import Router, RouterClosed, open_router, run_router
    from switchman.actors import ModelStatus, ProviderStatus, RouterStatus, Subscription
    from switchman.catalog import Config, load_config, validate_config
    from switchman.supervisor import SupervisorEscalation

#: where each public name lives. An application's ``import switchman`` imports them all
#: at once, in this order, before any of its threads can race another into switchman's
#: modules (two plain imports of submodules at once failed 12 times in 30 when they did
#: not). The ``switchman`` command (``_switchman_command``) imports each on first use: a
#: client of the daemon needs none of the router, and started in about 1 s, not 0.2 s
_WHERE: dict[str, str] = {
    name: module
    for module, names in {
        "switchman._call": "Call Caller Determinism Intent Message Options Params RedactionMode "
        "RedactionOptions RedactionOverride Role Timeouts TrustTier Verbosity",
        "switchman._convert": "call_from_dict to_jsonable",
        "switchman._errors": "AttemptTimeout AuthError BadReply BadRequest BudgetExceeded "
        "CallCancelled CallFailed ContentRejected ContextExceeded FieldError NoEligibleModel "
        "PermissionDenied ProviderError QuotaExhausted RateLimited Refused RouterFailed "
        "StreamBroken SwitchmanError TransientError UnknownCall UpstreamError ValidationError",
        "switchman._result": "AttemptRecord BudgetTrace Delta EligibilityTrace ErrorInfo "
        "EventType Exclusion Outcome Ranked RedactionItem RedactionReport Result Trace "
        "TraceEvent Usage Wait",
        "switchman._router": "Router RouterClosed open_router run_router",
        "switchman.actors": "ModelStatus ProviderStatus RouterStatus Subscription",
        "switchman.catalog": "Config load_config validate_config",
        "switchman.supervisor": "SupervisorEscalation",
    }.items()
    for name in names.split()
}

#: the subpackages, each an attribute of the package once asked for
_SUBPACKAGES: frozenset[str] = frozenset(
    {"actors", "adapters", "catalog", "gateway", "policy", "sim", "store", "supervisor"}
)

if not TYPE_CHECKING:  # (hidden from type checkers: they see the imports above, and a
    # misspelt name stays an error in an application's own checks)

    #: one import at a time: two threads reaching one module by different names (the
    #: package of one, a submodule of it by another) deadlocked in CPython's module locks
    _IMPORTING = threading.RLock()

    def __getattr__(name: str) -> object:
        module = _WHERE.get(name)
        if module is None and name in _SUBPACKAGES:  # (``switchman.store`` after the import)
            module, name = f"switchman.{name}", ""
        if module is None:
            raise AttributeError(f"module 'switchman' has no attribute {name!r}")
        with _IMPORTING:
            found = importlib.import_module(module)
        value = getattr(found, name) if name else found
        globals()[name or module.rsplit(".", 1)[1]] = value  # (the next lookup is plain)
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})

    if "_switchman_command" not in sys.modules:  # (an application, not the command line)
        for _name in _WHERE:
            __getattr__(_name)


__all__ = [
    "AttemptRecord",
    "AttemptTimeout",
    "AuthError",
    "BadReply",
    "BadRequest",
    "BudgetExceeded",
    "BudgetTrace",
    "Call",
    "CallCancelled",
    "CallFailed",
    "Caller",
    "Config",
    "ContentRejected",
    "ContextExceeded",
    "Delta",
    "Determinism",
    "EligibilityTrace",
    "ErrorInfo",
    "EventType",
    "Exclusion",
    "FieldError",
    "Intent",
    "Message",
    "ModelStatus",
    "NoEligibleModel",
    "Options",
    "Outcome",
    "Params",
    "PermissionDenied",
    "ProviderError",
    "ProviderStatus",
    "QuotaExhausted",
    "Ranked",
    "RateLimited",
    "RedactionItem",
    "RedactionMode",
    "RedactionOptions",
    "RedactionOverride",
    "RedactionReport",
    "Refused",
    "Result",
    "Role",
    "Router",
    "RouterClosed",
    "RouterFailed",
    "RouterStatus",
    "StreamBroken",
    "Subscription",
    "SupervisorEscalation",
    "SwitchmanError",
    "Timeouts",
    "Trace",
    "TraceEvent",
    "TransientError",
    "TrustTier",
    "UnknownCall",
    "UpstreamError",
    "Usage",
    "ValidationError",
    "Verbosity",
    "Wait",
    "__version__",
    "call_from_dict",
    "load_config",
    "open_router",
    "run_router",
    "to_jsonable",
    "validate_config",
]
