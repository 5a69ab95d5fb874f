"""Progress reports and cancellation for long-running core jobs (video, mesh, inversion).

The viewer runs these jobs on background threads; the commands run them in the foreground with a progress bar.
Both talk to a job through two optional arguments:

* ``progress``: a callable that receives a :class:`Progress` after each unit of work (a frame, a chunk of the
  density grid, an optimisation step). It may carry a preview image (uint8 [H, W, 3]) and named numbers.
* ``cancel``: a ``threading.Event`` or a zero-argument callable returning True when the job should stop. Jobs poll
  it between units of work and then raise :class:`Cancelled`, after removing anything they had started to write.

Example (viewer side)::

    stop = threading.Event()
    threading.Thread(target=render_video, args=(model, spec, "out.mp4"),
                     kwargs=dict(progress=queue.put, cancel=stop)).start()
    ...
    stop.set()        # the job stops after the current frame; out.mp4 is not created
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

__all__ = ["Progress", "ProgressFn", "CancelFlag", "Cancelled", "is_cancelled", "check_cancel", "report"]


@dataclass
class Progress:
    """One progress report: ``done`` of ``total`` units in ``stage`` (e.g. "frames", "density", "w+", "pti")."""

    stage: str
    done: int
    total: int
    preview: np.ndarray | None = None             # uint8 [H, W, 3], when the job has something to show
    values: dict[str, float] = field(default_factory=dict)   # e.g. {"loss": 0.1, "psnr": 24.3}

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressFn = Callable[[Progress], None]
CancelFlag = Union[threading.Event, Callable[[], bool], None]


class Cancelled(Exception):
    """The job was cancelled through its ``cancel`` flag; nothing it was writing is left behind."""


def is_cancelled(cancel: CancelFlag) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def check_cancel(cancel: CancelFlag) -> None:
    """Raise :class:`Cancelled` when the flag is set."""
    if is_cancelled(cancel):
        raise Cancelled("cancelled")


def report(progress: ProgressFn | None, stage: str, done: int, total: int, preview: np.ndarray | None = None,
           **values: float) -> None:
    if progress is not None:
        progress(Progress(stage, done, total, preview, {k: float(v) for k, v in values.items()}))
