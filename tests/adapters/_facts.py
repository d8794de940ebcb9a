"""The provider facts the adapter tests check against: ``shared/providers/providers.json``
beside the repository where it is there (the team's), else the copy of it kept here,
``providers.json`` (a clone has no ``shared/``: CI skipped 123 tests for want of it)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

SHARED_JSON = Path(__file__).parents[3] / "shared/providers/providers.json"
KEPT_JSON = Path(__file__).parent / "providers.json"
PROVIDERS_JSON = SHARED_JSON if SHARED_JSON.exists() else KEPT_JSON


@functools.cache
def _providers() -> list[dict[str, Any]]:
    providers: list[dict[str, Any]] = json.loads(PROVIDERS_JSON.read_text())["providers"]
    return providers


def provider_facts(name: str) -> dict[str, Any]:
    """One provider's facts, a copy a test may change."""
    return copy.deepcopy(next(p for p in _providers() if p["name"] == name))
