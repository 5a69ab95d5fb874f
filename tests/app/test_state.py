"""Pure viewer logic (no GL): orbit math, requests from the UI state, layout."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.orbit import PITCH_LIMIT, drag_orbit, look_at_view, mesh_camera, pingpong, reduced_resolution, wheel_zoom
from app.requests import LatentBank
from app.state import MOVE_SETTLE_S, ViewerState
from app.viewer import grid_layout
from tests.app.fake_backend import FakeBackend


def test_drag_across_the_pane_turns_by_pi_and_pitch_is_clamped():
    yaw, pitch = drag_orbit(0.0, 0.0, 400.0, 0.0, 400.0)
    assert yaw == pytest.approx(-math.pi) and pitch == 0.0
    _, pitch = drag_orbit(0.0, 0.0, 0.0, 10_000.0, 400.0)
    assert pitch == pytest.approx(-PITCH_LIMIT)


def test_wheel_zoom_moves_closer_and_stays_in_range():
    assert wheel_zoom(2.7, 1) == pytest.approx(2.43)
    assert wheel_zoom(2.7, -1) > 2.7
    assert wheel_zoom(2.7, 1000) >= 0.3 and wheel_zoom(2.7, -1000) <= 30.0


def test_pingpong_loops():
    assert pingpong(0.0) == pytest.approx(0.0) and pingpong(0.5) == pytest.approx(1.0)
    assert pingpong(1.0) == pytest.approx(0.0, abs=1e-12)


def test_request_drops_resolution_while_moving_and_restores_it():
    info = FakeBackend().info
    s = ViewerState()
    s.render.resolution = 64
    assert s.request(info, now=10.0).resolution == 64
    s.mark_moving(10.0)
    assert s.request(info, now=10.0).resolution == reduced_resolution(64) == 32
    assert s.request(info, now=10.0 + MOVE_SETTLE_S + 0.01).resolution == 64
    s.render.adaptive = False
    s.mark_moving(20.0)
    assert s.request(info, now=20.0).resolution == 64


def test_request_uses_model_defaults_and_all_branches():
    info = FakeBackend(branches=("sr2d", "student")).info
    r = ViewerState().request(info, now=0.0)
    assert r.resolution is None and r.depth_samples is None and r.importance_samples is None
    assert r.branches == ("sr2d", "student") and r.deterministic


def test_latent_spec_mixing_and_stored_latent():
    s = ViewerState().latent
    assert s.spec().mix_seed is None and s.spec().stored is None
    s.mix_enabled, s.mix_seed, s.mix_lo, s.mix_hi = True, 5, 2, 6
    assert s.spec().mix_seed == 5 and s.spec().mix_range == (2, 6)
    bank = LatentBank()
    key = bank.add(np.zeros((1, 14, 8), np.float32))
    s.stored, s.use_stored = key, True
    assert s.spec().stored == key and bank.get(key).shape == (14, 8)
    assert hash(s.spec()) == hash(s.spec())  # requests are cache keys


def test_grid_layout_prefers_the_largest_panes():
    assert grid_layout(3, 900, 300) == (3, 1, 300)
    cols, rows, side = grid_layout(4, 600, 600)
    assert (cols, rows, side) == (2, 2, 300)
    assert grid_layout(1, 500, 200)[2] == 200


def test_three_panes_fill_a_row_at_the_default_window_size():
    """Issue 16, item 10: 1280x800 minus the control panel showed a 2x2 grid with an empty slot."""
    assert grid_layout(3, 1280 - 338, 800)[:2] == (3, 1)
    assert grid_layout(3, 500, 1000)[:2] == (1, 3)
    assert grid_layout(3, 600, 600)[:2] == (2, 2)     # a row would be far smaller: the hole is the lesser evil


def test_mesh_camera_looks_at_the_centre():
    mv, proj = mesh_camera(0.3, 0.2, 3.0, np.array([0.1, 0.0, 0.2], np.float32), 30.0, 1.0)
    centre = mv @ np.array([0.1, 0.0, 0.2, 1.0])
    assert centre[:2] == pytest.approx([0, 0], abs=1e-5) and centre[2] == pytest.approx(-3.0, abs=1e-5)
    clip = proj @ centre
    assert -1 < clip[2] / clip[3] < 1  # inside the depth range
    r = look_at_view(np.array([0, 0, 5.0]), np.zeros(3))[:3, :3]
    assert r @ r.T == pytest.approx(np.eye(3), abs=1e-6)


def test_idle_ui_rate_is_not_reported_as_a_low_frame_rate():
    """Issue 16, item 10: an idle viewer read "UI 4 FPS", which looks like a fault."""
    from app.widgets.perf import ui_rate_line
    assert "idle, not redrawing" in ui_rate_line(4.0, 60, idle=True) and "4 FPS" not in ui_rate_line(4.0, 60, True)
    assert ui_rate_line(58.4, 60, idle=False) == "UI 58 FPS (limit 60)"


def test_depth_view_has_a_legend():
    """Issue 16, item 10: the depth colour map had no key."""
    from app.panes import depth_legend
    assert depth_legend(2.31, 3.05, "depth") == "depth: light 2.31 (near) .. dark 3.05 (far)"
