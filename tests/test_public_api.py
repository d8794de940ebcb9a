"""Every package re-exports exactly its public names, sorted; the embedding API exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import trio

import switchman

PACKAGES = sorted(
    {"switchman"}
    | {f"switchman.{m.name}" for m in pkgutil.iter_modules(switchman.__path__) if m.ispkg}
)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    isort_style = sorted(exported, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    assert exported in (sorted(exported), isort_style)
    for item in exported:
        assert hasattr(module, item), f"{name}.{item}"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, type(importlib))
        and getattr(v, "__module__", "").startswith("switchman")
    }
    assert public <= set(exported), f"{name} does not export {public - set(exported)}"


async def test_run_router_in_an_application_nursery(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        router = await nursery.start(switchman.run_router, None)
        result = await router.call(switchman.Call(prompt="What is the capital of France?"))
        assert result.status == "complete"
        assert result.simulated or not router.config.simulated
        status = router.status()
        assert status.providers
        await router.aclose()


def test_the_readme_embedding_example_runs_on_the_simulator(tmp_path: object) -> None:
    from pathlib import Path

    from tests._examples import run_example

    code, out, output = run_example("embed.py", Path(str(tmp_path)), timeout=60)
    assert code == 0, output
    assert "(simulated)" in out, output
    assert "-- answered by sim/" in out, output


def test_every_public_class_and_function_says_what_it_is() -> None:
    """``help()`` on any name ``switchman`` exports shows its own docstring, not attrs'
    generated signature or nothing."""
    import inspect

    missing = []
    for name in switchman.__all__:
        obj = getattr(switchman, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            doc = inspect.getdoc(obj) if inspect.isfunction(obj) else obj.__doc__
            if not doc or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):
                missing.append(name)
    assert missing == []
    for member in ("call", "stream", "subscribe", "status", "feedback", "spend", "aclose"):
        assert inspect.getdoc(getattr(switchman.Router, member)), member


def test_every_exception_the_docs_name_is_exported() -> None:
    """The docs tell an embedding application what ``open_router`` and calls raise by
    the names it can catch: ``switchman.X`` (``SupervisorEscalation`` was only in
    ``switchman.supervisor``)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "docs" / "embedding.md").read_text()
    named = set(
        re.findall(r"`(?:switchman\.)?([A-Z][A-Za-z]+(?:Error|Escalation|Closed))`", readme)
    )
    assert "SupervisorEscalation" in named and "RouterClosed" in named
    builtin = {n for n in named if n in dir(__import__("builtins"))}  # KeyError, RuntimeError
    missing = sorted(
        n for n in named - builtin if not isinstance(getattr(switchman, n, None), type)
    )
    assert missing == []


def test_each_public_name_is_found_where_the_package_says_it_lives() -> None:
    """``switchman`` imports each public name on its first use (``_WHERE``): every name of
    ``__all__`` has its place, and the object there is the one the place defines."""
    where = switchman._WHERE
    assert set(where) == set(switchman.__all__) - {"__version__"}
    for name, module in where.items():
        assert getattr(switchman, name) is getattr(importlib.import_module(module), name)


def test_the_command_line_starts_without_building_the_router() -> None:
    """``switchman run`` and the other clients of the daemon need none of the router:
    the command (``_switchman_command``) leaves the router, the redaction patterns and
    the gateway unimported (they were all imported, about five times the start-up); an
    application's ``import switchman`` imports everything at once, as it did."""
    import ast
    import subprocess
    import sys

    code = (
        "import sys, {first}switchman.cli\n"
        "heavy = ('switchman._router', 'switchman.policy._patterns', 'switchman.gateway')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    for first, built in (("_switchman_command, ", []), ("", ["switchman._router"])):
        out = subprocess.run(
            [sys.executable, "-c", code.format(first=first)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        shown = [m for m in ast.literal_eval(out.stdout) if m in ("switchman._router", *built)]
        assert shown == built, out.stdout + out.stderr


@pytest.mark.parametrize("name", PACKAGES)
def test_each_package_imports_first_on_its_own(name: str) -> None:
    """A fresh interpreter imports any package first (``import switchman`` no longer
    imports them all in one order that hid a cycle: the catalog's discovery imported
    the adapters, which import the catalog)."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", f"import {name}"], timeout=60, check=True)


def test_every_exception_switchman_exports_is_a_switchman_error() -> None:
    """``except switchman.SwitchmanError`` catches whatever switchman raises on purpose
    (``SupervisorEscalation``, what ``open_router`` raises when the router gives up,
    was a bare ``Exception``)."""
    raised = [
        getattr(switchman, n)
        for n in switchman.__all__
        if isinstance(getattr(switchman, n), type)
        and issubclass(getattr(switchman, n), BaseException)
    ]
    assert len(raised) > 20
    assert [e for e in raised if not issubclass(e, switchman.SwitchmanError)] == []


def test_subpackages_names_and_modules_from_many_threads_at_once() -> None:
    """After ``import switchman``, threads that import its modules and reach its names at
    once all get them, and ``switchman.store`` (any subpackage) is there (with its names
    imported lazily, first uses deadlocked, 3 starts in 160, and two plain imports of
    submodules at once failed 12 times in 30)."""
    import subprocess
    import sys

    code = """
import importlib, threading, switchman
failed, start = [], threading.Barrier(10)
modules = ["switchman.catalog._spec", "switchman.catalog._credentials", "switchman.sim",
           "switchman.actors", "switchman.policy", "switchman.gateway", "switchman.store"]
def touch(i):
    start.wait()
    try:
        if i % 2:
            importlib.import_module(modules[i % len(modules)])
        else:
            names = [n for n in switchman.__all__ if n != "__version__"]
            for n in names[i::10]:
                getattr(switchman, n)
            assert switchman.store.open_store and switchman.supervisor.run_supervisor
    except BaseException as exc:
        failed.append(repr(exc))
threads = [threading.Thread(target=touch, args=(i,)) for i in range(10)]
for t in threads: t.start()
for t in threads: t.join()
print(failed)
"""
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_errors_an_application_catches_survive_pickle_and_copy() -> None:
    """A process pool pickles what a worker raises: ``ValidationError``, ``RouterClosed``
    and ``RouterFailed`` could not be pickled or copied."""
    import copy
    import pickle

    from switchman.supervisor import SupervisorEscalation

    errors = [
        switchman.ValidationError(
            [switchman.FieldError("params.seed", "must be an integer")], source="x.toml"
        ),
        switchman.RouterClosed(),
        switchman.RouterFailed(),
        switchman.UnknownCall("abc"),
        SupervisorEscalation("root", "dispatcher"),
    ]
    for error in errors:
        error.add_note("while asking for the spend")
        for again in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
            assert type(again) is type(error) and str(again) == str(error)
            assert again.__notes__ == ["while asking for the spend"]
    assert pickle.loads(pickle.dumps(errors[0])).fields == errors[0].fields
