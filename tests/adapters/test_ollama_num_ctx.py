"""Ollama's num_ctx: sized to each request, so a long prompt is not cut silently."""

from __future__ import annotations

import trio

import switchman
from switchman import Call, Params
from switchman._call import Message
from switchman.adapters import ProviderRequest, make_adapter
from switchman.adapters._ollama import MIN_NUM_CTX, num_ctx
from switchman.catalog import ProviderSpec
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, http_fleet, model


def request(content: str, max_tokens: int | None = 1024, **kw: object) -> ProviderRequest:
    return ProviderRequest(
        model_id="llama3.2",
        messages=(
            Message(role="system", content="Be brief."),
            Message(role="user", content=content),
        ),
        max_tokens=max_tokens,
        **kw,  # type: ignore[arg-type]
    )


def sent_num_ctx(req: ProviderRequest) -> int:
    """The ``num_ctx`` the body carries; Ollama's default when it carries none."""
    built = make_adapter(ProviderSpec(name="ollama", kind="ollama"), None).build_request(req)
    value = built.json.get("options", {}).get("num_ctx", MIN_NUM_CTX)
    assert isinstance(value, int)
    return value


def test_a_short_prompt_runs_with_the_context_the_model_is_loaded_with() -> None:
    # any other num_ctx than the loaded one makes Ollama reload the model: a request
    # that fits its default (or a larger default the server was started with) sends none
    assert MIN_NUM_CTX == 4096
    adapter = make_adapter(ProviderSpec(name="ollama", kind="ollama"), None)
    for req in (request("What is the capital of France?"), request("hi", max_tokens=None)):
        assert "num_ctx" not in adapter.build_request(req).json.get("options", {})
    assert "num_ctx" in adapter.build_request(request("x" * 30_000)).json["options"]


def test_the_context_holds_the_prompt_and_the_answer_rounded_up_to_a_power_of_two() -> None:
    # 30,000 bytes -> 10,000 tokens (+ 9 bytes and 8 of framing), plus 1,024 to answer
    long = "x" * 30_000
    assert sent_num_ctx(request(long)) == 16_384
    # the answer's room counts, up to ANSWER_ROOM of it: an output budget is a ceiling
    assert sent_num_ctx(request("x" * 45_000, max_tokens=1_000)) == 16_384
    assert sent_num_ctx(request("x" * 45_000, max_tokens=2_000)) == 32_768
    assert sent_num_ctx(request("x" * 45_000, max_tokens=16_384)) == 32_768


def test_a_short_prompt_with_a_large_output_budget_leaves_the_model_as_loaded() -> None:
    # what a /v1 call without max_tokens asks (16,384): the loaded model is not reloaded
    adapter = make_adapter(ProviderSpec(name="ollama", kind="ollama"), None)
    built = adapter.build_request(request("hi", max_tokens=16_384))
    assert "num_ctx" not in built.json["options"]
    assert built.json["options"]["num_predict"] == 16_384
    # characters of several bytes count for more (three bytes a token)
    assert sent_num_ctx(request("説" * 20_000)) == 32_768
    for n in (0, 1, 5_000, 12_289, 100_000, 400_000):
        ctx = sent_num_ctx(request("y" * n, max_tokens=2_000))  # (within ANSWER_ROOM)
        assert ctx >= n / 3 + 2_000 and ctx >= MIN_NUM_CTX
        assert ctx & (ctx - 1) == 0  # a power of two
        assert ctx < 2 * (n / 3 + 2_000 + 16) or ctx == MIN_NUM_CTX


def test_never_above_the_models_context_window() -> None:
    long = "x" * 100_000  # 33,334 tokens: 65,536 without a window
    assert sent_num_ctx(request(long)) == 65_536
    assert sent_num_ctx(request(long, context_window=40_960)) == 40_960
    assert num_ctx(request("hi", context_window=2_048)) == 2_048
    assert sent_num_ctx(request("hi", context_window=2_048)) == MIN_NUM_CTX  # none sent
    assert sent_num_ctx(request("hi", context_window=131_072)) == 4_096
    assert num_ctx(request(long, context_window=131_072)) == 65_536


async def _sent_through_the_router(context_window: int) -> dict[str, object]:
    """The options the fake Ollama server received for a call of about 8,010 tokens."""
    prompt = "Summarize this. " + "lorem ipsum " * 2_000  # 24,016 bytes
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = http_fleet(server, [model("ollama", "ok", context_window=context_window)])
        with trio.fail_after(10):
            async with switchman.open_router(config, env=ENV) as router:
                result = await router.call(
                    Call(prompt=prompt, model="ollama/ok", params=Params(max_tokens=500))
                )
        nursery.cancel_scope.cancel()
    assert result.status == "complete", result.errors
    (received,) = server.requests("ollama/ok")
    assert received.wire_format == "ollama"
    options = received.body["options"]
    assert isinstance(options, dict)
    return options


async def test_the_request_the_router_sends_carries_num_ctx() -> None:
    options = await _sent_through_the_router(131_072)
    assert options["num_predict"] == 500
    assert options["num_ctx"] == 16_384  # about 8,510 rounded up, not Ollama's 4,096


async def test_the_router_caps_num_ctx_at_the_models_window() -> None:
    assert (await _sent_through_the_router(12_000))["num_ctx"] == 12_000  # 16,384 uncapped
