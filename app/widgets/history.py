"""History panel: Undo / Redo (also Ctrl+Z, Ctrl+Y, Ctrl+Shift+Z) and the newest steps of the history; clicking a
step returns there (``app.undo``, on ``core.tools.edit.apply.History``)."""
from __future__ import annotations

from imgui_bundle import imgui

from ..panes import DIM_COLOR

SHOWN = 8     # history entries listed


def undo_keys(viewer) -> None:
    """Ctrl+Z: undo; Ctrl+Y or Ctrl+Shift+Z: redo (not while typing in a text field)."""
    if imgui.get_io().want_text_input:
        return
    ctrl, shift = imgui.Key.mod_ctrl, imgui.Key.mod_shift
    if imgui.is_key_chord_pressed(ctrl | imgui.Key.z):
        viewer.undo.undo(viewer.state)
    elif imgui.is_key_chord_pressed(ctrl | imgui.Key.y) or imgui.is_key_chord_pressed(ctrl | shift | imgui.Key.z):
        viewer.undo.redo(viewer.state)


class HistoryWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.rects: dict[int, tuple[float, float, float, float]] = {}   # entry -> x0, y0, x1, y1 (window px)

    def __call__(self) -> None:
        v = self.viewer
        undo_keys(v)
        if not imgui.collapsing_header("History", imgui.TreeNodeFlags_.default_open):
            return
        h = v.undo.history
        if h is None:
            imgui.text_colored(DIM_COLOR, "no model loaded")
            return
        imgui.begin_disabled(not h.can_undo)
        if imgui.button("Undo"):
            v.undo.undo(v.state)
        imgui.end_disabled()
        imgui.same_line()
        imgui.begin_disabled(not h.can_redo)
        if imgui.button("Redo"):
            v.undo.redo(v.state)
        imgui.end_disabled()
        imgui.same_line()
        imgui.text_colored(DIM_COLOR, f"step {h.position + 1}/{len(h.entries)}  Ctrl+Z / Ctrl+Y")
        h = v.undo.history
        first = max(0, len(h.entries) - SHOWN)
        if first:
            imgui.text_colored(DIM_COLOR, f"  ({first} older)")
        for i in range(first, len(h.entries)):
            label = h.entries[i][0]
            clicked, _ = imgui.selectable(f"{i + 1}. {label}##hist{i}", i == h.position)
            lo, hi = imgui.get_item_rect_min(), imgui.get_item_rect_max()
            self.rects[i] = (lo.x, lo.y, hi.x, hi.y)
            if clicked and i != h.position:
                v.undo.jump(v.state, i)
