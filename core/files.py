"""Private data files: stores, tokens and learned state are readable by their owner only.

Every store's SQLite database is opened through :mod:`core.sqlite`, which calls
:func:`private_file` first (SQLite gives the ``-wal``/``-shm``/``-journal`` files it creates the
database file's mode, so a 0600 database keeps them 0600 too); :func:`secure_dir` makes the
directories. The mode is set
explicitly, whatever the process umask, and an existing file or sidecar that a previous version
created group/world-readable is tightened when it is opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "private_file", "secure_dir"]

FILE_MODE = 0o600
DIR_MODE = 0o700
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def secure_dir(path: Path | str, *, tighten: bool = False) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; returns it.

    An existing directory is left as it is (the operator chose it: a mounted volume, a shared
    parent; files inside are protected by their own 0600 mode) unless ``tighten``: a directory that
    is wholly ours and holds files we do not create ourselves (the embedded index: tantivy's
    segments) loses its group/other bits.
    """
    path = Path(path)
    if tighten and path.is_dir():
        _tighten(path)
        return path
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # created concurrently
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def _tighten(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & ~0o077 & 0o777)


def private_file(path: Path | str, *, sqlite: bool = True) -> Path:
    """Make sure ``path`` exists with mode 0600 (created so, or tightened); returns it.

    With ``sqlite`` (the default), existing ``-wal``/``-shm``/``-journal`` sidecars are tightened too.
    Call it before ``sqlite3.connect`` or before writing a file with ``open(path, "w")``.
    """
    path = Path(path)
    secure_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path)
    else:
        os.close(fd)
        os.chmod(path, FILE_MODE)  # os.open's mode is filtered by the umask (0600 survives any umask)
    if sqlite:
        for suffix in _SQLITE_SIDECARS:
            _tighten(path.with_name(path.name + suffix))
    return path
