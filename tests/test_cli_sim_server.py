"""``switchman sim-server --flavour``: the names it takes, said in its help and its error."""

from __future__ import annotations

from pathlib import Path

from switchman.sim._server import CHAT_FLAVOURS
from tests.test_cli import cli


def test_an_unknown_flavour_is_refused_naming_the_ones_there_are(tmp_path: Path) -> None:
    done = cli(tmp_path, "sim-server", "--flavour", "anthropic", "--port", "0", timeout=30)
    assert done.returncode == 2
    assert "--flavour 'anthropic' is not one of" in done.stderr
    for name in CHAT_FLAVOURS:
        assert name in done.stderr
    assert "/anthropic" in done.stderr  # where that provider's own format is served
    assert "python -m" not in done.stderr  # the command the user typed, not a module


def test_the_help_lists_the_flavours(tmp_path: Path) -> None:
    done = cli(tmp_path, "sim-server", "--help")
    assert done.returncode == 0
    flat = " ".join(done.stdout.split())
    for name in CHAT_FLAVOURS:
        assert name in flat
