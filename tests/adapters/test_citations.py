"""A Perplexity answer's sources read off its wire (the Agent API's ``search_results``
output item): one entry per result in order, so an answer's ``[n]`` still names its
source; ``""`` where a result has no usable web URL; the same item seen again in a stream
(added, done, and in the completed response) counted once."""

from __future__ import annotations

import json
from typing import Any

from switchman.adapters import StreamEnd
from switchman.adapters._openai import MAX_URL, OpenAIResponsesAdapter

ADAPTER = OpenAIResponsesAdapter(provider="perplexity", base_url="https://x/v1", api_key="k")
HUGE = "https://example.com/" + "a" * MAX_URL
RESULTS = [
    {"id": 1, "url": "https://a.example/one"},
    {"id": 2, "url": "ftp://b.example/two"},
    {"id": 3, "url": "HTTPS://C.example/three"},
    {"id": 4, "url": HUGE},
    {"id": 5, "url": "https://a.example/one"},  # the same page again: still source [5]
    {"id": 6},
    {"id": 7, "url": " https://e.example/seven "},
]
EXPECTED = (
    "https://a.example/one",
    "",
    "HTTPS://C.example/three",
    "",
    "https://a.example/one",
    "",
    "https://e.example/seven",
)
SEARCH = {"type": "search_results", "queries": ["q"], "results": RESULTS}
MESSAGE = {
    "type": "message",
    "status": "completed",
    "content": [{"type": "output_text", "text": "Paris.[1][3]"}],
}


def event(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def test_a_whole_response() -> None:
    body = {"object": "response", "status": "completed", "output": [SEARCH, MESSAGE]}
    completion = ADAPTER.parse_response(json.dumps(body).encode())
    assert completion.citations == EXPECTED


def test_a_stream_counts_each_search_once_whichever_events_carry_it() -> None:
    completed = {"status": "completed", "output": [SEARCH, MESSAGE], "usage": {}}
    for events in (
        [  # the item added and done, then the whole response with it again
            event("response.output_item.added", output_index=0, item=SEARCH),
            event("response.output_item.done", output_index=0, item=SEARCH),
            event("response.output_text.delta", delta="Paris."),
            event("response.completed", response=completed),
        ],
        [  # only in the item events
            event("response.output_item.done", output_index=0, item=SEARCH),
            event("response.output_text.delta", delta="Paris."),
            event("response.completed", response={"status": "completed", "usage": {}}),
        ],
    ):
        parser = ADAPTER.stream_parser()
        out = [e for chunk in events for e in parser.feed(chunk)]
        (end,) = [e for e in out if isinstance(e, StreamEnd)]
        assert end.citations == EXPECTED
