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


def error_line(e: BaseException) -> str:
    """One line for the UI: the exception type and the first line of its message."""
    msg = first_line(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def user_line(e: BaseException) -> str:
    """One line for the UI: the project's own errors (bad files, other models) are already sentences for the user;
    anything else is :func:`error_line`."""
    return first_line(e) or type(e).__name__ if isinstance(e, TridentError) else error_line(e)
