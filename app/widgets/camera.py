"""Camera panel: orbit angles, radius, FOV, reset, auto-orbit, and the mapping network's conditioning camera."""
from __future__ import annotations

import math

from imgui_bundle import imgui

from core.conventions import DEFAULT_RADIUS

from ..orbit import PITCH_LIMIT, RADIUS_RANGE, outside_range, wrap_angle
from ..panes import DIM_COLOR, WARN_COLOR


class CameraWidget:
    def __init__(self, viewer):
        self.viewer = viewer

    def __call__(self) -> None:
        v = self.viewer
        c, s = v.state.camera, v.state.latent
        if not imgui.collapsing_header("Camera", imgui.TreeNodeFlags_.default_open):
            return
        limit = math.degrees(PITCH_LIMIT)
        _, c.yaw = imgui.slider_angle("Yaw", wrap_angle(c.yaw), -180.0, 180.0)
        _, c.pitch = imgui.slider_angle("Pitch", c.pitch, -limit, limit)
        _, c.radius = imgui.drag_float("Radius", c.radius, 0.01, *RADIUS_RANGE, "%.2f")
        _, c.fov_deg = imgui.slider_float("FOV (deg)", c.fov_deg, 12.0, 45.0, "%.2f")
        if imgui.button("Reset camera"):
            c.reset(v.info.radius if v.info is not None else DEFAULT_RADIUS)
        imgui.same_line()
        _, c.auto_orbit = imgui.checkbox("Auto-orbit", c.auto_orbit)
        _, c.orbit_speed = imgui.slider_angle("Orbit speed (/s)", c.orbit_speed, -180.0, 180.0)
        imgui.push_text_wrap_pos(0.0)
        if v.info is not None:
            yr, pr = (math.degrees(a) for a in v.info.camera_range)
            imgui.text_colored(DIM_COLOR, f"training views: yaw +-{yr:.0f}, pitch +-{pr:.0f} deg "
                               f"({v.info.camera_range_source}); auto-orbit swings inside them")
            if outside_range(c.yaw, c.pitch, v.info.camera_range):
                imgui.text_colored(WARN_COLOR, "outside the training views: the model never saw this side")
            if "student" in v.info.branches:
                imgui.text_colored(DIM_COLOR, "student: follows yaw and pitch; ignores radius and FOV")
        imgui.text_colored(DIM_COLOR, "drag in a pane to orbit, wheel to zoom")
        imgui.pop_text_wrap_pos()

        imgui.separator_text("Conditioning camera")
        _, s.cond_yaw = imgui.slider_angle("Cond. yaw", s.cond_yaw, -90.0, 90.0)
        _, s.cond_pitch = imgui.slider_angle("Cond. pitch", s.cond_pitch, -60.0, 60.0)
        if imgui.button("Frontal##cond"):
            s.cond_yaw = s.cond_pitch = 0.0
        imgui.same_line()
        imgui.text_colored(DIM_COLOR, "pose the mapping network sees")
