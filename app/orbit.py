"""Interaction math, free of GL and torch: orbit drags, wheel zoom, animations, the mesh pane's matrices.

Orbit angles are offsets from the frontal view, as ``python -m core samples --yaw/--pitch`` and EG3D's pose widget
(whose drag is ``yaw -= dx / font_size * 0.03``; here a drag across the whole pane turns the camera by pi).
"""
from __future__ import annotations

import math

import numpy as np

PITCH_LIMIT = math.pi / 2 - 0.05   # keep the look-at frame well defined
RADIUS_RANGE = (0.3, 30.0)


def drag_orbit(yaw: float, pitch: float, dx: float, dy: float, pane_px: float) -> tuple[float, float]:
    """New (yaw, pitch) after dragging the mouse by (dx, dy) pixels in a pane ``pane_px`` pixels wide."""
    k = math.pi / max(pane_px, 1.0)
    return yaw - dx * k, float(np.clip(pitch - dy * k, -PITCH_LIMIT, PITCH_LIMIT))


def wheel_zoom(radius: float, wheel: float) -> float:
    """Each wheel notch moves the camera 10% closer (positive) or farther (negative)."""
    return float(np.clip(radius * 0.9 ** wheel, *RADIUS_RANGE))


def wrap_angle(a: float) -> float:
    """Into [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def swing(phase: float, dt: float, speed: float, amplitude: float) -> tuple[float, float]:
    """Auto-orbit inside the training range: yaw = amplitude sin(phase), whose fastest turn is ``speed`` rad/s.
    Returns (new phase, yaw)."""
    amplitude = max(amplitude, 1e-3)
    phase = (phase + speed * dt / amplitude) % (2 * math.pi)
    return phase, amplitude * math.sin(phase)


def outside_range(yaw: float, pitch: float, camera_range: tuple[float, float]) -> bool:
    """Whether the view is outside the model's training camera range (+- yaw, +- pitch from frontal)."""
    return abs(wrap_angle(yaw)) > camera_range[0] + 1e-6 or abs(pitch) > camera_range[1] + 1e-6


def pingpong(phase: float) -> float:
    """Smooth 0 -> 1 -> 0 loop over one unit of phase (interpolation animation)."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * phase)


def reduced_resolution(full: int) -> int:
    """Neural rendering resolution while the camera moves: half, but at least 16 rays per side."""
    return max(16, full // 2)


# -- mesh pane ------------------------------------------------------------------------------------------------
def look_at_view(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """OpenGL world-to-view matrix (camera looks down -z, y up).  # [4, 4]"""
    f = target - eye
    f = f / np.linalg.norm(f)
    s = np.cross(f, up)
    s = s / np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.eye(4, dtype=np.float32)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    """OpenGL projection matrix.  # [4, 4]"""
    t = 1.0 / math.tan(math.radians(fov_y_deg) / 2)
    m = np.zeros((4, 4), np.float32)
    m[0, 0], m[1, 1] = t / aspect, t
    m[2, 2], m[2, 3] = (far + near) / (near - far), 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def mesh_camera(yaw: float, pitch: float, distance: float, center: np.ndarray, fov_y_deg: float,
                aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """(model_view, projection) for a camera orbiting ``center``; yaw = pitch = 0 looks along -z (from +z)."""
    eye = center + distance * np.array([math.cos(pitch) * math.sin(yaw), math.sin(pitch),
                                        math.cos(pitch) * math.cos(yaw)], np.float32)
    return look_at_view(eye, center), perspective(fov_y_deg, aspect, distance * 0.05, distance * 4.0)
