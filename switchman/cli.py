"""The ``switchman`` command.

``serve`` runs the daemon; ``run``, ``result``, ``jobs``, ``health``, ``providers``,
``budgets`` and ``watch`` are clients of it; ``demo`` runs everything in one process on the
simulator; ``sim-server`` runs the fake provider server.

Exit codes: 0 success, 1 the call failed (or could not be served: the daemon busy, a
model the key may not use), 2 usage or connection error (a daemon not running, a
gateway key missing or rejected, a bad ``SWITCHMAN_HOST`` or ``SWITCHMAN_PORT``, an
option out of range, ``serve`` given an invalid configuration), 3 the job had not
finished (``run``'s within ``--wait``, ``result``'s without ``--poll``). Clients send
``SWITCHMAN_API_KEY`` as their gateway key.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from switchman._call import INTENTS
from switchman._cli_args import (
    MAX_WAIT_S,
    command_parser,
    count_arg,
    host_arg,
    host_problem,
    latency_arg,
    limit_arg,
    port_arg,
    prompt_after_option,
    shown_host,
    temperature_arg,
    unbracketed,
    url_host,
    wait_arg,
)
from switchman._cli_print import errors_to_show, note, print_trace, usd
from switchman._version import __version__

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8265

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PENDING = 3

#: the environment variable whose value clients send as their gateway key
API_KEY_ENV = "SWITCHMAN_API_KEY"
#: where the clients find the daemon
HOST_ENV = "SWITCHMAN_HOST"
PORT_ENV = "SWITCHMAN_PORT"
#: the commands that are clients of the daemon (``--host``, ``--port``, the variables)
CLIENT_COMMANDS = ("run", "result", "jobs", "health", "providers", "budgets", "watch")

_EPILOG = f"""\
environment:
  {API_KEY_ENV}    the gateway key the clients (run, result, jobs, health,
                       providers, budgets, watch) send, when the daemon has [[keys]]
                       configured (health: an admin key shows more than the status)
  SWITCHMAN_HOST, SWITCHMAN_PORT
                       where the clients find the daemon (default 127.0.0.1:8265): a
                       host name or IP address (::1 for IPv6, no :PORT), a port

exit codes:
  0 success
  1 the call failed, or the daemon could not take it now (HTTP 429 over the key's
    rpm, 503 shutting down or overloaded), or the key may not make it (HTTP 403: a
    model it may not use); health: degraded or draining
  2 usage or connection error: daemon not running, or closing the connection
    mid-wait (the job id is named), gateway key missing or rejected
    (HTTP 401), a SWITCHMAN_HOST or SWITCHMAN_PORT that is not a host or a
    port, an option out of range, an unknown model or route (with the names
    it may have meant), an unknown job for result, serve given an invalid
    configuration
  3 the job had not finished: run's within --wait, or result's without --poll;
    poll it with switchman result JOB_ID --poll
  130 interrupted (Ctrl-C); a job run or result waited for runs on in the daemon
"""
_RESULT_EPILOG = """\
exit codes:
  0 the job's answer was printed
  1 the job failed
  2 usage or connection error: daemon not running, no such job (of this key)
  3 the job had not finished (without --poll); poll it with --poll
  130 interrupted (Ctrl-C): the job runs on in the daemon
"""
_RUN_EPILOG = f"""\
exit codes:
  0 the answer was printed
  1 the call failed, or the daemon could not take it now (429, 503), or the key
    may not use that model (403)
  2 usage or connection error: daemon not running, or closing the connection
    mid-wait (the job id is named), gateway key missing or rejected (401: set
    {API_KEY_ENV})
  3 the job had not finished within --wait; its id is printed: poll it with
    switchman result JOB_ID --poll
  130 interrupted (Ctrl-C): the job runs on in the daemon; its id is printed
