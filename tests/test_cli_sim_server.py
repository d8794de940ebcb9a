"""``switchman sim-server --flavour``: the names it takes, said in its help and its error; and
which exit code a refusal by the daemon gives."""

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


def test_a_daemon_that_cannot_take_the_call_now_is_a_failed_call_not_a_usage_error() -> None:
    import httpx
    import pytest

    from switchman.cli import EXIT_FAILED, EXIT_USAGE, CliError, _json_or_error

    def answer(status: int, code: str) -> httpx.Response:
        request = httpx.Request("POST", "http://127.0.0.1:8265/call")
        return httpx.Response(
            status, json={"error": {"code": code, "message": "m"}}, request=request
        )

    for status, code, exit_code in (
        (429, "rate_limited", EXIT_FAILED),
        (503, "shutting_down", EXIT_FAILED),
        (503, "overloaded", EXIT_FAILED),
        (422, "validation_error", EXIT_USAGE),
        (404, "not_found", EXIT_USAGE),
    ):
        with pytest.raises(CliError) as info:
            _json_or_error(answer(status, code))
        assert info.value.exit_code == exit_code, (status, code)
        assert str(info.value).startswith(f"{code}: m")
