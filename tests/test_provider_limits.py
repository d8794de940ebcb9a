"""A provider's own rate limits, as it states them in its headers, over real HTTP: once it
has said its limit, switchman sends no more than that, each window (every window reset
let a burst out, 6.4 times the stated limit); and a model answering every call 429 with
``retry-after: 0`` is not asked again without pause.

The upstream is a tiny h11 server on 127.0.0.1: ``/openai/...`` keeps a fixed window of
``LIMIT`` requests per ``WINDOW_S`` and says so on every answer (OpenAI's headers: limit,
remaining, time to its reset), 429 past it; ``/groq/...`` always answers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import attrs
import h11
import trio

import switchman
from tests._httpfleet import ENV, ask, http_fleet, model
from tests._rawhttp import ANSWER, LIMITED, serve_answers

LIMIT = 5
WINDOW_S = 1.0
Headers = list[tuple[str, str]]


@attrs.define
class Upstream:
    base_url: str = ""
    #: per window of the limited model: (answered, refused with a 429)
    windows: dict[int, list[int]] = attrs.field(factory=dict)
    started: float | None = None
    limited: int = 0


def _windowed(up: Upstream) -> tuple[int, Headers]:
    """The limited model's answer now: 200 within its window's ``LIMIT``, else 429."""
    now = time.monotonic()
    if up.started is None:
        up.started = now
    window = int((now - up.started) // WINDOW_S)
    reset_ms = (up.started + (window + 1) * WINDOW_S - now) * 1000
    counts = up.windows.setdefault(window, [0, 0])
    said: Headers = [("x-ratelimit-limit-requests", str(LIMIT))]
    said.append(("x-ratelimit-reset-requests", f"{reset_ms:.0f}ms"))
    if counts[0] >= LIMIT:
        counts[1] += 1
        said += [("x-ratelimit-remaining-requests", "0"), ("retry-after", f"{reset_ms / 1000:.3f}")]
        return 429, said
    counts[0] += 1
    return 200, [*said, ("x-ratelimit-remaining-requests", str(LIMIT - counts[0]))]


async def serve_upstream(
    limited: Callable[[Upstream], tuple[int, Headers]],
    *,
    task_status: trio.TaskStatus[Upstream] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ``Upstream`` until cancelled: OpenAI as ``limited`` says, Groq answers."""
    up = Upstream()

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        json_type = ("content-type", "application/json")
        if head.target.decode("latin-1").startswith("/openai/"):
            up.limited += 1
            status, headers = limited(up)
            payload = LIMITED if status == 429 else ANSWER
            return status, [json_type, *headers], json.dumps(payload).encode()
        return 200, [json_type], json.dumps(ANSWER).encode()

    async with trio.open_nursery() as nursery:
        up.base_url = await nursery.start(serve_answers, answer)
        task_status.started(up)


async def _callers(
    limited: Callable[[Upstream], tuple[int, Headers]], n: int, seconds: float
) -> tuple[Upstream, list[switchman.Result]]:
    """The upstream answering OpenAI's model as ``limited`` says, and the results of ``n``
    callers of route ``r`` (that model, then Groq's) one call after another, for
    ``seconds``."""
    results: list[switchman.Result] = []

    async def caller(router: switchman.Router, end: float) -> None:
        while trio.current_time() < end:
            results.append(await router.call(ask("r")))
            await trio.sleep(0.02)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            up = await nursery.start(serve_upstream, limited)
            models = [model("openai", "m"), model("groq", "b")]
            config = http_fleet(up, models, routes={"r": ("openai/m", "groq/b")})
            async with switchman.open_router(config, env=ENV) as router:
                end = trio.current_time() + seconds
                async with trio.open_nursery() as callers:
                    for _ in range(n):
                        callers.start_soon(caller, router, end)
            nursery.cancel_scope.cancel()
    return up, results


async def test_a_stated_limit_is_kept_after_each_window_resets() -> None:
    """Thirty callers for four windows: the first burst goes out before the provider has
    said anything, then each window gets its five requests and about no 429 (some fifty
    429s each window, every reset letting everyone through, before)."""
    up, results = await _callers(_windowed, 30, 4.0)
    failed = [r.errors for r in results if r.status != "complete"]
    assert not failed, failed[:3]
    later = [counts for window, counts in sorted(up.windows.items()) if window >= 1]
    assert len(later) >= 3
    assert sum(answered for answered, _ in later) >= 2 * LIMIT  # the limit is used
    refused = sum(limited for _, limited in later)
    assert refused <= 2 * len(later), up.windows


async def test_a_429_saying_retry_after_zero_is_not_asked_again_at_once() -> None:
    """A model answering every call 429 with ``retry-after: 0``: ten callers with a
    fallback ask it a few times a second (5,460 times in 10 s before: each 429 said to
    ask again at once)."""

    def always_429(up: Upstream) -> tuple[int, Headers]:
        return 429, [("retry-after", "0")]

    up, results = await _callers(always_429, 10, 2.0)
    assert all(r.status == "complete" and r.model == "groq/b" for r in results)
    assert len(results) > 200  # (the fallback answered without waiting for it)
    assert up.limited <= 40, up.limited
