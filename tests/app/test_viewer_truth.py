"""The viewer tells the truth (issue 16): camera range (item 3), no state leaking across models and tuned weights as
a visible, reversible mode (item 5), video export options (item 7), drags that start at the press point (item 8),
outputs under one folder (item 9). The real window with the deterministic FakeBackend."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from imgui_bundle import imgui

from app.orbit import outside_range
from app.widgets.export import ExportWidget
from app.widgets.mesh import MeshWidget
from tests.app.conftest import run_until, settle
from tests.app.fake_backend import FakeBackend


def widget(v, cls):
    return next(w for w in v.widgets if isinstance(w, cls))


def open_fake(make_viewer, backend=None, width=960, height=540):
    backend = backend or FakeBackend()
    v = make_viewer(lambda path: backend, width, height)
    v.open_model("fake.pkl")
    settle(v)
    return v, backend


def test_auto_orbit_stays_inside_the_training_range(make_viewer):
    v, _ = open_fake(make_viewer)
    yaw_range = v.info.camera_range[0]
    assert math.isclose(math.degrees(yaw_range), 35.0, abs_tol=0.01)
    v.state.camera.auto_orbit, v.state.camera.orbit_speed = True, 1.5
    yaws = []
    for _ in range(600):   # 10 s of the fixed 60 Hz clock: several swings
        v.step()
        yaws.append(v.state.camera.yaw)
    assert max(yaws) > 0.9 * yaw_range and min(yaws) < -0.9 * yaw_range   # it does swing
    assert max(abs(y) for y in yaws) <= yaw_range + 1e-6                 # and never leaves the range


def test_leaving_the_range_is_marked(make_viewer):
    v, _ = open_fake(make_viewer)
    assert v.pane_title("sr2d").startswith("sr2d - ")
    v.state.camera.yaw = math.radians(120)
    v.step()
    assert outside_range(v.state.camera.yaw, 0.0, v.info.camera_range)
    assert "outside training views" in v.pane_title("sr2d")
    assert "ignores radius, FOV" in v.pane_title("student")


def test_a_drag_starts_at_the_press_point(make_viewer):
    """The cursor jumps across the window, then presses: the press frame's mouse delta is not a drag."""
    v, _ = open_fake(make_viewer)
    io = imgui.get_io()
    io.config_input_trickle_event_queue = False     # the jump and the press arrive in one frame (a fast user)
    pane = v.panes["sr2d"].last_input
    cx, cy = pane.origin[0] + pane.size_px / 2, pane.origin[1] + pane.size_px / 2
    io.add_mouse_pos_event(5.0, 5.0)
    v.step()
    io.add_mouse_pos_event(cx, cy)
    io.add_mouse_button_event(0, True)
    v.step()
    io.add_mouse_pos_event(cx + 5, cy)
    v.step()
    io.add_mouse_button_event(0, False)
    v.step()
    c = v.state.camera
    expected = -5 * math.pi / pane.size_px          # 5 px of a pane-wide pi turn
    assert math.isclose(c.yaw, expected, rel_tol=0.05, abs_tol=1e-4), (c.yaw, expected)
    assert abs(c.pitch) < 1e-6


def test_yaw_wraps_for_display(make_viewer):
    v, _ = open_fake(make_viewer)
    v.state.camera.yaw = math.radians(350)
    v._apply_pane_input((-1.0, 0.0), 0.0, 400.0)
    assert -math.pi <= v.state.camera.yaw < math.pi


def test_another_model_clears_the_mesh_and_keeps_selections_by_name(make_viewer):
    backends = {"a.pkl": FakeBackend(), "b.pkl": FakeBackend(branches=("sr2d", "student"))}
    v = make_viewer(lambda path: backends[path])
    v.open_model("a.pkl")
    settle(v)
    v.ensure_mesh_view()                                 # a mesh of model a on screen
    export = widget(v, ExportWidget)
    export.branch, export.target = "direct3d", "direct3d"
    assert "mesh" in v.pane_names()
    v.open_model("b.pkl")
    run_until(v, lambda: v.info is not None and v.info.branches == ("sr2d", "student"))
    assert v.mesh_view is None and "mesh" not in v.pane_names()
    assert widget(v, MeshWidget).result is None
    v.model_backend = lambda: backends["b.pkl"]
    # direct3d is gone: the video falls back to all branches, never to a neighbouring branch (index 1 = student)
    assert export.video_job(str(Path("v.mp4"))).branch == "all"
    v.open_model("a.pkl")
    run_until(v, lambda: v.info is not None and len(v.info.branches) == 3)
    assert export.video_job(str(Path("v.mp4"))).branch == "direct3d"   # kept by name across models