"""


class CliError(Exception):
    """A usage or connection problem: printed, exit code 2 (``exit_code`` says otherwise:
    a daemon that could not take the call now is a failed call, 1)."""

    def __init__(self, message: str, *, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _base_url(args: argparse.Namespace) -> str:
    return f"http://{url_host(args.host)}:{args.port}"


def where(args: argparse.Namespace) -> str:
    """``host:port`` of the daemon the client looks for (``[::1]:8265`` for IPv6)."""
    return f"{url_host(args.host)}:{args.port}"


def not_running(
    args: argparse.Namespace, scheme: str = "http", cause: BaseException | None = None
) -> CliError:
    """The error for no daemon listening where the client looks, saying how to start one;
    or, when the connection failed for want of an address (``cause``, or what it came
    from, is a ``socket.gaierror``), for a host no name service knows."""
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return CliError(f"cannot find the host {args.host!r}: no address for it")
        cause = cause.__cause__ or cause.__context__
    host = "" if args.host == DEFAULT_HOST else f" --host {args.host}"
    return CliError(
        f"the switchman daemon is not running at {scheme}://{where(args)} (or is stopping);"
        f" start it with: switchman serve{host} --port {args.port}"
    )


def api_key() -> str | None:
    """``SWITCHMAN_API_KEY`` without the whitespace around it (None: unset or blank); a
    ``CliError`` when it holds what no HTTP header can carry (a line break, a non-ASCII
    letter...), never saying the value."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        return None
    if not all(" " <= c <= "~" or c == "\t" for c in key):
        raise CliError(f"{API_KEY_ENV} holds characters an HTTP header cannot carry")
    return key


def _key_given() -> bool:
    return bool(os.environ.get(API_KEY_ENV, "").strip())


def _headers() -> dict[str, str]:
    key = api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


def key_refused(where: str, status: int, message: str = "") -> CliError:
    """The error for a daemon at ``where`` (host:port) that answered 401 or 403.

    401: the key is missing or rejected, not the daemon down (exit 2). 403: the key was
    accepted and may not do this (a model it may not use): the daemon's own words, and
    a call that cannot be served (exit 1)."""
    if status == 401:
        what = "rejected the key" if _key_given() else "needs a gateway key"
        return CliError(
            f"the daemon at {where} {what} (HTTP 401): set {API_KEY_ENV} to a gateway key"
        )
    return CliError(
        f"the daemon at {where} refused the call (HTTP {status}): "
        f"{message or 'this key may not do this'}",
        exit_code=EXIT_FAILED,
    )


def poll_hint(job_id: str) -> str:
    """How to get ``job_id``'s result later."""
    return f"switchman result {job_id} --poll"


def say_interrupted(job_id: str | None) -> None:
    """On stderr, for a call interrupted (Ctrl-C) after it was sent: the job runs on in
    the daemon, and how to get its result (``job_id`` None: the daemon had not named it)."""
    if job_id:
        line = f"interrupted; job {job_id} runs on in the daemon: {poll_hint(job_id)}"
    else:
        line = (
            "interrupted before the daemon named the job; "
            "if it took the call, switchman jobs lists it"
        )
    print(f"switchman: {line}", file=sys.stderr, flush=True)


