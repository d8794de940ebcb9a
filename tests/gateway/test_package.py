from __future__ import annotations

import switchman.gateway as gateway


def test_all_is_sorted_and_complete() -> None:
    assert gateway.__all__ == sorted(gateway.__all__)
    public = {n for n in dir(gateway) if not n.startswith("_")}
    assert public - {"annotations"} <= set(gateway.__all__)
    for name in gateway.__all__:
        assert hasattr(gateway, name)
