"""Where the clients' output goes, and in which colours: the answer alone on stdout, the
rest on stderr, each stream coloured only when it is itself a terminal; and ``python -m
switchman`` being the command."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchman._version import __version__
from switchman.cli import main, print_result
from tests.test_cli import cli

RESULT: dict[str, Any] = {
    "status": "complete",
    "answer": "forty-two",
    "model": "sim/fast",
    "provider": "sim",
    "simulated": True,
    "cost_usd": 0.0001,
    "latency_ms": 12.0,
    "job_id": "job_1",
    "trace": {"attempts": [{"n": 1, "alias": "sim/fast", "provider": "sim", "outcome": "success"}]},
}


class _Stream(io.StringIO):
    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(("out_tty", "err_tty"), [(False, True), (True, False), (True, True)])
def test_each_stream_is_coloured_when_it_is_a_terminal(
    monkeypatch: pytest.MonkeyPatch, out_tty: bool, err_tty: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out, err = _Stream(tty=out_tty), _Stream(tty=err_tty)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert print_result(RESULT) == 0
    assert out.getvalue() == "forty-two\n"  # the answer is never painted
    assert ("\033[" in err.getvalue()) is err_tty
    assert "model sim/fast via sim (simulated)" in err.getvalue()


def test_no_color_keeps_a_terminal_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    err = _Stream(tty=True)
    monkeypatch.setattr(sys, "stdout", _Stream(tty=True))
    monkeypatch.setattr(sys, "stderr", err)
    print_result(RESULT)
    assert "\033[" not in err.getvalue() and "attempt 1: sim/fast" in err.getvalue()


def test_a_failed_result_says_what_it_cost_when_it_cost_something(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer cut short is billed: its failed result says so beside the job; one that
    cost nothing says only its job."""
    monkeypatch.setenv("NO_COLOR", "1")
    cut = {
        **RESULT,
        "status": "failed",
        "cost_usd": 0.000321,
        "errors": [{"code": "cancelled", "message": "the gateway shut down"}],
    }
    for result, said in (
        (cut, "cost $0.000321  job job_1"),
        ({**cut, "cost_usd": 0.0}, "job job_1"),
    ):
        err = _Stream(tty=False)
        monkeypatch.setattr(sys, "stdout", _Stream(tty=False))
        monkeypatch.setattr(sys, "stderr", err)
        assert print_result(result) == 1
        assert said in err.getvalue().splitlines()


def test_a_result_says_where_its_time_went_and_what_it_did_not_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    err = _Stream(tty=False)
    monkeypatch.setattr(sys, "stdout", _Stream(tty=False))
    monkeypatch.setattr(sys, "stderr", err)
    attempt = {"alias": "down", "provider": "sim", "outcome": "error", "error": "Overloaded"}
    trace = {
        "attempts": [
            {**attempt, "n": 1},
            {**attempt, "n": 2},
            {**RESULT["trace"]["attempts"][0], "n": 3, "started_at": 1.0, "ended_at": 5.8125},
        ],
        "waits": [
            {"after_attempt": 0, "ms": 12.4, "reason": "a free slot: the router's 1 were taken"},
            {"after_attempt": 1, "ms": 751.0, "reason": "backoff before retrying down"},
            # (a millisecond in the inbox is no news to a reader: --json has it)
            {"after_attempt": 2, "ms": 1.2, "reason": "its turn in the dispatcher's inbox"},
        ],
        "skipped": [{"alias": "pricey", "reason": "the global day budget is spent"}],
    }
    print_result({**RESULT, "trace": trace})
    assert err.getvalue().splitlines()[1:] == [
        "  waited 12 ms for a free slot: the router's 1 were taken",
        "  attempt 1: down (sim) error: Overloaded",
        "  waited 751 ms for backoff before retrying down",
        "  attempt 2: down (sim) error: Overloaded",
        "  attempt 3: sim/fast (sim) success (4,812 ms)",
        "  not tried: pricey: the global day budget is spent",
    ]


