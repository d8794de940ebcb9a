"""What ``switchman serve`` tells an operator at start, through the real command: each
provider the configuration names that cannot be used, and why; a refused bind before
anything starts."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import httpx
import pytest

from switchman._call import INTENTS
from tests.test_cli import cli, serving

NAMED = """
[providers.mistral]
max_concurrency = 8

[providers.acme]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "ACME_KEY_UNSET"

[providers.groq]
enabled = false

[[models]]
alias = "acme-fast"
provider = "acme"
model_id = "a"

[routes.house]
chain = ["anthropic/claude-sonnet-5-5", "acme-fast"]
"""


def test_each_provider_the_file_names_without_its_key_is_told_with_its_variable(
    tmp_path: Path,
) -> None:
    config = tmp_path / "switchman.toml"
    config.write_text(NAMED)
    with serving(tmp_path, tmp_path / "jobs.db", "--config", str(config)) as daemon:
        assert httpx.get(f"http://127.0.0.1:{daemon.port}/health", timeout=5).status_code == 200
    err = "".join(p.read_text() for p in tmp_path.glob("serve-*.err"))
    for provider, variable in (
        ("mistral", "MISTRAL_API_KEY"),  # a table of its own
        ("acme", "ACME_KEY_UNSET"),  # a model's provider
        ("anthropic", "ANTHROPIC_API_KEY"),  # a route's chain
    ):
        assert (
            f"provider {provider}, which {config} names, is out of service: "
            f"missing API key: set {variable}"
        ) in err, err
    assert "provider groq" not in err  # turned off in the file: meant
    for catalogs in ("openai", "gemini", "xai", "deepseek", "ollama"):  # not the file's
        assert f"provider {catalogs}," not in err, err
    # the simulator serves instead, and the warning names the file's own variables
    assert (
        "has its key set (MISTRAL_API_KEY, ACME_KEY_UNSET, ANTHROPIC_API_KEY): serving the "
        "built-in simulator"
    ) in err


def test_a_file_that_names_no_provider_is_not_said_to_have_providers(tmp_path: Path) -> None:
    """A file of budgets alone: the simulator serves, and the warning lists the catalog's
    variables without calling them the file's providers."""
    config = tmp_path / "switchman.toml"
    config.write_text("[budgets]\nglobal_daily_usd = 5.0\n")
    with serving(tmp_path, tmp_path / "jobs.db", "--config", str(config)) as daemon:
        assert httpx.get(f"http://127.0.0.1:{daemon.port}/health", timeout=5).status_code == 200
    err = "".join(p.read_text() for p in tmp_path.glob("serve-*.err"))
    assert "no provider has its key set (ANTHROPIC_API_KEY, " in err, err
    assert f"no provider of {config}" not in err


def test_a_provider_the_file_names_that_serves_no_model_is_told(tmp_path: Path) -> None:
    """A second Ollama box under a name of its own that does not answer at start (its
    pulled models would be found) and a server whose models the file forgot: each
    enabled, serving nothing, without a word before."""
    config = tmp_path / "switchman.toml"
    config.write_text(
        '[providers.gpu]\nkind = "ollama"\nbase_url = "http://127.0.0.1:9"\n'
        '[providers.vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[providers.served]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[[models]]\nalias = "mine"\nprovider = "served"\nmodel_id = "m"\n'
        "input_per_mtok = 0\noutput_per_mtok = 0\ncontext_window = 8192\n"
        '[providers.resting]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[[models]]\nalias = "off"\nprovider = "resting"\nmodel_id = "m"\n'
        "context_window = 8192\nenabled = false\n"
    )
    with serving(
        tmp_path, tmp_path / "jobs.db", "--config", str(config), simulated=False
    ) as daemon:
        assert httpx.get(f"http://127.0.0.1:{daemon.port}/health", timeout=5).status_code == 200
    err = "".join(p.read_text() for p in tmp_path.glob("serve-*.err"))
    told = 'names, serves no model: add [[models]] with provider = "'
    assert (
        "provider gpu serves no model: its Ollama server at http://127.0.0.1:9 listed none at "
        "start (GET /api/tags: no answer (ConnectError)); add [[models]] with "
        'provider = "gpu"'
    ) in err, err
    assert f'provider vllm, which {config} {told}vllm"\n' in err, err
    assert "provider served," not in err
    assert "provider resting," not in err  # (its one model turned off in the file: meant)


