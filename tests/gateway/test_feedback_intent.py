"""``POST /feedback`` may say what kind of call an unclassified job was, but cannot move a
classified job's rating to another intent's statistics."""

from __future__ import annotations

import trio

from tests.gateway._fakes import FakeRouter, make_config, running_gateway


async def test_an_intent_in_feedback_classifies_an_unknown_call_but_never_reclassifies() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            coded = (
                await gw.client.post(
                    "/call?wait=5", json={"prompt": "p", "model": "fast", "intent": "code"}
                )
            ).json()
            plain = await gw.client.post("/call?wait=5", json={"prompt": "p", "model": "fast"})
            plain_job = plain.json()
            moved = await gw.client.post(
                f"/feedback/{coded['job_id']}", json={"score": 0.0, "intent": "summarize"}
            )
            assert moved.status_code == 422
            (detail,) = moved.json()["error"]["details"]
            assert detail["field"] == "intent" and "'code' call" in detail["message"]
            bogus = await gw.client.post(
                f"/feedback/{coded['job_id']}", json={"score": 0.5, "intent": "chat"}
            )
            assert bogus.status_code == 422
            assert "must be one of" in bogus.json()["error"]["details"][0]["message"]
            # refused, so not spent: the job can still be rated, as what it was
            same = await gw.client.post(
                f"/feedback/{coded['job_id']}", json={"score": 0.7, "intent": "code"}
            )
            assert same.status_code == 200
            classified = await gw.client.post(
                f"/feedback/{plain_job['job_id']}", json={"score": 0.9, "intent": "summarize"}
            )
            assert classified.status_code == 200
    assert [(score, intent) for _, score, intent in router.feedback_given] == [
        (0.7, "code"),
        (0.9, "summarize"),
    ]
