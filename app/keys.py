"""Keyboard shortcuts: one table, used by the frame loop (:meth:`app.viewer.Viewer.step`) and listed in the Help
panel. Keys act only while no text field has the keyboard."""
from __future__ import annotations

from typing import Callable

from imgui_bundle import imgui

from .state import VIEWS

# (key, what it does): the Help panel shows this table
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("R", "reset the view (camera to the model's frontal view)"),
    ("S", "save a screenshot of the window (output folder/screenshots)"),
    ("N / P", "next / previous seed"),
    ("V", "next view: RGB, depth, raw, normals"),
    ("O", "auto-orbit on / off (inside the training views)"),
    ("F1", "open this Help panel"),
    ("Ctrl+Z", "undo (History panel)"),
    ("Ctrl+Y / Ctrl+Shift+Z", "redo"),
)


def actions(viewer) -> dict[int, Callable[[], None]]:
    """ImGui key -> action on ``viewer``."""
    s = viewer.state

    def reset() -> None:
        s.camera.reset(viewer.info.radius if viewer.info is not None else s.camera.radius)
        s.camera.auto_orbit = False

    def seed(step: int) -> None:
        s.latent.seed = max(0, s.latent.seed + step)
        s.latent.use_stored = False

    def next_view() -> None:
        s.render.view = VIEWS[(VIEWS.index(s.render.view) + 1) % len(VIEWS)]

    def orbit() -> None:
        s.camera.auto_orbit = not s.camera.auto_orbit

    return {imgui.Key.r: reset, imgui.Key.s: lambda: viewer.save_screenshot(viewer.output_path("screenshots")),
            imgui.Key.n: lambda: seed(1), imgui.Key.p: lambda: seed(-1),   # arrows belong to ImGui's keyboard nav
            imgui.Key.v: next_view, imgui.Key.o: orbit, imgui.Key.f1: viewer.show_help}


def handle_keys(viewer) -> None:
    """Run the action of each shortcut pressed this frame (not while typing, not with Ctrl/Alt held; the Ctrl
    chords for undo / redo are :func:`app.widgets.history.undo_keys`)."""
    io = imgui.get_io()
    if io.want_text_input or io.key_ctrl or io.key_alt:
        return
    for key, action in actions(viewer).items():
        if imgui.is_key_pressed(key, False):
            action()
