"""Per-key request rates: ``[[keys]] rpm`` as one token bucket per key handle.

A key with ``rpm = N`` may make N calls at once, then one every ``60/N``
seconds (``/call``, ``/v1/chat/completions`` and websocket ``call`` messages
draw on the same bucket). Over it, the request is refused with **429**
``rate_limited`` and a ``retry-after`` saying when the bucket has a request
again. The buckets are the policy's own (``new_budget`` / ``rate_admit``), so
the arithmetic is the providers'; the gateway holds them here and passes the
trio clock as ``now``. Nothing here blocks or can be cancelled midway.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Final

from switchman.gateway._auth import Principal
from switchman.gateway._http import HttpError
from switchman.policy._ratelimit import RateBudget, new_budget, rate_admit

#: the header a websocket error's ``retry_after_s`` is read from
RETRY_AFTER: Final = b"retry-after"


class Holdings:
    """How many of something (jobs in flight, websockets, long-polls) each team holds: a
    key's handle, ``None`` for the gateway without keys. A team holding none has no entry,
    so the map is as large as the teams busy now."""

    def __init__(self) -> None:
        self._held: dict[str | None, int] = {}

    def held(self, owner: str | None) -> int:
        return self._held.get(owner, 0)

    def take(self, owner: str | None, amount: int = 1) -> None:
        self._held[owner] = self._held.get(owner, 0) + amount

    def give_back(self, owner: str | None, amount: int = 1) -> None:
        left = self._held.get(owner, amount) - amount
        if left > 0:
            self._held[owner] = left
        else:
            self._held.pop(owner, None)

    @contextlib.contextmanager
    def holding(self, owner: str | None) -> Iterator[None]:
        """One more held by ``owner`` for the block, given back however it ends."""
        self.take(owner)
        try:
            yield
        finally:
            self.give_back(owner)


class KeyRates:
    """The request buckets of the keys that have an ``rpm``, by handle."""

    def __init__(self) -> None:
        self._buckets: dict[str, RateBudget] = {}

    def admit(self, handle: str, rpm: int, now: float) -> float | None:
        """Take one request from ``handle``'s bucket; None when admitted, else the
        seconds until it would be (the bucket is left as it was)."""
        bucket = self._buckets.get(handle)
        if bucket is None or bucket.rpm != rpm:
            bucket = new_budget(rpm, None, now)
        retry_at, after = rate_admit(bucket, now, tokens=0)
        self._buckets[handle] = after
        return None if retry_at is None else max(retry_at - now, 0.0)

    def check(self, principal: Principal, now: float) -> None:
        """Raise ``HttpError(429)`` when ``principal``'s key is over its ``rpm``.

        The error carries ``retry-after`` (whole seconds, rounded up, as HTTP has it)
        and ``retry-after-ms`` (what the official OpenAI SDKs read first).
        """
        if principal.rpm is None or principal.handle is None:
            return
        wait = self.admit(principal.handle, principal.rpm, now)
        if wait is None:
            return
        raise HttpError(
            429,
            "rate_limited",
            f"the key {principal.handle!r} is over its rate of {principal.rpm} "
            f"request{'s' if principal.rpm != 1 else ''} a minute; retry in {wait:.1f}s",
            headers=[
                (RETRY_AFTER, str(max(math.ceil(wait), 1)).encode()),
                (b"retry-after-ms", str(max(math.ceil(wait * 1000), 1)).encode()),
            ],
        )


def retry_after_s(err: HttpError) -> int | None:
    """The whole seconds of an error's ``retry-after`` header, if it has one."""
    for name, value in err.headers:
        if name == RETRY_AFTER:
            return int(value)
    return None