def test_tuned_weights_are_a_visible_reversible_mode(make_viewer):
    original, tuned = FakeBackend(), FakeBackend()
    v = make_viewer(lambda path: original)
    v.open_model("fake.pkl")
    settle(v)
    v.state.latent.seed = 5
    v.explore_tuned(tuned, "PTI-tuned")
    run_until(v, lambda: v.renderer.backend is tuned and v.settled())
    assert "PTI-tuned" in v.pane_title("sr2d") and "NOT tuned" in v.pane_title("student")
    assert v.original is not None and v.original[0] is original
    v.back_to_original()
    run_until(v, lambda: v.renderer.backend is original and v.settled())
    assert v.tuned_note == "" and "PTI-tuned" not in v.pane_title("sr2d")
    assert v.state.latent.seed == 5                      # the way back keeps what the user was looking at


def test_video_export_has_the_commands_options(make_viewer, tmp_path):
    v, backend = open_fake(make_viewer)
    export = widget(v, ExportWidget)
    assert export.min_side >= 512
    w, h = export.video_size()
    assert max(w, h) >= 512                              # not 192x64 for a 64 px model
    export.mode, export.grid = 0, 1                      # turntable, 2x2 seeds
    job = export.video_job(str(tmp_path / "v.mp4"))
    assert job.grid == (2, 2) and [s.seed for s in job.latents] == [0, 1, 2, 3]
    assert job.min_side == export.min_side and job.labels and job.branch == "all"
    assert job.radius == v.state.camera.radius
    export.mode = 2                                      # the interpolation loop: the two seeds, one cell
    job = export.video_job(str(tmp_path / "v.mp4"))
    assert job.mode == "interp" and job.grid is None and [s.interp_t for s in job.latents] == [0.0, 1.0]


def test_outputs_go_under_one_folder(make_viewer, tmp_path):
    v, _ = open_fake(make_viewer)
    assert Path(v.outdir) == tmp_path / "outputs"        # $TRIDENT_OUTDIR (tests), else ~/.local/share/trident
    v.save_screenshot(v.output_path("screenshots"))
    v.step()
    assert (tmp_path / "outputs" / "screenshots" / "00000.png").is_file()
    assert v.output_path("/abs/elsewhere") == "/abs/elsewhere"


def test_a_pane_screenshot_saves_the_render_not_the_display(make_viewer, tmp_path):
    """Issue 16, item 10: a one-pane screenshot saved the pane's display upscale."""
    import numpy as np
    from PIL import Image
    v, _ = open_fake(make_viewer)
    out = tmp_path / "outputs" / "shots"
    v.save_screenshot(str(out), "sr2d")
    saved = np.asarray(Image.open(out / "00000.png"))
    assert saved.shape == v.panes["sr2d"].result.image.shape == (64, 64, 3)   # the render, not ~270 px
    assert np.array_equal(saved, v.panes["sr2d"].result.image)
    v.state.render.view = "depth"
    settle(v)
    v.save_screenshot(str(out), "sr2d")
    assert np.array_equal(np.load(out / "00001_depth.npy"), v.panes["sr2d"].result.depth)
    assert (out / "00001_depth.png").is_file()


def press(v, key):
    io = imgui.get_io()
    io.add_key_event(key, True)
    v.step()
    io.add_key_event(key, False)
    v.step()


def test_keyboard_shortcuts(make_viewer, tmp_path):
    """Issue 16, item 10: no keyboard at all before."""
    v, _ = open_fake(make_viewer)
    v.state.camera.yaw, v.state.camera.radius = 0.5, 4.0
    press(v, imgui.Key.r)
    assert v.state.camera.yaw == 0.0 and math.isclose(v.state.camera.radius, v.info.radius, rel_tol=1e-6)
    press(v, imgui.Key.n)
    press(v, imgui.Key.n)
    press(v, imgui.Key.p)
    assert v.state.latent.seed == 1
    press(v, imgui.Key.v)
    assert v.state.render.view == "depth"
    press(v, imgui.Key.s)
    v.step()
    assert (tmp_path / "outputs" / "screenshots" / "00000.png").is_file()
    press(v, imgui.Key.f1)
    assert v.jump_to is None   # handled: the Help panel was opened and scrolled to
    from app.keys import SHORTCUTS
    assert {k for k, _ in SHORTCUTS} >= {"R", "S", "N / P", "V", "F1"}


