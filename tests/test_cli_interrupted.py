"""A ``switchman run`` whose wait is cut short (the daemon dying, Ctrl-C, ``--wait 0``) still
names the job it submitted, so ``switchman result JOB --poll`` can pick it up.

Real daemons (``serve`` subprocesses on the simulator) and real clients; real clock,
bounded waits; every subprocess is killed in ``finally``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_cli import BROKEN_AND_SLOW, CLI, Daemon, _stop, clean_env, serving


@pytest.fixture
def slow_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon whose ``sim/sloth`` takes 30 s to answer."""
    config = tmp_path / "switchman.toml"
    config.write_text(BROKEN_AND_SLOW)
    with serving(tmp_path, tmp_path / "jobs.db", "--config", str(config)) as d:
        yield d


def _client(
    daemon: Daemon, *args: str, ignored: tuple[signal.Signals, ...] = ()
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args, "--port", str(daemon.port)],
        env=clean_env(daemon.home),
        cwd=daemon.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as a script's `switchman run ... &` starts (a shell without job control has its
        # background commands ignore SIGINT, and exec keeps that), or `nohup` (SIGHUP)
        preexec_fn=(lambda: [signal.signal(s, signal.SIG_IGN) for s in ignored])
        if ignored
        else None,
    )


def _running_jobs(daemon: Daemon, count: int) -> list[str]:
    """The ids of ``count`` running jobs, once the daemon has that many (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        jobs = httpx.get(
            f"http://127.0.0.1:{daemon.port}/jobs", params={"status": "running"}, timeout=5
        ).json()["jobs"]
        if len(jobs) >= count:
            return [j["job_id"] for j in jobs]
        assert time.monotonic() < deadline, "the calls never started"
        time.sleep(0.1)


def _wait_connected(port: int, count: int) -> None:
    """Wait (bounded) until ``count`` client connections to ``port`` are established, as
    Linux lists them (a second's sleep had not been enough on a loaded machine: the
    client, not yet connected, found the daemon gone instead)."""
    deadline = time.monotonic() + 20
    while True:
        clients = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                remote, state = fields[2], fields[3]
                clients += state == "01" and int(remote.rsplit(":", 1)[1], 16) == port
        if clients >= count:
            return
        assert time.monotonic() < deadline, f"{clients} of {count} clients connected"
        time.sleep(0.05)


def _ended(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        _stop(proc)
    return proc.returncode, out, err


@pytest.mark.parametrize("extra", [(), ("--stream",)], ids=["waited", "streamed"])
def test_the_daemon_dying_mid_wait_names_the_job_and_exits_2(
    slow_daemon: Daemon, extra: tuple[str, ...]
) -> None:
    run = _client(slow_daemon, "run", "sim/sloth", "Take your time", *extra)
    try:
        (job_id,) = _running_jobs(slow_daemon, 1)
        poll = _client(slow_daemon, "result", job_id, "--poll")
        _wait_connected(slow_daemon.port, 2)  # both are waiting on the daemon now
        time.sleep(0.2)  # (their requests sent, past connecting)
        slow_daemon.proc.kill()
        for proc in (run, poll):
            code, out, err = _ended(proc)
            assert code == 2, err
            assert "closed the connection before answering (did it stop?)" in err
            assert f"job {job_id}: switchman result {job_id} --poll once it is back" in err
            assert "Traceback" not in err
            assert out == "" or out.endswith("\n")  # a streamed line is ended
    finally:
        _stop(run)


@pytest.mark.parametrize("model", ["sim/sloth", "sim/fast"])
def test_a_streamed_call_given_no_wait_names_the_job_it_submitted(
    slow_daemon: Daemon, model: str
) -> None:
    done = slow_daemon.run("run", model, "Stream me later", "--stream", "--wait", "0")
    assert done.returncode == 3, done.stderr
    out = done.stdout + done.stderr
    found = re.search(
        r"job (job_\w+) is still running: not finished within --wait 0s; "
        r"poll it with: switchman result (job_\w+) --poll",
        out,
    )
    assert found is not None and found.group(1) == found.group(2), out
    if model == "sim/fast":  # the job ran on and answered
        polled = slow_daemon.run("result", found.group(1), "--json", "--poll")
        assert polled.returncode == 0, polled.stderr
        assert json.loads(polled.stdout)["status"] == "complete"
    else:  # it runs on
        shown = slow_daemon.run("result", found.group(1), "--json")
        assert shown.returncode == 3, shown.stderr
        assert json.loads(shown.stdout)["status"] == "running"


@pytest.mark.parametrize(
    ("extra", "signum"),
    [
        ((), signal.SIGINT),
        (("--stream",), signal.SIGINT),
        ((), signal.SIGTERM),  # `timeout 60 switchman run ...`, a cancelled CI job
        (("--stream",), signal.SIGHUP),  # its terminal closed
    ],
    ids=["waited", "streamed", "waited-sigterm", "streamed-sighup"],
)
@pytest.mark.parametrize("background", [False, True], ids=["", "in-background"])
def test_ctrl_c_or_a_stop_signal_says_which_job_runs_on_and_exits_128_plus_it(
    slow_daemon: Daemon, extra: tuple[str, ...], signum: signal.Signals, background: bool
) -> None:
    """Also when started in the background by a script (``switchman run ... &``, then
    ``kill $!``): SIGTERM and SIGHUP were lost there, the client running to its end."""
    run = _client(
        slow_daemon,
        "run",
        "sim/sloth",
        "Interrupt me",
        *extra,
        ignored=(signal.SIGINT,) if background else (),
    )
    try:
        (job_id,) = _running_jobs(slow_daemon, 1)
        time.sleep(1.0)  # waiting on the answer now (a streamed one has begun its text)
        run.send_signal(signum)
        code, out, err = _ended(run)
    finally:
        _stop(run)
    assert code == 128 + signum  # 130 for Ctrl-C
    assert err.splitlines()[-1] == (
        f"switchman: interrupted; job {job_id} runs on in the daemon: "
        f"switchman result {job_id} --poll"
    )
    assert "Traceback" not in err
    assert out == "" or out.endswith("\n")  # a streamed line is ended
    assert job_id in _running_jobs(slow_daemon, 1)  # it does run on


def test_polling_a_job_the_dead_daemon_left_says_why_on_stderr(tmp_path: Path) -> None:
    """After a kill, the restarted daemon marks the job interrupted: result --poll (what the
    messages above advise) says so on stderr, stdout stays for answers, exit 1."""
    config = tmp_path / "switchman.toml"
    config.write_text(BROKEN_AND_SLOW)
    db = tmp_path / "jobs.db"
    with serving(tmp_path, db, "--config", str(config)) as first:
        run = _client(first, "run", "sim/sloth", "Take your time")
        try:
            (job_id,) = _running_jobs(first, 1)
            first.proc.kill()
            killed_at = time.time()
            _ended(run)
        finally:
            _stop(run)
    time.sleep(max(0.0, killed_at + 2.0 - time.time()))  # (restarted 2 s later at least)
    with serving(tmp_path, db, "--config", str(config)) as again:
        polled = again.run("result", job_id, "--poll")
        as_json = again.run("result", job_id, "--json")
        job = httpx.get(f"http://127.0.0.1:{again.port}/result/{job_id}", timeout=5).json()
        listed = httpx.get(f"http://127.0.0.1:{again.port}/jobs", timeout=5).json()["jobs"]
    # it finished when the dead daemon was last known alive, not when the next one started
    assert killed_at - 6.0 < job["finished_at"] <= killed_at
    # /jobs says why at a glance, as for any failed job
    (summary,) = [j for j in listed if j["job_id"] == job_id]
    assert (summary["status"], summary["error_code"]) == ("failed", "interrupted")
    assert polled.returncode == 1, polled.stderr
    assert polled.stdout == ""
    assert polled.stderr.strip() == (
        f"job {job_id} failed: the daemon stopped while it ran (it was killed or crashed)"
    )
    assert json.loads(as_json.stdout)["reason"] == "interrupted"


def test_a_client_started_under_nohup_keeps_ignoring_sighup(slow_daemon: Daemon) -> None:
    """``nohup switchman watch &``: a closed terminal's SIGHUP stopped it all the same
    (exit 129); it is ignored, as nohup asks, and SIGTERM still stops it."""
    run = _client(slow_daemon, "run", "sim/sloth", "Keep going", ignored=(signal.SIGHUP,))
    try:
        _running_jobs(slow_daemon, 1)
        time.sleep(1.0)
        run.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert run.poll() is None, "SIGHUP stopped a client nohup started"
        run.send_signal(signal.SIGTERM)
        code, _, err = _ended(run)
    finally:
        _stop(run)
    assert code == 128 + signal.SIGTERM, err
