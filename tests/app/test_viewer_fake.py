"""The real viewer (window, widgets, panes, shaders, async renderer) with the deterministic FakeBackend:
screenshots against golden PNGs, per-view pane images, errors shown in a pane, mouse orbit."""
from __future__ import annotations

import numpy as np

from app.widgets.perf import PerfWidget
from tests.app.conftest import assert_matches_golden, run_until, settle
from tests.app.fake_backend import FakeBackend


def open_fake(make_viewer, backend=None, width=960, height=540):
    backend = backend or FakeBackend()
    v = make_viewer(lambda path: backend, width, height)
    v.widgets = [w for w in v.widgets if not isinstance(w, PerfWidget)]  # timings vary run to run
    v.open_model("fake.pkl")
    return v, backend


def test_window_matches_golden(make_viewer):
    v, _ = open_fake(make_viewer)
    v.outdir = "~/outputs"   # the Model panel shows it; the test's temporary folder changes run to run
    shot = settle(v)
    assert list(v.panes) == ["sr2d", "direct3d", "student"]
    assert_matches_golden(shot, "fake_window")


def test_views_through_the_display_shader_match_golden(make_viewer):
    v, _ = open_fake(make_viewer)
    settle(v)
    for view in ("rgb", "raw", "depth", "normals"):
        v.state.render.view = view
        v.step()
        assert_matches_golden(v.panes["sr2d"].read(), f"fake_pane_{view}")
    assert not v.panes["student"].available("depth")  # the student has no depth: the pane says so
    v.state.render.view = "depth"
    v.step()
    depth, normals = v.panes["sr2d"].read(), None
    v.state.render.view = "normals"
    v.step()
    normals = v.panes["sr2d"].read()
    assert np.abs(depth.astype(int) - normals.astype(int)).mean() > 10


def test_renderer_exception_is_shown_in_its_pane_and_the_app_keeps_running(make_viewer):
    v, backend = open_fake(make_viewer, FakeBackend(fail=("direct3d",)))
    settle(v)
    assert v.panes["direct3d"].error == "unexpected error: direct3d exploded (test)"
    assert v.panes["sr2d"].error is None and v.panes["sr2d"].result is not None
    v.state.latent.seed = 7
    settle(v)
    assert v.panes["sr2d"].result.request.latent.seed == 7


def drag(v, start, delta, steps=6):
    """Press the left button at ``start`` (window pixels), move by ``delta`` over ``steps`` frames, release."""
    io = __import__("imgui_bundle").imgui.get_io()
    x, y = start
    io.add_mouse_pos_event(x, y)
    v.step()
    io.add_mouse_button_event(0, True)
    v.step()
    for i in range(1, steps + 1):
        io.add_mouse_pos_event(x + delta[0] * i / steps, y + delta[1] * i / steps)
        v.step()
    io.add_mouse_button_event(0, False)
    v.step()


def test_mouse_drag_orbits_and_wheel_zooms(make_viewer):
    v, backend = open_fake(make_viewer)
    v.state.render.resolution = 64
    settle(v)
    before = v.panes["sr2d"].read()
    pane = v.panes["sr2d"].last_input
    centre = (pane.origin[0] + pane.size_px / 2, pane.origin[1] + pane.size_px / 2)
    drag(v, centre, (pane.size_px / 4, 0))
    assert v.state.camera.yaw < -0.5 and abs(v.state.camera.pitch) < 1e-6
    moving = [r for r, b in backend.calls if r.camera.yaw != 0.0]
    assert moving and moving[0].resolution == 32  # lower resolution while the camera moves
    settle(v)
    assert v.panes["sr2d"].result.request.resolution == 64  # full resolution once it stops
    assert np.abs(v.panes["sr2d"].read().astype(int) - before.astype(int)).mean() > 2
    io = __import__("imgui_bundle").imgui.get_io()
    r0 = v.state.camera.radius
    io.add_mouse_wheel_event(0.0, 1.0)
    v.step()
    assert v.state.camera.radius < r0


def test_latent_animation_and_auto_orbit_advance(make_viewer):
    v, backend = open_fake(make_viewer)
    settle(v)
    v.state.latent.interp_animate, v.state.latent.interp_speed = True, 1.0
    v.state.camera.auto_orbit = True
    run_until(v, lambda: v.state.latent.interp_t > 0.05, min_frames=10)
    assert v.state.camera.yaw != 0.0
    v.state.latent.interp_animate = v.state.camera.auto_orbit = False
    settle(v)
    assert v.panes["sr2d"].result.request.latent.interp_t == round(v.state.latent.interp_t, 4)
