"""``/openapi.json`` names every field the gateway's answers carry: real answers of the
real router, each field looked up in the schema its route documents (a client generated
from the schema dropped or refused the fields it lacked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tests.gateway.test_e2e import real_gateway


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return _resolve(doc["components"]["schemas"][ref.rsplit("/", 1)[1]], doc)


def _unnamed(value: Any, schema: dict[str, Any], doc: dict[str, Any], at: str) -> list[str]:
    """The paths of ``value``'s fields that ``schema`` does not name (an object schema
    without properties takes any field)."""
    schema = _resolve(schema, doc)
    out: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            inner = schema["properties"].get(key)
            if inner is None:
                extra = schema.get("additionalProperties")
                if isinstance(extra, dict):
                    out += _unnamed(item, extra, doc, f"{at}.{key}")
                else:
                    out.append(f"{at}.{key}")
            else:
                out += _unnamed(item, inner, doc, f"{at}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            out += _unnamed(item, schema["items"], doc, f"{at}[]")
    return out


def _schema(doc: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    response = doc["paths"][path][method]["responses"][status]
    return dict(response["content"]["application/json"]["schema"])


async def test_every_field_of_real_answers_is_in_the_schema_of_its_route(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with real_gateway(tmp_path, budgets={"global_daily_usd": 100.0}) as gw:
            doc = (await gw.client.get("/openapi.json")).json()
            answers: list[tuple[str, str, str, Any]] = []
            # a complete job with an answer redacted, and a failed one
            mail = {"prompt": "write to ann@acme.io today", "model": "sim/balanced"}
            done = (await gw.client.post("/call?wait=20", json=mail)).json()
            assert done["result"]["redaction"]["performed"] is True
            answers.append(("/call", "post", "200", done))
            cheap = {"prompt": "hi", "options": {"max_cost_usd": 1e-12}}
            failed = (await gw.client.post("/call?wait=20", json=cheap)).json()
            assert failed["status"] == "failed"
            answers.append(("/result/{job_id}", "get", "200", failed))
            for path in ("/health", "/budgets"):
                answers.append((path, "get", "200", (await gw.client.get(path)).json()))
            chat = {"model": "sim/balanced", "messages": [{"role": "user", "content": "hi"}]}
            completion = (await gw.client.post("/v1/chat/completions", json=chat)).json()
            answers.append(("/v1/chat/completions", "post", "200", completion))
            unnamed = [
                miss
                for path, method, status, body in answers
                for miss in _unnamed(body, _schema(doc, path, method, status), doc, path)
            ]
    assert unnamed == [], "\n".join(unnamed)
