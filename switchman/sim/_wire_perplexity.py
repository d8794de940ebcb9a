"""Perplexity's Agent API (``POST /v1/responses`` = ``/v1/agent``), the OpenAI
Responses-style format that replaced its Sonar chat completions (retired 2026-09-27).

An answer cut at ``max_output_tokens`` is ``status: "incomplete"`` with
``incomplete_details: {"reason": "max_output_tokens"}`` (whole, and in the stream's
``response.completed``). That signal is ASSUMED, following the OpenAI Responses
convention: providers.md documents none for the Agent API (its status enum is
completed, failed, in_progress, queued, cancelled, requires_action; only the retired
Sonar format documents ``finish_reason: "length"``). Whatever Perplexity really sends,
an answer cut short must never read as a clean finish, so the fake says so in the
one way the Responses format has.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any, Final

from switchman.sim._plan import Failure, Plan
from switchman.sim._wire import (
    CREATED,
    BadBody,
    Exchange,
    Parsed,
    Rejected,
    Reply,
    Wire,
    answer_text,
    chat_messages,
    json_reply,
    named,
    positive_int,
    provider_request,
    require_object,
)


def _responses_input(obj: dict[str, Any]) -> list[Any]:
    messages: list[Any] = []
    instructions = obj.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    items = obj.get("input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
    elif isinstance(items, list):
        messages.extend(items)
    else:
        raise BadBody("input: a string or a list of messages is required")
    return messages


#: Perplexity's 400 to two user (or assistant) turns in a row (providers.md section 9)
ALTERNATE: Final = (
    "After the (optional) system message(s), user or tool message(s) should alternate with "
    "assistant message(s)."
)

#: what the fake bills, as Perplexity's Agent API reports it in ``usage.cost``: the model's list
#: prices per token (the built-in catalog's, perplexity/sonar's for a model it does not list, such
#: as a behaviour's name) and one web search per request
SONAR_INPUT_PER_TOKEN: Final = 0.25 / 1e6
SONAR_OUTPUT_PER_TOKEN: Final = 2.5 / 1e6
SEARCH_FEE_USD: Final = 0.005


@functools.cache
def _prices() -> dict[str, tuple[float, float]]:
    """Per Agent API model id: (input, output) USD per token, from the built-in catalog."""
    from switchman.catalog._catalog import builtin_catalog

    return {
        m.model_id: (m.input_per_mtok / 1e6, m.output_per_mtok / 1e6)
        for m in builtin_catalog().models.values()
        if m.provider == "perplexity"
    }


def prices_of(model: str) -> tuple[float, float]:
    """What the fake bills ``model`` per input and output token."""
    return _prices().get(model, (SONAR_INPUT_PER_TOKEN, SONAR_OUTPUT_PER_TOKEN))


#: what a ``response.failed`` event says when the answer fails after it began
MID_ANSWER_FAILURE: Final = "The model failed mid-answer."


class ResponsesWire(Wire):
    """``POST /v1/responses`` (= ``/v1/agent``): a response object, or named SSE events
    ending with ``response.completed``, each with its ``sequence_number`` (0, 1, 2...)."""

    name = "responses"

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        obj = require_object(body)
        model = obj.get("model") or obj.get("preset")
        if not isinstance(model, str) or not model:
            raise BadBody("model: a non-empty string (or a preset) is required")
        items = _responses_input(dict(obj))
        roles = [i.get("role") for i in items if isinstance(i, dict) and i.get("role") != "system"]
        if any(a == b for a, b in itertools.pairwise(roles)):
            raise Rejected(json_reply(400, _pplx_error(ALTERNATE, "invalid_message", 400)))
        messages = chat_messages(items)
        max_tokens = positive_int(obj.get("max_output_tokens"))
        return Parsed(
            model=model,
            request=provider_request(
                model, messages, max_tokens=max_tokens, stream=obj.get("stream") is True
            ),
        )

    def no_key(self) -> Reply:
        message = (
            "Invalid API key provided. You can find your API key at "
            "https://www.perplexity.ai/settings/api."
        )
        return json_reply(401, _pplx_error(message, "invalid_api_key", 401))

    def bad_request(self, message: str) -> Reply:
        return json_reply(400, _pplx_error(message, "invalid_request", 400))

    def not_found(self, message: str) -> Reply:
        return json_reply(404, _pplx_error(message, "not_found", 404))

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        """Perplexity's ``{message, type, code: int}`` errors; its 429 carries no headers at
        all (no retry hint), an unknown model is a 400 ``invalid_model``, and it documents
        no billing failure: an exhausted quota is its plain 429."""
        match failure.kind:
            case "rate_limited" | "quota_exhausted" | "spend_limit":
                body = _pplx_error(
                    "Rate limit exceeded. Please retry after a short wait.",
                    "rate_limit_exceeded",
                    429,
                )
                return json_reply(429, body)
            case "bad_key":
                return self.no_key()
            case "server_error":
                return json_reply(500, _pplx_error("Internal server error", "server_error", 500))
            case "context_length":
                message = f"Prompt too long: {ex.plan.usage.input_tokens} tokens over the limit"
                return json_reply(400, _pplx_error(message, "invalid_request", 400))
            case "content_policy":
                message = "The request was blocked by the content policy."
                return json_reply(400, _pplx_error(message, "content_policy_violation", 400))
            case "not_found":
                message = (
                    f"Invalid model '{ex.model}'. Permitted models can be found in the "
                    "documentation at https://docs.perplexity.ai/guides/model-cards."
                )
                return json_reply(400, _pplx_error(message, "invalid_model", 400))
            case _:
                return json_reply(503, _pplx_error("Service unavailable", "server_error", 503))

    def _sources(self, ex: Exchange) -> dict[str, Any]:
        """The web search the answer rests on: a ``search_results`` output item first, as
        the Agent API's example response has it, with ``SOURCES`` as its results."""
        return {
            "type": "search_results",
            "queries": [_query(ex)],
            "results": [
                {"id": i, "title": title, "url": url, "snippet": title, "source": "web"}
                for i, (title, url) in enumerate(SOURCES, 1)
            ],
        }

    def _message(self, ex: Exchange, status: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if status in ("completed", "incomplete"):  # (a message in progress has none yet)
            content = [{"type": "output_text", "text": answer_text(ex.plan), "annotations": []}]
        return {
            "type": "message",
            "id": f"msg_{ex.id}",
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def _response(self, ex: Exchange, status: str) -> dict[str, Any]:
        plan = ex.plan
        obj: dict[str, Any] = {
            "id": f"resp_{ex.id}",
            "object": "response",
            "created_at": CREATED,
            "model": ex.model,
            "status": status,
            "output": [],
        }
        if status in ("completed", "incomplete"):
            # (its message as incomplete as it)
            obj["output"] = [self._sources(ex), self._message(ex, status)]
            per_input, per_output = prices_of(ex.model)
            input_cost = plan.usage.input_tokens * per_input
            output_cost = plan.usage.output_tokens * per_output
            obj["usage"] = {
                "input_tokens": plan.usage.input_tokens,
                "output_tokens": plan.usage.output_tokens,
                "total_tokens": plan.usage.input_tokens + plan.usage.output_tokens,
                # what the request was billed, its web search included (§9 agent example)
                "cost": {
                    "currency": "USD",
                    "input_cost": input_cost,
                    "output_cost": output_cost,
                    "tool_calls_cost": SEARCH_FEE_USD,
                    "total_cost": round(input_cost + output_cost + SEARCH_FEE_USD, 9),
                },
            }
        if status == "incomplete":
            obj["incomplete_details"] = {"reason": "max_output_tokens"}
        return obj

    def _final_status(self, plan: Plan) -> str:
        return "incomplete" if plan.finish_reason == "length" else "completed"

    def whole(self, ex: Exchange) -> Reply:
        return json_reply(200, self._response(ex, self._final_status(ex.plan)))

    def head(self, ex: Exchange) -> bytes:
        """Events 0 to 3: ``response.created``, the search results item (added, done), the
        answer's message item added."""
        sources = self._sources(ex)
        return (
            _event("response.created", 0, response=self._response(ex, "in_progress"))
            + _event("response.output_item.added", 1, output_index=0, item=sources)
            + _event("response.output_item.done", 2, output_index=0, item=sources)
            + _event(
                "response.output_item.added",
                3,
                output_index=MESSAGE_INDEX,
                item=self._message(ex, "in_progress"),
            )
        )

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        """The renderer of one stream's text deltas, called in order: events 2, 3, ..."""
        item_id = f"msg_{ex.id}"
        numbers = itertools.count(_FIRST_TEXT_EVENT)

        def fill(text: str) -> bytes:
            return _event(
                "response.output_text.delta",
                next(numbers),
                item_id=item_id,
                output_index=MESSAGE_INDEX,
                content_index=0,
                delta=text,
            )

        return fill

    def malformed(self, ex: Exchange) -> bytes:
        return (
            b"event: response.output_text.delta\n"
            b'data: {"type":"response.output_text.delta","delta":"\n\n'
        )

    def finish(self, ex: Exchange) -> bytes:
        n = _after_text(ex.plan)
        return _event(
            "response.output_text.done",
            n,
            item_id=f"msg_{ex.id}",
            output_index=MESSAGE_INDEX,
            content_index=0,
            text=answer_text(ex.plan),
        ) + _event(
            "response.output_item.done",
            n + 1,
            output_index=MESSAGE_INDEX,
            # (a message cut by its token limit is "incomplete", as the response is)
            item=self._message(ex, self._final_status(ex.plan)),
        )

    def terminator(self, ex: Exchange) -> bytes:
        status = self._final_status(ex.plan)
        n = _after_text(ex.plan) + 2
        return _event("response.completed", n, response=self._response(ex, status))

    def refusal(self, ex: Exchange) -> bytes:
        # Perplexity has no refusal signal: a refusal is ordinary answer text.
        return self.chunker(ex)(ex.plan.refusal) + self.finish(ex)

    def mid_error(self, ex: Exchange) -> bytes:
        """``response.failed`` with its ``error: {code, message}`` at the top level and no
        ``response`` (perplexity-py's ``ResponseFailedEvent``)."""
        error = {"code": "server_error", "message": MID_ANSWER_FAILURE}
        return _event("response.failed", _after_text(ex.plan), error=error)


#: the sequence number of a stream's first text delta (after the four events of ``head``)
_FIRST_TEXT_EVENT: Final = 4
#: the answer's message is the second output item, after the search results
MESSAGE_INDEX: Final = 1
#: the sources every answer's search found: (title, url)
SOURCES: Final = (
    ("Paris - Wikipedia", "https://en.wikipedia.org/wiki/Paris"),
    ("France - Britannica", "https://www.britannica.com/place/France"),
)


def _after_text(plan: Plan) -> int:
    """The sequence number of the first event after the text deltas (one for a refusal,
    whose words are its text; one per delivered chunk otherwise)."""
    texts = 1 if plan.ending == "refusal" else len(plan.delivered)
    return _FIRST_TEXT_EVENT + texts


def _query(ex: Exchange) -> str:
    """What the search looked for: the question's first words."""
    asked = [m.content for m in ex.parsed.request.messages if m.role == "user"]
    return " ".join((asked[-1] if asked else "").split()[:8])


def _event(kind: str, sequence_number: int, **fields: Any) -> bytes:
    """One named stream event: its ``type``, its fields and its ``sequence_number`` (every
    event's, counting from 0, as perplexity-py's event types require)."""
    return named(kind, {"type": kind, **fields, "sequence_number": sequence_number})


def _pplx_error(message: str, type_: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}
