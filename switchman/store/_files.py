"""The store's file: private to its user, held by one process, and still the file at its
path while it is open (not deleted, not replaced)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from switchman.store._db import StoreError


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _file_trouble(path: str, fd: int, identity: tuple[int, int]) -> str | None:
    """What is wrong with ``path`` as the name of the open file ``fd`` (``identity``)."""
    lost = "what switchman writes from now on is lost when it restarts"
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return f"the job store {path} was deleted while in use: {lost}"
    except OSError as exc:
        return f"the job store {path} cannot be checked: {exc.strerror or exc}"
    if _identity(found) != identity:
        return f"the job store {path} was replaced by another file while in use: {lost}"
    if os.fstat(fd).st_nlink == 0:  # (gone under another name in the meantime)
        return f"the job store {path} was deleted while in use: {lost}"
    return None


def earlier_store(where: str) -> tuple[bool, str | None]:
    """Whether the store file at ``where`` is new (missing, or empty: SQLite makes a new
    database of it), and for a new one what is left of a store that was there before: its
    lock file (never removed) or its ``-wal``; None when nothing is."""
    try:
        new = os.stat(where).st_size == 0
    except FileNotFoundError:
        new = True
    if not new:
        return False, None
    for left in (os.path.realpath(where) + ".lock", where + "-wal"):
        if os.path.exists(left):
            return True, left
    return True, None


def _private_file(where: str) -> None:
    """Make ``where`` (and the folders to it) readable by this user only: it holds every
    caller's prompts and answers. Each folder it makes is 0700, the file 0600; an existing
    file is narrowed to 0600 (SQLite gives its ``-wal`` and ``-shm`` files the database
    file's mode). The folders of an existing path are left as they are."""
    path = Path(where)
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    for folder in reversed(missing):  # (mkdir's mode would reach the last folder only)
        folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            with contextlib.suppress(PermissionError):  # (another user's file: theirs to set)
                os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


@contextmanager
def _exclusive(where: str) -> Iterator[int]:
    """Hold ``where``'s lock file, and a lock on the database file itself, for as long as
    the store is open; yields a descriptor of the database file. A second process on the
    same file would fail the first one's running jobs as "interrupted" and write its spend
    over the other's (a budget then counts only half of what was spent).

    The lock file is named after the file's real path (a symlink finds it); a hard link
    is another name of the same file, which only a lock on the file itself finds (``flock``:
    apart from the POSIX locks SQLite takes on it, on Linux)."""
    lock_path = os.path.realpath(where) + ".lock"
    in_use = (
        f"{where} is in use by another switchman store, in this process or another (it"
        " holds {held}); give each daemon its own --db, and open a file once in a process"
        " (one store, one router)"
    )
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(in_use.format(held=lock_path)) from None
        db_fd = os.open(where, os.O_RDONLY)
        try:
            try:
                fcntl.flock(db_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(in_use.format(held=f"a lock on {where}")) from None
            yield db_fd
        finally:
            os.close(db_fd)
    finally:
        os.close(fd)  # releases the lock
