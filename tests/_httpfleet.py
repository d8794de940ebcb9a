"""Routers whose providers are the fake provider server, over real sockets, one per wire quirk.

Every provider points its ``base_url`` at one running ``FakeProviderServer``; a
model's ``model_id`` is the behaviour the server plays for it, and its alias is
``<provider>/<model_id>``. API keys come from ``ENV`` (passed to ``open_router``),
all the same distinctive fake key, so a test can look for it anywhere it might leak.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs
import h11
import trio

from switchman import Call, Options, Params, Timeouts
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouterConfig, RouteSpec
from switchman.catalog._spec import Kind
from switchman.sim import FakeProviderServer, expected_answer
from tests._rawhttp import serve_h11

#: the fake key every provider is given; it must never be shown anywhere
KEY: Final = "sk-test-SECRET123456789"
PROMPT: Final = "What is the capital of France?"
#: what each call asks for; answers are shorter (30..60 words), so never cut
MAX_TOKENS: Final = 200

#: provider name -> (wire kind, path under the fake server that is its base URL)
PROVIDERS: Final[Mapping[str, tuple[Kind, str]]] = {
    "openai": ("openai", "/openai/v1"),
    "anthropic": ("anthropic", "/anthropic"),
    "gemini": ("gemini", "/gemini/v1beta"),
    "mistral": ("openai", "/mistral/v1"),
    "groq": ("openai", "/groq/openai/v1"),
    "deepseek": ("openai", "/deepseek"),
    "xai": ("openai", "/xai/v1"),
    "perplexity": ("openai", "/perplexity"),
    "ollama": ("ollama", "/ollama"),
}


def key_env(provider: str) -> str:
    return f"{provider.upper()}_TEST_KEY"


ENV: Final[Mapping[str, str]] = {key_env(name): KEY for name in PROVIDERS}


def model(provider: str, behaviour: str, **fields: Any) -> ModelSpec:
    """A model of ``provider`` playing the fake server's ``behaviour``.

    Its alias and its model id are both ``<provider>/<behaviour>`` (the server
    reads the behaviour after the last ``/``), so the server keeps each
    provider's requests and per-name state apart.
    """
    name = f"{provider}/{behaviour}"
    base: dict[str, Any] = dict(
        alias=name,
        provider=provider,
        model_id=name,
        context_window=32_000,
        max_output_tokens=4_096,
        input_per_mtok=1.0,
        output_per_mtok=2.0,
        supports_seed=PROVIDERS[provider][0] != "anthropic",  # (Anthropic's wire has none)
        supports_prefill=PROVIDERS[provider][0] == "anthropic",
    )
    base.update(fields)
    return ModelSpec(**base)


def http_fleet(
    server: FakeProviderServer,
    models: Iterable[ModelSpec],
    *,
    routes: Mapping[str, tuple[str, ...]] | None = None,
    content_fallback: Iterable[str] = (),
    base_urls: Mapping[str, str] | None = None,
    stall_ms: int = 400,
    default_ttft_ms: int = 1_000,
    default_soft_ms: int = 4_000,
    default_hard_ms: int = 10_000,
) -> Config:
    """A config with the given models, each provider pointing at ``server``.

    ``content_fallback``: routes that fall back on a content-policy rejection;
    ``base_urls``: providers pointing somewhere else than ``server``.
    """
    listed = tuple(models)
    names = sorted({m.provider for m in listed})
    providers = {
        name: ProviderSpec(
            name=name,
            kind=PROVIDERS[name][0],
            base_url=(base_urls or {}).get(name, server.base_url) + PROVIDERS[name][1],
            api_key_env=key_env(name),
            max_concurrency=16,
            connect_timeout_s=2.0,
            read_timeout_s=10.0,
        )
        for name in names
    }
    opt_in = set(content_fallback)
    return Config(
        providers=providers,
        models={m.alias: m for m in listed},
        routes={
            n: RouteSpec(name=n, chain=c, fallback_on_content_rejection=n in opt_in)
            for n, c in (routes or {}).items()
        },
        router=RouterConfig(
            seed=11,
            stall_ms=stall_ms,
            default_ttft_ms=default_ttft_ms,
            default_soft_ms=default_soft_ms,
            default_hard_ms=default_hard_ms,
            exploration=0.0,
        ),
    )


def ask(target: str, **timeouts: int) -> Call:
    """The test prompt to ``target`` (an alias or a route), with optional timeouts in ms."""
    return Call(
        prompt=PROMPT,
        model=target,
        params=Params(max_tokens=MAX_TOKENS),
        options=Options(timeouts=Timeouts(**timeouts)),
    )


def answer_of(model_id: str, prompt: str = PROMPT, *, max_tokens: int = MAX_TOKENS) -> str:
    """The whole answer the fake server's ``model_id`` gives to ``prompt`` (``ask``'s)."""
    return expected_answer(model_id, prompt, max_tokens)


# -- a provider that rejects our key -----------------------------------------------------

#: per provider: the status and body its API answers a bad key with (providers.md); the
#: OpenAI one echoes the whole key, the worst a provider could do
BAD_KEY_REPLIES: Final[Mapping[str, tuple[int, Any]]] = {
    "openai": (
        401,
        {
            "error": {
                "message": f"Incorrect API key provided: {KEY}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    ),
    "anthropic": (
        401,
        {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        },
    ),
    "gemini": (
        400,
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            }
        },
    ),
    "xai": (
        400,
        {
            "code": "Client specified an invalid argument",
            "error": f"Incorrect API key provided: {KEY[:2]}***{KEY[-2:]}. You can obtain an "
            "API key from https://console.x.ai.",
        },
    ),
}


#: per provider: a billing refusal (providers.md: "do NOT retry"), served under
#: ``/<provider>-quota/`` by the same server
QUOTA_REPLIES: Final[Mapping[str, tuple[int, Any]]] = {
    "openai-quota": (
        429,
        {
            "error": {
                "message": "You exceeded your current quota, please check your plan and "
                "billing details.",
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            }
        },
    ),
    "anthropic-quota": (
        402,
        {
            "type": "error",
            "error": {"type": "billing_error", "message": "Your credit balance is too low."},
        },
    ),
}


@attrs.define
class KeyRejecter:
    """A server that answers every request as a provider refusing our key (or our bill).

    The first path segment names the provider whose reply it sends
    (``BAD_KEY_REPLIES``, or ``QUOTA_REPLIES`` for ``<provider>-quota``);
    ``requests`` records ``(trio time, path)``.
    """

    base_url: str
    requests: list[tuple[float, str]] = attrs.field(factory=list)

    def seen(self, provider: str) -> int:
        return sum(1 for _, path in self.requests if path.startswith(f"/{provider}/"))


async def serve_key_rejecter(
    *, task_status: trio.TaskStatus[KeyRejecter] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve a ``KeyRejecter`` on 127.0.0.1 until cancelled."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    rejecter = KeyRejecter(base_url=f"http://127.0.0.1:{port}")

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        path = head.target.decode("latin-1")
        rejecter.requests.append((trio.current_time(), path))
        status, reply = {**BAD_KEY_REPLIES, **QUOTA_REPLIES}[path.split("/")[1]]
        return status, [("content-type", "application/json")], json.dumps(reply).encode()

    async def handle(stream: trio.SocketStream) -> None:
        await serve_h11(stream, answer)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(rejecter)
