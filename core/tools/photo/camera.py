"""A camera estimate from five face landmarks: head pose fitted to the 3D template, then EG3D's conversion to a
25-float camera label.

**Fit.** Deep3DFaceRecon_pytorch (Deng et al., "Accurate 3D Face Reconstruction with Weakly-Supervised Learning",
CVPRW 2019, §3) poses a face in the BFM frame (x right, y up, z towards the viewer) by Euler angles
``(x, y, z)`` = (pitch, yaw, roll) with ``v' = Rz Ry Rx v + trans`` (``models/bfm.py: compute_rotation``) and
projects it with a pinhole camera at z = 10 looking down -z, focal 1015 px, principal point 112 on its 224 px crop
(``util/nvdiffrast.py``/``models/bfm.py: to_camera, to_image``). Its crop is ``align_img`` with
``rescale_factor=102``: landmarks (y flipped to point up) map to ``(lm - t) * 102 / s + 112`` with ``t, s`` from the
template fit of :func:`crop.pos_fit`. Instead of its regression network, the six pose parameters are fitted here to
the five landmarks by least squares on the reprojection error (a PnP with the template of :mod:`crop`).

**EG3D label** (NVlabs/eg3d: ``dataset_preprocessing/ffhq/3dface2idr_mat.py`` and
``preprocess_face_cameras.py --mode orig``): ``R = (Rz Ry Rx)^T``; ``trans_z -= 10``; ``c = -R trans``;
``c = 0.27 c + (0, 0.006, 0.161)``; cam2world rotation ``R diag(1, -1, -1)`` (OpenCV axes), position ``c`` rescaled
to radius 2.7; intrinsics ``fx = fy = 2985.29 / 700``, ``cx = cy = 0.5``.

Landmark-based pitch is biased on real photos (a detector's "nose tip" is not the template's vertex): treat the
estimate as the start of the inversion's camera optimisation, and use :class:`PoseCalibration` (fitted by
``python -m core calibrate-pose``) when the model has one.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import TridentError
from .crop import TEMPLATE_5PT, pos_fit

__all__ = ["HeadPose", "estimate_pose", "head_rotation", "project_template", "landmarks_to_224", "pose_to_label",
           "label_orbit_deg", "label_head_angles", "PoseCalibration", "CalibrationError", "FOCAL_224", "CENTER_224",
           "CAMERA_DISTANCE", "RESCALE_224", "EG3D_FOCAL", "EG3D_RADIUS"]

FOCAL_224 = 1015.0                 # Deep3DFaceRecon's focal length on its 224 px crop
CENTER_224 = 112.0                 # its principal point
CAMERA_DISTANCE = 10.0             # its camera sits at z = 10
RESCALE_224 = 102.0                # align_img's rescale_factor for the 224 crop
EG3D_FOCAL = 2985.29 / 700.0       # normalised focal of FFHQ labels (4.2647)
EG3D_RADIUS = 2.7                  # camera distance of FFHQ labels
EG3D_SCALE = 0.27                  # 3dface2idr_mat.py: position scale
EG3D_OFFSET = (0.0, 0.006, 0.161)  # 3dface2idr_mat.py: position offset


class CalibrationError(TridentError):
    """A pose calibration file is missing, unreadable or malformed; the message names the file."""


def head_rotation(angles: np.ndarray) -> np.ndarray:
    """(pitch, yaw, roll) radians -> Rz Ry Rx [3, 3] (column vectors: ``v' = M v``)."""
    x, y, z = (float(a) for a in angles)
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return rz @ ry @ rx


def project_template(angles: np.ndarray, trans: np.ndarray, template: np.ndarray = TEMPLATE_5PT) -> np.ndarray:
    """The posed template in Deep3DFaceRecon's 224 px frame (y up) -> [N, 2]."""
    v = template @ head_rotation(angles).T + np.asarray(trans, dtype=np.float64)
    depth = CAMERA_DISTANCE - v[:, 2]
    return FOCAL_224 * v[:, :2] / depth[:, None] + CENTER_224


def landmarks_to_224(landmarks: np.ndarray, height: int) -> np.ndarray:
    """Photo landmarks [5, 2] (pixels, y down) -> Deep3DFaceRecon's aligned 224 px frame (y up)."""
    lm = np.asarray(landmarks, dtype=np.float64).copy()
    lm[:, 1] = height - 1 - lm[:, 1]
    t, s = pos_fit(lm)
    return (lm - t) * (RESCALE_224 / s) + CENTER_224


@dataclass(frozen=True)
class HeadPose:
    """Fitted head pose: Euler angles (pitch, yaw, roll) in radians, translation, RMS reprojection error (224 px)."""

    angles: tuple[float, float, float]
    trans: tuple[float, float, float]
    rms_px: float

    @property
    def degrees(self) -> dict[str, float]:
        return {k: math.degrees(v) for k, v in zip(("pitch", "yaw", "roll"), self.angles)}


def estimate_pose(landmarks: np.ndarray, height: int) -> HeadPose:
    """Least-squares head pose for five landmarks (left eye, right eye, nose, left and right mouth corner; photo
    pixels, y down) in a photo ``height`` px tall."""
    target = landmarks_to_224(landmarks, height)

    def residual(p: np.ndarray) -> np.ndarray:
        return (project_template(p[:3], p[3:]) - target).reshape(-1)

    from scipy.optimize import least_squares  # imported here: scipy.optimize costs every command's startup

    fit = least_squares(residual, np.zeros(6), method="lm", x_scale=np.array([0.3, 0.3, 0.3, 0.1, 0.1, 1.0]))
    rms = float(np.sqrt(np.mean(fit.fun.reshape(-1, 2) ** 2) * 2))
    return HeadPose(tuple(float(v) for v in fit.x[:3]), tuple(float(v) for v in fit.x[3:]), rms)


def pose_to_label(pose: HeadPose) -> np.ndarray:
    """EG3D's camera label for a head pose -> float32 [25] (cam2world row-major + normalised intrinsics)."""
    r = head_rotation(pose.angles).T
    trans = np.array(pose.trans, dtype=np.float64)
    trans[2] -= CAMERA_DISTANCE
    c = -r @ trans * EG3D_SCALE + np.array(EG3D_OFFSET)
    cam2world = np.eye(4)
    cam2world[:3, :3] = r @ np.diag([1.0, -1.0, -1.0])
    cam2world[:3, 3] = c / np.linalg.norm(c) * EG3D_RADIUS
    k = np.array([[EG3D_FOCAL, 0, 0.5], [0, EG3D_FOCAL, 0.5], [0, 0, 1]])
    return np.concatenate([cam2world.reshape(-1), k.reshape(-1)]).astype(np.float32)


def label_head_angles(label: np.ndarray) -> tuple[float, float, float]:
    """The head angles (pitch, yaw, roll; radians) whose EG3D camera has ``label``'s rotation (inverse of the
    rotation part of :func:`pose_to_label`: ``Rz Ry Rx = diag(1, -1, -1) R_cam^T``)."""
    r_cam = np.asarray(label, dtype=np.float64).reshape(-1)[:16].reshape(4, 4)[:3, :3]
    m = np.diag([1.0, -1.0, -1.0]) @ r_cam.T
    return (math.atan2(m[2, 1], m[2, 2]), -math.asin(float(np.clip(m[2, 0], -1, 1))), math.atan2(m[1, 0], m[0, 0]))


def label_orbit_deg(label: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) offsets from the frontal view, degrees, of a label read as a look-at orbit camera (the
    convention of ``invert --yaw/--pitch``, there in radians)."""
    import torch

    from ..inversion import orbit_from_label

    yaw, pitch, _, _ = orbit_from_label(torch.as_tensor(np.asarray(label, dtype=np.float32)))
    return math.degrees(yaw), math.degrees(pitch)


@dataclass(frozen=True)
class PoseCalibration:
    """A model's correction of the landmark estimate: head angles + (pitch, yaw) offsets in radians (true angle
    minus estimated angle, averaged over the model's own renders), from ``python -m core calibrate-pose``."""

    pitch: float
    yaw: float
    samples: int = 0
    rms_deg: float = 0.0

    SUFFIX = ".pose.json"

    def apply(self, pose: HeadPose) -> HeadPose:
        p, y, r = pose.angles
        return HeadPose((p + self.pitch, y + self.yaw, r), pose.trans, pose.rms_px)

    @classmethod
    def path_for(cls, network: str | os.PathLike) -> Path:
        """Where a model's calibration is stored: beside it, ``<network>.pose.json``."""
        p = Path(network)
        return p.with_name(p.name + cls.SUFFIX)

    def to_json(self) -> str:
        return json.dumps({"pitch_offset_rad": self.pitch, "yaw_offset_rad": self.yaw, "samples": self.samples,
                           "rms_deg_after": self.rms_deg}, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PoseCalibration":
        p = Path(path)
        try:
            raw = json.loads(p.read_text())
            return cls(float(raw["pitch_offset_rad"]), float(raw["yaw_offset_rad"]), int(raw.get("samples", 0)),
                       float(raw.get("rms_deg_after", 0.0)))
        except OSError as e:
            raise CalibrationError(f"cannot read pose calibration {p}: {e.strerror or e}") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CalibrationError(f"{p} is not a pose calibration (JSON with pitch_offset_rad, yaw_offset_rad)") \
                from None

    @classmethod
    def for_network(cls, network: str | os.PathLike) -> "PoseCalibration | None":
        """The calibration stored beside ``network``, or None when there is none."""
        p = cls.path_for(network)
        return cls.load(p) if p.is_file() else None
