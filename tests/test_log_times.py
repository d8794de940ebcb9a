"""The daemon's log lines carry UTC times with their zone: they were local times with
none (12:05:27 under TZ=America/St_Johns while UTC was 15:35)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator

import pytest

from switchman._cli_serve import setup_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_lines_begin_with_a_utc_iso_time(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("info")
    before = time.gmtime()
    logging.getLogger("switchman.test").info("hello")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    stamp_re = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d{3}Z"
    match = re.fullmatch(stamp_re + " INFO switchman.test: hello", line)
    assert match is not None, line
    stamp = time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(stamp) - time.mktime(before)) < 5  # UTC, as gmtime reads it
