"""A 404 that does not name the model is a base_url that points at the wrong path (a vLLM
server's root without its ``/v1``): the error says which path answered it, where it read
only ``Not Found`` and every model was held out as not served. It names the endpoint
switchman added, never the base URL's own path (an account or a token may be in it, and
the error reaches callers whose keys may not see the configuration): that goes to the log.
The real path: a server over real HTTP."""

from __future__ import annotations

import json
import logging

import h11
import pytest
import trio

import switchman
from switchman import Call
from switchman.catalog import Config, ModelSpec, ProviderSpec
from tests._rawhttp import serve_answers

MISSING = {"error": {"message": "The model `mine` does not exist", "code": "model_not_found"}}


@pytest.mark.parametrize(
    ("body", "told"),
    [
        (
            {"detail": "Not Found"},
            "Not Found (at the base_url + /chat/completions: is the provider's base_url",
        ),
        (MISSING, "The model `mine` does not exist [model_not_found]"),
    ],
    ids=["a bare Not Found", "the model named"],
)
async def test_a_404_that_does_not_name_the_model_names_the_path_it_came_from(
    nursery: trio.Nursery, body: dict[str, object], told: str
) -> None:
    def answer(head: h11.Request, _: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return 404, [("content-type", "application/json")], json.dumps(body).encode()

    base_url = await nursery.start(serve_answers, answer)
    config = Config(
        providers={"vllm": ProviderSpec(name="vllm", kind="openai", base_url=base_url)},
        models={"mine": ModelSpec(alias="mine", provider="vllm", model_id="mine")},
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env={}) as router:
            result = await router.call(Call(prompt="hello", model="mine"))
            held = router.status().providers[0].models[0].held_out
    assert result.status == "failed"
    assert result.errors[0].message.startswith(told), result.errors
    assert held is not None and told in held
    if "base_url" not in told:
        assert "base_url" not in result.errors[0].message


async def test_the_404_hint_leaves_the_base_urls_own_path_to_the_log(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    def answer(head: h11.Request, _: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return 404, [("content-type", "application/json")], b'{"detail": "Not Found"}'

    base_url = await nursery.start(serve_answers, answer)
    config = Config(
        providers={
            "vllm": ProviderSpec(
                name="vllm", kind="openai", base_url=f"{base_url}/acct-SECRETPATH-0123/v1"
            )
        },
        models={"mine": ModelSpec(alias="mine", provider="vllm", model_id="mine")},
    )
    caplog.set_level(logging.WARNING, logger="switchman.http")
    with trio.fail_after(20):
        async with switchman.open_router(config, env={}) as router:
            result = await router.call(Call(prompt="hello", model="mine"))
            held = router.status().providers[0].models[0].held_out
    told = result.errors[0].message
    assert told.startswith("Not Found (at the base_url + /chat/completions: is the"), told
    assert "SECRETPATH" not in told and held is not None and "SECRETPATH" not in held
    assert "/acct-SECRETPATH-0123/v1/chat/completions" in caplog.text


@pytest.mark.parametrize(
    ("status", "headers", "body", "told"),
    [
        (307, [("location", "{url}/chat/completions/")], b"", "to <base_url>/chat/completions/"),
        (
            301,
            [("location", "{https}/chat/completions")],
            b"",
            "to <base_url>/chat/completions",
        ),
        (
            404,
            [("content-type", "text/plain")],
            b"Cannot POST {path}/chat/completions",
            "Cannot POST <base_url>/chat/completions",
        ),
    ],
    ids=["a redirect", "a redirect to https", "a 404 page quoting the path"],
)
async def test_an_error_quoting_the_base_url_shows_it_to_no_caller(
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    told: str,
) -> None:
    """A redirect's location and a server's 404 page quoting the path it was asked showed
    the base URL, host, port and path, to every caller of the model."""
    where: dict[str, str] = {}

    def answer(head: h11.Request, _: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        filled = [(k, v.format(**where)) for k, v in headers]
        return status, filled, body.replace(b"{path}", where["path"].encode())

    server = await nursery.start(serve_answers, answer)
    base_url = f"{server}/acct-SECRETPATH-0123/v1"
    where.update(
        url=base_url,
        https=base_url.replace("http://", "https://"),
        path="/acct-SECRETPATH-0123/v1",
    )
    config = Config(
        providers={"vllm": ProviderSpec(name="vllm", kind="openai", base_url=base_url)},
        models={"mine": ModelSpec(alias="mine", provider="vllm", model_id="mine")},
    )
    caplog.set_level(logging.WARNING, logger="switchman.http")
    with trio.fail_after(20):
        async with switchman.open_router(config, env={}) as router:
            result = await router.call(Call(prompt="hello", model="mine"))
    said = result.errors[0].message
    assert told in said, said
    host = server.removeprefix("http://")
    assert "SECRETPATH" not in said and host not in said, said
    assert "SECRETPATH" in caplog.text
