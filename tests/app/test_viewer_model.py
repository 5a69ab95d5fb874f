"""The viewer on the real EG3D fixture model (CPU): non-blank panes, a mouse drag moves the camera and changes the
render, a corrupt pickle opened from the app shows an error while the app keeps running."""
from __future__ import annotations

import numpy as np
import pytest

from tests.app.conftest import run_until, settle
from tests.app.test_viewer_fake import drag
from tests.conftest import EG3D_FIXTURE, require

pytestmark = pytest.mark.slow   # each test starts the viewer app


@pytest.fixture
def fixture_viewer(make_viewer, tmp_path):
    from app.model_backend import ModelBackend
    v = make_viewer(lambda path: ModelBackend.open(path, "cpu", v.bank), 900, 480)
    v.state.render.resolution = 32     # small renders keep the test fast; the model's own is 64
    v.state.render.depth_samples = v.state.render.importance_samples = 8
    v.open_model(str(require(EG3D_FIXTURE / "network.pkl")))
    return v


def test_fixture_model_panes_show_renders_and_drag_changes_them(fixture_viewer, tmp_path):
    v = fixture_viewer
    settle(v)
    assert v.info.branches == ("sr2d",) and v.info.img_resolution == 128
    pane = v.panes["sr2d"]
    assert pane.error is None and pane.result.image.shape == (128, 128, 3)
    assert pane.result.raw.shape == (32, 32, 3) and pane.result.depth.shape == (32, 32)
    views = {}
    for view in ("rgb", "raw", "depth", "normals"):
        v.state.render.view = view
        v.step()
        views[view] = pane.read()
        assert views[view].reshape(-1, 3).std(0).max() > 5, f"{view} view is blank"
    v.state.render.view = "raw"
    v.step()
    before_yaw, before = v.state.camera.yaw, pane.result.raw.copy()
    inp = pane.last_input
    drag(v, (inp.origin[0] + inp.size_px / 2, inp.origin[1] + inp.size_px / 2), (inp.size_px / 3, inp.size_px / 8))
    assert v.state.camera.yaw < before_yaw - 0.5 and v.state.camera.pitch < 0
    settle(v)
    after = pane.result.raw
    assert pane.result.request.camera.yaw == pytest.approx(v.state.camera.yaw, abs=1e-4)
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0
    assert len(v.branch_ms["sr2d"]) >= 2 and all(ms > 0 for ms in v.branch_ms["sr2d"])


def test_corrupt_pickle_dropped_on_the_app_shows_an_error_and_the_app_keeps_running(fixture_viewer, tmp_path):
    v = fixture_viewer
    settle(v)
    good = v.info
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(require(EG3D_FIXTURE / "network.pkl").read_bytes()[:5000])  # a truncated pickle
    v.window._on_drop(v.window.handle, [str(broken)])  # what GLFW calls when a file is dropped on the window
    run_until(v, lambda: v.load_error is not None and v.renderer.idle, timeout=60)
    assert v.load_error.startswith("could not open broken.pkl: ") and "\n" not in v.load_error
    assert v.info is good and list(v.panes) == ["sr2d"]     # the previous model stays
    v.state.latent.seed = 3                                  # and keeps rendering
    settle(v)
    assert v.panes["sr2d"].result.request.latent.seed == 3 and v.panes["sr2d"].error is None
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"\x80\x04not a pickle at all")
    v.open_model(str(garbage))
    run_until(v, lambda: v.renderer.idle and "garbage.pkl" in (v.load_error or ""), timeout=60)
