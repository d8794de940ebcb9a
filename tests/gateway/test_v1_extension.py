"""The ``switchman`` object of a ``/v1`` request (the SDK's ``extra_body``): the call's own
fields, through the official openai SDK, the real gateway and the real router."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
import trio

from switchman.gateway._http import HttpError
from switchman.gateway._openai import chat_request
from tests.gateway.test_e2e import PICKY_MODELS, _sdk, real_gateway

USER = [{"role": "user", "content": "Say hello"}]


async def _create(client: openai.OpenAI, **kwargs: Any) -> Any:
    def run() -> Any:
        try:
            kwargs.setdefault("messages", USER)
            return client.chat.completions.with_raw_response.create(**kwargs)
        finally:
            client.close()

    return await trio.to_thread.run_sync(run)


async def test_a_fallback_named_in_extra_body_answers_when_the_model_fails(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with real_gateway(tmp_path, models=PICKY_MODELS) as gw:
            sw = {"options": {"fallback": ["sim/fast"], "timeouts": {"hard_ms": 20000}}}
            raw = await _create(_sdk(gw), model="t/broken", extra_body={"switchman": sw})
            assert raw.headers["x-switchman-model"] == "sim/fast"
            assert raw.parse().choices[0].message.content
            job = (await gw.client.get(f"/result/{raw.headers['x-request-id']}")).json()
            attempts = [a["alias"] for a in job["result"]["trace"]["attempts"]]
            assert attempts[0] == "t/broken" and attempts[-1] == "sim/fast"
            # the model alone, as before, has nowhere to go
            with pytest.raises(openai.APIStatusError) as info:
                await _create(_sdk(gw), model="t/broken")
            assert info.value.status_code == 503


@pytest.mark.parametrize(
    ("model", "sw", "said"),
    [
        ("t/standard", {"min_trust": "trusted"}, "t/standard: trust tier standard below"),
        ("sim/balanced", {"options": {"max_cost_usd": 1e-12}}, "above max_cost_usd"),
        # strict determinism needs a seed: a bad value, named as the request spells it
        ("t/standard", {"options": {"determinism": "strict"}}, "seed: is required"),
        ("t/standard", {"options": {"fallback": ["t/nope"]}}, "switchman.options.fallback[0]:"),
    ],
)
async def test_eligibility_fields_in_extra_body_leave_models_out(
    tmp_path: Path, model: str, sw: dict[str, Any], said: str
) -> None:
    with trio.fail_after(30):
        async with real_gateway(tmp_path, models=PICKY_MODELS) as gw:
            with pytest.raises(openai.BadRequestError) as info:
                await _create(_sdk(gw), model=model, extra_body={"switchman": sw})
            assert said in info.value.message
            # the same call without them is answered
            raw = await _create(_sdk(gw), model=model)
            assert raw.headers["x-switchman-model"] == model


async def test_a_bad_extension_is_a_400_naming_the_field_through_the_sdk(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with real_gateway(tmp_path) as gw:
            sw = {"options": {"verbosity": "huge", "timeouts": {"hard_ms": 0}}, "tier": 1}
            with pytest.raises(openai.BadRequestError) as info:
                await _create(_sdk(gw), model="auto", extra_body={"switchman": sw})
            body = info.value.body
            assert isinstance(body, dict)
            fields = {d["field"] for d in body["details"]}
            assert fields == {
                "switchman.tier",
                "switchman.options.verbosity",
                "switchman.options.timeouts.hard_ms",
            }
            jobs = (await gw.client.get("/jobs")).json()["jobs"]
            assert jobs == []  # refused before a job was made


async def test_a_stream_takes_the_extension_too(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with real_gateway(tmp_path, models=PICKY_MODELS) as gw:
            client = _sdk(gw)

            def run() -> list[Any]:
                try:
                    sw = {"intent": "code", "options": {"fallback": ["t/code"]}}
                    stream = client.chat.completions.create(
                        model="t/broken",
                        messages=USER,  # type: ignore[arg-type]
                        stream=True,
                        extra_body={"switchman": sw},
                    )
                    return list(stream)
                finally:
                    client.close()

            chunks = await trio.to_thread.run_sync(run)
            final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
            assert [c.choices[0].finish_reason for c in final] == ["stop"]
            assert (final[0].model_extra or {})["switchman"]["model"] == "t/code"


BODY = {"model": "auto", "messages": USER}


def test_the_extension_maps_to_the_call() -> None:
    sw = {
        "min_trust": "trusted",
        "capabilities": ["code"],
        "options": {"max_cost_usd": 0.5, "fallback": ["claude"], "timeouts": {"soft_ms": 900}},
    }
    call = chat_request({**BODY, "switchman": sw}).call
    assert (call.min_trust, call.capabilities) == ("trusted", ("code",))
    assert call.options.max_cost_usd == 0.5 and call.options.fallback == ("claude",)
    assert call.options.timeouts.soft_ms == 900
    # no max_tokens and no verbosity of its own: as long an answer as the model gives
    assert call.options.verbosity == "full"
    given = {"options": {"verbosity": "minimal"}}
    assert chat_request({**BODY, "switchman": given}).call.options.verbosity == "minimal"
    capped = chat_request({**BODY, "max_tokens": 9, "switchman": {"options": {}}}).call
    assert capped.options.verbosity == "standard"
    assert chat_request({**BODY, "switchman": {"intent": "code"}}).call.intent == "code"
    same = {**BODY, "intent": "code", "switchman": {"intent": "code"}}
    assert chat_request(same).call.intent == "code"


@pytest.mark.parametrize(
    ("sw", "param"),
    [
        (5, "switchman"),
        ({"caller": {"handle": "x"}}, "switchman.caller"),
        ({"model": "x"}, "switchman.model"),
        ({"min_trust": "god"}, "switchman.min_trust"),
        ({"capabilities": "code"}, "switchman.capabilities"),
        ({"capabilities": [1]}, "switchman.capabilities[0]"),
        ({"intent": "dance"}, "switchman.intent"),
        ({"options": []}, "switchman.options"),
        ({"options": {"fallback": "claude"}}, "switchman.options.fallback"),
        ({"options": {"max_cost_usd": -1}}, "switchman.options.max_cost_usd"),
        ({"options": {"redaction": {"mode": "never"}}}, "switchman.options.redaction.mode"),
    ],
)
def test_a_bad_extension_names_its_field(sw: Any, param: str) -> None:
    with pytest.raises(HttpError) as info:
        chat_request({**BODY, "switchman": sw})
    assert info.value.status == 400
    assert info.value.message.startswith(f"{param}:"), info.value.message


def test_two_intents_that_differ_are_refused() -> None:
    with pytest.raises(HttpError, match=r"differs from switchman\.intent"):
        chat_request({**BODY, "intent": "lookup", "switchman": {"intent": "code"}})


async def test_a_fallback_the_key_may_not_use_is_a_403_naming_it(tmp_path: Path) -> None:
    keys = [{"key_env": "E2E_KEY_A", "handle": "team-a", "models": ["t/*"]}]
    with trio.fail_after(30):
        async with real_gateway(tmp_path, keys=keys, models=PICKY_MODELS) as gw:
            sw = {"options": {"fallback": ["sim/fast"]}}
            client = _sdk(gw, "e2e-secret-a")
            with pytest.raises(openai.PermissionDeniedError) as info:
                await _create(client, model="t/broken", extra_body={"switchman": sw})
            assert "this key may not use model 'sim/fast'" in info.value.message
            body = info.value.body
            assert isinstance(body, dict)
            assert body["details"][0]["field"] == "switchman.options.fallback[0]"


async def test_redaction_off_through_v1_needs_its_whole_override(tmp_path: Path) -> None:
    from switchman._call import REDACTION_ACKNOWLEDGEMENTS

    override = {"enabled": True, "reason": "a test", "acknowledgements": []}
    with trio.fail_after(30):
        async with real_gateway(tmp_path) as gw:
            sw = {"options": {"redaction": {"mode": "off", "override": override}}}
            with pytest.raises(openai.APIStatusError) as info:
                await _create(_sdk(gw), model="sim/balanced", extra_body={"switchman": sw})
            assert info.value.status_code == 403
            assert "missing: output_may_contain_personal_data" in info.value.message
            override["acknowledgements"] = sorted(REDACTION_ACKNOWLEDGEMENTS)
            # the simulator's answer opens with the prompt's first words: the address
            mail = [{"role": "user", "content": "write to ann@acme.io today"}]
            raw = await _create(
                _sdk(gw), model="sim/balanced", extra_body={"switchman": sw}, messages=mail
            )
            assert "ann@acme.io" in raw.parse().choices[0].message.content
            # and without the extension, the answer is redacted as always
            raw = await _create(_sdk(gw), model="sim/balanced", messages=mail)
            answer = raw.parse().choices[0].message.content
            assert "ann@acme.io" not in answer and "[REDACTED:email]" in answer


async def test_strict_determinism_beside_a_warm_temperature_is_a_400_naming_it(
    tmp_path: Path,
) -> None:
    strict = {"switchman": {"options": {"determinism": "strict"}}}
    with trio.fail_after(30):
        async with real_gateway(tmp_path, models=PICKY_MODELS) as gw:
            with pytest.raises(openai.BadRequestError) as info:
                await _create(
                    _sdk(gw), model="sim/balanced", temperature=0.7, seed=3, extra_body=strict
                )
            assert "temperature: is 0.7, but options.determinism strict" in info.value.message
            raw = await _create(_sdk(gw), model="sim/balanced", seed=3, extra_body=strict)
            assert raw.headers["x-switchman-model"] == "sim/balanced"


async def test_a_conversation_ending_with_the_assistants_turn_is_continued_not_answered_afresh(
    tmp_path: Path,
) -> None:
    """``auto`` sends a prefill only to models that go on from it (the simulator's
    ``sim/flaky`` and ``sim/refuser`` would answer it afresh), and the trace says why."""
    messages = [
        {"role": "user", "content": "Give JSON for Paris"},
        {"role": "assistant", "content": "{"},
    ]
    with trio.fail_after(30):
        async with real_gateway(tmp_path) as gw:
            models = gw.router.config.models
            fresh = {a for a, m in models.items() if m.provider == "sim" and not m.supports_prefill}
            assert fresh == {"sim/flaky", "sim/refuser"}
            for _ in range(4):
                raw = await _create(_sdk(gw), model="auto", messages=messages)
                assert models[raw.headers["x-switchman-model"]].supports_prefill
                job = (await gw.client.get(f"/result/{raw.headers['x-request-id']}")).json()
                out = job["result"]["trace"]["eligibility"]["excluded"]
                said = {e["alias"] for e in out if "(a prefill)" in e["reason"]}
                assert said == fresh
