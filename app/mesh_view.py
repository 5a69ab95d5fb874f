"""The mesh pane: a triangle mesh drawn with ``shaders/mesh.*`` (normals, Lambert with a headlight, matcap) into an
offscreen framebuffer with a depth buffer, orbited and zoomed with the mouse like the image panes.
"""
from __future__ import annotations

import math

import numpy as np
import OpenGL.GL as gl

from .gl import Framebuffer, IndexedMesh, ShaderProgram
from .orbit import PITCH_LIMIT, drag_orbit, mesh_camera
from .panes import PaneInput, image_area

SHADING = ("normals", "lambert", "matcap")
SHADING_LABELS = {"normals": "Normals", "lambert": "Lambert (headlight)", "matcap": "Matcap"}


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals.  # [N, 3] float32"""
    v = vertices.astype(np.float64)
    f = faces.astype(np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # [F, 3], length = 2 x area
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)


class MeshView:
    """GPU copy of one mesh plus its orbit camera and shading settings."""

    def __init__(self):
        self.program = ShaderProgram.from_files("mesh")
        self.fbo = Framebuffer(16, 16, depth=True)
        self.gpu: IndexedMesh | None = None
        self.yaw, self.pitch = 0.0, 0.0
        self.distance = 2.0
        self.center = np.zeros(3, np.float32)
        self.shading = "lambert"
        self.follow = False   # True: the mesh pane shows the image panes' camera
        self.use_colors = True
        self.has_colors = False
        self.n_vertices = self.n_faces = 0
        self._drawn_key = None
        self._version = 0
        self.last_input = PaneInput()

    def set_mesh(self, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None,
                 normals: np.ndarray | None = None) -> None:
        """vertices [N, 3], faces [F, 3] int, colors [N, 3] (uint8 or float in [0, 1]), normals [N, 3]."""
        vertices = np.asarray(vertices, np.float32)
        faces = np.asarray(faces)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"expected vertices [N, 3] and faces [F, 3], got {vertices.shape} and {faces.shape}")
        if normals is None or len(normals) != len(vertices):
            normals = vertex_normals(vertices, faces)
        self.has_colors = colors is not None and len(colors) == len(vertices)
        if self.has_colors:
            colors = np.asarray(colors)
            colors = colors[:, :3].astype(np.float32) / (255.0 if colors.dtype == np.uint8 else 1.0)
        else:
            colors = np.full_like(vertices, 0.78)
        if self.gpu is not None:
            self.gpu.delete()
        self.gpu = IndexedMesh([vertices, np.asarray(normals, np.float32), colors], faces)
        self.n_vertices, self.n_faces = len(vertices), len(faces)
        if len(vertices):
            lo, hi = vertices.min(0), vertices.max(0)
            self.center = (lo + hi) / 2
            # Fit the bounding sphere into a 30 degree field of view.
            self.distance = float(np.linalg.norm(hi - lo) / 2 / math.sin(math.radians(15))) or 2.0
        self._version += 1

    def orbit(self, inp: PaneInput) -> bool:
        """Apply a pane's mouse input; returns whether the view changed."""
        if inp.drag != (0.0, 0.0):
            # Same feel as the image panes: pitch here is an elevation (up = positive), EG3D's pitch the opposite.
            yaw, pitch = drag_orbit(self.yaw, -self.pitch, inp.drag[0], inp.drag[1], inp.size_px)
            self.yaw, self.pitch = yaw, float(np.clip(-pitch, -PITCH_LIMIT, PITCH_LIMIT))
        if inp.wheel:
            self.distance *= 0.9 ** inp.wheel
        return inp.drag != (0.0, 0.0) or bool(inp.wheel)

    def follow_camera(self, yaw: float, pitch: float) -> None:
        """Look from the image panes' camera: EG3D orbit offsets -> this pane's yaw and elevation
        (EG3D's polar angle is arccos(1 - 2v), so the camera height is -2 pitch / pi of the radius)."""
        self.yaw = yaw
        self.pitch = float(np.clip(math.asin(np.clip(-2 * pitch / math.pi, -1, 1)), -PITCH_LIMIT, PITCH_LIMIT))

    def render(self, side: int) -> None:
        """Draw the mesh into the pane framebuffer if anything changed."""
        side = int(max(16, min(side, 2048)))
        key = (self._version, side, self.yaw, self.pitch, self.distance, self.shading, self.use_colors)
        if key == self._drawn_key:
            return
        self.fbo.resize(side, side)
        self.fbo.bind()
        gl.glClearColor(0.12, 0.12, 0.14, 1.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT | gl.GL_DEPTH_BUFFER_BIT)
        if self.gpu is not None and self.gpu.count:
            gl.glEnable(gl.GL_DEPTH_TEST)
            gl.glDisable(gl.GL_CULL_FACE)
            model_view, projection = mesh_camera(self.yaw, self.pitch, self.distance, self.center, 30.0, 1.0)
            p = self.program
            p.use()
            p.set("u_model_view", model_view)
            p.set("u_projection", projection)
            p.set("u_mode", SHADING.index(self.shading))
            p.set("u_use_colors", bool(self.use_colors and self.has_colors))
            self.gpu.draw()
            gl.glDisable(gl.GL_DEPTH_TEST)
        self._drawn_key = key

    def draw(self, side: float) -> PaneInput:
        """The mesh image area in the current ImGui window; orbit/zoom from the mouse (unless it follows the image
        panes' camera: then the caller applies the input to that camera)."""
        self.render(int(side))
        self.last_input = image_area("##mesh", self.fbo.color, side)
        if not self.follow:
            self.orbit(self.last_input)
        return self.last_input

    def read(self) -> np.ndarray:
        return self.fbo.read()

    def delete(self) -> None:
        if self.gpu is not None:
            self.gpu.delete()
        self.fbo.delete()
        self.program.delete()
