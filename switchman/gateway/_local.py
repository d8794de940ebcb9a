"""What an open gateway (no ``[[keys]]``) answers: programs on this machine, not web pages.

An open gateway serves loopback only, but a browser on the same machine reaches
loopback too, on behalf of any page it shows. A page elsewhere cannot read an
answer without CORS headers (which the gateway never sends), but it can *send*:
a cross-site ``POST /call`` spends the provider budget, and a websocket, which
has no same-origin rule, reads every call's events live. A page that renames
itself to ``127.0.0.1`` (DNS rebinding) could read answers too.

So an open gateway refuses, with a 403:

- a request whose ``Origin`` (which browsers send on every websocket upgrade
  and every cross-site ``POST``) is not a page of this machine: ``localhost``,
  ``*.localhost`` or a loopback address, over http or https. ``null`` (a file
  or sandboxed page) is refused too, and so is a request with several
  ``Origin`` headers of which one is foreign;
- a request addressed (``Host``, or the authority of an absolute-form target)
  to a name other than ``localhost``, ``*.localhost`` or this machine's own
  host name: a rebinding page's own name. IP addresses pass (a rebinding page
  cannot choose one as its name). An open gateway bound to another address on
  purpose (``--insecure``) is addressed by whatever names reach it: it checks
  no name, only ``Origin``.

Programs (curl, SDKs, the CLI) send no ``Origin`` and address the gateway as
they reach it. A gateway with keys needs neither check: a page without the key
gets a 401.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _local_name(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost")


def _host_part(value: str) -> str:
    """The host of a ``Host`` header (``name:port``, ``[v6]:port``, or bare)."""
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    if value.count(":") > 1:  # an IPv6 address, with a port some clients add unbracketed
        head = value.rpartition(":")[0]
        return head if _ip(value) is None and _ip(head) is not None else value
    return value.rpartition(":")[0] if ":" in value else value


def local_origin(origin: str) -> bool:
    """Whether ``origin`` is a page of this machine (http(s) on localhost or loopback)."""
    try:
        parts = urlsplit(origin.strip())
        host = parts.hostname
        parts.port  # noqa: B018 (a port that is not one raises)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return False  # (an origin is a scheme, a host and a port: nothing after)
    ip = _ip(host)
    return ip.is_loopback if ip is not None else _local_name(host)


def page_problem(
    raw_headers: Iterable[tuple[bytes, bytes]], *, target: str = "", check_host: bool = True
) -> str | None:
    """Why an open gateway refuses this request, or None. ``raw_headers`` as ASGI gives
    them; ``target`` the request target (an absolute-form one names the host itself);
    ``check_host`` False for a gateway bound beyond loopback on purpose."""
    host = ""
    for name, raw in raw_headers:
        lower = name.lower()
        if lower == b"origin":
            origin = raw.decode("latin-1")
            # (an origin list, "a b" or "a, b", is no browser's: each of it must be local)
            if not all(local_origin(o) for o in origin.replace(",", " ").split() or [""]):
                return (
                    f"refused a request from the web page {origin[:200]!r}: a gateway without"
                    " keys answers programs and pages of this machine only (configure [[keys]]"
                    " to serve others)"
                )
        elif lower == b"host":
            host = raw.decode("latin-1")
    if not check_host:
        return None
    if target.startswith(("http://", "https://")):
        host = urlsplit(target).netloc.rpartition("@")[2]
    host = _host_part(host.strip())
    if host and _ip(host) is None and not _local_name(host) and not _this_machine(host):
        return (
            f"refused a request addressed to {host[:200]!r}: a gateway without keys answers"
            " requests to localhost, this machine's name or an IP address only (a page could"
            " rename itself to this machine; configure [[keys]] to serve other names)"
        )
    return None


@functools.cache
def _own_names() -> frozenset[str]:
    """This machine's host name, whole and its first label (no DNS lookup)."""
    name = socket.gethostname().rstrip(".").lower()
    return frozenset({name, name.split(".")[0]} - {""})


def _this_machine(host: str) -> bool:
    return host.rstrip(".").lower() in _own_names()
