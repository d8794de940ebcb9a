"""``switchman sim-server``: the flavours it takes, said in its help and its error; options out
of range and a port in use refused in a line, exit 2; and which exit code a refusal by the
daemon gives."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--port", "70000"), "--port: must be a port number from 0 to 65535"),
        (("--port", "-1"), "--port: must be a port number from 0 to 65535"),
        (("--latency-ms", "-5"), "--latency-ms: must be 0 or more milliseconds"),
        (("--latency-ms", "nan"), "--latency-ms: 'nan' is not a finite number"),
    ],
)
@pytest.mark.parametrize("command", [("sim-server",), ()], ids=["switchman", "python-m"])
def test_an_option_out_of_range_is_refused_not_wrapped_around(
    tmp_path: Path, command: tuple[str, ...], args: tuple[str, ...], said: str
) -> None:
    if command:
        done = cli(tmp_path, *command, *args, timeout=30)
    else:  # python -m switchman.sim takes the same options
        done = cli(tmp_path, *args, timeout=30, command=(sys.executable, "-m", "switchman.sim"))
    assert done.returncode == 2, done.stdout
    assert said in done.stderr and "Traceback" not in done.stderr
    assert "listening" not in done.stdout  # 70000 was 4464 once


def test_a_port_in_use_is_said_in_a_line_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(tmp_path, "sim-server", "--port", str(port), timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith(f"switchman sim-server: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in done.stderr.lower() and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr
