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


async def test_every_get_route_answers_head_with_its_headers_and_no_body() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            for path in ("/health", "/providers", "/v1/models", "/openapi.json", "/budgets"):
                got = await gw.client.get(path)
                head = await gw.client.head(path)
                assert head.status_code == got.status_code == 200, path
                assert head.content == b"", path
                if path in ("/openapi.json", "/v1/models"):  # (the others hold live figures)
                    assert head.headers["content-length"] == str(len(got.content)), path
                assert int(head.headers["content-length"]) > 0, path
                assert head.headers["content-type"] == got.headers["content-type"], path
            refused = await gw.client.request("PATCH", "/health")
            assert refused.headers["allow"] == "GET, HEAD"
            posted = await gw.client.head("/call")  # a POST route: not a GET
            assert posted.status_code == 405 and posted.headers["allow"] == "POST"


async def test_every_route_documents_and_answers_two_keys_and_a_foreign_page() -> None:
    """Every route, /health included, answers 400 to two different keys and, without keys,
    403 to a page not of this machine: the description says so for each."""
    router = FakeRouter(make_config())
    two_keys = [("authorization", "Bearer a-key-1234567890"), ("x-api-key", "b-key-1234567890")]
    page = {"origin": "https://evil.example"}
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            doc = (await gw.client.get("/openapi.json")).json()
            for path, operations in doc["paths"].items():
                concrete = path.replace("{job_id}", "job_x").replace("{model}", "fast")
                for method, operation in operations.items():
                    responses = operation["responses"]
                    assert "two different keys" in responses["400"]["description"], path
                    assert "web page not of this machine" in responses["403"]["description"]
                    if path == "/ws":
                        continue
                    for headers, status in ((two_keys, 400), (page, 403)):
                        answer = await gw.client.request(
                            method.upper(), concrete, headers=headers, json={}
                        )
                        assert answer.status_code == status, (path, method, headers)
            assert "429" in doc["paths"]["/ws"]["get"]["responses"]
