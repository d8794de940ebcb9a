"""Where the clients look for the daemon: ``SWITCHMAN_HOST`` checked as ``SWITCHMAN_PORT`` is,
an IPv6 address in brackets in every URL, and ``serve`` saying how to reach it."""

from __future__ import annotations

import queue
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.test_cli import CLI, _stop, clean_env, cli


@pytest.mark.parametrize(
    ("host", "said"),
    [
        (
            "127.0.0.1:8265",
            "a host name or IP address without ':PORT' (the port is SWITCHMAN_PORT's)",
        ),
        ("a b", "a host name or IP address (letters, digits, '.', '-')"),
        ("[not-v6]", "an IPv6 address inside its brackets"),
    ],
)
@pytest.mark.parametrize("args", [("jobs",), ("run", "claude", "hi", "--stream"), ("watch",)])
def test_a_bad_switchman_host_is_a_usage_error_naming_it(
    tmp_path: Path, host: str, said: str, args: Sequence[str]
) -> None:
    done = cli(tmp_path, *args, env={"SWITCHMAN_HOST": host})
    assert done.returncode == 2
    shown = "(not shown)" if " " in host else repr(host)  # (a key pasted is no host)
    assert done.stderr == f"switchman: SWITCHMAN_HOST must be {said}; got {shown}\n"


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("admin:hunter2SECRET@127.0.0.1", "***@127.0.0.1"),
        ("https://gw:SECRETpw@example.com:8265/v1", "***@example.com:8265/v1"),
        (" SECRETuser@localhost\n", "***@localhost"),
    ],
)
@pytest.mark.parametrize("args", [("jobs",), ("watch",)])
def test_a_switchman_host_with_a_user_or_password_never_shows_them(
    tmp_path: Path, host: str, shown: str, args: Sequence[str]
) -> None:
    """It was quoted back whole, the password with it: what is before the ``@`` is not."""
    done = cli(tmp_path, *args, env={"SWITCHMAN_HOST": host})
    assert done.returncode == 2
    assert done.stderr == (
        "switchman: SWITCHMAN_HOST must be a host name or IP address, without a user or "
        f"password (the gateway key goes in SWITCHMAN_API_KEY); got {shown!r}\n"
    )


@contextmanager
def _closed_v6_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "url"),
    [(("jobs",), "http"), (("run", "claude", "hi"), "http"), (("watch",), "ws")],
)
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_an_ipv6_host_is_bracketed_where_the_daemon_is_looked_for(
    tmp_path: Path, args: Sequence[str], url: str, host: str
) -> None:
    with _closed_v6_port() as port:
        done = cli(tmp_path, *args, env={"SWITCHMAN_HOST": host, "SWITCHMAN_PORT": str(port)})
    assert done.returncode == 2, done.stderr
    assert f"not running at {url}://[::1]:{port} (or is stopping); " in done.stderr
    assert f"start it with: switchman serve --host ::1 --port {port}" in done.stderr
    assert "Traceback" not in done.stderr


def _lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    got: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(
        target=lambda: [got.put(stdout.readline()) for _ in range(count)], daemon=True
    ).start()
    try:
        return [got.get(timeout=timeout) for _ in range(count)]
    except queue.Empty:
        raise AssertionError(f"fewer than {count} lines within {timeout}s") from None


def test_a_daemon_on_ipv6_says_its_urls_in_brackets_and_the_clients_reach_it(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [*CLI, "serve", "--host", "::1", "--port", "0", "--db", ":memory:"],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        serving, _, base, traces = _lines(proc, 4, timeout=30)
        assert serving.startswith("switchman ") and " serving on http://[::1]:" in serving
        port = int(serving.split("http://[::1]:")[1].split()[0])
        assert base.strip() == f"OpenAI-compatible base URL: http://[::1]:{port}/v1"
        assert traces.strip() == f"live traces: switchman watch --host ::1 --port {port}"
        assert httpx.get(f"http://[::1]:{port}/health", timeout=10).status_code == 200
        env = {"SWITCHMAN_HOST": "::1", "SWITCHMAN_PORT": str(port)}
        for args in (("health",), ("run", "sim/fast", "hi", "--stream")):
            done = cli(tmp_path, *args, env=env)
            assert done.returncode == 0, (args, done.stderr)
    finally:
        _stop(proc)


def test_the_default_host_is_left_out_of_the_watch_hint(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--db", ":memory:"],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        serving, _, _, traces = _lines(proc, 4, timeout=30)
        port = int(serving.split("http://127.0.0.1:")[1].split()[0])
        assert traces.strip() == f"live traces: switchman watch --port {port}"
    finally:
        _stop(proc)
