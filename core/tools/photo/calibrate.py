"""Calibrating the landmark camera estimate against a model's own faces.

A five-landmark fit reads pitch too high on real faces (the detector's "nose tip" is not the template's vertex),
and by how much depends on the faces. The model can tell: render its faces at known cameras (look-at orbit
cameras around its pivot, several seeds), run the same detector and estimator on the renders, and compare the
estimated head angles with the head angles of the cameras that rendered them (:func:`camera.label_head_angles`).
The correction is the mean of (true - estimated) pitch and yaw, the least-squares constant offset; it is stored
beside the model (:class:`camera.PoseCalibration`).

``model`` needs ``camera_label(yaw, pitch)``, ``ws_from_seed(seed, truncation_psi)`` and
``render(branch, ws, c) -> {"image": [1, 3, H, W] in [-1, 1]}`` (:class:`core.model.Model` has them); ``detector``
needs ``detect(uint8 [H, W, 3]) -> list[Face]`` (:class:`mtcnn.MTCNN`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...files.image_io import to_uint8
from ..progress import CancelFlag, ProgressFn, check_cancel, report
from .align import MIN_SCORE
from .camera import CalibrationError, PoseCalibration, estimate_pose, label_head_angles

__all__ = ["CalibrationSample", "calibrate_pose", "fit_calibration", "describe"]


@dataclass(frozen=True)
class CalibrationSample:
    """One render: the seed, the orbit offsets (radians) it was rendered at, true and estimated head angles
    (pitch, yaw; radians), or ``estimated`` None when no face was detected."""

    seed: int
    orbit: tuple[float, float]
    true: tuple[float, float]
    estimated: tuple[float, float] | None


def fit_calibration(samples: list[CalibrationSample], min_samples: int = 3) -> PoseCalibration:
    """The constant (pitch, yaw) offset minimising the squared error over the renders with a detected face."""
    used = [s for s in samples if s.estimated is not None]
    if len(used) < min_samples:
        raise CalibrationError(f"only {len(used)} of {len(samples)} renders had a detectable face (need "
                               f"{min_samples}); calibrate a model that renders faces")
    diff = np.array([np.subtract(s.true, s.estimated) for s in used])          # [N, 2] pitch, yaw
    offset = diff.mean(axis=0)
    rms = float(np.degrees(np.sqrt(np.mean((diff - offset) ** 2))))
    return PoseCalibration(pitch=float(offset[0]), yaw=float(offset[1]), samples=len(used), rms_deg=rms)


def calibrate_pose(model, detector, seeds: list[int], yaws: list[float], pitches: list[float],
                   branch: str = "sr2d", truncation_psi: float = 0.7, min_score: float = MIN_SCORE,
                   progress: ProgressFn | None = None, cancel: CancelFlag = None
                   ) -> tuple[PoseCalibration, list[CalibrationSample]]:
    """Render every seed at every (yaw, pitch) orbit offset (radians), estimate, fit -> (calibration, samples)."""
    total = len(seeds) * len(yaws) * len(pitches)
    samples: list[CalibrationSample] = []
    for seed in seeds:
        ws = model.ws_from_seed(seed, truncation_psi)
        for yaw in yaws:
            for pitch in pitches:
                check_cancel(cancel)
                label = model.camera_label(yaw, pitch)
                img = to_uint8(model.render(branch, ws, label)["image"][0])
                true = label_head_angles(label.detach().cpu().numpy().reshape(-1))[:2]
                faces = [f for f in detector.detect(img) if f.score > min_score]
                est = None
                if faces:
                    est = estimate_pose(faces[0].landmarks, img.shape[0]).angles[:2]
                samples.append(CalibrationSample(seed, (yaw, pitch), true, est))
                report(progress, "renders", len(samples), total, preview=img)
    return fit_calibration(samples), samples


def describe(cal: PoseCalibration, samples: list[CalibrationSample]) -> str:
    """One line: offsets, error before and after, renders used."""
    used = [s for s in samples if s.estimated is not None]
    before = math.degrees(math.sqrt(np.mean([np.subtract(s.true, s.estimated) ** 2 for s in used])))
    return (f"pitch offset {math.degrees(cal.pitch):+.2f} deg, yaw offset {math.degrees(cal.yaw):+.2f} deg; "
            f"RMS error {before:.2f} deg before, {cal.rms_deg:.2f} deg after; {len(used)} of {len(samples)} renders "
            f"had a face")