def test_every_panel_is_one_click_away(make_viewer, monkeypatch):
    """Issue 16, item 10: Inversion, Mesh and Export took 40 wheel notches to reach. A jump button opens the panel
    and scrolls it to the top of the sidebar."""
    from tests.app.test_every_control import Recorder
    v, backend = open_fake(make_viewer, width=1280, height=800)
    v.model_backend = lambda: backend                  # the panels draw their job options for a backend
    rec = Recorder(monkeypatch, open_all=False, extra=("small_button",))
    v.step()
    items = rec.new_frame()
    buttons = {where.rsplit("/", 1)[1]: rect for kind, _, where, rect in items if kind == "small_button"}
    assert {"Export##jump", "Inversion##jump", "Mesh##jump", "Help##jump"} <= set(buttons)
    for target, inside in (("Export##jump", "/Camera path"), ("Mesh##jump", "/Grid")):
        x0, y0, x1, y1 = buttons[target]
        io = imgui.get_io()
        io.add_mouse_pos_event((x0 + x1) / 2, (y0 + y1) / 2)
        v.step()
        io.add_mouse_button_event(0, True)
        v.step()
        io.add_mouse_button_event(0, False)
        for _ in range(3):
            v.step()
        items = rec.new_frame()
        rects = [rect for kind, _, where, rect in items if where.endswith(inside)]
        assert rects, f"{target}: the panel did not open"
        assert 0 <= rects[-1][1] and rects[-1][3] <= 800, f"{target}: {inside} is not on screen ({rects[-1]})"


def test_the_model_panel_shows_the_training_images(make_viewer):
    """Issue 16, item 11: what the bundled model draws, next to it (assets/default.training.png, .about.txt)."""
    from app.main import default_model
    from app.widgets.model import ModelWidget
    backend = FakeBackend()
    v = make_viewer(lambda path: backend)
    v.open_model(str(default_model()))
    settle(v)
    v.step()
    w = widget(v, ModelWidget)
    assert w.strip is not None and w.strip.shape == (64, 512, 3)
    assert "not photographs of faces" in w.about_text


class FlatBackend(FakeBackend):
    def render(self, request, branch):
        res = super().render(request, branch)
        res.image = res.image * 0 + 40
        return res


def test_untrained_looking_weights_get_a_note(make_viewer):
    from app.widgets.model import ModelWidget
    backends = {"flat.pkl": FlatBackend(), "fake.pkl": FakeBackend()}
    v = make_viewer(lambda path: backends[path])
    v.open_model("flat.pkl")
    settle(v)
    assert widget(v, ModelWidget).flat_panes() == ["sr2d", "direct3d", "student"]
    v.open_model("fake.pkl")
    run_until(v, lambda: v.renderer.backend is backends["fake.pkl"] and v.settled())
    assert widget(v, ModelWidget).flat_panes() == []


def test_random_weight_fixture_gets_the_untrained_note_and_the_bundled_model_does_not(make_viewer, eg3d_fixture_dir):
    from app.main import default_model
    from app.widgets.model import ModelWidget
    v = make_viewer(None)
    v.open_model(str(eg3d_fixture_dir / "network.pkl"))
    settle(v, timeout=300)
    assert widget(v, ModelWidget).flat_panes() == ["sr2d"]     # EG3D's random-weight fixture: nearly black
    v.open_model(str(default_model()))
    run_until(v, lambda: v.info is not None and v.info.name == "default.pkl" and v.settled(), timeout=300)
    assert widget(v, ModelWidget).flat_panes() == []


def test_panel_texts_wrap_inside_the_sidebar(make_viewer, monkeypatch):
    """Issue 16, item 10: help and status texts ran past the sidebar's edge at every window size."""
    from tests.app.test_every_control import Recorder
    from app.main import default_model
    backend = FakeBackend()
    v = make_viewer(lambda path: backend, 1280, 3000)
    v.model_backend = lambda: backend
    v.open_model(str(default_model()))      # its long "about" line too
    settle(v)
    rec = Recorder(monkeypatch, open_all=True, extra=("text_colored", "text"))
    v.step()
    v.step()
    items = rec.new_frame()
    texts = [(where, rect) for kind, _, where, rect in items
             if kind in ("text_colored", "text") and where.startswith("Trident")]   # the sidebar, not the panes
    assert len(texts) > 20
    edge = imgui.get_font_size() * 26          # the sidebar's width (PANEL_WIDTH_EM)
    over = [(where[:60], round(rect[2])) for where, rect in texts if rect[2] > edge]
    assert not over, over


def test_lock_step_panes_show_the_same_blend_during_the_loop(make_viewer):
    """Issue 16, item 6: during the interpolation loop the three panes showed three different blend values."""
    v, _ = open_fake(make_viewer, FakeBackend(delay_s=0.01))
    v.state.render.lockstep = True
    v.state.latent.interp_animate, v.state.latent.interp_speed = True, 0.5
    shown = set()
    for _ in range(300):
        v.step()
        blends = {p.result.request.latent.interp_t for p in v.panes.values() if p.result is not None}
        assert len(blends) == 1, blends                  # every pane shows the same frame of the loop
        shown |= blends
    assert len(shown) > 3                                # and the loop does advance
    v.state.latent.interp_animate = False
    settle(v)
