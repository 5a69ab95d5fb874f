"""calibrate-pose mechanics (core.tools.photo.calibrate): renders of a stub generator whose "faces" are the posed
five-point template drawn as dots, read by a stub detector that finds the dots; an injected pitch/yaw bias is
recovered. (No real face model ships here; the command's refusal is checked on the EG3D fixture.)"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from core.cameras import Camera
from core.tools.photo.calibrate import CalibrationSample, calibrate_pose, fit_calibration
from core.tools.photo.camera import (CENTER_224, CalibrationError, PoseCalibration, estimate_pose,
                                     label_head_angles, project_template)
from core.tools.photo.mtcnn import Face

RES = 256


class DotFaceGenerator:
    """Draws the template's five points as the head that ``camera`` sees, turned by ``bias`` (pitch, yaw; radians)
    on top: the detector then sees a head pose that differs from the camera's by a known amount."""

    def __init__(self, bias: tuple[float, float]):
        self.bias = np.array([*bias, 0.0])

    def ws_from_seed(self, seed: int, truncation_psi: float = 1.0) -> torch.Tensor:
        rng = np.random.default_rng(seed)                       # per-seed head placement
        return torch.tensor([[*rng.uniform(-0.05, 0.05, 2), rng.uniform(-0.5, 0.5)]])

    def camera_label(self, yaw: float = 0.0, pitch: float = 0.0) -> torch.Tensor:
        return Camera.frontal_offset(yaw, pitch).to_label()

    def render(self, branch: str, ws: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        angles = np.array(label_head_angles(c.numpy().reshape(-1))) - self.bias
        pts = project_template(angles, ws.numpy().reshape(-1))            # 224 px frame, y up
        pts = (pts - CENTER_224) * 1.4 + RES / 2
        pts[:, 1] = RES - 1 - pts[:, 1]
        yy, xx = np.mgrid[0:RES, 0:RES]
        img = np.zeros((RES, RES))
        for x, y in pts:
            img = np.maximum(img, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0 ** 2)))
        t = torch.from_numpy(img).float()[None].expand(3, -1, -1) * 2 - 1
        return {"image": t[None]}


class DotDetector:
    """Finds the five dots (intensity-weighted centroids) and names them as MTCNN does."""

    calls = 0

    def detect(self, img: np.ndarray) -> list[Face]:
        DotDetector.calls += 1
        g = img[..., 0].astype(float)
        labels, n = ndimage.label(g > 60)
        if n != 5:
            return []
        pts = np.array(ndimage.center_of_mass(g, labels, range(1, 6)))[:, ::-1]      # (x, y)
        pts = pts[np.argsort(pts[:, 1])]
        eyes, nose, mouth = pts[:2], pts[2:3], pts[3:]
        lm = np.concatenate([eyes[np.argsort(eyes[:, 0])], nose, mouth[np.argsort(mouth[:, 0])]])
        box = (*(lm.min(0) - 20), *(lm.max(0) + 20))
        return [Face(tuple(float(v) for v in box), 0.99, lm)]


@pytest.mark.parametrize("bias_deg", [(12.0, 0.0), (-8.0, 5.0)])
def test_recovers_an_injected_bias(bias_deg):
    bias = tuple(math.radians(v) for v in bias_deg)
    yaws, pitches = [math.radians(v) for v in (-20, 0, 20)], [math.radians(v) for v in (-10, 0, 10)]
    DotDetector.calls = 0
    cal, samples = calibrate_pose(DotFaceGenerator(bias), DotDetector(), [0, 1], yaws, pitches)
    assert DotDetector.calls == len(samples) == 18
    assert all(s.estimated is not None for s in samples)
    assert math.degrees(cal.pitch) == pytest.approx(bias_deg[0], abs=0.5)
    assert math.degrees(cal.yaw) == pytest.approx(bias_deg[1], abs=0.5)
    assert cal.samples == 18 and cal.rms_deg < 1.0
    # without the bias the same renders need (almost) no correction
    plain, _ = calibrate_pose(DotFaceGenerator((0.0, 0.0)), DotDetector(), [0], yaws, pitches)
    assert abs(math.degrees(plain.pitch)) < 0.5 and abs(math.degrees(plain.yaw)) < 0.5


def test_applied_calibration_corrects_the_estimate():
    bias = (math.radians(10.0), math.radians(-4.0))
    gen, det = DotFaceGenerator(bias), DotDetector()
    cal, _ = calibrate_pose(gen, det, [0, 1], [math.radians(-15), math.radians(15)], [0.0, math.radians(8)])
    label = gen.camera_label(math.radians(10), math.radians(-5))
    img = ((gen.render("sr2d", gen.ws_from_seed(7), label)["image"][0].permute(1, 2, 0) + 1) * 127.5).byte().numpy()
    pose = estimate_pose(det.detect(img)[0].landmarks, RES)
    truth = np.degrees(label_head_angles(label.numpy().reshape(-1))[:2])
    assert np.abs(np.degrees(pose.angles[:2]) - truth).max() > 3.5                   # biased
    np.testing.assert_allclose(np.degrees(cal.apply(pose).angles[:2]), truth, atol=0.7)  # corrected


def test_too_few_faces_is_an_error():
    miss = CalibrationSample(0, (0.0, 0.0), (0.0, 0.0), None)
    hit = CalibrationSample(0, (0.0, 0.0), (0.1, 0.0), (0.0, 0.0))
    with pytest.raises(CalibrationError, match="only 2 of 5 renders had a detectable face"):
        fit_calibration([hit, hit, miss, miss, miss])
    assert fit_calibration([hit] * 3).pitch == pytest.approx(0.1)


def test_command_refuses_a_model_without_faces_and_writes_nothing(eg3d_fixture_dir, tmp_path, capsys):
    from core.__main__ import main
    out = tmp_path / "cal.json"
    rc = main(["calibrate-pose", "--network", str(eg3d_fixture_dir / "network.pkl"), "--seeds", "0",
               "--yaws", "0", "--pitches", "0", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().splitlines()[-1] == ("error: only 0 of 1 renders had a detectable face (need 3); calibrate a "
                                            "model that renders faces")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert PoseCalibration.for_network(eg3d_fixture_dir / "network.pkl") is None
