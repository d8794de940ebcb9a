"""Built-in provider and model catalog, and configuration loading."""

from switchman.catalog._catalog import (
    Catalog,
    builtin_catalog,
    load_catalog,
    named_aliases,
    resolve,
)
from switchman.catalog._config import (
    api_key,
    config_from_dict,
    default_config,
    load_config,
    validate_config,
)
from switchman.catalog._discovery import discover_local_models, with_local_models
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
    Weights,
)

__all__ = [
    "BudgetsConfig",
    "Catalog",
    "Config",
    "KeySpec",
    "ModelSpec",
    "ProviderSpec",
    "RouteSpec",
    "RouterConfig",
    "ServerConfig",
    "SimProfile",
    "Weights",
    "api_key",
    "builtin_catalog",
    "config_from_dict",
    "default_config",
    "discover_local_models",
    "load_catalog",
    "load_config",
    "named_aliases",
    "resolve",
    "validate_config",
    "with_local_models",
]
