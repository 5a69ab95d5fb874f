"""Help panel: keyboard shortcuts (:data:`app.keys.SHORTCUTS`), mouse, and where files go."""
from __future__ import annotations

from imgui_bundle import imgui

from ..keys import SHORTCUTS
from ..panes import DIM_COLOR


class HelpWidget:
    def __init__(self, viewer):
        self.viewer = viewer

    def __call__(self) -> None:
        if not imgui.collapsing_header("Help"):
            return
        imgui.separator_text("Keys")
        if imgui.begin_table("##keys", 2, imgui.TableFlags_.sizing_fixed_fit):
            for key, what in SHORTCUTS:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(key)
                imgui.table_next_column()
                imgui.text_colored(DIM_COLOR, what)
            imgui.end_table()
        imgui.separator_text("Mouse")
        imgui.text_colored(DIM_COLOR, "drag in a pane: orbit; wheel: zoom (the ray interval follows the camera); "
                           "drop a model file, a saved session or a latent on the window to open it; drop photos (png, jpg, "
                           "webp, bmp, tif, gif) to invert them in the Inversion panel")
        imgui.separator_text("Files")
        imgui.text_colored(DIM_COLOR, f"screenshots, videos, meshes and inversions go below {self.viewer.outdir} "
                           "(Model panel, or run_viz.py --outdir)")
