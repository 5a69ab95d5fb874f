"""Every control is reachable (issue 16, item 1): the real window opens every panel header and every combo of every
panel; an ImGui ID conflict anywhere fails, and each combo must open its list when clicked.

Export -> Video -> "Camera" never opened: its ID equalled the Camera panel header's, and Dear ImGui answered
"2 visible items with conflicting ID". Two independent checks: (1) every labelled item the panels draw records its
ImGui ID per frame, and a repeated ID in one window is a conflict; (2) ImGui's own detector
(``hovered_id_previous_frame_item_count``) while the mouse rests on each header and combo.
"""
from __future__ import annotations

import pytest
from imgui_bundle import imgui

from tests.app.conftest import run_until, settle
from tests.app.fake_backend import FakeBackend

WRAPPED = ("collapsing_header", "combo", "begin_combo", "button", "checkbox", "slider_int", "slider_float",
           "slider_angle", "drag_float", "drag_int", "input_text", "input_int", "radio_button", "selectable")


class Recorder:
    """Wraps ImGui widget functions: opens every header, records each item's ID and rectangle per frame."""

    def __init__(self, monkeypatch, open_all: bool = True, extra: tuple[str, ...] = ()):
        self.frame: list[tuple[str, int, str, tuple[float, float, float, float]]] = []
        self.conflicts: set[tuple[str, str]] = set()
        self.open_all = open_all
        for name in WRAPPED + extra:
            monkeypatch.setattr(imgui, name, self._wrap(name, getattr(imgui, name)))

    def _wrap(self, kind, fn):
        def wrapped(*args, **kwargs):
            if kind == "collapsing_header" and self.open_all:
                imgui.set_next_item_open(True)
            out = fn(*args, **kwargs)
            label = str(args[0]) if args else ""
            item_id = imgui.get_item_id()
            lo, hi = imgui.get_item_rect_min(), imgui.get_item_rect_max()
            window = imgui.internal.get_current_window().name if hasattr(imgui, "internal") else ""
            self.frame.append((kind, item_id, f"{window}/{label}", (lo.x, lo.y, hi.x, hi.y)))
            return out
        return wrapped

    def new_frame(self) -> list:
        """The items of the frame just drawn; records repeated IDs as conflicts."""
        items, self.frame = self.frame, []
        seen: dict[int, str] = {}
        for kind, item_id, where, _ in items:
            if item_id in seen and item_id != 0:
                self.conflicts.add((seen[item_id], where))
            seen[item_id] = where
        return items


def step(v, rec, n=1):
    items = []
    for _ in range(n):
        v.step()
        items = rec.new_frame()
    return items


def test_every_header_and_combo_opens_without_id_conflicts(make_viewer, monkeypatch):
    backend = FakeBackend()
    v = make_viewer(lambda path: backend, 1280, 4000)   # tall enough that every open panel is on screen
    v.model_backend = lambda: backend                   # the Export panel's video options need a backend
    rec = Recorder(monkeypatch)
    v.open_model("fake.pkl")
    settle(v)
    rec.frame = []          # settle() ran frames without taking their items
    items = step(v, rec, 3)
    headers = [i for i in items if i[0] == "collapsing_header"]
    combos = [i for i in items if i[0] in ("combo", "begin_combo")]
    assert {h[2].rsplit("/", 1)[1] for h in headers} >= {"Model", "Latent", "Camera", "Render", "Inversion", "Mesh",
                                                          "Export"}
    assert any(c[2].endswith("/Camera path") for c in combos), [c[2] for c in combos]
    assert not rec.conflicts, sorted(rec.conflicts)

    io = imgui.get_io()
    ctx = imgui.get_current_context()
    for kind, item_id, where, (x0, y0, x1, y1) in headers + combos:
        assert y1 < 4000, f"{where} is below the window"
        x, y = (x0 + x1) / 2, (y0 + y1) / 2
        io.add_mouse_pos_event(x, y)
        step(v, rec, 3)
        assert ctx.hovered_id_previous_frame_item_count <= 1, f"ImGui reports an ID conflict at {where}"
        if kind in ("combo", "begin_combo"):
            io.add_mouse_button_event(0, True)
            step(v, rec)
            io.add_mouse_button_event(0, False)
            step(v, rec, 2)
            assert ctx.open_popup_stack.size() > 0 if hasattr(ctx.open_popup_stack, "size") \
                else len(ctx.open_popup_stack) > 0, f"{where}: the combo did not open"
            io.add_key_event(imgui.Key.escape, True)
            step(v, rec)
            io.add_key_event(imgui.Key.escape, False)
            step(v, rec, 2)
    assert not rec.conflicts, sorted(rec.conflicts)
