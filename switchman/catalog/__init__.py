"""Built-in provider and model catalog, and configuration loading."""

from switchman.catalog._spec import (
    BudgetsConfig,
    Config,
    KeySpec,
    ModelSpec,
    ProviderSpec,
    RouterConfig,
    RouteSpec,
    ServerConfig,
    SimProfile,
)

__all__ = [
    "BudgetsConfig",
    "Config",
    "KeySpec",
    "ModelSpec",
    "ProviderSpec",
    "RouteSpec",
    "RouterConfig",
    "ServerConfig",
    "SimProfile",
]