def _request(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    timeout: float = 30.0,
    job_id: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request to the daemon; a ``CliError`` (exit 2) when none is running there, it
    does not answer in ``timeout`` seconds, or the connection breaks before its answer (a
    daemon that stopped or was killed), naming ``job_id`` (the job the request is about)
    with how to get its result once the daemon is back."""
    url = _base_url(args) + path
    headers = _headers()
    later = f"; job {job_id}: {poll_hint(job_id)} once it is back" if job_id else ""
    try:
        with httpx.Client(timeout=timeout, headers=headers) as client:
            return client.request(method, url, **kwargs)
    except httpx.ConnectError as exc:
        raise CliError(f"{not_running(args, cause=exc)}{later}") from None
    except httpx.TimeoutException:
        if path == "/call" and method == "POST":  # (it may have taken the call)
            later = "; if it took the call, switchman jobs lists it"
        raise CliError(
            f"the daemon at {_base_url(args)} did not answer in {timeout:g}s{later}"
        ) from None
    except httpx.TransportError:  # the connection broke: the daemon stopped or was killed
        raise closed_early(_base_url(args), job_id, call_sent=path == "/call") from None


def closed_early(url: str, job_id: str | None, *, call_sent: bool) -> CliError:
    """The error for a daemon (at ``url``) that closed the connection before its answer:
    the job the wait was for and how to get its result once the daemon is back, else
    (``call_sent``, no job id yet) where to look for a call it may have taken."""
    if job_id:
        then = f"; job {job_id}: {poll_hint(job_id)} once it is back"
    else:
        then = "; if it took the call, switchman jobs lists it" if call_sent else ""
    return CliError(
        f"the daemon at {url} closed the connection before answering (did it stop?){then}"
    )


def _where(resp: httpx.Response) -> str:
    """``host:port`` of the daemon that sent ``resp``."""
    try:
        url = resp.request.url
    except RuntimeError:  # a response made without a request
        return "?"
    return f"{url_host(url.host)}:{url.port}"


def _json_or_error(resp: httpx.Response) -> Any:
    try:
        data = resp.json()
    except ValueError:
        if resp.status_code in (401, 403):
            raise key_refused(_where(resp), resp.status_code) from None
        raise CliError(f"unexpected answer from the daemon (HTTP {resp.status_code})") from None
    if resp.status_code >= 400 and isinstance(data, dict) and "error" in data:
        err = data["error"]
        message = str(err.get("message"))
        details = "".join(
            line
            for d in err.get("details") or ()
            if (line := f"\n  {d.get('field')}: {d.get('message')}")
            and str(d.get("message")) not in message
        )
        if resp.status_code in (401, 403):
            raise key_refused(_where(resp), resp.status_code, message + details)
        # over the key's rate, shutting down, overloaded: the request was fine, the call
        # was not taken now (try again later); anything else is the request's fault
        busy = resp.status_code in (429, 503)
        raise CliError(
            f"{err.get('code')}: {message}{details}",
            exit_code=EXIT_FAILED if busy else EXIT_USAGE,
        )
    return data


def print_result(result: dict[str, Any], *, show_answer: bool = True) -> int:
    """A result for people: the answer alone on stdout (unless ``show_answer`` is false,
    e.g. when it was already streamed), and on stderr the rest: the model, its cost and
    the job, or the errors, and the attempts. Returns the exit code."""
    if result.get("status") == "complete":
        if show_answer:
            print(result.get("answer", ""), flush=True)
            if sys.stderr.isatty():  # on a terminal, a blank line after the answer
                print(file=sys.stderr)
        cost = result.get("cost_usd") or 0.0
        sim = " (simulated)" if result.get("simulated") else ""
        job = f"  job {result['job_id']}" if result.get("job_id") else ""
        note(
            f"model {result.get('model')} via {result.get('provider')}{sim}  "
            f"cost {usd(cost)}  latency {result.get('latency_ms', 0):.0f} ms{job}",
            "2",
        )
        if result.get("finish_reason") == "length":
            note("  the answer stops at max_tokens (finish reason: length)", "33")
        for n, url in enumerate(result.get("citations") or (), 1):
            # the sources its [1], [2] markers point to (one left out: redacted, or no link)
            note(f"  [{n}] {url or '(left out)'}", "2")
    else:
        for err in errors_to_show(result):
            note(f"error {err.get('code')}: {err.get('message')}", "31")
        billed = result.get("cost_usd") or 0.0  # answers cut short are billed all the same
        cost = f"cost {usd(billed)}" if billed else ""
        job = f"job {result['job_id']}" if result.get("job_id") else ""
        if cost or job:
            note("  ".join(x for x in (cost, job) if x), "2")
    print_trace(result)
    return EXIT_OK if result.get("status") == "complete" else EXIT_FAILED


def read_prompt(given: str | None) -> str:
    """The prompt: ``given``, or stdin's text when ``given`` is ``-`` or missing and stdin
    is not a terminal (a pipe, a file: prompts past the command line's length limit).
    The newlines ending stdin's text are dropped, as ``$(...)`` drops them. Blocks until
    stdin ends. A ``CliError`` for no prompt at all, an empty one, or bytes that are not
    UTF-8."""
    if given is not None and given != "-":
        return given
    stdin = sys.stdin
    if given is None and (stdin is None or stdin.isatty()):
        raise CliError("run needs a prompt: give it after the model, or '-' to read it from stdin")
    data = stdin.buffer.read() if stdin is not None else b""
    try:
        text = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise CliError("the prompt on stdin is not UTF-8 text") from None
    if not text.strip():
        raise CliError("the prompt on stdin is empty")
    return text


def _unicode_arg(name: str, value: str) -> str:
    """``value`` as given on the command line; a ``CliError`` when it holds bytes that are
    not UTF-8 (which Python keeps as lone surrogates, no request can carry)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CliError(f"the {name} is not UTF-8 text: a byte that is not UTF-8 in it") from None
    return value


def cmd_run(args: argparse.Namespace) -> int:
    _unicode_arg("model", args.model)
    prompt = _unicode_arg("prompt", read_prompt(args.prompt))
    call: dict[str, Any] = {"prompt": prompt, "model": args.model, "intent": args.intent}
    if args.system:  # (then the prompt is the user's turn after it)
        system = _unicode_arg("system", args.system)
        del call["prompt"]
        call["messages"] = [
            {"role": "system", "content": system},
            {"role": "user", "content": prompt},
        ]
    params = {"max_tokens": args.max_tokens, "temperature": args.temperature}
    if any(v is not None for v in params.values()):
        call["params"] = {k: v for k, v in params.items() if v is not None}
    if args.stream:
        from switchman._cli_live import stream_call

        return stream_call(args, call)
    patience = min(30.0, args.wait + 10)
    # taken first (wait 0: its job id at once), then waited for: whatever happens to the
    # wait (the daemon stopping, Ctrl-C), the job can be named
    try:  # (answered at once: a daemon silent past --wait's 10 s more is not going to)
        taken = _request(args, "POST", "/call", params={"wait": 0}, json=call, timeout=patience)
        submitted = _json_or_error(taken)
    except KeyboardInterrupt:
        say_interrupted(None)
        raise
    job_id = str(submitted["job_id"])
    try:
        resp = _request(
            args,
            "GET",
            f"/result/{quote(job_id, safe='')}",
            params={"wait": args.wait},
            timeout=args.wait + patience,
            job_id=job_id,
        )
    except KeyboardInterrupt:
        say_interrupted(job_id)
        raise
    data = _json_or_error(resp)
    if data.get("status") in ("queued", "running"):
        if args.json:
            print(json.dumps({"job_id": job_id, "status": data["status"]}, indent=2))
        else:
            print(
                f"job {job_id} is still {data['status']}: not finished within "
                f"--wait {args.wait:g}s; poll it with: {poll_hint(job_id)}",
                file=sys.stderr,
            )
        return EXIT_PENDING
    result = data.get("result")  # the finished job carries its result
    if not isinstance(result, dict):
        return _without_result(data, as_json=args.json)
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK if result.get("status") == "complete" else EXIT_FAILED
    return print_result(result)


def job_id_arg(text: str) -> str:
    """A job id as the daemon hands them out (``job_`` and hex): letters, digits, ``_``
    and ``-``; anything else (an empty one, a path) is a usage error, never sent."""
    if not _JOB_ID.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a job id (they look like job_0123abcd...; switchman jobs lists them)"
        )
    return text


_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _without_result(job: dict[str, Any], *, as_json: bool) -> int:
    """A finished job without a result (the daemon stopped under it: ``interrupted``,
    ``shutdown``): the job as JSON with ``--json``, else one line on stderr (stdout is
    for answers). Exit 1 for a failed job."""
    status = job.get("status")
    if as_json:
        print(json.dumps(job, indent=2))
    else:
        why = {
            "interrupted": "the daemon stopped while it ran (it was killed or crashed)",
            "shutdown": "the daemon shut down before it finished",
        }.get(str(job.get("reason")), job.get("reason") or "no result was stored")
        print(f"job {job.get('job_id')} {status}: {why}", file=sys.stderr)
    return EXIT_FAILED if status == "failed" else EXIT_OK


def _imported(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The command ``name`` of ``switchman.<module>``, imported when it runs (a client
    starts without what the others need: the server, trio-websocket)."""

    def command(args: argparse.Namespace) -> int:
        run: Callable[[argparse.Namespace], int]
        run = getattr(importlib.import_module(f"switchman.{module}"), name)
        return run(args)

    return command


cmd_result = _imported("_cli_status", "result")
cmd_jobs = _imported("_cli_status", "jobs")
cmd_health = _imported("_cli_status", "health")
cmd_providers = _imported("_cli_status", "providers")
cmd_budgets = _imported("_cli_status", "budgets")
cmd_watch = _imported("_cli_live", "watch")
cmd_serve = _imported("_cli_serve", "serve")


def cmd_demo(args: argparse.Namespace) -> int:
    if args.calls < 1 or args.concurrency < 1:
        raise CliError("--calls and --concurrency must be at least 1")
    from switchman._demo import demo

    return demo(args)


def cmd_sim_server(args: argparse.Namespace) -> int:
    from switchman.sim import main as sim_main
    from switchman.sim._server import CHAT_FLAVOURS

    if args.flavour not in CHAT_FLAVOURS:
        raise CliError(
            f"--flavour {args.flavour!r} is not one of {', '.join(CHAT_FLAVOURS)} (the others "
            "speak their own paths: /anthropic, /gemini/v1beta, /perplexity, /ollama)"
        )

    argv = ["--host", args.host, "--port", str(args.port), "--latency-ms", str(args.latency_ms)]
    return sim_main([*argv, "--flavour", args.flavour], prog="switchman sim-server")


def env_port(env: Mapping[str, str] | None = None) -> int:
    """The daemon's port for the clients: ``SWITCHMAN_PORT``, else 8265; a ``CliError``
    naming the variable when it is not a port number."""
    raw = (os.environ if env is None else env).get(PORT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_PORT
    try:
        port = int(raw.strip())
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise CliError(f"{PORT_ENV} must be a port number between 1 and 65535; got {raw!r}")
    return port


def env_host(env: Mapping[str, str] | None = None) -> str:
    """Where the clients find the daemon: ``SWITCHMAN_HOST``, else 127.0.0.1; a
    ``CliError`` naming the variable when it is not a host name or IP address (one with a
    port, say: the port is ``SWITCHMAN_PORT``'s; what is before an ``@`` never shown)."""
    raw = (os.environ if env is None else env).get(HOST_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_HOST
    host = raw.strip()
    if "@" in host:  # (what is before it is a user and password: never shown)
        raise CliError(
            f"{HOST_ENV} must be a host name or IP address, without a user or password (the "
            f"gateway key goes in {API_KEY_ENV}); got {'***@' + host.rpartition('@')[2]!r}"
        )
    problem = host_problem(host, port_from=PORT_ENV)
    if problem is not None:
        raise CliError(f"{HOST_ENV} must be {problem}; got {shown_host(host)}")
    return unbracketed(host)


def _client_args(p: argparse.ArgumentParser) -> None:
    # None: read from the environment once parsed (a bad value is a usage error then)
    p.add_argument(
        "--host",
        type=host_arg,
        default=None,
        help=f"where the daemon is: a host name or IP address (default: ${HOST_ENV}, "
        f"else {DEFAULT_HOST})",
    )
    p.add_argument(
        "--port",
        type=port_arg(allow_zero=False),
        default=None,
        help=f"the daemon's port, 1 to 65535 (default: ${PORT_ENV}, else {DEFAULT_PORT})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchman",
        description="LLM router and gateway",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"switchman {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway daemon")
    p.add_argument(
        "--host", type=host_arg, default=None, help="default: [server] host, else 127.0.0.1"
    )
    p.add_argument(
        "--port",
        type=port_arg(allow_zero=True),
        default=None,
        help=f"0 to 65535, 0: any free port (default: ${PORT_ENV}, else [server] port, else "
        f"{DEFAULT_PORT})",
    )
    p.add_argument("--config", help="configuration file (default: ./switchman.toml if any)")
    p.add_argument("--db", help="SQLite file for jobs, spend and learning (':memory:' for none)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without keys")
    p.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=None,
        help="what the daemon logs to stderr (default: $SWITCHMAN_LOG_LEVEL, else info: "
        "breaker changes, providers held out, budgets refusing calls, restarts)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "run",
        help="submit a call to the daemon and print the answer",
        description="Submit a call to the daemon. The answer goes alone to stdout (streamed\n"
        "or not); the model that answered, its cost, the job and the attempts (or the\n"
        "errors) go to stderr: ans=$(switchman run auto ...) holds just the answer.\n"
        "--json prints the whole result on stdout.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _client_args(p)
    p.add_argument("model", help="a model alias, a route name or 'auto'")
    p.add_argument(
        "prompt",
        nargs="?",
        help="the prompt; '-', or none with stdin not a terminal, reads it from stdin "
        "(echo hi | switchman run auto; for prompts longer than a command line takes)",
    )
    p.add_argument(
        "--intent",
        default="unknown",
        choices=sorted(INTENTS),
        metavar="INTENT",
        help=f"what the call is for, which routing weighs: {', '.join(sorted(INTENTS))}",
    )
    p.add_argument("--system", help="a system prompt the model is given before the prompt")
    p.add_argument(
        "--max-tokens", type=count_arg, help="the answer's length at most, in tokens (1 or more)"
    )
    p.add_argument("--temperature", type=temperature_arg, help="sampling temperature, 0 to 2")
    p.add_argument("--stream", action="store_true", help="print tokens as they arrive")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the whole result as JSON (GET /result's .result; past --wait, the job's "
        "id and status)",
    )
    p.add_argument(
        "--wait",
        type=wait_arg,
        default=120.0,
        help=f"seconds to wait for the answer, streamed or not: 0 to {MAX_WAIT_S:g} "
        "(default 120); past it, stop waiting (the job runs on) and exit 3 with the job id",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "result",
        help="show a job's result",
        epilog=_RESULT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _client_args(p)
    p.add_argument("job_id", type=job_id_arg, help="as run printed it, or switchman jobs lists it")
    p.add_argument("--poll", action="store_true", help="wait until the job has finished")
    p.add_argument(
        "--json", action="store_true", help="print the job as JSON: its result is in .result"
    )
    p.set_defaults(func=cmd_result)

    p = sub.add_parser("jobs", help="recent jobs")
    _client_args(p)
    p.add_argument(
        "--status", choices=["queued", "running", "complete", "failed"], help="only these jobs"
    )
    p.add_argument("--limit", type=limit_arg, default=20, help="at most this many, 1 to 1000 (20)")
    p.add_argument("--json", action="store_true", help="print the jobs as JSON")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser(
        "health",
        help="daemon health: status, jobs, breakers",
        description="Exit 0 when the daemon is ok, 1 when it is degraded (no model can "
        "answer, or its store cannot be written) or draining, 2 when it cannot be reached.",
    )
    _client_args(p)
    p.add_argument("--json", action="store_true", help="print GET /health's answer")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("providers", help="providers, models and breakers")
    _client_args(p)
    p.add_argument("--json", action="store_true", help="print GET /providers's answer")
    p.set_defaults(func=cmd_providers)

    p = sub.add_parser("budgets", help="spend this hour, day and month, against the budgets")
    _client_args(p)
    p.add_argument("--json", action="store_true", help="print GET /budgets's answer")
    p.set_defaults(func=cmd_budgets)

    p = sub.add_parser("watch", help="live trace stream")
    _client_args(p)
    p.add_argument("--job", dest="job_id", type=job_id_arg, help="only this job's events")
    p.add_argument(
        "--count",
        type=count_arg,
        default=None,
        help="stop after this many events, 1 or more (default: never)",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per line, as the websocket sends it"
    )
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "demo", help="the router on a simulated fleet with injected faults, live, then a summary"
    )
    p.add_argument("--calls", type=int, default=120, help="how many calls to drive")
    p.add_argument("--concurrency", type=int, default=4, help="calls in flight at once")
    p.add_argument("--seed", type=int, default=7, help="seed for the traffic and the simulator")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "sim-server", help="fake provider server (each provider's own wire format, by path)"
    )
    p.add_argument("--host", type=host_arg, default=DEFAULT_HOST)
    p.add_argument(
        "--port", type=port_arg(allow_zero=True), default=8300, help="0 to 65535, 0: any free"
    )
    p.add_argument(
        "--latency-ms", type=latency_arg, default=0.0, help="added to every answer, 0 or more"
    )
    p.add_argument(
        "--flavour",
        default="openai",
        help="whose chat completions a path without a provider prefix (/xai/v1, ...) speaks: "
        "openai, xai, mistral, groq, together or deepseek (default: openai)",
    )
    p.set_defaults(func=cmd_sim_server)
    return parser


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"switchman: {message}", file=sys.stderr)
    raise SystemExit(code)


def cli_error(group: BaseExceptionGroup[BaseException]) -> CliError | None:
    """The first ``CliError`` of ``group`` when every exception in it (its nested groups
    too) is one, else None. CPython 3.11.0 to 3.11.3 wrap an exception raised inside an
    ``except*`` clause in an ExceptionGroup: unwrapped, a refusal stays a one-line
    ``switchman: ...`` and exit 2, not a traceback."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = exc.exceptions
        else:
            leaves.append(exc)
    refusals = [exc for exc in leaves if isinstance(exc, CliError)]
    return refusals[0] if refusals and len(refusals) == len(leaves) else None


#: the signal that stopped a client (SIGTERM and SIGHUP are taken as Ctrl-C is)
_stopped_by: list[int] = []


def _as_interrupt(signum: int, _frame: object) -> None:
    """A client told to stop (``timeout``, a cancelled CI job, a closed terminal) stops as
    on Ctrl-C: the job it waited for is named, and it exits 128 + the signal's number."""
    _stopped_by.append(signum)
    signal.raise_signal(signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    # the variables are read once parsed: --help prints whatever they hold
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        extra = prompt_after_option(args, extra)
    if extra:  # told with the command's own usage (the top-level one's, before it)
        words = list(sys.argv[1:] if argv is None else argv)
        told = command_parser(parser, args.command, words, extra)
        told.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in CLIENT_COMMANDS:
        with contextlib.suppress(ValueError):  # (``main`` run outside the main thread)
            if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
                # started with ``&`` by a script (a shell without job control ignores
                # SIGINT in them): trio takes Ctrl-C only from Python's own handler, and the
                # SIGTERM and SIGHUP raised as one were lost, the client running on
                signal.signal(signal.SIGINT, signal.default_int_handler)
            for signum in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(signum) is not signal.SIG_IGN:  # (nohup's is kept)
                    signal.signal(signum, _as_interrupt)
        # an answer a stdout cannot encode (PYTHONIOENCODING=ascii) loses characters, not
        # the whole answer to a traceback once it is billed
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="replace")
    try:
        if args.command in CLIENT_COMMANDS and args.host is None:
            args.host = env_host()
        if args.command in CLIENT_COMMANDS and args.port is None:
            args.port = env_port()
        code: int = args.func(args)
    except CliError as exc:
        _fail(str(exc), exc.exit_code)
    except ExceptionGroup as group:  # (see ``cli_error``)
        refused = cli_error(group)
        if refused is None:
            raise
        _fail(str(refused), refused.exit_code)
    except KeyboardInterrupt:
        return 128 + (_stopped_by[0] if _stopped_by else signal.SIGINT)
    except BrokenPipeError:  # e.g. `switchman jobs | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":
    # ``python -m switchman.cli`` runs this file as ``__main__``; the helpers it imports
    # raise ``switchman.cli.CliError``, so run the canonical module's ``main``.
    from switchman.cli import main as _main

    raise SystemExit(_main())
