"""A provider's 429s whose retry times no calendar or float holds, over real HTTP: the
router keeps running, the other provider keeps serving, and no hold passes MAX_HOLD_S.

The upstream is a tiny h11 server on 127.0.0.1: every ``/openai/...`` request is answered
429 with the headers under test, every ``/groq/...`` one with an answer."""

from __future__ import annotations

import json
from collections.abc import Sequence

import attrs
import h11
import trio

import switchman
from switchman.policy._ratelimit import DEFAULT_BLOCK_S, MAX_HOLD_S
from tests._httpfleet import ENV, ask, http_fleet, model
from tests._rawhttp import ANSWER, LIMITED, serve_answers
from tests.gateway._fakes import running_gateway

#: the retry-after whose 20-digit year raised OverflowError out of the provider actor
OVERFLOWING_DATE = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"


@attrs.define
class Upstream:
    base_url: str = ""
    paths: list[str] = attrs.field(factory=list)

    def seen(self, provider: str) -> int:
        return sum(1 for path in self.paths if path.startswith(f"/{provider}/"))


async def serve_upstream(
    headers: Sequence[tuple[str, str]],
    *,
    task_status: trio.TaskStatus[Upstream] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ``Upstream`` until cancelled: OpenAI 429s with ``headers``, Groq answers."""
    up = Upstream()

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        path = head.target.decode("latin-1")
        up.paths.append(path)
        json_type = ("content-type", "application/json")
        if path.startswith("/openai/"):
            return 429, [json_type, *headers], json.dumps(LIMITED).encode()
        return 200, [json_type], json.dumps(ANSWER).encode()

    async with trio.open_nursery() as nursery:
        up.base_url = await nursery.start(serve_answers, answer)
        task_status.started(up)


def _strict_json(text: str) -> object:
    """``text`` as JSON, refusing the bare ``Infinity`` / ``NaN`` Python's json accepts."""

    def refuse(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


async def test_429s_with_an_overflowing_date_leave_the_router_serving() -> None:
    """Each such 429 crashed the OpenAI provider actor; six in 30 s went past its
    supervisor's intensity and stopped the router, Groq's models with it."""
    openai_models = [model("openai", f"a{i}") for i in range(10)]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            up = await nursery.start(serve_upstream, [("retry-after", OVERFLOWING_DATE)])
            config = http_fleet(
                up, [*openai_models, model("groq", "b")], routes={"r": ("openai/a0", "groq/b")}
            )
            async with switchman.open_router(config, env=ENV) as router:
                for limited in openai_models:  # (each model is held apart: ten 429s at once)
                    result = await router.call(ask(limited.alias))
                    assert result.status == "failed"
                    assert [e.code for e in result.errors] == ["rate_limited"]
                    served = await router.call(ask("groq/b"))
                    assert (served.status, served.answer) == ("complete", "Paris.")
                assert up.seen("openai") == 10
                status = router.status()
                assert {p.name: p.restarts for p in status.providers} == {"groq": 0, "openai": 0}
                held = [m.rate_limited_for_s for p in status.providers for m in p.models]
                assert max(held) <= DEFAULT_BLOCK_S  # a date it cannot read: the default
                routed = await router.call(ask("r"))
                assert (routed.status, routed.model) == ("complete", "groq/b")
            nursery.cancel_scope.cancel()


async def test_an_endless_retry_after_holds_an_hour_and_says_so() -> None:
    """``retry-after: 1e400`` was ``inf`` seconds: the model was held for ever and
    ``/providers`` carried a bare ``Infinity``; ``inf`` itself is no time at all."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            up = await nursery.start(serve_upstream, [("retry-after", "1e400")])
            config = http_fleet(
                up,
                [model("openai", "long"), model("groq", "b")],
                routes={"r": ("openai/long", "groq/b")},
            )
            async with switchman.open_router(config, env=ENV) as router:
                routed = await router.call(ask("r"))
                assert (routed.status, routed.model) == ("complete", "groq/b")
                first = routed.trace.attempts[0]
                assert (first.alias, first.outcome) == ("openai/long", "rate_limited")
                assert first.error is not None and f"{MAX_HOLD_S:g} s at most" in first.error
                (openai,) = [p for p in router.status().providers if p.name == "openai"]
                (held,) = [m.rate_limited_for_s for m in openai.models]
                assert MAX_HOLD_S - 5.0 < held <= MAX_HOLD_S
                async with running_gateway(router) as gateway:
                    response = await gateway.client.get("/providers")
                    assert response.status_code == 200
                    _strict_json(response.text)
                again = await router.call(ask("r"))  # held: not asked again
                assert (again.status, again.model) == ("complete", "groq/b")
                assert up.seen("openai") == 1
            nursery.cancel_scope.cancel()
