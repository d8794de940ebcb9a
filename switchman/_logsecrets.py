"""Keeping the router's secrets out of the HTTP libraries' own log lines.

httpx and httpcore log at DEBUG what they send and receive; httpcore's response line
quotes every response header, so an upstream that echoes the key it was sent in a
header would put it in an application's log the moment that application turns DEBUG
logging on. ``hide_secrets`` attaches a filter to those libraries' loggers that
replaces each secret in a record's message; it costs nothing while their level is off
(a logger consults its filters only for records it will emit).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

#: the loggers the HTTP libraries write to (filters are per logger, not inherited)
_LIBRARIES = ("httpx", "httpcore")
REDACTED = "[REDACTED]"


class SecretsFilter(logging.Filter):
    """Replaces each of ``secrets`` in a record's message with ``[REDACTED]``."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True


def _library_loggers() -> list[logging.Logger]:
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if any(name == lib or name.startswith(f"{lib}.") for lib in _LIBRARIES)
    ]
    # the libraries' loggers that exist once imported, and the ones they will create
    names.extend(("httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy"))
    return [logging.getLogger(name) for name in dict.fromkeys([*_LIBRARIES, *names])]


@contextlib.contextmanager
def hide_secrets(secrets: Iterable[str]) -> Iterator[None]:
    """While the block runs, the HTTP libraries' log records show none of ``secrets``
    (longest first: one holding another is replaced whole)."""
    ordered = tuple(sorted(set(secrets), key=lambda v: (-len(v), v)))
    if not ordered:
        yield
        return
    hide = SecretsFilter(ordered)
    loggers = _library_loggers()
    for logger in loggers:
        logger.addFilter(hide)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(hide)
