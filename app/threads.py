"""Thread helpers shared by the render thread and background jobs."""
from __future__ import annotations

import os
import sys
import threading

from core.errors import TridentError, first_line

BACKGROUND_NICE = 10


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Make the calling thread yield the CPU to the UI thread (Linux threads have their own nice value), so the UI
    keeps its frame rate while renders and jobs use every core. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            pass


EXPECTED_ERRORS = (TridentError, OSError, ValueError)   # bad input or files: their message is the whole story


def error_line(e: BaseException) -> str:
    """One line for the UI, in words, without Python class names: the message of an expected error (bad input, a
    missing file, not enough memory); other exceptions are programming errors and say so."""
    msg = first_line(e)
    if isinstance(e, MemoryError):
        return f"out of memory{': ' + msg if msg else ''} (try a lower resolution or fewer samples)"
    if isinstance(e, EXPECTED_ERRORS) and msg:
        return msg
    return f"unexpected error: {msg}" if msg else "unexpected error (no message; see the terminal)"

