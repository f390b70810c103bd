"""Who holds a run or a lease: `pid@host:starttime`, and whether that process still lives.

A lease or a running run records its owner; another process takes either over only when the owner is gone (or,
on another host, when the lease has lapsed)."""

from __future__ import annotations

import os
import socket


def owner_id() -> str:
    """pid@host:starttime; the start time guards against a recycled pid looking alive."""
    return f"{os.getpid()}@{socket.gethostname()}:{_proc_start(os.getpid())}"


def _proc_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:].split()[19].decode()
    except (OSError, ValueError, IndexError):
        return "0"


def owner_alive(owner: str | None) -> bool | None:
    """True/False when the owner is on this host and we can tell; None when it lives elsewhere."""
    if not owner:
        return False
    try:
        pid_s, rest = owner.split("@", 1)
        host, start = rest.rsplit(":", 1)
        pid = int(pid_s)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start == "0" or _proc_start(pid) == start
