"""Export panel: screenshots (the whole window or one pane) and videos."""
from __future__ import annotations

from imgui_bundle import imgui

from ..panes import DIM_COLOR


class ExportWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.folder = "screenshots"
        self.target = 0  # 0 = whole window, then one entry per pane

    def __call__(self) -> None:
        v = self.viewer
        if not imgui.collapsing_header("Export"):
            return
        imgui.separator_text("Screenshot")
        _, self.folder = imgui.input_text("Folder", self.folder)
        targets = ["whole window"] + v.pane_names()
        self.target = min(self.target, len(targets) - 1)
        _, self.target = imgui.combo("Of", self.target, targets)
        if imgui.button("Save PNG"):
            v.save_screenshot(self.folder, None if self.target == 0 else targets[self.target])
        if v.last_saved:
            imgui.text_colored(DIM_COLOR, v.last_saved)
