"""Performance panel: UI frame rate and frame-time plot, ms per branch, device, memory, FPS limit."""
from __future__ import annotations

import time

import numpy as np
from imgui_bundle import imgui

from ..panes import DIM_COLOR


def ui_rate_line(fps: float, limit: int, idle: bool) -> str:
    """The UI rate, said so that an idle viewer (which sleeps until input, a few frames a second) does not look
    like a fault."""
    if idle:
        return f"UI idle, not redrawing (wakes on input; limit {limit} FPS)"
    return f"UI {fps:.0f} FPS (limit {limit})"


class PerfWidget:
    """Numbers are refreshed twice a second, so the panel itself does not force a redraw every frame."""

    def __init__(self, viewer):
        self.viewer = viewer
        self._lines: list[tuple[bool, str]] = []
        self._plot = np.zeros(1, np.float32)
        self._at = -1.0

    def _refresh(self) -> None:
        v = self.viewer
        lines = []
        ft = np.asarray(v.frame_times, np.float32)[-120:]
        dm = np.asarray(v.draw_ms, np.float32)[-120:]
        if len(ft):
            lines.append((False, ui_rate_line(v.ui_fps(), v.fps_limit, v.idle())))
        if len(dm):
            lines.append((False, f"drawn frames: {np.median(dm):.1f} ms median, {np.percentile(dm, 95):.1f} ms p95"))
            self._plot = dm.copy()
        for branch, hist in v.branch_ms.items():
            lines.append((not hist, f"{branch}: {hist[-1]:.0f} ms (median {np.median(hist):.0f} ms)" if hist
                          else f"{branch}: -"))
        backend = v.renderer.backend
        if v.info is not None and backend is not None:
            lines.append((True, f"device {v.info.device} | {backend.precision} | {backend.memory()}"))
        lines.append((True, f"GL {v.window.gl_renderer}"))
        self._lines = lines

    def __call__(self) -> None:
        v = self.viewer
        if not imgui.collapsing_header("Performance", imgui.TreeNodeFlags_.default_open):
            return
        now = time.monotonic()
        if now - self._at > 0.5:
            self._refresh()
            self._at = now
        for dim, line in self._lines:
            imgui.text_colored(DIM_COLOR, line) if dim else imgui.text(line)
        imgui.plot_lines("##drawms", self._plot, graph_size=imgui.ImVec2(-1, imgui.get_font_size() * 2.5),
                         scale_min=0.0, scale_max=max(40.0, float(self._plot.max())))
        _, v.fps_limit = imgui.slider_int("FPS limit", v.fps_limit, 5, 240)
