"""Image panes: one per branch. Each keeps the newest result's textures and draws the chosen view through
``shaders/display.*`` (colour, depth colour map, normals from depth) into an offscreen framebuffer shown by ImGui.

Mouse input over the image (drag, wheel) is returned to the viewer, which turns it into camera moves.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from imgui_bundle import imgui

from .gl import Framebuffer, FullscreenTriangle, ShaderProgram, Texture
from .requests import BranchResult

MODES = {"rgb": 0, "raw": 0, "depth": 1, "normals": 2}
ERROR_COLOR = imgui.ImVec4(1.0, 0.45, 0.4, 1.0)
DIM_COLOR = imgui.ImVec4(0.6, 0.6, 0.6, 1.0)
WARN_COLOR = imgui.ImVec4(1.0, 0.8, 0.3, 1.0)


@dataclass
class PaneInput:
    """Mouse activity over a pane's image during one frame."""

    drag: tuple[float, float] = (0.0, 0.0)
    wheel: float = 0.0
    hovered: bool = False
    dragging: bool = False
    size_px: float = 1.0
    origin: tuple[float, float] = (0.0, 0.0)  # top-left of the image area in window pixels


def image_area(label: str, tex_id: int, side: float) -> PaneInput:
    """An invisible button of ``side`` x ``side`` showing ``tex_id`` (an FBO texture, hence the flipped uvs)."""
    pos = imgui.get_cursor_screen_pos()
    imgui.invisible_button(label, imgui.ImVec2(side, side))
    io = imgui.get_io()
    active, hovered = imgui.is_item_active(), imgui.is_item_hovered()
    imgui.get_window_draw_list().add_image(imgui.ImTextureRef(tex_id), pos, imgui.ImVec2(pos.x + side, pos.y + side),
                                           imgui.ImVec2(0, 1), imgui.ImVec2(1, 0))
    # a drag starts at the press point: the press frame's mouse delta (a cursor that jumped before the press, e.g.
    # from outside the window) is not part of it
    drag = (io.mouse_delta.x, io.mouse_delta.y) if active and not imgui.is_item_activated() else (0.0, 0.0)
    return PaneInput(drag=drag, wheel=io.mouse_wheel if hovered else 0.0, hovered=hovered, dragging=active,
                     size_px=side, origin=(pos.x, pos.y))


def depth_legend(lo: float, hi: float, view: str) -> str:
    """The colour key of the depth view (``shaders/display.frag``: near = light, far = dark), in world units along
    each ray; the normals view is computed from the same depth."""
    if view == "normals":
        return f"normals from depth {lo:.2f}-{hi:.2f}"
    return f"depth: light {lo:.2f} (near) .. dark {hi:.2f} (far)"


class DisplayShader:
    """The display program plus the vertex-less triangle it draws with (shared by all panes)."""

    def __init__(self):
        self.program = ShaderProgram.from_files("display")
        self.triangle = FullscreenTriangle()

    def draw(self, mode: int, image: Texture | None, depth: Texture | None, depth_range=(0.0, 1.0),
             focal: float = 4.2634) -> None:
        p = self.program
        p.use()
        if image is not None:
            image.bind(0)
        if depth is not None:
            depth.bind(1)
            w, h = depth.size
            p.set("u_texel", (1.0 / max(w, 1), 1.0 / max(h, 1)))
        p.set("u_image", 0)
        p.set("u_depth", 1)
        p.set("u_mode", mode)
        p.set("u_depth_range", depth_range)
        p.set("u_focal", float(focal))
        self.triangle.draw()


class ImagePane:
    """The newest accepted result of one branch and its on-screen view."""

    def __init__(self, branch: str, shader: DisplayShader):
        self.branch = branch
        self.shader = shader
        self.result: BranchResult | None = None   # newest result with images
        self.error: str | None = None             # error of the newest result, if it failed
        self.stamp = -1
        self.image, self.raw, self.depth = Texture(), Texture(), Texture()
        self.fbo = Framebuffer(16, 16)
        self._drawn_key = None
        self.last_input = PaneInput()

    def accept(self, result: BranchResult) -> bool:
        """Take ``result`` unless it is older than what the pane shows (stale results are dropped)."""
        if result.stamp < self.stamp:
            return False
        self.stamp = result.stamp
        if result.error is not None:
            self.error = result.error
            return True
        self.error = None
        self.result = result
        self.image.upload(result.image)
        if result.raw is not None:
            self.raw.upload(result.raw)
        if result.depth is not None:
            self.depth.upload(np.ascontiguousarray(result.depth, np.float32))
        return True

    def available(self, view: str) -> bool:
        r = self.result
        if r is None:
            return False
        return {"rgb": True, "raw": r.raw is not None}.get(view, r.depth is not None)

    def refresh(self, view: str, side: int) -> None:
        """Redraw the offscreen view if the result, the view or the size changed."""
        side = int(max(16, min(side, 2048)))
        key = (self.image.version, view, side)
        if key == self._drawn_key or not self.available(view):
            return
        self.fbo.resize(side, side)
        self.fbo.bind()
        r = self.result
        self.shader.draw(MODES[view], self.raw if view == "raw" else self.image, self.depth, r.depth_range, r.focal)
        self._drawn_key = key

    def read(self) -> np.ndarray:
        """The pane's current view as an image.  # [S, S, 3] uint8"""
        return self.fbo.read()

    def draw(self, view: str, side: float, pending: bool) -> PaneInput:
        """Draw the image area (or the reason there is none) and the status line; returns the mouse input."""
        r = self.result
        status = "rendering..." if pending else ""
        if r is not None:
            res = r.raw.shape[0] if r.raw is not None else (r.depth.shape[0] if r.depth is not None else None)
            what = "features" if self.branch == "student" else "rays"  # the student does no ray marching
            lat = r.request.latent
            shows = "inverted latent" if lat.stored is not None else (f"blend {lat.interp_t:.2f}" if lat.interp_t
                                                                     else "")
            status = " | ".join(x for x in (f"{r.render_ms:.0f} ms", f"{res}x{res} {what}" if res else "", shows,
                                            status) if x)
        imgui.text_colored(DIM_COLOR, status or " ")
        if view in ("depth", "normals") and r is not None and r.depth is not None:
            lo, hi = r.depth_range
            imgui.text_colored(DIM_COLOR, depth_legend(lo, hi, view))
            side = max(16.0, side - imgui.get_text_line_height_with_spacing())   # the legend's line
        if self.error is not None:
            imgui.text_colored(ERROR_COLOR, "render failed:")
            imgui.push_text_wrap_pos(imgui.get_cursor_pos_x() + side)
            imgui.text_colored(ERROR_COLOR, self.error)
            imgui.pop_text_wrap_pos()
        if not self.available(view):
            msg = "waiting for the first render" if r is None else f"this branch has no {view} output"
            imgui.text_colored(DIM_COLOR, msg)
            imgui.dummy(imgui.ImVec2(side, max(0.0, side - 2 * imgui.get_text_line_height_with_spacing())))
            return PaneInput(size_px=side)
        self.refresh(view, int(side))
        self.last_input = image_area(f"##img_{self.branch}", self.fbo.color, side)
        return self.last_input

    def delete(self) -> None:
        for t in (self.image, self.raw, self.depth):
            t.delete()
        self.fbo.delete()