def test_an_open_gateway_on_a_public_address_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    done = cli(
        tmp_path,
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--db",
        str(tmp_path / "j.db"),
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("switchman: refusing to serve '0.0.0.0' without gateway keys")
    assert "INFO" not in done.stderr  # no supervisor started and stopped first
    assert not (tmp_path / "j.db").exists()


@pytest.mark.parametrize("flag", ["--db", "--config"])
def test_an_empty_path_is_refused_not_taken_for_the_default(tmp_path: Path, flag: str) -> None:
    """A script's unset variable (``--db "$DB"``) served the shared default store (another
    daemon's jobs and spend), or the defaults for ``--config``, without a word."""
    done = cli(tmp_path, "serve", "--port", "0", flag, "", timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"switchman: {flag}: the path is empty\n"


def test_a_db_given_with_its_tilde_is_under_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--db=~/x.db``: the shell expands no ``~`` after ``=``; it made ``./~/x.db``."""
    from switchman._cli_serve import _config
    from switchman.cli import build_parser

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["serve", "--db=~/x.db"])
    assert _config(args).server.db == str(tmp_path / "x.db")


def test_run_lists_its_intents_in_one_order(tmp_path: Path) -> None:
    """Sorted (a set's order: each run listed them in another)."""
    text = " ".join(cli(tmp_path, "run", "--help", timeout=60).stdout.split())
    listed = text.split("which routing weighs: ", 1)[1].split()[: len(INTENTS)]
    assert [name.rstrip(",") for name in listed] == sorted(INTENTS)


def test_a_store_from_a_newer_switchman_is_refused_with_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA user_version = 99")
    done = cli(tmp_path, "serve", "--port", "0", "--db", str(db), timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"cannot use {db} as the job store: a newer switchman wrote it" in done.stderr
    assert "run that version, or give this one another store" in done.stderr


def test_health_says_when_the_global_budget_has_run_out(tmp_path: Path) -> None:
    """Through the real daemon and CLI: the day's budget spent by one call, `switchman
    health` exits 1 and says it is the budget."""
    config = tmp_path / "switchman.toml"
    config.write_text(
        '[budgets]\nglobal_daily_usd = 0.4\n\n[[models]]\nalias = "t/dear"\nprovider = '
        '"sim"\nmodel_id = "dear"\noutput_per_mtok = 100000.0\n'
    )
    with serving(tmp_path, tmp_path / "jobs.db", "--config", str(config)) as daemon:
        ok = daemon.run("health")
        assert ok.returncode == 0 and "budget     global: $0.400000 left this day" in ok.stdout
        body = {"prompt": "hi", "model": "t/dear", "params": {"max_tokens": 4}}
        base = f"http://127.0.0.1:{daemon.port}"
        done = httpx.post(f"{base}/call?wait=20", json=body, timeout=30).json()
        assert done["status"] == "complete" and done["result"]["cost_usd"] == 0.4, done
        spent = daemon.run("health")
    assert spent.returncode == 1
    assert spent.stdout.startswith("degraded")
    assert "budget     global: $0.000000 left this day" in spent.stdout


def test_a_router_that_gives_up_stops_the_daemon_saying_why(tmp_path: Path) -> None:
    """A bug that crashes every provider actor as it starts: its supervisors restart it
    until they give up. The daemon had ended in a 60-line exception group traceback, exit
    1; it says what gave up and the crash under it, and exits 70 (EX_SOFTWARE)."""
    import sys

    inject = (
        "import sys\n"
        "from switchman.actors import _provider\n"
        "def broken(*a, **k):\n"
        "    raise RuntimeError('injected bug')\n"
        "_provider._ProviderState.__init__ = broken\n"
        "from switchman.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    injected = (sys.executable, "-c", inject)
    done = cli(
        tmp_path,
        "serve",
        "--port",
        "0",
        "--db",
        str(tmp_path / "j.db"),
        command=injected,
        timeout=60,
    )
    assert done.returncode == 70, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("switchman: the router gave up, the daemon stops: supervisor 'root'")
    assert "RuntimeError('injected bug')" in last, last
    assert "Traceback" not in done.stderr
