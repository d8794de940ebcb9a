"""The processes a benchmark runs beside itself: fake upstream, gateways, LiteLLM.

Each is a sync context manager around ``subprocess.Popen``: the child's output
goes to a log file in the run's work folder (never a pipe nobody reads), its
readiness is a line it prints (the port it bound), and on exit it gets SIGTERM,
then SIGKILL after a grace period. Only processes started here are stopped.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from benchmarks._util import process_cpu_seconds, process_rss_bytes

#: the bare relay's row name in every table (its launcher is ``bare_relay``)
BARE_RELAY: Final = "bare relay (hypercorn + httpcore)"
_PORT_LINE = re.compile(rb"http://127\.0\.0\.1:(\d+)")


class StartError(RuntimeError):
    """A child process exited or stayed silent instead of becoming ready."""


@attrs.frozen(kw_only=True)
class Child:
    """A running child process: its pid, the port it serves and its log file."""

    name: str
    pid: int
    port: int
    log: Path

    def rss_bytes(self) -> int:
        return process_rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    """A loopback TCP port free right now (the child binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _wait_port_line(proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"exited with {proc.returncode}:\n{_tail(log)}")
        match = _PORT_LINE.search(log.read_bytes()) if log.exists() else None
        if match:
            return int(match.group(1))
        time.sleep(0.05)
    raise StartError(f"not ready after {timeout_s:g}s:\n{_tail(log)}")


def _wait_connectable(
    proc: subprocess.Popen[bytes], log: Path, port: int, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"exited with {proc.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise StartError(f"not listening on {port} after {timeout_s:g}s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def run_child(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    ready_timeout_s: float = 30.0,
    stop_grace_s: float = 10.0,
) -> Iterator[Child]:
    """Run ``argv``; ready when it prints ``http://127.0.0.1:PORT`` or, if ``port`` is
    given, when that port accepts connections. Stopped with SIGTERM on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=workdir
        )
    try:
        if port is None:
            bound = _wait_port_line(proc, log, ready_timeout_s)
        else:
            _wait_connectable(proc, log, port, ready_timeout_s)
            bound = port
        yield Child(name=name, pid=proc.pid, port=bound, log=log)
    except StartError as exc:
        raise StartError(f"{name}: {exc}") from None
    finally:
        _stop(proc, stop_grace_s)


def upstream(workdir: Path, *, latency_ms: float = 0.0) -> contextlib.AbstractContextManager[Child]:
    """The fake provider server (OpenAI format and the others) in its own process."""
    argv = [sys.executable, "-m", "switchman.sim", "--port", "0", "--latency-ms", str(latency_ms)]
    return run_child("upstream", argv, workdir)


def switchman_gateway(
    workdir: Path,
    config_toml: Path,
    *,
    env: Mapping[str, str],
    prune_every_s: float | None = None,
) -> contextlib.AbstractContextManager[Child]:
    """switchman's gateway (router + SQLite store in ``workdir/gateway.db`` + hypercorn)
    in its own process; ``prune_every_s``: its job store pruned that often too."""
    db = workdir / "gateway.db"
    argv = [
        sys.executable,
        "-m",
        "benchmarks._gateway_host",
        "--config",
        str(config_toml),
        "--db",
        str(db),
    ]
    if prune_every_s is not None:
        argv += ["--prune-every", str(prune_every_s)]
    return run_child("switchman-gateway", argv, workdir, env={**env, "PYTHONPATH": _pythonpath()})


def bare_relay(workdir: Path, upstream_url: str) -> contextlib.AbstractContextManager[Child]:
    """The bare relay baseline (``benchmarks._relay_host``: hypercorn + one httpcore
    connection pool forwarding bytes to ``upstream_url``) in its own process."""
    argv = [sys.executable, "-m", "benchmarks._relay_host", "--upstream", upstream_url]
    return run_child("bare-relay", argv, workdir, env={"PYTHONPATH": _pythonpath()})


def _pythonpath() -> str:
    """This checkout first, so a child started in its work folder imports ``benchmarks``."""
    repo = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
