"""What the command line's options take (``switchman._cli_args``), and the commands refusing
the rest before anything is sent: a usage error naming the option, exit 2, no traceback."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

import pytest

from switchman._cli_args import (
    MAX_JOBS,
    MAX_WAIT_S,
    count_arg,
    host_arg,
    host_problem,
    latency_arg,
    port_arg,
    url_host,
    wait_arg,
)
from switchman.cli import main


def test_wait_is_a_finite_number_of_seconds_up_to_what_the_daemon_takes() -> None:
    from switchman.gateway._app import MAX_JOBS_LIMIT
    from switchman.gateway._app import MAX_WAIT_S as DAEMON_MAX

    assert MAX_WAIT_S == DAEMON_MAX
    assert MAX_JOBS == MAX_JOBS_LIMIT  # (jobs --limit: checked as the daemon checks it)
    assert wait_arg("0") == 0.0 and wait_arg("2.5") == 2.5 and wait_arg("300") == 300.0
    for bad, said in (
        ("nan", "not a finite number"),
        ("inf", "not a finite number"),
        ("-inf", "not a finite number"),
        ("300.5", "from 0 to 300 seconds"),
        ("-1", "from 0 to 300 seconds"),
        ("soon", "not a number"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=said):
            wait_arg(bad)


def test_ports_counts_and_latencies() -> None:
    client, server = port_arg(allow_zero=False), port_arg(allow_zero=True)
    assert client("1") == 1 and client("65535") == 65535 and server("0") == 0
    for parse, bad in ((client, "0"), (client, "70000"), (server, "-1"), (server, "65536")):
        with pytest.raises(argparse.ArgumentTypeError, match="must be a port number"):
            parse(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="not a whole number"):
        client("80.5")
    assert count_arg("1") == 1
    for bad in ("0", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="1 or more"):
            count_arg(bad)
    assert latency_arg("0") == 0.0 and latency_arg("12.5") == 12.5
    for bad in ("-5", "nan", "inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            latency_arg(bad)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "gpu-box.internal", "::1", "[::1]", "fe80::1", "a_b"]
)
def test_a_host_is_a_name_or_an_address(host: str) -> None:
    assert host_problem(host) is None
    assert host_arg(host) == host.strip("[]")


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("127.0.0.1:8265", "without ':PORT' (the port is --port's)"),
        ("localhost:80", "without ':PORT' (the port is --port's)"),
        ("a b", "a host name or IP address"),
        ("", "a host name or IP address"),
        ("http://x", "a host name or IP address, not a URL"),
        ("[nope]", "IPv6 address inside its brackets"),
        ("-x", "a host name or IP address"),
    ],
)
def test_a_host_with_a_port_or_odd_characters_is_refused(host: str, said: str) -> None:
    problem = host_problem(host)
    assert problem is not None and said in problem
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(said)):
        host_arg(host)


def test_a_host_with_a_user_and_password_is_refused_without_showing_them() -> None:
    for host in ("u:SECRETpw@h", "https://u:SECRETpw@h"):
        with pytest.raises(argparse.ArgumentTypeError) as info:
            host_arg(host)
        assert "SECRET" not in str(info.value) and "'***@h'" in str(info.value)


def test_a_bad_host_is_quoted_without_what_may_be_a_secret() -> None:
    """A URL's path or query, and what is no host name at all, are not quoted back."""
    for host, shown in (
        ("http://127.0.0.1/?key=SECRET8", "'http://127.0.0.1/...'"),
        ("https://h/acct-SECRETC/v1", "'https://h/...'"),
        ("Bearer SECRETB", "(not shown)"),
    ):
        with pytest.raises(argparse.ArgumentTypeError) as info:
            host_arg(host)
        assert "SECRET" not in str(info.value) and str(info.value).endswith(shown)
    with pytest.raises(argparse.ArgumentTypeError, match="got 'localhost:80'"):
        host_arg("localhost:80")  # (a plausible host is quoted, to see the typo)


def test_an_ipv6_address_is_bracketed_in_urls() -> None:
    assert url_host("::1") == "[::1]" and url_host("[::1]") == "[::1]"
    assert url_host("127.0.0.1") == "127.0.0.1" and url_host("localhost") == "localhost"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "claude", "hi", "--wait", "nan"], "--wait: 'nan' is not a finite number"),
        (["run", "claude", "hi", "--wait", "inf"], "--wait: 'inf' is not a finite number"),
        (["run", "claude", "hi", "--wait", "301"], "--wait: must be from 0 to 300 seconds"),
        (
            ["run", "claude", "hi", "--stream", "--wait", "1000"],
            "--wait: must be from 0 to 300 seconds",
        ),
        (["serve", "--port", "70000"], "--port: must be a port number from 0 to 65535"),
        (["serve", "--port", "-1"], "--port: must be a port number from 0 to 65535"),
        (["jobs", "--port", "0"], "--port: must be a port number from 1 to 65535"),
        (["run", "claude", "hi", "--port", "99999"], "--port: must be a port number from 1"),
        (["watch", "--port", "http"], "--port: 'http' is not a whole number"),
        (["watch", "--count", "-1"], "--count: must be 1 or more; got -1"),
        (["watch", "--count", "0"], "--count: must be 1 or more; got 0"),
        # (told without a daemon to ask: it needed one running to say so)
        (["jobs", "--limit", "0"], "--limit: must be from 1 to 1000; got 0"),
        (["jobs", "--limit", "1001"], "--limit: must be from 1 to 1000; got 1001"),
        (["jobs", "--limit", "all"], "--limit: 'all' is not a whole number"),
        (["run", "auto", "hi", "--max-tokens", "0"], "--max-tokens: must be 1 or more; got 0"),
        (["run", "auto", "hi", "--temperature", "2.5"], "--temperature: must be from 0 to 2"),
        (["run", "auto", "hi", "--temperature", "nan"], "--temperature: 'nan' is not a finite"),
    ],
)
def test_a_bad_option_is_a_usage_error_before_anything_is_sent(
    argv: Sequence[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_run_help_says_how_long_wait_may_be(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    assert "0 to 300 (default 120)" in " ".join(capsys.readouterr().out.split())


def test_every_help_with_exit_codes_names_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["run", "--help"], ["result", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "130 interrupted (Ctrl-C)" in text, argv
    with pytest.raises(SystemExit):
        main(["result", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 the job failed" in text and "3 the job had not finished (without --poll)" in text


def test_an_unknown_intent_is_a_usage_error_naming_the_intents(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "auto", "hi", "--intent", "bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--intent: invalid choice: 'bogus'" in err and "'summarize'" in err
