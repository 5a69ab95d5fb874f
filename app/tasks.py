"""Background jobs with progress and cancellation (mesh extraction, inversion, video export).

A job is a function ``fn(task) -> result`` run on its own thread; it reports with ``task.report(fraction, text)``
and stops early when ``task.cancelled`` is set (core's APIs take the same two hooks). The UI polls ``done``.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

from .threads import error_line, lower_thread_priority


class Task:
    """One background job as the UI sees it."""

    def __init__(self, name: str, fn: Callable[["Task"], Any], on_update: Callable[[], None] | None = None):
        self.name = name
        self.progress = 0.0
        self.text = "starting"
        self.result: Any = None
        self.error: str | None = None
        self.preview: Any = None               # optional intermediate output (e.g. an inversion preview image)
        self.values: dict[str, float] = {}     # the last progress report's numbers (e.g. loss, cameras)
        self.started = time.monotonic()
        self.elapsed = 0.0
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._on_update = on_update or (lambda: None)
        self._thread = threading.Thread(target=self._run, args=(fn,), name=f"trident-{name}", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[["Task"], Any]) -> None:
        lower_thread_priority()
        try:
            self.result = fn(self)
        except Exception as e:  # noqa: BLE001 - shown in the panel that started the job
            if not self._cancel.is_set():
                self.error = error_line(e)
                if not isinstance(e, (ValueError, OSError)):  # bad input / files are told in one line; bugs get
                    traceback.print_exc()                     # their traceback on stderr too
        finally:
            self.elapsed = time.monotonic() - self.started
            self._done.set()
            self._on_update()

    # -- job side -------------------------------------------------------------------------------------------
    def report(self, fraction: float, text: str = "", preview: Any = None) -> None:
        self.progress = float(min(max(fraction, 0.0), 1.0))
        if text:
            self.text = text
        if preview is not None:
            self.preview = preview
        self._on_update()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- UI side --------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def status(self) -> str:
        """One line for the panel."""
        if self.running:
            return f"{self.text} ({self.progress * 100:.0f}%)"
        if self.cancelled:
            return "cancelled"
        if self.error:
            return f"failed: {self.error}"
        return f"done in {self.elapsed:.1f} s"
