"""Cross-process "one at a time": the detector pass and the dispatcher run in one process at once.

:class:`ExclusiveLock` is the seam; two implementations:

* :class:`FileLock` (``state.backend: sqlite``, one box): ``flock`` on ``<data_dir>/locks/<name>.lock``.
  The kernel frees it when the holder's file is closed, also when the process is killed.
* :class:`core.pgsql.AdvisoryLock` (``state.backend: postgresql``, several boxes): a session advisory
  lock; the server frees it when the holder's session ends (killed process, lost machine).

Both are try-locks: :meth:`ExclusiveLock.acquire` never waits. A caller that does not get the lock
skips its turn (another process is doing the work) and tries again at its next tick.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from core.files import private_file

__all__ = ["ExclusiveLock", "FileLock", "holding"]

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")


class ExclusiveLock(Protocol):
    """A named lock that at most one process of a deployment holds."""

    name: str

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        ...

    def acquire(self) -> bool:
        """Take the lock if it is free (never waits); True when held now."""
        ...

    def release(self) -> None:
        """Give the lock up (nothing if not held)."""
        ...

    def close(self) -> None:
        """Release and free resources."""
        ...


class FileLock:
    """An exclusive ``flock`` on one file: excludes other processes and other :class:`FileLock` objects."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self._fd: int | None = None
        self._mutex = threading.Lock()

    @classmethod
    def in_dir(cls, directory: Path, name: str) -> FileLock:
        """The lock ``name`` as ``<directory>/<name>.lock``."""
        if not _NAME.match(name):
            raise ValueError(f"bad lock name {name!r}")
        return cls(directory / f"{name}.lock", name)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if free (non-blocking)."""
        with self._mutex:
            if self._fd is not None:
                return True
            private_file(self.path, sqlite=False)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True

    def release(self) -> None:
        """Unlock and close the file."""
        with self._mutex:
            fd, self._fd = self._fd, None
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)

    def close(self) -> None:
        """Release the lock if held."""
        self.release()


@contextmanager
def holding(lock: ExclusiveLock) -> Iterator[bool]:
    """Try the lock for the block: yields whether this process got it; releases it afterwards if so."""
    got = lock.acquire()
    try:
        yield got
    finally:
        if got:
            lock.release()