def test_a_failed_calls_reasons_are_each_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model left untried for a spent budget: the cause first, then each model's
    own line (the other errors said the same again: five reasons printed twice)."""
    monkeypatch.setenv("NO_COLOR", "1")
    err = _Stream(tty=False)
    monkeypatch.setattr(sys, "stdout", _Stream(tty=False))
    monkeypatch.setattr(sys, "stderr", err)

    def spent(alias: str) -> str:
        return f"the global hour budget cannot cover the ${len(alias)}.0 {alias} could cost"

    skipped = [{"alias": alias, "reason": spent(alias)} for alias in ("a", "bb", "ccc")]
    errors = [{"code": "budget_exceeded", "message": s["reason"]} for s in skipped]
    failed = {**RESULT, "status": "failed", "answer": "", "model": None, "errors": errors}
    print_result({**failed, "trace": {"attempts": [], "skipped": skipped}})
    lines = err.getvalue().splitlines()
    assert [line for line in lines if "budget" in line] == [
        f"error budget_exceeded: {spent('a')}",
        *(f"  not tried: {alias}: {spent(alias)}" for alias in ("a", "bb", "ccc")),
    ]


def test_python_m_switchman_is_the_command(tmp_path: Path) -> None:
    module = (sys.executable, "-m", "switchman")
    done = cli(tmp_path, "--version", command=module)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"switchman {__version__}\n"
    usage = cli(tmp_path, "run", "--wait", "nan", "auto", "hi", command=module)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: switchman run")


@pytest.mark.parametrize(
    "argv",
    [["result", ""], ["result", "../../etc"], ["result", "job 1"], ["watch", "--job", "a/b"]],
)
def test_a_job_id_that_is_not_one_is_refused_before_anything_is_sent(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{argv[-1]!r} is not a job id (they look like job_0123abcd...;" in err


def test_one_model_is_not_models(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import switchman.cli

    providers = [
        {"name": "a", "kind": "openai", "models": [{"alias": "a/x", "breaker": "closed"}]},
        {"name": "b", "kind": "openai", "disabled": True, "models": [{"alias": "b/x"}]},
    ]
    health = {"status": "ok", "version": "0", "uptime_s": 1.0, "providers": providers}
    monkeypatch.setattr(switchman.cli, "_request", lambda *a, **k: httpx.Response(200, json=health))
    assert main(["health"]) == 0
    assert "provider   a          1 model, breakers: 1 closed" in capsys.readouterr().out
    listed = {"providers": [{**providers[1], "disabled_reason": "missing API key"}]}
    monkeypatch.setattr(switchman.cli, "_request", lambda *a, **k: httpx.Response(200, json=listed))
    assert main(["providers"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("missing API key  (1 model)")
    # a team's key sees only that it is out, and, held out for now, when it is back
    listed = {"providers": [{**providers[1], "back_in_s": 8.2}]}
    monkeypatch.setattr(switchman.cli, "_request", lambda *a, **k: httpx.Response(200, json=listed))
    assert main(["providers"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("disabled (back in 8.2s)  (1 model)")


def test_a_results_sources_are_listed_after_it(capsys: pytest.CaptureFixture[str]) -> None:
    urls = ["https://en.wikipedia.org/wiki/Paris", "https://www.britannica.com/place/France"]
    print_result({**RESULT, "citations": urls})
    out, err = capsys.readouterr()
    assert urls[0] not in out  # the answer alone on stdout
    assert f"[1] {urls[0]}" in err and f"[2] {urls[1]}" in err


def test_providers_weighs_what_was_learned_of_each_intent() -> None:
    """What ``switchman providers`` says a model answered is its intents' rates weighed by
    what was learned of each: the all-intents entry leaves refusals out (what a model
    refuses for one intent is not held against it for others), and a model refusing half
    its calls had read "100% answered"."""
    from switchman._cli_status import _learned

    model = {
        "stats": {
            "*": {"n": 3.0, "success_rate": 1.0, "latency_ms": 60.0, "heard_s_ago": 4.0},
            "code": {"n": 4.0, "success_rate": 0.5, "latency_ms": 100.0, "heard_s_ago": 9.0},
            "unknown": {"n": 1.0, "success_rate": 0.0, "latency_ms": None, "heard_s_ago": 4.0},
        }
    }
    assert _learned(model) == "  learned: 40% answered, 100 ms, heard 4s ago"
    only = {"stats": {"*": {"n": 2.0, "success_rate": 1.0, "latency_ms": 60.0}}}
    assert _learned(only) == "  learned: 100% answered, 60 ms"
    assert _learned({"stats": {}}) == _learned({}) == ""


def test_providers_says_what_opened_a_breaker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import switchman.cli

    opened = {"alias": "a/x", "breaker": "open", "breaker_opened_by": "a failure: HTTP 503"}
    listed = {"providers": [{"name": "a", "kind": "openai", "models": [opened]}]}
    monkeypatch.setattr(switchman.cli, "_request", lambda *a, **k: httpx.Response(200, json=listed))
    assert main(["providers"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "breaker open" in line and line.endswith("(a failure: HTTP 503)")
