"""Every test's default places are a scratch directory, never the user's own: a gateway
or CLI started without a store path opens ``$XDG_DATA_HOME/switchman/switchman.db``
(``store.default_db_path``), and the tests must not write jobs into a developer's real
store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _scratch_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data-home")))
        yield
