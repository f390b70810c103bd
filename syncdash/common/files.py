"""Owner-only files and folders, whatever the umask.

The store, target databases syncdash creates, the evidence of failed web pages and exports hold the rows
of the user's systems and, in error payloads, what their servers said: nobody else on the machine should
read them. A umask can only take permission bits away, so creating with 0600/0700 is enough for a new
path; the explicit chmod covers a umask like 0o277 that would leave the owner unable to write, and a file
syncdash itself made earlier (a screenshot overwritten). Existing folders the user made are left alone:
`~/data/` holding a store is the user's choice.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create path and its missing parents 0700 (each one this call creates; existing ones are kept)."""
    p = Path(path)
    missing: list[Path] = []
    cur = p
    while not cur.exists():
        missing.append(cur)
        if cur.parent == cur:
            break
        cur = cur.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it between the check and here
            continue
        os.chmod(d, DIR_MODE)
    return p


def touch_private(path: str | os.PathLike[str]) -> bool:
    """Create an empty 0600 file at path unless it exists (parents 0700). True when this call created it.

    SQLite creates its -wal and -shm files with the mode of the database file, so a database created
    here first keeps all three owner-only."""
    p = Path(path)
    private_dir(p.parent)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def chmod_private(*paths: str | os.PathLike[str]) -> None:
    """Tighten files syncdash owns to 0600 (those that exist; someone else's file is left as it is)."""
    for path in paths:
        with contextlib.suppress(OSError):
            if os.stat(path).st_uid == os.getuid():
                os.chmod(path, FILE_MODE)


def open_private(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> IO[Any]:
    """open() for writing a new or replaced file that only the owner may read (exports, artifacts).

    The file is created 0600; a file that already existed is truncated and tightened to 0600 too,
    since what is written now is what needs protecting. Parent folders are the caller's business."""
    if not set(mode) & {"w", "a", "x"}:
        raise ValueError(f"open_private writes files: mode {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT
    if "w" in mode:
        flags |= os.O_TRUNC
    elif "a" in mode:
        flags |= os.O_APPEND
    else:
        flags |= os.O_EXCL
    fd = os.open(path, flags, FILE_MODE)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():  # not /dev/stdout, a FIFO, another's file
            os.fchmod(fd, FILE_MODE)
        return open(fd, mode, **kwargs)  # the caller closes it, like open()
    except BaseException:
        os.close(fd)
        raise
