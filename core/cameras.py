"""Cameras in EG3D's conventions (EG3D ``camera_utils.py``, ``docs/camera_conventions.md``).

* World: y up. The canonical object sits near the origin; FFHQ-like models orbit the pivot (0, 0, 0.2).
* Camera: OpenCV cam2world (x right, y down, z forward = viewing direction), as a 4x4 matrix.
* Intrinsics: normalised by the image side: [[f, skew, cx], [0, f, cy], [0, 0, 1]] with cx = cy = 0.5.
* Network label (25 floats): cam2world row-major (16) + intrinsics row-major (9). Only the network boundary uses
  it (:meth:`Camera.to_label` / :meth:`Camera.from_label`); everything else passes :class:`Camera`.
* Orbit angles: yaw (horizontal, "theta") and pitch (vertical, "v") as EG3D's ``LookAtPoseSampler``: the frontal
  view is yaw = pitch = pi/2; the polar angle is phi = arccos(1 - 2 v / pi) (not linear in v); the camera sits on a
  sphere of the given radius around the *world origin* and looks at the pivot.
* FOV: EG3D's helper converts with 3.14159 and a 1.414 factor: f = 1 / (tan(fov * 3.14159 / 360) * 1.414).
  18.837 deg -> f = 4.26339 (FFHQ labels use 4.2647; the true vertical FOV of that focal is 13.37 deg).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .conventions import DEFAULT_FOV_DEG, DEFAULT_PIVOT, DEFAULT_RADIUS

EG3D_PI = 3.14159          # the constant inside FOV_to_intrinsics
EG3D_SQRT2 = 1.414         # the factor inside FOV_to_intrinsics


def fov_to_focal(fov_deg: float) -> float:
    """Normalised focal length from EG3D's field-of-view convention (``FOV_to_intrinsics``)."""
    return float(1.0 / (math.tan(fov_deg * EG3D_PI / 360.0) * EG3D_SQRT2))


def focal_to_fov(focal: float) -> float:
    """Inverse of :func:`fov_to_focal` (EG3D's FOV convention, not the true optical FOV)."""
    return float(math.atan(1.0 / (focal * EG3D_SQRT2)) * 360.0 / EG3D_PI)


def true_fov_deg(focal: float) -> float:
    """Actual full field of view of a normalised focal length: 2 atan(0.5 / f)."""
    return math.degrees(2.0 * math.atan(0.5 / focal))


def intrinsics_matrix(focal: float, cx: float = 0.5, cy: float = 0.5, device: str | torch.device = "cpu") -> Tensor:
    """Normalised 3x3 intrinsics.  # [3, 3]"""
    return torch.tensor([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]], dtype=torch.float32, device=device)


def _normalize(v: Tensor) -> Tensor:
    return v / torch.norm(v, dim=-1, keepdim=True)


def look_at(origin: Tensor, target: Tensor) -> Tensor:
    """cam2world [B, 4, 4] for cameras at ``origin`` [B, 3] looking at ``target`` [B, 3] (world up = +y).

    Columns of the rotation: right = -normalize(up x forward), up' = normalize(forward x right), forward.
    """
    forward = _normalize(target - origin)
    world_up = torch.tensor([0.0, 1.0, 0.0], dtype=origin.dtype, device=origin.device).expand_as(forward)
    right = -_normalize(torch.cross(world_up, forward, dim=-1))
    up = _normalize(torch.cross(forward, right, dim=-1))
    m = torch.eye(4, dtype=origin.dtype, device=origin.device).repeat(origin.shape[0], 1, 1)
    m[:, :3, :3] = torch.stack([right, up, forward], dim=-1)
    m[:, :3, 3] = origin
    return m


def orbit_origins(yaw: Tensor, pitch: Tensor, radius: float | Tensor) -> Tensor:
    """Camera positions on a sphere around the world origin for EG3D orbit angles.  # [B, 3]"""
    v = torch.clamp(pitch, 1e-5, math.pi - 1e-5) / math.pi
    phi = torch.arccos(1 - 2 * v)
    theta = yaw
    x = radius * torch.sin(phi) * torch.cos(math.pi - theta)
    y = radius * torch.cos(phi)
    z = radius * torch.sin(phi) * torch.sin(math.pi - theta)
    return torch.stack([x, y, z], dim=-1)


def lookat_cam2world(yaw: Tensor | float, pitch: Tensor | float, pivot: Tensor | tuple[float, float, float],
                     radius: float = 1.0, device: str | torch.device = "cpu") -> Tensor:
    """EG3D ``LookAtPoseSampler.sample`` with zero spread: absolute orbit angles -> cam2world [B, 4, 4]."""
    yaw = torch.as_tensor(yaw, dtype=torch.float32, device=device).reshape(-1)
    pitch = torch.as_tensor(pitch, dtype=torch.float32, device=device).reshape(-1)
    yaw, pitch = torch.broadcast_tensors(yaw, pitch)
    pivot = torch.as_tensor(pivot, dtype=torch.float32, device=device).reshape(-1, 3)
    origins = orbit_origins(yaw, pitch, radius)
    return look_at(origins, pivot.expand_as(origins))


