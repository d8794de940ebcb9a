"""``/openapi.json`` lists what every route really answers: 405 (with ``allow``) for another
method, and 408 on each route that reads a body."""

from __future__ import annotations

import trio

from tests.gateway._fakes import FakeRouter, make_config, running_gateway


async def test_every_route_documents_and_answers_405_and_body_routes_document_408() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            doc = (await gw.client.get("/openapi.json")).json()
            checked = 0
            for path, operations in doc["paths"].items():
                if path == "/ws":
                    continue
                concrete = path.replace("{job_id}", "job_x").replace("{model}", "fast")
                for method, operation in operations.items():
                    responses = operation["responses"]
                    assert "405" in responses, (path, method)
                    assert "allow" in responses["405"]["headers"], (path, method)
                    assert ("408" in responses) == ("requestBody" in operation), (path, method)
                wrong = "PATCH"
                answer = await gw.client.request(wrong, concrete)
                assert answer.status_code == 405, (path, answer.status_code)
                allowed = {m.strip() for m in answer.headers["allow"].split(",")}
                assert {m.upper() for m in operations} <= allowed, (path, allowed)
                checked += 1
            assert checked >= 10
