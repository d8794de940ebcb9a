"""The ``switchman`` command as a user runs it: a real daemon subprocess, real clients.

The daemon runs with a clean environment (no provider keys, so the built-in
simulator answers), its own HOME and SQLite file, on a port the OS picks. Real
clock, bounded waits; every subprocess is killed in ``finally``.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs
import httpx
import pytest

from switchman.sim import expected_answer

CLI: tuple[str, ...] = (sys.executable, "-m", "switchman.cli")
#: the prompt's default output room: the "standard" verbosity
MAX_TOKENS = 1024
BROKEN_AND_SLOW = """
[server]
grace_s = 1.0

[[models]]
alias = "sim/broken"
provider = "sim"
model_id = "broken"
sim = { error_rate = 1.0 }

[[models]]
alias = "sim/sloth"
provider = "sim"
model_id = "sloth"
sim = { latency_ms = 30000, ttft_ms = 100 }
"""


def clean_env(home: Path) -> dict[str, str]:
    """No provider keys, no gateway key, a private HOME: what a fresh machine has."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }


@attrs.frozen
class Daemon:
    proc: subprocess.Popen[str]
    port: int
    home: Path
    db: Path

    def run(
        self,
        *args: str,
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return cli(
            self.home, *args, "--port", str(self.port), timeout=timeout, env=env, stdin=stdin
        )


def cli(
    home: Path,
    *args: str,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    stdin: str | bytes | None = None,
    command: Sequence[str] = CLI,
) -> subprocess.CompletedProcess[str]:
    """``switchman ARGS`` as a user runs it, ``stdin`` piped in (None: empty, not a terminal);
    ``command`` runs another entry point (``python -m switchman``, ``-m switchman.sim``)."""
    proc = subprocess.Popen(
        [*command, *args],
        env=clean_env(home) | dict(env or {}),
        cwd=home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    data = stdin.encode() if isinstance(stdin, str) else stdin
    try:
        out, err = proc.communicate(data, timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line of ``proc``, read in a thread so the wait is bounded."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no output within {timeout}s") from None


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@contextmanager
def serving(
    home: Path,
    db: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    simulated: bool = True,
) -> Iterator[Daemon]:
    """``switchman serve --port 0 --db DB`` until the block ends (then killed if still up);
    its first line says whether it serves the simulator (``simulated``).

    Without a ``--config``, the default simulator fleet with a seeded router: its models
    answer a few calls in a hundred with an error or a 429, and a test's calls (many name
    one model alone) then meet the same ones on every run."""
    if "--config" not in extra:
        seeded = home / "seeded.toml"
        seeded.write_text("[router]\nseed = 7\n")
        extra = (*extra, "--config", str(seeded))
    stderr = (home / f"serve-{time.monotonic_ns()}.err").open("w")
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--db", str(db), *extra],
        env=clean_env(home) | dict(env or {}),
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        line = _first_line(proc, timeout=30)
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        assert match is not None, f"unexpected first line {line!r}; stderr: {stderr.name}"
        assert ("simulator" in line) is simulated, line
        port = int(match.group(1))
        deadline = time.monotonic() + 20
        while httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the daemon never became healthy"
            time.sleep(0.1)
        yield Daemon(proc=proc, port=port, home=home, db=db)
    finally:
        _stop(proc)
        stderr.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("home")
    with serving(home, home / "jobs.db") as d:
        yield d


def _answered_by(stderr: str) -> str:
    """The model of the ``model X via sim (simulated)  cost $C`` line (on stderr, the answer
    alone on stdout), whose cost is > 0."""
    match = re.search(r"^model (\S+) via sim \(simulated\)  cost \$(\d+\.\d+)", stderr, re.M)
    assert match is not None, stderr
    assert float(match.group(2)) > 0  # the simulator's prices are not zero
    return match.group(1)


def test_run_prints_the_answer_model_cost_and_attempts(daemon: Daemon) -> None:
    done = daemon.run("run", "claude", "Explain recursion")
    assert done.returncode == 0, done.stderr
    model = _answered_by(done.stderr)
    assert model.startswith("sim/")
    answer = expected_answer(model, "Explain recursion", MAX_TOKENS)
    assert done.stdout == answer + "\n"  # the answer alone: `ans=$(switchman run ...)`
    # the simulator refuses now and then (rate limits, errors; 3% of sim/balanced's
    # answers): each try is listed, numbered, the last the one that answered
    attempts = re.findall(r"^  attempt (\d+): (\S+) \(sim\) (\w+)", done.stderr, re.M)
    assert [int(n) for n, _, _ in attempts] == list(range(1, len(attempts) + 1)), done.stderr
    assert re.search(
        rf"^  attempt {len(attempts)}: {re.escape(model)} \(sim\) success \([\d,]+ ms\)$",
        done.stderr,
        re.M,
    )


def test_run_takes_a_system_prompt_a_length_and_a_temperature(daemon: Daemon) -> None:
    """(The answer stopped at the native 1,024 tokens, with no way to say otherwise.)"""
    plain = json.loads(daemon.run("run", "sim/fast", "Explain recursion", "--json").stdout)
    done = daemon.run(
        "run", "sim/fast", "Explain recursion", "--json",
        "--system", "Answer in one short sentence, for a child.",
        "--max-tokens", "5", "--temperature", "0.3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "complete" and result["finish_reason"] == "length"
    assert result["usage"]["output_tokens"] == 5
    # the system turn went with the prompt: more input than the prompt alone
    assert result["usage"]["input_tokens"] > plain["usage"]["input_tokens"] + 5


def test_run_json_prints_the_whole_result(daemon: Daemon) -> None:
    done = daemon.run("run", "gpt", "What is a monad?", "--intent", "reason", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "complete"
    assert result["job_id"].startswith("job_")
    assert result["answer"] == expected_answer(result["model"], "What is a monad?", MAX_TOKENS)
    assert result["cost_usd"] > 0 and result["simulated"] is True
    assert result["trace"]["attempts"][-1]["outcome"] == "success"


@pytest.mark.parametrize(
    ("args", "prompt"),
    [
        (("Explain streaming", "--stream"), "Explain streaming"),
        (("--stream", "Explain streaming"), "Explain streaming"),
        (("--port", "{port}", "--stream", "--", "-x marks the spot"), "-x marks the spot"),
    ],
    ids=["", "option-before-prompt", "dashed-prompt"],
)
def test_run_stream_prints_the_answer_once_then_the_model(
    daemon: Daemon, args: tuple[str, ...], prompt: str
) -> None:
    """``run claude --stream PROMPT`` too (argparse took no prompt after an option), and a
    prompt that looks like an option after ``--``."""
    if "{port}" in args:  # (after `--` every word is the prompt's: the port goes first)
        done = cli(daemon.home, "run", "claude", *(a.format(port=daemon.port) for a in args))
    else:
        done = daemon.run("run", "claude", *args)
    assert done.returncode == 0, done.stderr
    model = _answered_by(done.stderr)
    answer = expected_answer(model, prompt, MAX_TOKENS)
    assert done.stdout == answer + "\n"  # streamed, once, alone


def test_a_job_left_running_is_polled_and_listed(daemon: Daemon) -> None:
    submitted = daemon.run("run", "claude", "Poll me later", "--wait", "0")
    # not finished: a script's `&&` must not go on as if it had the answer
    assert submitted.returncode == 3, submitted.stderr
    match = re.search(
        r"job (job_\w+) is still (queued|running): not finished within --wait 0s; poll it with",
        submitted.stderr,
    )
    assert match is not None, submitted.stderr
    assert submitted.stdout == ""  # no answer
    job_id = match.group(1)

    polled = daemon.run("result", job_id, "--poll")
    assert polled.returncode == 0, polled.stderr
    assert polled.stderr.startswith("model "), polled.stderr  # no blank line in a log file
    model = _answered_by(polled.stderr)
    assert polled.stdout == expected_answer(model, "Poll me later", MAX_TOKENS) + "\n"

    listed = daemon.run("jobs")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(job_id)]
    assert row.split()[1:3] == ["complete", model]
    assert float(row.split()[3].lstrip("$")) > 0

    as_json = json.loads(daemon.run("jobs", "--json", "--status", "complete").stdout)
    assert job_id in {j["job_id"] for j in as_json["jobs"]}

    # a failed job says why, in the listing
    import httpx

    failed = httpx.post(
        f"http://127.0.0.1:{daemon.port}/call?wait=10",
        json={"prompt": "too long", "model": "sim/fast", "params": {"max_tokens": 10**6}},
        timeout=20,
    ).json()
    assert failed["status"] == "failed", failed
    listed = daemon.run("jobs", "--status", "failed")
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(failed["job_id"])]
    assert row.endswith("(no_eligible_model)"), row


def test_providers_leaves_a_model_turned_off_out_of_those_that_answer(tmp_path: Path) -> None:
    """A model turned off (in the file; an Ollama model not pulled) was listed with its
    breaker as if it could answer; it is counted apart."""
    config = tmp_path / "switchman.toml"
    config.write_text(
        '[[models]]\nalias = "sim/resting"\nprovider = "sim"\nmodel_id = "resting"\n'
        "enabled = false\n"
    )
    with serving(tmp_path, tmp_path / "jobs.db", "--config", str(config)) as d:
        out = d.run("providers").stdout
    assert "sim/resting" not in out
    assert re.search(r"^    sim/balanced +breaker closed", out, re.M)
    assert re.search(r"^    \(1 model off\)$", out, re.M), out


def test_health_and_providers(daemon: Daemon) -> None:
    health = daemon.run("health")
    assert health.returncode == 0, health.stderr
    lines = health.stdout.splitlines()
    assert re.match(r"ok  switchman \S+, up \d+s on the built-in simulator", lines[0])
    assert re.search(
        r"^jobs +\d+ complete, \d+ failed, \d+ running, \d+ queued", health.stdout, re.M
    )
    assert re.search(r"^provider +sim +5 models, breakers: 5 closed$", health.stdout, re.M)
    assert re.search(
        r"^disabled +openai, anthropic, .*\(switchman providers says why\)$", health.stdout, re.M
    )
    body = json.loads(daemon.run("health", "--json").stdout)
    assert body["status"] == "ok" and body["simulated"] is True

    providers = daemon.run("providers")
    assert providers.returncode == 0, providers.stderr
    out = providers.stdout
    assert re.search(r"^sim +sim +enabled", out, re.M)
    assert re.search(
        r"^openai +openai +missing API key: set OPENAI_API_KEY +\(\d+ models\)$", out, re.M
    )
    assert re.search(r"^    sim/balanced +breaker closed +(no )?seed( +learned: .*)?$", out, re.M)
    assert re.search(r"^sim +sim +enabled  in flight \d+$", out, re.M)  # (no keys: all shown)
    # what can answer comes first; a provider that cannot is one line, its models not listed
    assert out.index("sim/balanced") < out.index("missing API key")
    assert "openai/" not in out


def test_providers_shows_what_was_learned_of_a_model_that_answered(daemon: Daemon) -> None:
    done = daemon.run("run", "sim/smart", "What is a monad?", "--json")
    assert done.returncode == 0, done.stderr
    out = daemon.run("providers").stdout
    learned = r"  learned: \d+% answered, [\d,]+ ms, heard [\d,]+s ago$"
    assert re.search(r"^    sim/smart +breaker closed .*" + learned, out, re.M), out
    body = json.loads(daemon.run("providers", "--json").stdout)
    (smart,) = [m for p in body["providers"] for m in p["models"] if m["alias"] == "sim/smart"]
    assert smart["stats"]["*"]["heard_s_ago"] >= 0.0


def test_watch_shows_the_events_of_a_call_running_meanwhile(daemon: Daemon) -> None:
    watcher = subprocess.Popen(
        [*CLI, "watch", "--count", "4", "--port", str(daemon.port)],
        env=clean_env(daemon.home),
        cwd=daemon.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stderr is not None
        ready: queue.Queue[str] = queue.Queue()
        stderr = watcher.stderr
        threading.Thread(target=lambda: ready.put(stderr.readline()), daemon=True).start()
        assert "watching ws://" in ready.get(timeout=20)
        for _ in range(5):  # the subscription is live soon after "watching"; bounded retries
            assert daemon.run("run", "claude", "Watch this").returncode == 0
            try:
                watcher.wait(timeout=3)
                break
            except subprocess.TimeoutExpired:
                continue
        out, _ = watcher.communicate(timeout=10)
        assert watcher.returncode == 0
        lines = out.splitlines()
        assert len(lines) == 4
        kinds = [line.split()[1] for line in lines]
        assert set(kinds) <= {
            "call.accepted",
            "call.routed",
            "attempt.started",
            "attempt.finished",
            "call.completed",
            "budget.reserved",
            "budget.settled",
        }
        assert "call.accepted" in kinds or "call.routed" in kinds
    finally:
        _stop(watcher)


@contextmanager
def _closed_port() -> Iterator[int]:
    """A port nothing listens on, for the block: bound but never listening, so a
    connection to it is refused, and no other socket can take it meanwhile (one closed
    at once could be handed to another test's listener before it was used)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    "args",
    [
        ("run", "claude", "hi"),
        ("run", "claude", "hi", "--stream"),
        ("watch",),
        ("health",),
    ],
    ids=["run", "run-stream", "watch", "health"],
)
def test_without_a_daemon_exit_2_and_say_how_to_start_it(
    tmp_path: Path, args: Sequence[str]
) -> None:
    with _closed_port() as port:
        done = cli(tmp_path, *args, "--port", str(port))
    assert done.returncode == 2
    assert "not running" in done.stderr and "switchman serve" in done.stderr
    assert f"--port {port}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--bogus", "claude", "hi"),
        ("run", "claude", "--stream", "hi", "again"),
        (),
        ("frobnicate",),
        ("demo", "--calls", "0"),
    ],
    ids=["unknown-option", "two-prompts", "no-command", "unknown-command", "bad-value"],
)
def test_usage_errors_exit_2(tmp_path: Path, args: Sequence[str]) -> None:
    done = cli(tmp_path, *args)
    assert done.returncode == 2
    assert done.stderr.strip() and "Traceback" not in done.stderr


def test_unknown_model_is_a_usage_error(daemon: Daemon) -> None:
    done = daemon.run("run", "no-such-model", "hi")
    assert done.returncode == 2
    assert "unknown model or route 'no-such-model'" in done.stderr


def test_failure_exit_1_and_shutdown_persistence(tmp_path: Path) -> None:
    config = tmp_path / "switchman.toml"
    config.write_text(BROKEN_AND_SLOW)
    db = tmp_path / "jobs.db"
    with serving(tmp_path, db, "--config", str(config)) as d:
        failed = d.run("run", "sim/broken", "hi")
        assert failed.returncode == 1
        # the cause once; each attempt's own error is on its attempt line
        (error,) = [line for line in failed.stderr.splitlines() if line.startswith("error ")]
        assert error.startswith("error all_models_failed: ")
        attempts = re.findall(r"^  attempt \d+: sim/broken \(sim\) error: .+$", failed.stderr, re.M)
        assert len(attempts) >= 2, failed.stderr
        assert failed.stdout == ""

        slow = d.run("run", "sim/sloth", "Take your time", "--wait", "0.5")
        assert slow.returncode == 3, slow.stderr
        match = re.search(r"job (job_\w+) is still running", slow.stderr)
        assert match is not None, slow.stderr
        job_id = match.group(1)

        # --wait holds for a streamed call too: stop reading, name the job, exit 3
        started = time.monotonic()
        streamed = d.run("run", "sim/sloth", "Stream slowly", "--stream", "--wait", "1")
        assert streamed.returncode == 3, streamed.stderr
        assert time.monotonic() - started < 15  # not the sloth's 30 s
        found = re.search(
            r"job (job_\w+) is still running: not finished within --wait 1s; "
            r"poll it with: switchman result (job_\w+) --poll",
            streamed.stderr,
        )
        assert found is not None and found.group(1) == found.group(2), streamed.stderr
        as_json = d.run("run", "sim/sloth", "x", "--stream", "--wait", "0.5", "--json")
        assert as_json.returncode == 3, as_json.stderr
        pending = json.loads(as_json.stdout)
        assert pending["status"] == "running" and pending["job_id"].startswith("job_")

        d.proc.send_signal(signal.SIGINT)
        assert d.proc.wait(timeout=20) == 0

    with serving(tmp_path, db, "--config", str(config)) as again:
        result = again.run("result", job_id, "--json")
        assert result.returncode == 1
        job = json.loads(result.stdout)
        assert job["status"] == "failed" and job["reason"] == "shutdown"
        assert job["result"]["errors"][0]["code"] == "cancelled"

        shown = again.run("result", job_id)
        assert shown.returncode == 1
        assert "shut down before the call finished" in shown.stderr

        listed = again.run("jobs").stdout
        assert re.search(rf"^{job_id}  failed +sim/sloth .*\(shutdown\)$", listed, re.M)
        assert re.search(r"failed +sim/broken", listed)


def test_sim_server_starts_and_answers(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "sim-server", "--port", "0"],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(proc, timeout=20)
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match is not None, line
        resp = httpx.post(
            f"{match.group(1)}/v1/chat/completions",
            json={"model": "healthy", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert resp.status_code == 401  # as OpenAI: no key, no answer
        resp = httpx.post(
            f"{match.group(1)}/xai/v1/chat/completions",
            json={"model": "healthy", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": "Bearer xai-fake"},
            timeout=10,
        )
        assert resp.status_code == 200
        text = resp.json()["choices"][0]["message"]["content"]
        assert text == expected_answer("healthy", "hi", None)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        _stop(proc)


def test_health_of_a_degraded_daemon_exits_1_and_names_the_open_breakers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import switchman.cli

    body = {
        "status": "degraded",
        "version": "0.1.0",
        "uptime_s": 4000.0,
        "simulated": False,
        "jobs": {"queued": 0, "running": 1, "complete": 7, "failed": 3},
        "jobs_in_flight": 1,
        "providers": [
            {
                "name": "openai",
                "kind": "openai",
                "disabled": False,
                "models": [
                    {"alias": "openai/a", "breaker": "open"},
                    {"alias": "openai/b", "breaker": "open"},
                ],
            },
            {"name": "gemini", "kind": "gemini", "disabled": True, "models": []},
        ],
        "store_problem": "the job store cannot be written: database or disk is full",
        "global_budget_left_usd": {"day": 0.1, "month": 40.5},
        "global_budget_refusing": ["day"],
    }
    monkeypatch.setattr(switchman.cli, "_request", lambda *a, **k: httpx.Response(200, json=body))
    assert switchman.cli.main(["health"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "degraded  switchman 0.1.0, up 1h 6m"
    assert out[1] == "jobs       7 complete, 3 failed, 1 running, 0 queued; 1 in flight"
    assert out[2] == "provider   openai     2 models, breakers: 0 closed, open: openai/a openai/b"
    assert out[3] == "disabled   gemini (switchman providers says why)"
    assert out[4] == "store      the job store cannot be written: database or disk is full"
    assert out[5] == (
        "budget     global: $0.100000 left this day, $40.500000 left this month; "
        "refusing calls that could cost more (day)"
    )
    assert switchman.cli.main(["health", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == body


def test_serve_on_a_taken_port_says_so_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(tmp_path, "serve", "--port", str(port), "--db", str(tmp_path / "j.db"))
    assert done.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "in use" in done.stderr.lower() and "Trio nursery" not in done.stderr
    assert "Traceback" not in done.stderr


KEYED = """
[[keys]]
key_env = "SWITCHMAN_KEY_TEAM"
handle = "team"
models = ["sim/fast"]

[[keys]]
key_env = "SWITCHMAN_KEY_OPS"
handle = "ops"
admin = true

[[keys]]
key_env = "SWITCHMAN_KEY_SLOW"
handle = "slow"
models = ["sim/steady"]
rpm = 1

[[models]]  # never fails: the rate test must not meet the fleet's 1% of simulated errors
alias = "sim/steady"
provider = "sim"
model_id = "steady"
sim = { latency_ms = 50, ttft_ms = 10 }

[[models]]  # the team's model, made never to fail too (its 1% of 429s without retry-after
alias = "sim/fast"  # met a test once, as the tests before it on this daemon vary)
provider = "sim"
model_id = "fast"
sim = { latency_ms = 50, ttft_ms = 10 }
"""


@pytest.mark.parametrize(
    "args",
    [("run", "sim/fast", "hi"), ("run", "sim/fast", "hi", "--stream"), ("watch",), ("jobs",)],
    ids=["run", "run-stream", "watch", "jobs"],
)
def test_a_missing_or_rejected_gateway_key_is_not_reported_as_a_daemon_down(
    keyed_daemon: Daemon, args: Sequence[str]
) -> None:
    where = f"the daemon at 127.0.0.1:{keyed_daemon.port}"
    missing = keyed_daemon.run(*args)
    assert missing.returncode == 2
    assert f"{where} needs a gateway key (HTTP 401)" in missing.stderr
    assert "set SWITCHMAN_API_KEY to a gateway key" in missing.stderr
    wrong = keyed_daemon.run(*args, env={"SWITCHMAN_API_KEY": "not-the-key"})
    assert wrong.returncode == 2
    assert f"{where} rejected the key (HTTP 401)" in wrong.stderr
    assert "set SWITCHMAN_API_KEY to a gateway key" in wrong.stderr
    for done in (missing, wrong):
        assert "not running" not in done.stderr and "Traceback" not in done.stderr


def test_a_key_that_may_not_use_a_model_is_told_so(keyed_daemon: Daemon) -> None:
    key = {"SWITCHMAN_API_KEY": "team-secret"}
    where = f"the daemon at 127.0.0.1:{keyed_daemon.port}"
    said = f"{where} refused the call (HTTP 403): this key may not use model 'sim/balanced'"
    # the key was accepted: a call that cannot be served (1), not a usage error (2)
    for extra in ((), ("--stream",)):
        denied = keyed_daemon.run("run", "sim/balanced", "hi", *extra, env=key)
        assert denied.returncode == 1, extra
        assert said in denied.stderr, denied.stderr
        assert "rejected the key" not in denied.stderr
    allowed = keyed_daemon.run("run", "sim/fast", "hi", env=key)
    assert allowed.returncode == 0, allowed.stderr
    assert _answered_by(allowed.stderr) == "sim/fast"


def test_a_call_over_the_keys_rate_exits_1_streamed_or_not(keyed_daemon: Daemon) -> None:
    key = {"SWITCHMAN_API_KEY": "slow-secret"}  # one call a minute
    first = keyed_daemon.run("run", "sim/steady", "hi", "--stream", env=key)
    assert first.returncode == 0, first.stderr
    for extra in (("--stream",), ()):
        again = keyed_daemon.run("run", "sim/steady", "hi", *extra, env=key)
        assert again.returncode == 1, (extra, again.stderr)
        assert "rate_limited" in again.stderr


def test_budgets_show_each_scopes_spend_and_a_key_its_own(
    daemon: Daemon, keyed_daemon: Daemon
) -> None:
    daemon.run("run", "sim/fast", "hi")
    shown = daemon.run("budgets")
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == "spend in the current UTC hour, day and month\n"
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("global ")
    assert re.search(r"^provider:sim +hour \$\d+\.\d{6}   day \$\d", shown.stdout, re.M)
    assert float(re.findall(r"day \$(\d+\.\d+)", lines[0])[0]) > 0
    body = json.loads(daemon.run("budgets", "--json").stdout)
    assert body["budgets"][0]["scope"] == "global"
    mine = keyed_daemon.run("budgets", env={"SWITCHMAN_API_KEY": "team-secret"})
    assert mine.returncode == 0, mine.stderr
    assert [line.split()[0] for line in mine.stdout.splitlines()] == ["caller:team"]


def test_health_shows_a_team_only_the_status_and_an_admin_everything(
    keyed_daemon: Daemon,
) -> None:
    anyone = keyed_daemon.run("health")
    assert anyone.returncode == 0, anyone.stderr
    assert anyone.stdout == (
        "ok  (providers, breakers and jobs need an admin key: set SWITCHMAN_API_KEY to an "
        "admin key)\n"
    )
    team = keyed_daemon.run("health", env={"SWITCHMAN_API_KEY": "team-secret"})
    assert team.returncode == 0, team.stderr
    assert (
        team.stdout.startswith("ok  (")
        and "this key is not an admin's, or not a valid key" in team.stdout
    )
    as_json = keyed_daemon.run("health", "--json", env={"SWITCHMAN_API_KEY": "team-secret"})
    assert json.loads(as_json.stdout) == {"status": "ok"}
    admin = keyed_daemon.run("health", env={"SWITCHMAN_API_KEY": "ops-secret"})
    assert admin.returncode == 0, admin.stderr
    assert re.search(r"^provider +sim +\d+ models, breakers:", admin.stdout, re.M)
    assert re.search(r"^jobs +\d+ complete", admin.stdout, re.M)


def test_a_key_sees_what_each_model_takes_but_not_the_calls_in_flight(
    keyed_daemon: Daemon,
) -> None:
    shown = keyed_daemon.run("providers", env={"SWITCHMAN_API_KEY": "team-secret"})
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^sim +sim +enabled$", shown.stdout, re.M)  # no "in flight 0" made up
    assert re.search(r"^    sim/fast +breaker closed +(no )?seed$", shown.stdout, re.M)
    body = json.loads(
        keyed_daemon.run("providers", "--json", env={"SWITCHMAN_API_KEY": "team-secret"}).stdout
    )
    (fast,) = body["providers"][0]["models"]
    assert {"supports_seed", "supports_stop", "supports_prefill"} <= set(fast)
    assert "in_flight" not in body["providers"][0] and "stats" not in fast


def test_a_key_with_whitespace_around_it_is_sent_without(keyed_daemon: Daemon) -> None:
    key = {"SWITCHMAN_API_KEY": "  ops-secret\n"}  # as `export K=$(cat keyfile)` can give
    # (a model that never fails: sim/fast answers 1% of calls 429 without retry-after, and
    # which call meets one depends on the tests run before on this daemon)
    steady = ("run", "sim/steady", "hi")
    for args in (steady, (*steady, "--stream"), ("jobs",)):
        done = keyed_daemon.run(*args, env=key)
        assert done.returncode == 0, (args, done.stderr)


@pytest.mark.parametrize("key", ["t\u00ebam-secret", "team\nsecret", "team\x7fsecret"])
@pytest.mark.parametrize(
    "args",
    [("run", "sim/fast", "hi"), ("run", "sim/fast", "hi", "--stream"), ("watch",), ("health",)],
    ids=["run", "run-stream", "watch", "health"],
)
def test_a_key_no_header_can_carry_is_said_without_its_value(
    tmp_path: Path, key: str, args: Sequence[str]
) -> None:
    with _closed_port() as port:  # refused before anything is sent
        done = cli(tmp_path, *args, "--port", str(port), env={"SWITCHMAN_API_KEY": key})
    assert done.returncode == 2
    assert done.stderr == (
        "switchman: SWITCHMAN_API_KEY holds characters an HTTP header cannot carry\n"
    )


@pytest.fixture(scope="module")
def keyed_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("keyed")
    config = home / "switchman.toml"
    config.write_text(KEYED)
    env = {
        "SWITCHMAN_KEY_TEAM": "team-secret",
        "SWITCHMAN_KEY_OPS": "ops-secret",
        "SWITCHMAN_KEY_SLOW": "slow-secret",
    }
    with serving(home, home / "jobs.db", "--config", str(config), env=env) as d:
        yield d


def test_help_documents_the_gateway_key_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from switchman.cli import main

    for argv in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "SWITCHMAN_API_KEY" in text
        assert "3 the job had not finished" in text and "within --wait" in text
        assert re.search(r"1 the call failed,.* may not .*\(HTTP 403|\(403\)", text)
        assert re.search(r"2 usage or connection error: .*rejected \(HTTP 401|\(401", text)


@pytest.mark.parametrize(
    ("toml", "lines"),
    [
        (
            '[router]\ncapacity = 0\n\n[[models]]\nalias = "x"\nprovider = "nope"\n'
            'model_id = "m"\n',
            [
                "  models[0].provider: unknown provider 'nope'",
                "  router.capacity: must be at least 1; got 0",
            ],
        ),
        ("[router\ncapacity = 0\n", ["  invalid TOML: Expected ']' "]),
    ],
    ids=["bad-values", "toml-syntax"],
)
def test_serve_with_an_invalid_config_names_each_mistake_and_exits_2(
    tmp_path: Path, toml: str, lines: list[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    done = cli(tmp_path, "serve", "--config", str(config), "--port", "0", "--db", ":memory:")
    assert done.returncode == 2
    out = done.stderr.splitlines()
    assert out[0] == f"switchman: invalid configuration {config}:"
    for expected in lines:
        assert any(line.startswith(expected) for line in out[1:]), done.stderr
    assert len(out) == 1 + len(lines)
    assert "Traceback" not in done.stderr


def test_serve_shows_no_credential_of_an_invalid_config_and_no_traceback(tmp_path: Path) -> None:
    """A careless operator's file: a whole header pasted as a header's name, a user and
    password in a base_url that is not http(s), a bracketed host that is no IPv6 address.
    The first two were quoted back, the last a traceback (exit 1) quoting its host."""
    config = tmp_path / "bad.toml"
    config.write_text(
        '[providers.openai]\nheaders = { "Authorization: Bearer sk-SECRETHDR01" = "" }\n'
        '[providers.mistral]\nbase_url = "ftp://sk-SECRETURL02:pw@x/v1"\n'
        '[providers.deepseek]\nbase_url = "http://[sk-SECRETV6-03]/v1"\n'
    )
    done = cli(tmp_path, "serve", "--config", str(config), "--port", "0", "--db", ":memory:")
    assert done.returncode == 2, done.stderr
    assert "SECRET" not in done.stderr and "Traceback" not in done.stderr
    assert [line.split(": ")[0] for line in done.stderr.splitlines()] == [
        "switchman",
        "  providers.openai.headers",
        "  providers.mistral.base_url",
        "  providers.mistral.base_url",
        "  providers.deepseek.base_url",
    ], done.stderr


@pytest.mark.parametrize(
    "args", [("jobs",), ("run", "claude", "hi", "--stream")], ids=["jobs", "run-stream"]
)
def test_a_bad_switchman_port_is_a_usage_error_naming_it(
    tmp_path: Path, args: Sequence[str]
) -> None:
    done = cli(tmp_path, *args, env={"SWITCHMAN_PORT": "abc"})
    assert done.returncode == 2
    assert done.stderr == (
        "switchman: SWITCHMAN_PORT must be a port number between 1 and 65535; got 'abc'\n"
    )


@pytest.mark.parametrize(
    "args",
    [("--help",), ("jobs", "--help"), ("run", "-h"), ("watch", "--help")],
    ids=["help", "jobs-help", "run-h", "watch-help"],
)
@pytest.mark.parametrize(
    "env",
    [{"SWITCHMAN_PORT": "abc"}, {"SWITCHMAN_HOST": "127.0.0.1:8265"}],
    ids=["bad-port", "bad-host"],
)
def test_help_prints_whatever_the_variables_hold(
    tmp_path: Path, args: Sequence[str], env: dict[str, str]
) -> None:
    done = cli(tmp_path, *args, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: switchman") and done.stderr == ""


def test_switchman_port_says_where_the_clients_look_and_port_wins_over_it(
    tmp_path: Path,
) -> None:
    with _closed_port() as port:
        by_env = cli(tmp_path, "jobs", env={"SWITCHMAN_PORT": str(port)})
    assert (
        by_env.returncode == 2
        and f"not running at http://127.0.0.1:{port} (or is stopping);" in by_env.stderr
    )
    # --port wins (even over a bad variable); serve's help prints whatever it holds
    with _closed_port() as other:
        by_flag = cli(tmp_path, "jobs", "--port", str(other), env={"SWITCHMAN_PORT": "abc"})
    assert (
        by_flag.returncode == 2
        and f"running at http://127.0.0.1:{other} (or is stopping);" in by_flag.stderr
    )
    served = cli(tmp_path, "serve", "--help", env={"SWITCHMAN_PORT": "abc"})
    assert served.returncode == 0 and "usage: switchman serve" in served.stdout
    bad = cli(tmp_path, "serve", "--db", ":memory:", env={"SWITCHMAN_PORT": "abc"})
    assert bad.returncode == 2 and "SWITCHMAN_PORT must be a port number" in bad.stderr


def test_serve_listens_where_switchman_port_tells_the_clients_to_look(tmp_path: Path) -> None:
    """``export SWITCHMAN_PORT=...`` for the clients: the daemon started in that shell
    listens there too (it went to 8265, and every client of the shell found nothing)."""
    with _closed_port() as port:
        pass  # (free again, for the daemon)
    env = {"SWITCHMAN_PORT": str(port)}
    proc = subprocess.Popen(
        [*CLI, "serve", "--db", str(tmp_path / "jobs.db")],
        env=clean_env(tmp_path) | env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert f"serving on http://127.0.0.1:{port} " in _first_line(proc, timeout=30)
        deadline = time.monotonic() + 20
        while cli(tmp_path, "health", env=env).returncode != 0:
            assert time.monotonic() < deadline, "the clients never found the daemon"
            time.sleep(0.2)
    finally:
        _stop(proc)


def test_health_of_a_draining_daemon_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import switchman.cli

    body = {"status": "draining", "version": "0.1.0", "uptime_s": 5.0, "providers": []}
    answer = httpx.Response(503, json=body)
    monkeypatch.setattr(switchman.cli, "_request", lambda *a, **k: answer)
    assert switchman.cli.main(["health"]) == 1
    assert capsys.readouterr().out.startswith("draining  switchman 0.1.0")


def test_a_second_daemon_on_the_same_db_is_refused_and_the_first_keeps_its_jobs(
    daemon: Daemon,
) -> None:
    job = daemon.run("run", "claude", "Keep me", "--wait", "0")
    job_id = re.search(r"job (job_\w+)", job.stderr)
    assert job_id is not None, job.stderr
    second = cli(daemon.home, "serve", "--port", "0", "--db", str(daemon.db))
    assert second.returncode == 2
    assert "is in use by another switchman store" in second.stderr
    assert "Traceback" not in second.stderr
    done = daemon.run("result", job_id.group(1), "--poll")
    assert done.returncode == 0, done.stdout + done.stderr  # not failed as "interrupted"


def test_serve_on_a_file_that_is_not_a_database_says_so(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    db.write_text("this is not sqlite " * 200)
    done = cli(tmp_path, "serve", "--port", "0", "--db", str(db))
    assert done.returncode == 2
    assert f"cannot use {db} as the job store" in done.stderr
    assert "Traceback" not in done.stderr


def test_result_of_an_unfinished_job_says_how_to_wait_and_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import switchman.cli

    body = {"job_id": "job_x", "status": "running"}
    monkeypatch.setattr(switchman.cli, "_request", lambda *a, **k: httpx.Response(200, json=body))
    assert switchman.cli.main(["result", "job_x"]) == 3
    assert "job job_x is running; wait for it with: switchman result job_x --poll" in (
        capsys.readouterr().err
    )
    assert switchman.cli.main(["result", "job_x", "--json"]) == 3
    assert json.loads(capsys.readouterr().out) == body


def test_watch_of_a_finished_job_shows_its_outcome_and_ends(daemon: Daemon) -> None:
    done = daemon.run("run", "claude", "Watch me end", "--json")
    job_id = json.loads(done.stdout)["job_id"]
    watched = daemon.run("watch", "--job", job_id)
    assert watched.returncode == 0, watched.stderr
    assert re.search(r"^model sim/\S+ via sim \(simulated\)", watched.stderr, re.M)
    as_json = daemon.run("watch", "--job", job_id, "--json")  # for a tool to read
    assert as_json.returncode == 0, as_json.stderr
    last = json.loads(as_json.stdout.splitlines()[-1])
    assert last["type"] == "result" and last["result"]["job_id"] == job_id


def test_watch_into_a_reader_that_stops_early_ends_quietly(daemon: Daemon) -> None:
    watcher = subprocess.Popen(
        [*CLI, "watch", "--port", str(daemon.port)],
        env=clean_env(daemon.home),
        cwd=daemon.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stderr is not None and watcher.stdout is not None
        ready: queue.Queue[str] = queue.Queue()
        stderr = watcher.stderr
        threading.Thread(target=lambda: ready.put(stderr.readline()), daemon=True).start()
        assert "watching ws://" in ready.get(timeout=20)
        watcher.stdout.close()  # as `head` does once it has its lines
        for _ in range(5):  # events to write into the closed pipe
            assert daemon.run("run", "claude", "Nobody reads this").returncode == 0
            try:
                watcher.wait(timeout=3)
                break
            except subprocess.TimeoutExpired:
                continue
        assert watcher.wait(timeout=10) == 0
        assert "not running" not in stderr.read()
    finally:
        _stop(watcher)


def test_watch_lines_are_short_and_name_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    from switchman._cli_live import format_event

    monkeypatch.setenv("NO_COLOR", "1")
    routed = {
        "type": "call.routed",
        "call_id": "0123456789abcdef",
        "job_id": "job_abc",
        "ts": 3600.5,
        "candidates": [f"provider/model-{i}" for i in range(39)],
    }
    line = format_event(routed)
    assert line.startswith("01:00:00Z ")  # (UTC, as the daemon logs)
    assert "+34 more" in line and "model-5" not in line and len(line) < 200
    accepted = {"type": "call.accepted", "call_id": "0123456789abcdef", "job_id": "job_abc"}
    assert " 01234567 job_abc " in format_event(accepted) + " "
    done = {"type": "call.completed", "call_id": "c", "cost_usd": 7.2e-05, "latency_ms": 3.78123}
    assert "cost_usd=7.2e-05" in format_event(done) and "latency_ms=3.78123" in format_event(done)
    assert "redacted" not in format_event({**done, "redacted": {}})  # (most calls: nothing)
    assert 'redacted={"email": 2}' in format_event({**done, "redacted": {"email": 2}})


def test_sighup_stops_the_daemon_gracefully_and_it_logs_with_time_level_and_logger(
    tmp_path: Path,
) -> None:
    config = tmp_path / "switchman.toml"
    config.write_text(BROKEN_AND_SLOW)
    db = tmp_path / "jobs.db"
    with serving(tmp_path, db, "--config", str(config), "--log-level", "info") as d:
        d.proc.send_signal(signal.SIGHUP)  # (a closed terminal, a reload): not a kill
        assert d.proc.wait(timeout=20) == 0
    errs = sorted(tmp_path.glob("serve-*.err"))[-1].read_text()
    assert "SIGHUP: stopping (grace period running" in errs
    # logging is set up: time (UTC), level, logger, message (the simulator warning, for one)
    assert re.search(
        r"^\d{4}-\d\d-\d\dT[\d:.]+Z WARNING switchman\.serve: no provider (of \S+ )?has its key",
        errs,
        re.M,
    ), errs


def test_an_unknown_log_level_in_the_environment_is_a_usage_error(tmp_path: Path) -> None:
    done = cli(tmp_path, "serve", "--port", "0", env={"SWITCHMAN_LOG_LEVEL": "chatty"})
    assert done.returncode == 2
    assert "SWITCHMAN_LOG_LEVEL='chatty': use one of debug, info, warning, error" in done.stderr


def test_connections_their_clients_closed_are_let_go_at_once(tmp_path: Path) -> None:
    """hypercorn kept a connection its client had closed (in CLOSE-WAIT, a file descriptor
    held) until its keep-alive timer ran out, 75 s: a client opening a connection per
    request could use up the daemon's descriptors. They go as their clients close them."""
    with serving(tmp_path, tmp_path / "jobs.db") as d:
        fds = Path(f"/proc/{d.proc.pid}/fd")
        before = len(list(fds.iterdir()))
        for _ in range(20):  # a new connection each, closed by the client after its answer
            assert httpx.get(f"http://127.0.0.1:{d.port}/health", timeout=10).status_code == 200
        deadline = time.monotonic() + 5
        while (held := len(list(fds.iterdir()))) > before + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert held <= before + 2, (before, held)


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["run", "fast", "hi", "--bogus"], "usage: switchman run "),
        (["jobs", "--zz"], "usage: switchman jobs "),
        (["serve", "extra"], "usage: switchman serve "),
        (["--bogus", "serve"], "usage: switchman [-h]"),
    ],
    ids=["run", "jobs", "serve", "before the command"],
)
def test_an_unknown_argument_is_told_with_its_commands_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str], usage: str
) -> None:
    from switchman.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage), err
    told = "switchman" if argv[0].startswith("-") else f"switchman {argv[0]}"
    bogus = "extra" if "extra" in argv else next(a for a in argv if a.startswith("--"))
    assert f"{told}: error: unrecognized arguments: {bogus}" in err, err
