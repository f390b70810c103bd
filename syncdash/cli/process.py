"""What a CLI process shares with every command: its exit codes and how it stops on Ctrl-C/SIGTERM.

Exit codes: 0 succeeded, 3 partial, 1 failed, 2 usage/config, 4 already running, 130 cancelled.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from typing import Any, NoReturn

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_BUSY, EXIT_CANCELLED = 0, 1, 2, 3, 4, 130


# commands whose start-up imports go on inside the handler: it calls startup_done() itself when they are over
# (`run`, before its first run), or, short and read-only, never (the collector comes back as main returns)
LATE_START = frozenset({"run", "status", "runs", "errors", "show"})
# commands that end with their work: nothing of theirs is left running (no console, daemon, server or plugin),
# so their process may skip the interpreter's teardown (see leave)
ONE_SHOT = frozenset({"run", "status", "runs", "errors", "show", "retry", "state", "schema", "validate", "export",
                      "cleanup", "pause", "resume", "check"})


def startup_begins() -> bool:
    """Pause the cyclic garbage collector for the start-up imports: they allocate a few hundred thousand
    objects that all live until exit, and the collections they trigger scan them again and again (~6% of a
    short command's CPU time). Returns whether it was running (and so whether startup_done restarts it)."""
    was = gc.isenabled()
    gc.disable()
    return was


def startup_done() -> None:
    """The start-up imports are over: what they allocated is frozen (later collections skip it, and the first
    one does not scan everything allocated while paused) and the collector runs again, before the command's real
    work (a run's batches) allocates. No-op when it runs already."""
    if gc.isenabled():
        return
    gc.freeze()
    gc.enable()


def install_cancel_handlers() -> threading.Event:
    """First Ctrl-C/SIGTERM: finish the current batch, mark the run cancelled. Second Ctrl-C: stop now."""
    cancel = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        cancel.set()
        sys.stderr.write("\nsyncdash: stopping after the current batch (Ctrl-C again to stop now)\n")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return cancel


def leave(code: int) -> NoReturn:
    """End a one-shot command's process now: its output flushed, logging shut down, then os._exit. Tearing
    down the ~500 modules a run imported (SQLAlchemy's among them on a server store) takes ~50-70 ms, a fifth
    of a short command, and frees nothing the OS does not free anyway. syncdash registers no exit handler
    and keeps no temporary file past its `with`; every store and target transaction has committed or
    rolled back by the time the command returns."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more can reach the reader anyway
            pass
    if "logging" in sys.modules:
        import logging

        logging.shutdown()
    os._exit(code)
