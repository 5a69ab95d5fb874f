"""The Inversion panel's head-pose gizmo geometry (``app.widgets.head_gizmo``): the same camera convention as
``core.cameras``, frontal = the nose seen end-on, the side a turned face looks to, mirrored photos -> mirrored
gizmo. Pure functions, no window (the gizmo drawn in the panel is checked in tests/app/test_jobs_in_app.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.widgets.head_gizmo import camera_axes, head_gizmo
from core.conventions import DEFAULT_PIVOT, DEFAULT_RADIUS
from core.tools.photo.camera import estimate_pose, label_orbit_deg, pose_to_label, project_template

ANGLES = [(0.0, 0.0), (0.3, 0.0), (-0.5, 0.1), (0.0, -0.35), (0.2, 0.3), (-0.8, -0.4)]


def nose(g):
    (x0, y0), (x1, y1) = g.segments["nose"]
    return x1 - x0, y1 - y0


def test_frontal_camera_sees_the_nose_end_on_and_the_head_upright():
    g = head_gizmo(0.0, 0.0, (50.0, 40.0), 10.0)
    assert nose(g) == pytest.approx((0.0, 0.0), abs=1e-9) and g.front["nose"]
    assert g.segments["side"][1] == pytest.approx((60.0, 40.0))   # the person's left on the image's right
    assert g.segments["up"][1] == pytest.approx((50.0, 30.0))     # up is up (screen y grows downwards)


@pytest.mark.parametrize("yaw,pitch", ANGLES)
def test_camera_axes_are_core_cameras_look_at_columns(yaw, pitch):
    from core.cameras import lookat_cam2world
    c2w = lookat_cam2world(math.pi / 2 + yaw, math.pi / 2 + pitch, DEFAULT_PIVOT, DEFAULT_RADIUS)[0].double().numpy()
    right, down, forward = camera_axes(yaw, pitch)
    assert np.allclose(np.stack([right, down, forward], 1), c2w[:3, :3], atol=1e-6)


@pytest.mark.parametrize("yaw,pitch", ANGLES)
def test_mirrored_camera_gives_the_mirrored_gizmo(yaw, pitch):
    a, b = head_gizmo(yaw, pitch, (0.0, 0.0), 1.0), head_gizmo(-yaw, pitch, (0.0, 0.0), 1.0)
    for name in ("nose", "up"):
        (ax, ay), (bx, by) = a.segments[name][1], b.segments[name][1]
        assert (bx, by) == pytest.approx((-ax, ay), abs=1e-9)
    (ax, ay), (bx, by) = a.segments["side"][1], b.segments["side"][1]
    assert (bx, by) == pytest.approx((ax, -ay), abs=1e-9)         # the ear-to-ear axis flips end for end


def _photo_landmarks(head_yaw_deg: float, head_pitch_deg: float, mirror: bool = False, width: int = 900):
    """The face template turned by a known head pose and placed in a photo (pixels, y down), optionally mirrored."""
    lm = project_template(np.radians([head_pitch_deg, head_yaw_deg, 0.0]), np.array([0.0, 0.0, 0.2])) * 2.7
    lm = lm + np.array([300.0, 300.0])
    lm[:, 1] = width - 1 - lm[:, 1]
    if mirror:
        lm[:, 0] = width - 1 - lm[:, 0]
        lm = lm[[1, 0, 2, 4, 3]]                                   # left/right eyes and mouth corners swap
    return lm


@pytest.mark.parametrize("head_yaw,head_pitch", [(20, 0), (-25, 0), (10, 15), (0, -20)])
def test_gizmo_nose_turns_where_the_photos_nose_turns(head_yaw, head_pitch):
    """The estimated camera of a photo (core's landmark fit and EG3D label, read as orbit offsets) drawn as a gizmo:
    its nose points the way the photo's nose sits relative to the eyes; the mirrored photo's gizmo is mirrored."""
    signs = []
    for mirror in (False, True):
        lm = _photo_landmarks(head_yaw, head_pitch, mirror)
        yaw_deg, pitch_deg = label_orbit_deg(pose_to_label(estimate_pose(lm, 900)))
        nx, ny = nose(head_gizmo(math.radians(yaw_deg), math.radians(pitch_deg)))
        photo_dx = lm[2, 0] - lm[:2, 0].mean()                     # nose tip relative to the eyes (pixels)
        if abs(head_yaw) >= 10:
            assert np.sign(nx) == np.sign(photo_dx) != 0
            assert abs(yaw_deg) > 5
        signs.append((yaw_deg, pitch_deg, nx, ny))
    (y0, p0, nx0, ny0), (y1, p1, nx1, ny1) = signs
    assert y1 == pytest.approx(-y0, abs=3.0) and p1 == pytest.approx(p0, abs=3.0)   # the tolerance
    assert (nx1, ny1) == pytest.approx((-nx0, ny0), abs=0.05)
