"""Rendering off the UI thread: the newest request wins, stale results are dropped, errors are data.

The StyleGAN3/EG3D visualizer's AsyncRenderer idea (``NVlabs/stylegan3: viz/renderer.py``) with a thread
instead of a forked process (no "Cannot re-initialize CUDA in forked subprocess"):

* ``submit`` replaces any request not yet started; a request that arrives while branches of an older one are still
  to do cancels those (the branch being rendered finishes, then the newest request starts);
* branches are rendered least-recently-finished first, so a slow branch cannot starve the others during a drag;
* every result carries the model ``generation`` and request ``stamp``; results of a replaced model are dropped, and
  panes drop results older than what they show;
* a renderer or loader exception becomes a :class:`BranchResult` / :class:`LoadFailed` with the message, never a crash.
"""
from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from typing import Callable, Union

from .requests import Backend, BranchResult, ModelInfo, RenderRequest
from .threads import error_line, lower_thread_priority


@dataclass
class ModelLoaded:
    info: ModelInfo
    path: str
    generation: int


@dataclass
class LoadFailed:
    path: str
    message: str


Event = Union[ModelLoaded, LoadFailed, BranchResult]


class AsyncRenderer:
    """One render thread serving the UI. ``loader(path) -> Backend`` runs on that thread too."""

    def __init__(self, loader: Callable[[str], Backend], on_event: Callable[[], None] | None = None,
                 background: bool = True):
        self.background = background  # lower the render thread's CPU priority below the UI's
        self._loader = loader
        self._on_event = on_event or (lambda: None)  # e.g. wake the UI loop (glfw.post_empty_event)
        self._cond = threading.Condition()
        self._pending: tuple[int, RenderRequest] | None = None
        self._pending_open: str | None = None
        self._last_submitted: RenderRequest | None = None
        self._stamp = 0
        self._inflight = False
        self._closing = False
        self._events: list[Event] = []
        self._last_done: dict[str, int] = {}
        self.backend: Backend | None = None
        self.generation = 0
        self.loading: str | None = None
        self._loader_once: Callable[[str], Backend] | None = None
        self._last_error = ""
        self.lockstep = False  # finish every branch of a request before taking a newer one (panes in step)
        self._thread = threading.Thread(target=self._run, name="trident-render", daemon=True)
        self._thread.start()

    # -- UI side --------------------------------------------------------------------------------------------
    def open(self, path: str) -> None:
        """Load a model in the background; pending renders of the current model are dropped."""
        with self._cond:
            self._pending_open = path
            self._pending = None
            self.loading = path
            self._cond.notify()

    def set_backend(self, backend: Backend, path: str = "") -> None:
        """Install an already constructed backend (tests, or a model passed in by the caller)."""
        self.open_with(lambda _p: backend, path)

    def open_with(self, loader: Callable[[str], Backend], path: str) -> None:
        with self._cond:
            self._loader_once = loader
        self.open(path)

    def submit(self, request: RenderRequest) -> bool:
        """Queue ``request`` unless it equals the last one; returns whether it was queued."""
        with self._cond:
            if request == self._last_submitted or self.backend is None and self._pending_open is None:
                return False
            self._stamp += 1
            self._pending = (self._stamp, request)
            self._last_submitted = request
            self._cond.notify()
            return True

    def poll(self) -> list[Event]:
        """Events finished since the last poll, oldest first."""
        with self._cond:
            events, self._events = self._events, []
        return events

    @property
    def idle(self) -> bool:
        """Nothing queued, loading or rendering."""
        with self._cond:
            return self._pending is None and self._pending_open is None and not self._inflight

    @property
    def stamp(self) -> int:
        """Stamp of the newest submitted request."""
        return self._stamp

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=30)

    # -- render thread --------------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        self._events.append(event)
        self._on_event()

    def _run(self) -> None:
        if self.background:
            lower_thread_priority()
        while True:
            with self._cond:
                while not (self._closing or self._pending_open is not None or self._pending is not None):
                    self._cond.wait()
                if self._closing:
                    return
                self._inflight = True
                path, self._pending_open = self._pending_open, None
                job = None if path is not None else self._pending
                self._pending = None if path is None else self._pending
            try:
                if path is not None:
                    self._load(path)
                elif job is not None:
                    self._render(*job)
            finally:
                with self._cond:
                    self._inflight = False

    def _load(self, path: str) -> None:
        with self._cond:
            loader, self._loader_once = self._loader_once or self._loader, None
        try:
            backend = loader(path)
        except Exception as e:  # noqa: BLE001 - any load failure is shown in the app
            with self._cond:
                if self._pending_open is None:
                    self.loading = None
                self._emit(LoadFailed(path, error_line(e)))
            return
        with self._cond:
            self.backend = backend
            self.generation += 1
            self._last_submitted = None
            self._last_done.clear()
            if self._pending_open is None:
                self.loading = None
            self._emit(ModelLoaded(backend.info, path, self.generation))

    def _render(self, stamp: int, request: RenderRequest) -> None:
        backend, generation = self.backend, self.generation
        if backend is None:
            return
        order = sorted(request.branches, key=lambda b: self._last_done.get(b, -1))
        for branch in order:
            with self._cond:
                newer = self._pending is not None and not self.lockstep
                if newer or self._pending_open is not None or self._closing:
                    return  # a newer request wins; the branches left are rendered for it instead
            try:
                result = backend.render(request, branch)
            except Exception as e:  # noqa: BLE001 - shown in the branch's pane
                result = BranchResult(branch=branch, request=request, error=error_line(e))
                if result.error != self._last_error:  # print each distinct error once, not every frame
                    self._last_error = result.error
                    traceback.print_exc()
            result.stamp, result.generation = stamp, generation
            with self._cond:
                if generation == self.generation and self._pending_open is None:
                    self._last_done[branch] = stamp
                    self._emit(result)
