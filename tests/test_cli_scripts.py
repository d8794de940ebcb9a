"""The CLI as shell scripts and terminals use it: arguments that are not UTF-8, a stdout
that cannot encode the answer, a streamed call larger than the daemon takes, a watch whose
daemon dies, an error said once. Real daemons (``serve`` on the simulator), real clients."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchman._cli_serve import LOG_LEVEL_ENV, log_level
from switchman.cli import CliError, _json_or_error, env_host
from tests.test_cli import Daemon, _stop, cli, serving
from tests.test_cli_interrupted import _client


@pytest.fixture(scope="module")
def small_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon that takes requests of 4,000 bytes at most."""
    home = tmp_path_factory.mktemp("small")
    config = home / "switchman.toml"
    config.write_text("[server]\nmax_body_bytes = 4000\n[router]\nseed = 7\n")
    with serving(home, home / "jobs.db", "--config", str(config)) as d:
        yield d


@pytest.mark.parametrize("where", ["prompt", "model"])
def test_an_argument_that_is_not_utf8_is_a_usage_error(tmp_path: Path, where: str) -> None:
    """A byte that is not UTF-8 in an argument (Python keeps it as a lone surrogate) is
    named before anything is sent: exit 2, no traceback (it was exit 1 and httpx's)."""
    bad = os.fsdecode(b"\xff bad")
    args = ("sim/fast", bad) if where == "prompt" else (bad, "hello")
    done = cli(tmp_path, "run", *args, "--port", "1")
    assert done.returncode == 2, done.stderr
    assert f"switchman: the {where} is not UTF-8 text" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_answer_a_stdout_cannot_encode_loses_characters_not_itself(
    small_daemon: Daemon,
) -> None:
    """``PYTHONIOENCODING=ascii``: the simulated answer echoes the emoji of its prompt; it
    is printed with a replacement character for it, not lost to a traceback once billed."""
    done = small_daemon.run(
        "run", "sim/fast", "rocket \U0001f680 launch", env={"PYTHONIOENCODING": "ascii"}
    )
    assert done.returncode == 0, done.stderr
    assert "rocket ? launch" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_streamed_call_larger_than_the_daemon_takes_says_so(small_daemon: Daemon) -> None:
    """Its websocket message is refused (close code 1009): that, not "did it stop?"."""
    done = small_daemon.run("run", "sim/fast", "-", "--stream", stdin="word " * 2_000)
    assert done.returncode == 2, done.stderr
    assert "payload_too_large: the call is larger than the daemon takes" in done.stderr
    assert "did it stop" not in done.stderr
    plain = small_daemon.run("run", "sim/fast", "-", stdin="word " * 2_000)
    assert plain.returncode == 2 and "payload_too_large" in plain.stderr


def test_a_watch_whose_daemon_dies_exits_2(tmp_path: Path) -> None:
    """`switchman watch || alert` alerts: the daemon going away is no clean end."""
    with serving(tmp_path, tmp_path / "jobs.db") as daemon:
        watcher = _client(daemon, "watch")
        try:
            time.sleep(2.0)  # subscribed by now
            daemon.proc.send_signal(signal.SIGKILL)
            _, err = watcher.communicate(timeout=20)
        finally:
            _stop(watcher)
    assert watcher.returncode == 2, err
    assert "the daemon stopped: the watch ends" in err


def test_a_refusal_that_repeats_its_detail_says_it_once() -> None:
    message = "this key may not use model 'fake/down'"
    body = {
        "error": {
            "code": "permission_denied",
            "message": message,
            "details": [{"field": "model", "message": message}],
        }
    }
    request = httpx.Request("POST", "http://127.0.0.1:8265/call")
    with pytest.raises(CliError) as exc:
        _json_or_error(httpx.Response(403, json=body, request=request))
    assert str(exc.value).count(message) == 1, str(exc.value)


def test_a_url_where_a_host_belongs_is_named_as_such() -> None:
    with pytest.raises(CliError, match="SWITCHMAN_HOST must be a host name or IP address, not a"):
        env_host({"SWITCHMAN_HOST": "http://127.0.0.1"})


def test_the_log_level_variable_is_read_as_the_flag_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whitespace around it dropped and any case, as the other variables are read."""
    monkeypatch.setenv(LOG_LEVEL_ENV, " Debug ")
    assert log_level(None) == "debug"
    assert log_level("warning") == "warning"  # (the flag wins)
    monkeypatch.setenv(LOG_LEVEL_ENV, "loud")
    with pytest.raises(CliError, match="SWITCHMAN_LOG_LEVEL='loud': use one of"):
        log_level(None)
