"""Camera estimate from five landmarks (core.tools.photo.camera): synthetic recovery, mirror symmetry on a real
photo, EG3D's label conversion."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.cameras import flip_yaw_label
from core.tools.photo.camera import (EG3D_FOCAL, HeadPose, PoseCalibration, CalibrationError, estimate_pose,
                                     label_head_angles, pose_to_label, project_template)

from .photo_fixtures import astronaut, detector, mirrored


def _synthetic_landmarks(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0, height: int = 900):
    """The template posed and projected by Deep3DFaceRecon's camera, placed in a photo (scaled, shifted, y down)."""
    angles = np.radians([pitch_deg, yaw_deg, roll_deg])
    lm = project_template(angles, np.array([0.04, -0.08, 0.2]))
    photo = lm * 2.7 + np.array([250.0, 180.0])
    photo[:, 1] = height - 1 - photo[:, 1]
    return photo, height


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (15, 0), (-30, 0), (0, 15), (0, -25), (20, 15), (-25, -15), (30, 20),
                                       (-15, 25)])
def test_recovers_known_yaw_and_pitch_from_template_landmarks(yaw, pitch):
    lm, h = _synthetic_landmarks(yaw, pitch, roll_deg=4.0)
    pose = estimate_pose(lm, h)
    assert pose.degrees["yaw"] == pytest.approx(yaw, abs=2.0)
    assert pose.degrees["pitch"] == pytest.approx(pitch, abs=2.0)
    assert pose.degrees["roll"] == pytest.approx(4.0, abs=2.0)
    assert pose.rms_px < 0.5


def test_mirrored_photo_gives_mirrored_yaw_same_pitch():
    a = estimate_pose(detector().detect(astronaut())[0].landmarks, 512)
    b = estimate_pose(detector().detect(mirrored())[0].landmarks, 512)
    assert abs(a.degrees["yaw"]) < 10                              # she looks at the camera
    assert b.degrees["yaw"] == pytest.approx(-a.degrees["yaw"], abs=3.0)
    assert b.degrees["pitch"] == pytest.approx(a.degrees["pitch"], abs=3.0)
    la, lb = pose_to_label(a), pose_to_label(b)
    # the mirrored photo's camera is EG3D's flip_yaw of the photo's camera
    np.testing.assert_allclose(lb, flip_yaw_label(torch.from_numpy(la)).numpy(), atol=0.08)


def test_label_is_eg3d_format_and_frontal_pose_is_frontal_camera():
    label = pose_to_label(HeadPose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0))
    assert label.shape == (25,) and label.dtype == np.float32
    pose = label[:16].reshape(4, 4)
    np.testing.assert_allclose(pose[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-6)   # OpenCV: looks down -z
    assert np.linalg.norm(pose[:3, 3]) == pytest.approx(2.7, abs=1e-5)
    # 0.27 * (0, 0, 10) + (0, 0.006, 0.161), rescaled to radius 2.7
    np.testing.assert_allclose(pose[:3, 3], np.array([0, 0.006, 2.861]) / 2.861 * 2.7, atol=1e-5)
    np.testing.assert_allclose(pose[3], [0, 0, 0, 1])
    np.testing.assert_allclose(label[16:], [EG3D_FOCAL, 0, 0.5, 0, EG3D_FOCAL, 0.5, 0, 0, 1], atol=1e-6)
    assert EG3D_FOCAL == pytest.approx(4.2647, abs=1e-4)


@pytest.mark.parametrize("angles", [(0.2, -0.4, 0.1), (-0.3, 0.5, -0.05)])
def test_label_rotation_inverts_to_head_angles(angles):
    label = pose_to_label(HeadPose(angles, (0.1, 0.0, 0.5), 0.0))
    np.testing.assert_allclose(label_head_angles(label), angles, atol=1e-5)
    # turning the head to its left (positive yaw) moves EG3D's camera towards -x
    if angles[1] > 0:
        assert label[3] < 0


def test_calibration_file_round_trip_and_errors(tmp_path):
    cal = PoseCalibration(pitch=-0.3, yaw=0.02, samples=12, rms_deg=1.5)
    net = tmp_path / "model.pkl"
    assert PoseCalibration.for_network(net) is None
    PoseCalibration.path_for(net).write_text(cal.to_json())
    back = PoseCalibration.for_network(net)
    assert back == cal
    fixed = back.apply(HeadPose((0.4, 0.1, 0.0), (0, 0, 0), 1.0))
    assert fixed.angles == pytest.approx((0.1, 0.12, 0.0))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CalibrationError, match="not a pose calibration"):
        PoseCalibration.load(tmp_path / "bad.json")
    with pytest.raises(CalibrationError, match="cannot read"):
        PoseCalibration.load(tmp_path / "missing.json")
    assert math.isfinite(back.rms_deg)
