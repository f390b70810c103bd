"""What a CLI process shares with every command: its exit codes and how it stops on Ctrl-C/SIGTERM.

Exit codes: 0 succeeded, 3 partial, 1 failed, 2 usage/config, 4 already running, 130 cancelled.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_BUSY, EXIT_CANCELLED = 0, 1, 2, 3, 4, 130


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

