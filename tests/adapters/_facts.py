"""The provider facts the adapter tests check against: ``shared/providers/providers.json``
beside the repository (a test needing them is skipped where it is not)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest

PROVIDERS_JSON = Path(__file__).parents[3] / "shared/providers/providers.json"


@functools.cache
def _providers() -> list[dict[str, Any]]:
    providers: list[dict[str, Any]] = json.loads(PROVIDERS_JSON.read_text())["providers"]
    return providers


def provider_facts(name: str) -> dict[str, Any]:
    """One provider's facts, a copy a test may change (skips the test when the file is not
    there)."""
    if not PROVIDERS_JSON.exists():
        pytest.skip(f"provider facts not found: {PROVIDERS_JSON} (shared/ beside the repo)")
    return copy.deepcopy(next(p for p in _providers() if p["name"] == name))
