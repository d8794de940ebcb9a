"""``switchman run`` reading its prompt from stdin: ``echo hi | switchman run auto``,
``switchman run auto - < file``, prompts past the command line's length limit."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchman.cli import main
from switchman.sim import expected_answer
from tests.test_cli import MAX_TOKENS, Daemon, serving


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("stdin")
    with serving(home, home / "jobs.db") as d:
        yield d


@pytest.mark.parametrize("args", [(), ("-",), ("--stream",), ("-", "--stream")])
def test_the_prompt_is_read_from_a_pipe(daemon: Daemon, args: tuple[str, ...]) -> None:
    done = daemon.run("run", "sim/fast", *args, stdin="Explain pipes\n")
    assert done.returncode == 0, done.stderr
    # the ending newline dropped, as $(...) drops it
    assert done.stdout == expected_answer("sim/fast", "Explain pipes", MAX_TOKENS) + "\n"


def test_a_prompt_longer_than_an_argument_can_be_goes_through_stdin(daemon: Daemon) -> None:
    prompt = "Summarise this. " + "word " * 40_000  # 200 kB: one argument takes 128 KiB
    done = daemon.run("run", "auto", "-", "--json", stdin=prompt)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["answer"] == expected_answer(result["model"], prompt, MAX_TOKENS)


def test_a_dash_is_a_prompt_only_as_stdins_name(daemon: Daemon) -> None:
    # an argument given wins over stdin; '-' is never sent as the prompt
    done = daemon.run("run", "sim/fast", "Explain dashes", stdin="not this")
    assert done.stdout == expected_answer("sim/fast", "Explain dashes", MAX_TOKENS) + "\n"


@pytest.mark.parametrize(
    ("args", "stdin", "said"),
    [
        ((), b"", "the prompt on stdin is empty"),
        (("-",), b"\n \n", "the prompt on stdin is empty"),
        (("-",), b"caf\xe9", "the prompt on stdin is not UTF-8 text"),
    ],
)
def test_an_empty_or_unreadable_stdin_is_a_usage_error(
    daemon: Daemon, args: tuple[str, ...], stdin: bytes, said: str
) -> None:
    done = daemon.run("run", "sim/fast", *args, stdin=stdin)
    assert done.returncode == 2
    assert done.stderr == f"switchman: {said}\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_prompt_at_a_terminal_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal())  # not waiting on someone's keyboard
    with pytest.raises(SystemExit) as info:
        main(["run", "sim/fast"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "switchman: run needs a prompt: give it after the model, or '-' to read it from stdin\n"
    )


def test_help_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "'-', or none with stdin not a terminal, reads it from stdin" in text
