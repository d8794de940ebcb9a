"""Messages between actors: frozen values; a request that needs an answer carries its reply channel.

Mailboxes and their closed unions:

- provider actor inbox: ``Attempt | CancelAttempt | AttemptDone | Feedback``
- an attempt's reply channel: ``Unavailable`` (at once, then closed) or stream events
  (``ResponseStarted``, ``TextDelta``, ``Malformed``) ending in ``StreamEnd`` or
  ``AttemptFailed``; a reply channel closed without either means the actor went away.
- ledger inbox: ``Reserve | Settle | Release | SpendQuery``
- dispatcher inbox: ``Submit | CancelCall | FeedbackFor | SpendQuery`` (a spend query
  passes through the dispatcher, which first hands the ledger the spend it tracks)
- a call's reply channel: ``Delta`` items (streaming only), then one ``Result``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Literal

import attrs
import trio

from switchman._call import Call
from switchman._errors import AttemptTimeout, ProviderError
from switchman._result import Delta, Result, Usage
from switchman.adapters._base import ProviderRequest, StreamEvent
from switchman.catalog._spec import ModelSpec

if TYPE_CHECKING:
    from switchman.policy._budget import Refusal


@attrs.frozen(kw_only=True)
class Unavailable:
    """The provider cannot serve this attempt now; ``retry_at`` is trio time, when known."""

    reason: str
    retry_at: float | None = None
    #: at its concurrency limit: free again as soon as one of its attempts ends
    busy: bool = False


@attrs.frozen(kw_only=True)
class AttemptFailed:
    error: ProviderError


AttemptReply = Unavailable | AttemptFailed | StreamEvent


@attrs.frozen(kw_only=True, eq=False)
class Attempt:
    id: int
    model: ModelSpec
    request: ProviderRequest
    intent: str
    deadline: float
    ttft_s: float
    stall_s: float
    input_tokens: int
    reply_to: trio.MemorySendChannel[AttemptReply]
    #: the call has other models to try after this one: the actor may turn it away when
    #: the model looks hung (``policy._silence``); the last one is always sent
    alternatives: bool = False
    #: it continues an answer a broken stream had begun: it may add nothing
    continues: bool = False
    #: the ranking put the model first to hear from it again (``freshness``): what it
    #: measures replaces what was learned of its speed (``policy._learning.observe``)
    fresh_look: bool = False


class CallersTimeout(AttemptTimeout):
    """A ``CancelAttempt``'s reason when a limit the caller set tighter than the router's
    default cut the attempt off: never held against the breaker (that is the caller's
    hurry), but counted in the statistics when no text had come and the model had waited
    well past what it is known to take to its first token (``SLOW_AFTER_MS``,
    ``SLOW_FACTOR``): it was slow then, whoever asked."""

    trips_breaker = False


#: a callers' own limit counts in the statistics once the model had waited this long, and
SLOW_AFTER_MS: Final = 1000.0
#: this many times what it is known to take to its first token
SLOW_FACTOR: Final = 2.0


@attrs.frozen(kw_only=True)
class CancelAttempt:
    id: int
    #: why the dispatcher gave up on it (its time limits), so the actor's breaker and
    #: statistics count the attempt as what it was; None when the caller left
    reason: ProviderError | None = None


@attrs.frozen(kw_only=True)
class AttemptDone:
    """Sent by an attempt task to its own actor, so health is updated in one place."""

    id: int
    alias: str
    intent: str
    outcome: str
    started_at: float
    ttft_s: float | None
    usage: Usage | None
    estimated_tokens: int
    status: int | None = None
    headers: Mapping[str, str] | None = None
    error: ProviderError | None = None
    fresh_look: bool = False


@attrs.frozen(kw_only=True)
class Feedback:
    alias: str
    intent: str
    score: float


ProviderMessage = Attempt | CancelAttempt | AttemptDone | Feedback


@attrs.frozen(kw_only=True, eq=False)
class Reserve:
    id: str
    scopes: tuple[str, ...]
    amount_usd: float
    reply_to: trio.MemorySendChannel[Refusal | None]
    #: the job it is for, if any (what a restart bills a killed job for), and which of its
    #: attempts (``AttemptRecord.n``)
    owner: str = ""
    attempt: int = 0


@attrs.frozen(kw_only=True)
class Settle:
    id: str
    actual_usd: float


@attrs.frozen(kw_only=True)
class Release:
    id: str


@attrs.frozen(kw_only=True)
class Spent:
    """Spend without a reservation (no scope of it has a budget): kept so that it shows."""

    scopes: tuple[str, ...]
    actual_usd: float
    #: a wall time in the periods it counts in (its attempts began then); None: now
    at: float | None = None


@attrs.frozen(kw_only=True, eq=False)
class SpendQuery:
    scope: str
    reply_to: trio.MemorySendChannel[dict[str, float]]


LedgerMessage = Reserve | Settle | Release | Spent | SpendQuery


@attrs.frozen(kw_only=True, eq=False)
class Submit:
    call: Call
    call_id: str
    job_id: str | None
    stream: bool
    reply_to: trio.MemorySendChannel[Delta | Result]
    #: trio time the caller submitted it: the call's hard deadline counts from here,
    #: so time spent waiting for room in the dispatcher is part of it (None: on arrival)
    submitted_at: float | None = None


@attrs.frozen(kw_only=True)
class CancelCall:
    """Cancel a running call, named by its id or by its job's (the gateway's); it ends
    with a failed result whose error (code ``cancelled``) says ``reason`` when given."""

    call_id: str | None = None
    job_id: str | None = None
    reason: str | None = None


#: the dispatcher's answer to feedback: credited, a call it does not know, or one already rated
#: ``closed``: the router stopped before it could take the feedback
FeedbackAnswer = Literal["ok", "unknown", "rated", "closed", "out_of_service"]


@attrs.frozen(kw_only=True, eq=False)
class FeedbackFor:
    call_id: str
    score: float
    reply_to: trio.MemorySendChannel[FeedbackAnswer]
    #: learn the score for this intent instead of the one the call was made with
    intent: str | None = None
    #: the alias that answered, for a call the dispatcher no longer remembers (a restart
    #: since): the score is then credited to it, for ``intent``
    model: str | None = None


DispatcherMessage = Submit | CancelCall | FeedbackFor | SpendQuery
