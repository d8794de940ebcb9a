"""``switchman serve`` and its store as a user meets them: a disk that fills under the
daemon, a second daemon on the same file through a hard link, and start-up refusals on
the CPython that wraps them in an ExceptionGroup (3.11.0 to 3.11.3, Debian 12's
python3). Real daemons on the simulator, real SQLite files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from switchman.cli import CliError, cli_error
from tests.test_cli import CLI, _first_line, _stop, clean_env, cli, serving

SEEDED = "[router]\nseed = 7\n"
#: the file size limit of the daemon whose disk fills (its store's file, WAL included)
LIMIT = 1024 * 1024
#: runs ``python -m switchman.cli ARGS`` under a file size limit (as ``ulimit -f``)
LIMITED = (
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT})); "
    "os.execv(sys.executable, [sys.executable, '-m', 'switchman.cli', *sys.argv[1:]])"
)


def test_a_daemon_whose_disk_fills_refuses_calls_with_503_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    config = tmp_path / "seeded.toml"
    config.write_text(SEEDED)
    err_path = tmp_path / "serve.err"
    serve = ("--port", "0", "--config", str(config))
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", LIMITED, "serve", "--db", str(db), *serve],
            env=clean_env(tmp_path),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", _first_line(proc, 30))
        assert match is not None, err_path.read_text()
        base = f"http://127.0.0.1:{match.group(1)}"
        refused = None
        accepted: list[str] = []
        for i in range(300):  # big prompts: the file reaches its limit within a few dozen
            r = httpx.post(
                f"{base}/call", json={"prompt": f"{i} " + "x" * 30_000, "model": "sim/fast"}
            )
            if r.status_code == 503:
                refused = r
                break
            assert r.status_code == 202, r.text
            accepted.append(r.json()["job_id"])
        assert refused is not None and accepted
        error = refused.json()["error"]
        assert error["code"] == "store_unavailable"
        assert error["message"].startswith("the job store cannot be written: ")
        assert refused.headers["retry-after"] == "2"
        health = httpx.get(f"{base}/health", timeout=10).json()
        assert health["status"] == "degraded"
        assert health["store_problem"] == error["message"]
        # the daemon lives on: each job accepted answers (from memory if it must)
        for job_id in accepted[-3:]:
            job = httpx.get(f"{base}/result/{job_id}?wait=10", timeout=15).json()
            assert job["status"] in ("complete", "failed"), job
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, err_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    logged = err_path.read_text()
    assert "Traceback" not in logged
    # said once for the streak (by the store; the persister says what it could not save)
    assert len(re.findall(r"switchman\.store: the job store .* cannot be written", logged)) == 1
    # without the limit it starts again; what could not be written reads as interrupted
    with serving(tmp_path, db, "--config", str(config)) as again:
        jobs = httpx.get(f"http://127.0.0.1:{again.port}/jobs?limit=1000", timeout=10).json()
        stored = {j["job_id"]: j for j in jobs["jobs"]}
        assert set(accepted) <= set(stored)
        for job_id in accepted:
            assert stored[job_id]["status"] in ("complete", "failed")


def test_a_second_daemon_on_the_same_store_through_a_hard_link_is_refused(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    hard = tmp_path / "hard.db"
    with serving(tmp_path, db) as first:
        os.link(db, hard)
        done = cli(tmp_path, "serve", "--port", "0", "--db", str(hard), timeout=30)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines()[-1] == (
            f"switchman: {hard} is in use by another switchman store, in this process or"
            f" another (it holds a lock on {hard}); give each daemon its own --db, and open"
            " a file once in a process (one store, one router)"
        )
        assert httpx.get(f"http://127.0.0.1:{first.port}/health", timeout=5).status_code == 200


def _interpreters() -> list[str]:
    """This test run's python, and the system's when it is a CPython that wraps what an
    ``except*`` clause raises (3.11.0 to 3.11.3)."""
    found = [sys.executable]
    system = "/usr/bin/python3"
    if os.path.exists(system):
        probe = subprocess.run(
            [system, "-c", "import sys; print(*sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        version = tuple(int(n) for n in probe.stdout.split())
        if (3, 11, 0) <= version <= (3, 11, 3):
            found.append(system)
    return found


def _path_for(python: str) -> dict[str, str]:
    """PYTHONPATH for ``python`` to run this checkout with this run's packages."""
    if python == sys.executable:
        return {}
    here = str(Path(__file__).resolve().parents[1])
    return {"PYTHONPATH": os.pathsep.join([here, sysconfig.get_paths()["purelib"]])}


@pytest.mark.parametrize("python", _interpreters())
def test_a_start_up_refusal_is_one_line_and_exit_2_on_every_python_3_11(
    tmp_path: Path, python: str
) -> None:
    env = _path_for(python)
    ready = subprocess.run(
        [python, "-c", "import switchman._cli_serve"],
        env=clean_env(tmp_path) | env,
        capture_output=True,
        timeout=60,
    )
    if ready.returncode != 0:
        pytest.skip(f"{python} cannot import switchman's dependencies")
    bad = tmp_path / "notes.db"
    bad.write_text("not a database at all, just some text " * 100)
    started = time.monotonic()
    done = cli(
        tmp_path,
        "serve",
        "--port",
        "0",
        "--db",
        str(bad),
        env=env,
        command=(python, "-m", "switchman.cli"),
        timeout=60,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"switchman: cannot use {bad} as the job store: file is not a database"
    )
    assert time.monotonic() - started < 60


