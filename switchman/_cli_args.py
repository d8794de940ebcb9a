"""What the command line's options take: argparse ``type=`` functions and the checks behind
them, shared by ``switchman`` and ``python -m switchman.sim``.

Each ``*_arg`` function turns the option's text into its value or raises
``argparse.ArgumentTypeError`` saying what the option takes (argparse prints it with the
usage and exits 2). None of them block or do I/O.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
from collections.abc import Callable

#: the longest ``--wait`` the daemon takes (its ``wait`` query parameter's upper bound)
MAX_WAIT_S = 300.0

#: a DNS name: dot-separated labels of letters, digits and inner hyphens (underscores too,
#: which some local names use)
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?$")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def wait_arg(text: str) -> float:
    """``--wait``: seconds, a finite number from 0 to ``MAX_WAIT_S``."""
    value = _number(text)
    if not 0.0 <= value <= MAX_WAIT_S:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_WAIT_S:g} seconds; got {text}")
    return value


def latency_arg(text: str) -> float:
    """``--latency-ms``: a finite number of milliseconds, 0 or more."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more milliseconds; got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def port_arg(*, allow_zero: bool) -> Callable[[str], int]:
    """``--port``: 1..65535, or 0 too (any free port) for a server (``allow_zero``)."""
    low = 0 if allow_zero else 1

    def parse(text: str) -> int:
        value = _integer(text)
        if not low <= value <= 65535:
            extra = " (0: any free port)" if allow_zero else ""
            raise argparse.ArgumentTypeError(
                f"must be a port number from {low} to 65535{extra}; got {text}"
            )
        return value

    parse.__name__ = "port"  # argparse names the type in some of its messages
    return parse


def count_arg(text: str) -> int:
    """``--count``: a whole number, 1 or more."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more; got {text}")
    return value


def temperature_arg(text: str) -> float:
    """``--temperature``: a finite number from 0 to 2 (what every provider's range holds)."""
    value = _number(text)
    if not 0.0 <= value <= 2.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2; got {text}")
    return value


#: the most jobs ``GET /jobs`` lists at once (its ``limit``'s upper bound)
MAX_JOBS = 1000


def limit_arg(text: str) -> int:
    """``jobs --limit``: a whole number from 1 to ``MAX_JOBS`` (checked here, so a wrong
    one is told without a daemon to ask)."""
    value = _integer(text)
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_JOBS}; got {text}")
    return value


def host_problem(host: str, *, port_from: str = "--port") -> str | None:
    """Why ``host`` cannot be where a daemon is (None: it can). A host is a name or an IP
    address, IPv6 with or without brackets, and never carries a port (that is
    ``port_from``'s)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        return None
    if host != bare:
        return "an IPv6 address inside its brackets"
    if "://" in host or "/" in host:
        return "a host name or IP address, not a URL"
    if ":" in host:
        return f"a host name or IP address without ':PORT' (the port is {port_from}'s)"
    if not _HOSTNAME.match(host):
        return "a host name or IP address (letters, digits, '.', '-')"
    return None


def shown_host(text: str) -> str:
    """``text`` as a bad host's error quotes it: a URL's scheme and host alone (its path
    or query may hold a token), and nothing of what is no host name at all (a key pasted)."""
    if "://" in text:
        scheme, _, rest = text.partition("://")
        return repr(f"{scheme}://{re.split(r'[/?#]', rest, maxsplit=1)[0]}/...")
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    return repr(text) if _HOSTNAME.match(bare.partition(":")[0]) else "(not shown)"


def host_arg(text: str) -> str:
    """``--host``: a host name or IP address (``[::1]`` kept as ``::1``)."""
    if "@" in text:  # (what is before it is a user and password: never shown)
        raise argparse.ArgumentTypeError(
            "must be a host name or IP address, without a user or password; got "
            f"{'***@' + text.rpartition('@')[2]!r}"
        )
    problem = host_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"must be {problem}; got {shown_host(text)}")
    return unbracketed(text)


def unbracketed(host: str) -> str:
    """``::1`` for ``[::1]``; any other host as it is."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def url_host(host: str) -> str:
    """``host`` as it goes into a URL or ``host:port``: an IPv6 address in brackets."""
    host = unbracketed(host)
    return f"[{host}]" if ":" in host else host


def prompt_after_option(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """``run``'s prompt where argparse left it unread (what it returns stays unread):
    ``run auto --stream "prompt"``, or ``-- "-x"``; argparse gives an optional positional
    up at an option."""
    if args.prompt is not None:
        return extra
    words = extra[1:] if extra[:1] == ["--"] else extra
    if len(words) == 1 and (words is not extra or not words[0].startswith("-")):
        args.prompt = words[0]
        return []
    if extra == ["-"]:
        args.prompt = "-"
        return []
    return extra


def command_parser(
    parser: argparse.ArgumentParser, command: str, words: list[str], extra: list[str]
) -> argparse.ArgumentParser:
    """The parser whose usage tells of ``extra``, the arguments ``words`` (the command
    line) left unread: ``command``'s, or ``parser``'s own for one before the command."""
    first = words.index(command) if command in words else len(words)
    if set(extra) & set(words[:first]):
        return parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices.get(command, parser)
            return found
    return parser
