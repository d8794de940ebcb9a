"""A refusal's text is the model's words, as an answer is, and redacted as one: a
prompt-injected model put an email, a phone number and a card number in its
``message.refusal``, and they reached the result's errors, the trace and the store."""

from __future__ import annotations

import json

import h11
import trio

import switchman
from switchman import Call
from switchman.catalog import config_from_dict
from tests._rawhttp import chat_reply, serve_answers
from tests._simfleet import drained

SAID = "I refuse. Reach jane.doe@acme-mail.net or +1 415 555 0134, card 4111 1111 1111 1111."


async def test_a_refusals_words_are_redacted_wherever_they_go(nursery: trio.Nursery) -> None:
    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return chat_reply({"content": None, "refusal": SAID})

    base_url = await nursery.start(serve_answers, answer)
    env = {"OPENAI_API_KEY": "sk-test-openai-0001"}
    config = config_from_dict({"providers": {"openai": {"base_url": f"{base_url}/v1"}}}, env=env)
    with trio.fail_after(20):
        async with switchman.open_router(config, env=env) as router:
            events = router.subscribe()
            refused = await router.call(Call(prompt="hi", model="openai/gpt-5.4-mini"))
            await trio.sleep(0.1)
            seen = drained(events)
            off = await router.call(
                switchman.call_from_dict(
                    {
                        "prompt": "hi",
                        "model": "openai/gpt-5.4-mini",
                        "options": {
                            "redaction": {
                                "mode": "off",
                                "override": {
                                    "enabled": True,
                                    "reason": "a test of the words",
                                    "acknowledgements": [
                                        "output_may_contain_secrets",
                                        "output_may_contain_personal_data",
                                    ],
                                },
                            }
                        },
                    }
                )
            )
    shown = json.dumps(switchman.to_jsonable(refused)) + repr([e.data for e in seen])
    assert refused.status == "failed" and refused.errors[0].code == "refused"
    for secret in ("jane.doe@acme-mail.net", "555 0134", "4111 1111 1111 1111"):
        assert secret not in shown, secret
    assert "[REDACTED:email]" in refused.trace.attempts[0].error
    # (redaction turned off, with its acknowledgement: the words as the model said them)
    assert off.trace.attempts and SAID in off.trace.attempts[0].error, off.errors
