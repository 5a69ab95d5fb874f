"""Performance panel: UI frame rate and frame-time plot, ms per branch, device, memory, FPS limit."""
from __future__ import annotations

import time

import numpy as np
from imgui_bundle import imgui

from ..panes import DIM_COLOR


class PerfWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self._memory = ""
        self._memory_at = 0.0

    def _memory_text(self) -> str:
        now = time.monotonic()
        backend = self.viewer.renderer.backend
        if backend is not None and now - self._memory_at > 1.0:
            self._memory, self._memory_at = backend.memory(), now
        return self._memory

    def __call__(self) -> None:
        v = self.viewer
        if not imgui.collapsing_header("Performance", imgui.TreeNodeFlags_.default_open):
            return
        ft = np.asarray(v.frame_times, np.float32) * 1000
        if len(ft):
            imgui.text(f"UI {v.ui_fps():.0f} FPS | {np.median(ft):.1f} ms/frame")
            imgui.plot_lines("##frametimes", ft, graph_size=imgui.ImVec2(-1, imgui.get_font_size() * 2.5),
                             scale_min=0.0, scale_max=max(40.0, float(ft.max())))
        for branch, hist in v.branch_ms.items():
            if hist:
                imgui.text(f"{branch}: {hist[-1]:.0f} ms (median {np.median(hist):.0f} ms)")
            else:
                imgui.text_colored(DIM_COLOR, f"{branch}: -")
        if v.info is not None:
            imgui.text_colored(DIM_COLOR, f"device {v.info.device} | {self._memory_text()}")
        imgui.text_colored(DIM_COLOR, f"GL {v.window.gl_renderer}")
        _, v.fps_limit = imgui.slider_int("FPS limit", v.fps_limit, 5, 240)
