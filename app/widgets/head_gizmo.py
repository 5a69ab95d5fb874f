"""A small head-pose gizmo for the Inversion panel: a circle for the head and the head's three axes (ear to ear,
up, nose) as the estimated (or optimised) camera sees them.

Convention: ``core/cameras.py`` (EG3D's ``LookAtPoseSampler``). The head sits at the world origin facing +z, world
+y up, so world +x is the person's left. A camera at orbit offsets (yaw, pitch) from the frontal view sits at
``orbit_origins(pi/2 + yaw, pi/2 + pitch, radius)`` and looks at the pivot: positive yaw moves it towards +x (the
person's left: the nose turns to the image's left), positive pitch moves it down (the face is seen from below: the
nose turns up in the image). The frontal camera (0, 0) looks straight down the nose: the nose axis projects to
a point at the centre. The formulas are ``core.cameras.orbit_origins`` and ``look_at`` in plain ``math`` (the UI
thread does not import torch); ``tests/app/test_head_gizmo.py`` checks them against ``core.cameras``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from core.conventions import DEFAULT_PIVOT, DEFAULT_RADIUS

Vec3 = tuple[float, float, float]
Point = tuple[float, float]

AXES: dict[str, Vec3] = {"side": (1.0, 0.0, 0.0), "up": (0.0, 1.0, 0.0), "nose": (0.0, 0.0, 1.0)}
# ImGui colours (RGBA 0..1): ear-to-ear red, up green, nose blue (x, y, z as in most 3D tools)
COLORS = {"side": (0.95, 0.35, 0.3, 1.0), "up": (0.4, 0.9, 0.4, 1.0), "nose": (0.45, 0.65, 1.0, 1.0)}


def _sub(a: Vec3, b: Vec3) -> Vec3:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _cross(a: Vec3, b: Vec3) -> Vec3:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _unit(a: Vec3) -> Vec3:
    n = math.sqrt(_dot(a, a))
    return a[0] / n, a[1] / n, a[2] / n


def camera_axes(yaw: float, pitch: float, pivot: Vec3 = DEFAULT_PIVOT,
                radius: float = DEFAULT_RADIUS) -> tuple[Vec3, Vec3, Vec3]:
    """(right, down, forward) unit vectors in world coordinates of the look-at camera at orbit offsets ``yaw``,
    ``pitch`` (radians from frontal): the OpenCV cam2world columns of ``core.cameras.lookat_cam2world``."""
    theta = math.pi / 2 + yaw
    v = min(max(math.pi / 2 + pitch, 1e-5), math.pi - 1e-5) / math.pi
    phi = math.acos(1 - 2 * v)
    origin = (radius * math.sin(phi) * math.cos(math.pi - theta), radius * math.cos(phi),
              radius * math.sin(phi) * math.sin(math.pi - theta))
    forward = _unit(_sub(pivot, origin))
    right = _unit(_cross(forward, (0.0, 1.0, 0.0)))          # = -normalize(up x forward)
    down = _unit(_cross(forward, right))
    return right, down, forward


@dataclass(frozen=True)
class Gizmo:
    """The gizmo in screen coordinates (x right, y down): the head circle and one segment per head axis, from the
    centre to the axis' tip. ``front[name]`` is True when the axis points towards the viewer (drawn on top)."""

    center: Point
    radius: float
    segments: dict[str, tuple[Point, Point]]
    front: dict[str, bool]


def head_gizmo(yaw: float, pitch: float, center: Point = (0.0, 0.0), radius: float = 1.0) -> Gizmo:
    """The head's axes seen by the camera at orbit offsets ``yaw``, ``pitch`` (radians), projected orthographically
    onto a circle of ``radius`` around ``center``. Frontal (0, 0): the nose is a point at the centre, ``side``
    runs to the right (the person's left is on the image's right), ``up`` points up."""
    right, down, forward = camera_axes(yaw, pitch)
    cx, cy = center
    segments, front = {}, {}
    for name, axis in AXES.items():
        segments[name] = ((cx, cy), (cx + radius * _dot(axis, right), cy + radius * _dot(axis, down)))
        front[name] = _dot(axis, forward) < 0
    return Gizmo((cx, cy), radius, segments, front)


def draw_head_gizmo(yaw: float, pitch: float, size: float, label: str = "") -> None:
    """Draw the gizmo in a ``size`` x ``size`` box at the ImGui cursor (the ImGui draw list) and advance past it."""
    from imgui_bundle import imgui
    pos = imgui.get_cursor_screen_pos()
    r = size * 0.42
    g = head_gizmo(yaw, pitch, (pos.x + size / 2, pos.y + size / 2), r)
    dl = imgui.get_window_draw_list()
    dim = imgui.get_color_u32(imgui.ImVec4(0.7, 0.7, 0.7, 1.0))
    dl.add_circle(imgui.ImVec2(*g.center), r, dim, 0, 1.5)
    order = sorted(g.segments, key=lambda n: g.front[n])     # axes pointing away first, towards the viewer on top
    for name in order:
        (x0, y0), (x1, y1) = g.segments[name]
        col = imgui.get_color_u32(imgui.ImVec4(*COLORS[name]))
        dl.add_line(imgui.ImVec2(x0, y0), imgui.ImVec2(x1, y1), col, 2.0 if g.front[name] else 1.0)
        if name == "nose":
            dl.add_circle_filled(imgui.ImVec2(x1, y1), 3.0, col)
    imgui.dummy(imgui.ImVec2(size, size))
    if label and imgui.is_item_hovered():
        imgui.set_tooltip(label)