def sample_lookat_cam2world(yaw_mean: float, pitch_mean: float, pivot: tuple[float, float, float], radius: float,
                            yaw_std: float = 0.0, pitch_std: float = 0.0, batch: int = 1,
                            generator: torch.Generator | None = None, device: str | torch.device = "cpu") -> Tensor:
    """EG3D ``LookAtPoseSampler``: Gaussian orbit angles around the means, looking at ``pivot``."""
    yaw = torch.randn(batch, generator=generator).to(device) * yaw_std + yaw_mean
    pitch = torch.randn(batch, generator=generator).to(device) * pitch_std + pitch_mean
    return lookat_cam2world(yaw, pitch, pivot, radius, device)


def sample_gaussian_cam2world(yaw_mean: float, pitch_mean: float, radius: float, yaw_std: float = 0.0,
                              pitch_std: float = 0.0, batch: int = 1, generator: torch.Generator | None = None,
                              device: str | torch.device = "cpu") -> Tensor:
    """EG3D ``GaussianCameraPoseSampler``: Gaussian orbit angles, always looking at the world origin."""
    return sample_lookat_cam2world(yaw_mean, pitch_mean, (0.0, 0.0, 0.0), radius, yaw_std, pitch_std, batch,
                                   generator, device)


@dataclass(frozen=True)
class Camera:
    """A batch of pinhole cameras: OpenCV cam2world [B, 4, 4] and normalised intrinsics [B, 3, 3]."""

    cam2world: Tensor
    intrinsics: Tensor

    def __post_init__(self) -> None:
        if self.cam2world.ndim != 3 or self.cam2world.shape[1:] != (4, 4):
            raise ValueError(f"cam2world must be [B, 4, 4], got {tuple(self.cam2world.shape)}")
        if self.intrinsics.shape != (self.cam2world.shape[0], 3, 3):
            raise ValueError(f"intrinsics must be [B, 3, 3], got {tuple(self.intrinsics.shape)}")

    @property
    def batch(self) -> int:
        return self.cam2world.shape[0]

    @property
    def origin(self) -> Tensor:  # [B, 3]
        return self.cam2world[:, :3, 3]

    @property
    def forward(self) -> Tensor:  # [B, 3], the viewing direction (+z of the camera)
        return self.cam2world[:, :3, 2]

    @property
    def focal(self) -> Tensor:  # [B]
        return self.intrinsics[:, 0, 0]

    def to_label(self) -> Tensor:
        """The 25-float EG3D label [B, 25]."""
        return torch.cat([self.cam2world.reshape(-1, 16), self.intrinsics.reshape(-1, 9)], dim=1)

    @staticmethod
    def from_label(label: Tensor) -> "Camera":
        label = torch.as_tensor(label, dtype=torch.float32)
        if label.ndim == 1:
            label = label[None]
        if label.shape[-1] != 25:
            raise ValueError(f"a camera label has 25 floats, got {label.shape[-1]}")
        return Camera(label[:, :16].reshape(-1, 4, 4), label[:, 16:25].reshape(-1, 3, 3))

    @staticmethod
    def orbit(yaw: float | Tensor, pitch: float | Tensor, pivot: tuple[float, float, float], radius: float,
              fov_deg: float | None = DEFAULT_FOV_DEG, focal: float | None = None,
              device: str | torch.device = "cpu") -> "Camera":
        """Cameras at *absolute* EG3D orbit angles (frontal = pi/2, pi/2) looking at ``pivot``."""
        c2w = lookat_cam2world(yaw, pitch, pivot, radius, device)
        f = focal if focal is not None else fov_to_focal(fov_deg)
        k = intrinsics_matrix(f, device=device).expand(c2w.shape[0], 3, 3).contiguous()
        return Camera(c2w, k)

    @staticmethod
    def frontal_offset(yaw_offset: float | Tensor = 0.0, pitch_offset: float | Tensor = 0.0,
                       pivot: tuple[float, float, float] = DEFAULT_PIVOT, radius: float = DEFAULT_RADIUS,
                       fov_deg: float = DEFAULT_FOV_DEG, device: str | torch.device = "cpu") -> "Camera":
        """gen_samples convention: yaw = pi/2 + yaw_offset, pitch = pi/2 + pitch_offset."""
        yaw = torch.as_tensor(yaw_offset, dtype=torch.float32) + math.pi / 2
        pitch = torch.as_tensor(pitch_offset, dtype=torch.float32) + math.pi / 2
        return Camera.orbit(yaw, pitch, pivot, radius, fov_deg=fov_deg, device=device)

    def to(self, device: str | torch.device) -> "Camera":
        return Camera(self.cam2world.to(device), self.intrinsics.to(device))


def flip_yaw_label(label: Tensor) -> Tensor:
    """Mirror a camera label left-right (EG3D ``flip_yaw``): negate entries [0,1], [0,2], [1,0], [2,0], [0,3]."""
    out = label.clone()
    pose = out[..., :16].reshape(*out.shape[:-1], 4, 4).clone()
    for r, c in ((0, 1), (0, 2), (1, 0), (2, 0), (0, 3)):
        pose[..., r, c] = -pose[..., r, c]
    out[..., :16] = pose.reshape(*out.shape[:-1], 16)
    return out
