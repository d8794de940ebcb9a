from __future__ import annotations

import inspect

import switchman.supervisor
from switchman.supervisor import _spec, _supervisor


def test_all_is_sorted_and_complete() -> None:
    exported = switchman.supervisor.__all__
    assert exported == sorted(exported)
    defined = {
        name
        for module in (_spec, _supervisor)
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    aliases = {"ExitReason", "Restart"}  # Literal aliases have no __module__ to check
    assert set(exported) == defined | aliases
    assert all(hasattr(switchman.supervisor, name) for name in exported)
