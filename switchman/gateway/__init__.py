"""The gateway: HTTP API, OpenAI-compatible API and websocket, served by hypercorn."""

from switchman.gateway._app import Gateway
from switchman.gateway._auth import Principal
from switchman.gateway._jobs import JobRunner
from switchman.gateway._metrics import GatewayMetrics
from switchman.gateway._openapi import openapi_document
from switchman.gateway._protocol import (
    ModelStatusLike,
    ProviderStatusLike,
    RouterHandle,
    RouterStatusLike,
)
from switchman.gateway._serve import InsecureBindError, check_bind, serve_gateway

__all__ = [
    "Gateway",
    "GatewayMetrics",
    "InsecureBindError",
    "JobRunner",
    "ModelStatusLike",
    "Principal",
    "ProviderStatusLike",
    "RouterHandle",
    "RouterStatusLike",
    "check_bind",
    "openapi_document",
    "serve_gateway",
]
