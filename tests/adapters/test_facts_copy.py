"""The copy of the provider facts the repository keeps is the team's file."""

from __future__ import annotations

import pytest

from tests.adapters._facts import KEPT_JSON, SHARED_JSON


def test_the_kept_copy_of_the_provider_facts_is_the_teams() -> None:
    if not SHARED_JSON.exists():
        pytest.skip(f"{SHARED_JSON} is not beside this clone: the kept copy is what is read")
    assert KEPT_JSON.read_bytes() == SHARED_JSON.read_bytes(), (
        f"copy {SHARED_JSON} to {KEPT_JSON}: the facts changed"
    )
