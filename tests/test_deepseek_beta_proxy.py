"""DeepSeek behind a proxy whose base_url (its path holding an account token) has no
``/beta`` beside it: a conversation ending with the assistant's turn goes to DeepSeek's
prefix completion there, and its 404 neither shows the base_url's path to the caller nor
holds the model out (it held it out 300 s for every caller, on anyone's one request)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import h11
import trio

import switchman
from switchman import Call, Message
from switchman.catalog import config_from_dict
from tests._rawhttp import chat_reply, serve_answers

TOKEN = "acct-SECRETPATHTOKEN8"


async def test_a_404_at_deepseeks_beta_is_the_requests_not_the_models(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    paths: list[bytes] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        paths.append(head.target)
        if b"/beta/" in head.target:
            # (the path as servers quote it: whole, without its first slash, encoded)
            path = head.target.decode()
            said = f"no route {path}; Cannot POST {path[1:]}; {urllib.parse.quote(path, safe='')}"
            return 404, [("content-type", "text/plain")], said.encode()
        return chat_reply({"content": "Hi."})

    base_url = await nursery.start(serve_answers, answer)
    env = {"DEEPSEEK_API_KEY": "sk-test-deepseek-0001"}
    config = config_from_dict(
        {
            "providers": {
                "deepseek": {
                    "base_url": f"{base_url}/{TOKEN}/v1",
                    "api_key_env": "DEEPSEEK_API_KEY",
                }
            },
        },
        env=env,
    )
    prefill = (Message(role="user", content="Say hi"), Message(role="assistant", content="H"))
    with trio.fail_after(20):
        async with switchman.open_router(config, env=env) as router:
            cut = await router.call(Call(messages=prefill, model="deepseek/deepseek-flash"))
            plain = await router.call(Call(prompt="Say hi", model="deepseek/deepseek-flash"))
    assert cut.status == "failed"
    said = " | ".join(e.message for e in cut.errors)
    assert "/beta/chat/completions" in said and "serves no /beta" in said, said
    assert "Cannot POST <base_url>/beta/chat/completions" in said, said
    assert TOKEN not in json.dumps(switchman.to_jsonable(cut)), said
    assert paths[0] == f"/{TOKEN}/beta/chat/completions".encode()
    # the model serves all else: not held out as a model the provider does not serve
    assert plain.status == "complete" and plain.answer == "Hi.", plain.errors
