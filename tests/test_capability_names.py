"""A capability no configured model offers is refused before the call runs, naming the
ones there are: ``["coding"]`` had left all 92 models of the catalog out, each "missing
capabilities: coding", and nothing said the tag was unknown."""

from __future__ import annotations

import pytest
import trio

import switchman
from switchman import Call, ValidationError
from tests.gateway._fakes import running_gateway


async def test_an_unknown_capability_is_a_validation_error_naming_the_known_ones() -> None:
    async with switchman.open_router() as router:
        with pytest.raises(ValidationError) as caught:
            await router.call(Call(prompt="hi", capabilities=("code", "coding")))
        [error] = caught.value.fields
        assert error.field == "capabilities[1]"
        assert "'coding': no model offers it (did you mean 'code'?" in error.message
        assert "the models offer: code, " in error.message
        # a tag some model has passes
        result = await router.call(Call(prompt="hi", capabilities=("code", "code")))
        assert result.ok


async def test_the_gateway_refuses_it_naming_the_field() -> None:
    with trio.fail_after(30):
        async with switchman.open_router() as router, running_gateway(router) as gw:
            reply = await gw.client.post("/call", json={"prompt": "hi", "capabilities": ["Reason"]})
    assert 400 <= reply.status_code < 500, reply.text
    assert "capabilities[0]" in reply.text and "did you mean 'reason'?" in reply.text


async def test_a_capability_only_models_out_of_service_offer_names_them_and_why() -> None:
    """Without a key for the providers whose models see images: they are named, with why
    (it had passed, and every model in service was left out "missing capabilities")."""
    async with switchman.open_router() as router:  # (no key set: the simulator serves)
        with pytest.raises(ValidationError) as caught:
            await router.call(Call(prompt="hi", capabilities=("vision",)))
    [error] = caught.value.fields
    assert error.message.startswith("'vision': only models not in service offer it: ")
    assert "(provider disabled: missing API key: set OPENAI_API_KEY)" in error.message