def test_a_group_of_cli_errors_alone_is_unwrapped() -> None:
    first, second = CliError("first"), CliError("second", exit_code=1)
    assert cli_error(ExceptionGroup("", [first, second])) is first
    assert cli_error(ExceptionGroup("", [ExceptionGroup("", [first])])) is first
    assert cli_error(ExceptionGroup("", [first, ValueError("bug")])) is None
    assert cli_error(BaseExceptionGroup("", [KeyboardInterrupt()])) is None


def _banner(tmp_path: Path, db: Path, err_path: Path, *, named: bool = True) -> list[str]:
    """The lines ``switchman serve`` prints as it starts on ``db``, with a config of one
    admin key (``named``: by ``--config``; else as ``./switchman.toml``); then stopped."""
    config = tmp_path / ("seeded.toml" if named else "switchman.toml")
    config.write_text(SEEDED + '[[keys]]\nkey_env = "K"\nhandle = "ops"\nadmin = true\n')
    given = ("--config", str(config)) if named else ()
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", "0", "--db", str(db), *given],
            env=clean_env(tmp_path) | {"K": "a-gateway-key-long-enough"},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        lines = [_first_line(proc, 30) for _ in range(7)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, err_path.read_text()
    finally:
        _stop(proc)
    assert "serving on" in lines[0], lines
    assert lines[4] == f"  config: {config}\n", lines
    assert lines[6] == "  gateway keys: ops (admin)\n", lines
    return lines


def test_the_start_names_its_config_and_store_and_a_store_made_anew_is_warned_of(
    tmp_path: Path,
) -> None:
    """The daemon says which config and store it started on, and whether the store is new;
    one made new where a store was before (its file deleted, or emptied) is a warning: the
    spend its budgets counted is gone with it (an operator had no word of it before)."""
    db = tmp_path / "data" / "jobs.db"
    err = tmp_path / "serve.err"
    new = f"  store: {db} (new: no jobs, budgets count spend from zero)\n"
    assert _banner(tmp_path, db, err)[5] == new
    assert f"the job store {db} is new" in err.read_text()
    assert _banner(tmp_path, db, err)[5] == f"  store: {db} (0 jobs)\n"
    assert "where one was before" not in err.read_text()
    for lost in (db.unlink, lambda: db.write_bytes(b"")):
        lost()
        assert _banner(tmp_path, db, err)[5] == new
        told = err.read_text()
        assert f"WARNING switchman.store: the job store {db} is new, where one was before" in told
        assert f"({db}.lock is left)" in told


def test_serve_reads_the_switchman_toml_of_its_folder_without_config(tmp_path: Path) -> None:
    """The configuration section's file, ``switchman.toml``, was ignored unless named with
    ``--config``: its keys, budgets and models silently left out."""
    lines = _banner(tmp_path, tmp_path / "jobs.db", tmp_path / "serve.err", named=False)
    assert lines[6] == "  gateway keys: ops (admin)\n"  # (the file's: none without it)


def test_a_switchman_toml_that_cannot_be_read_is_refused_not_passed_over(tmp_path: Path) -> None:
    """A folder, or a link to nothing, under the name: the defaults were served instead,
    the keys and budgets meant silently left out."""
    for make in (lambda p: p.mkdir(), lambda p: p.symlink_to(tmp_path / "gone.toml")):
        where = tmp_path / "switchman.toml"
        make(where)
        done = cli(tmp_path, "serve", "--port", "0", "--db", str(tmp_path / "j.db"), timeout=30)
        assert done.returncode == 2, done.stdout
        assert "switchman.toml" in done.stderr, done.stderr
        where.rmdir() if where.is_dir() and not where.is_symlink() else where.unlink()


def test_the_start_names_the_config_and_store_by_their_whole_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative ``db`` is the folder's the daemon runs in: named whole, so an operator
    sees which; a store in memory says nothing is kept."""
    from switchman._cli_serve import _where_lines

    monkeypatch.chdir(tmp_path)
    assert _where_lines("a.toml", "rel.db", True, 0) == (
        f"  config: {tmp_path / 'a.toml'}\n"
        f"  store: {tmp_path / 'rel.db'} (new: no jobs, budgets count spend from zero)"
    )
    assert _where_lines(None, ":memory:", True, 0) == (
        "  config: none (the defaults)\n"
        "  store: :memory: (in memory: no job or spend is kept after a stop)"
    )


def test_the_banner_counts_one_job_in_the_singular() -> None:
    from switchman._cli_serve import _where_lines

    assert _where_lines(None, "/x/jobs.db", False, 1).endswith("store: /x/jobs.db (1 job)")
    assert _where_lines(None, "/x/jobs.db", False, 2).endswith("store: /x/jobs.db (2 jobs)")
