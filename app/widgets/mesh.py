"""Mesh panel: extract a mesh of the current latent (resolution, iso level), show it in the mesh pane with GLSL
shading, re-mesh at another level from the kept density grid, export PLY/OBJ/GLB (``core.tools.mesh``)."""
from __future__ import annotations

import os

from imgui_bundle import imgui

from core.defaults import MESH_GRID, MESH_LEVEL

from ..mesh_view import SHADING, SHADING_LABELS
from ..panes import DIM_COLOR, ERROR_COLOR
from ..tasks import Task

RESOLUTIONS = (32, 64, 128, 256, 384, 512)
FORMATS = (".ply", ".obj", ".glb")


class MeshWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.resolution = MESH_GRID
        self.level = MESH_LEVEL
        self.colors = True
        self.path = "meshes/mesh.ply"   # below the viewer's output folder
        self.task: Task | None = None
        self.save_task: Task | None = None
        self.result = None            # app.jobs.MeshResult of the mesh on screen
        self._shown = None

    def extract(self, remesh: bool = False) -> None:
        """Start extraction of the current latent (``remesh``: reuse the density grid at a new level)."""
        from ..jobs import MeshJob, extract_mesh
        v = self.viewer
        backend = v.model_backend()
        if backend is None or (self.task is not None and self.task.running):
            return
        job = MeshJob(v.state.latent.spec(), self.resolution, self.level, self.colors)
        volume = self.result.volume if remesh and self.result is not None else None
        if volume is not None:
            job.latent, job.resolution = self.result.job.latent, self.result.job.resolution
        self.task = v.start_task("mesh", lambda t: extract_mesh(backend, job, t, volume))

    def model_changed(self) -> None:
        """Another model (or other weights) is open: its mesh is not this one; a running extraction is dropped."""
        if self.task is not None and self.task.running:
            self.task.cancel()
        self.task = self.result = self._shown = None

    def save(self, path: str) -> None:
        from ..jobs import save_mesh
        path = self.viewer.output_path(path)
        if self.result is not None:
            mesh = self.result.mesh
            self.save_task = self.viewer.start_task("save mesh", lambda t: save_mesh(mesh, path, t))

    def _take_result(self) -> None:
        t = self.task
        if t is not None and t.done and t.result is not None and t.result is not self._shown:
            self._shown = self.result = t.result
            m = t.result.mesh
            self.viewer.ensure_mesh_view().set_mesh(m.vertices, m.faces, m.colors, m.normals)

    def __call__(self) -> None:
        v = self.viewer
        self._take_result()
        if not imgui.collapsing_header("Mesh"):
            return
        backend = v.model_backend()
        if backend is None:
            imgui.text_colored(DIM_COLOR, "needs a loaded model with a density field")
            return
        _, self.resolution = imgui.slider_int("Grid", self.resolution, RESOLUTIONS[0], RESOLUTIONS[-1],
                                              f"{self.resolution}^3")
        changed, self.level = imgui.drag_float("Iso level", self.level, 0.1, -50.0, 200.0, "%.1f")
        if imgui.is_item_hovered():
            imgui.set_tooltip("raw density threshold (EG3D uses 10; 2-20 usually works)")
        _, self.colors = imgui.checkbox("Vertex colours from the radiance field", self.colors)
        running = self.task is not None and self.task.running
        imgui.begin_disabled(running)
        if imgui.button("Extract mesh"):
            self.extract()
        if self.result is not None:
            imgui.same_line()
            if imgui.button("Re-mesh at this level"):
                self.extract(remesh=True)
        imgui.end_disabled()
        if self.task is not None:
            v.task_status(self.task)
        mv = v.mesh_view
        if mv is not None:
            imgui.separator_text("Mesh pane")
            idx = SHADING.index(mv.shading)
            changed, idx = imgui.combo("Shading", idx, [SHADING_LABELS[s] for s in SHADING])
            mv.shading = SHADING[idx]
            imgui.begin_disabled(not mv.has_colors)
            _, mv.use_colors = imgui.checkbox("Vertex colours", mv.use_colors)
            imgui.end_disabled()
            _, mv.follow = imgui.checkbox("Follow the render camera", mv.follow)
            imgui.same_line()
            if imgui.button("Reset view"):
                mv.yaw = mv.pitch = 0.0
            imgui.same_line()
            if imgui.button("Close pane"):
                v.close_mesh_view()
                self.result = None
            imgui.separator_text("Export")
            _, self.path = imgui.input_text("File", self.path)
            for ext in FORMATS:
                if ext != FORMATS[0]:
                    imgui.same_line()
                if imgui.button(f"Save {ext[1:].upper()}"):
                    self.save(os.path.splitext(self.path)[0] + ext)
            if self.save_task is not None:
                v.task_status(self.save_task, done_text=f"saved {self.save_task.result}" if self.save_task.result
                              else None)
        elif self.task is not None and self.task.error:
            imgui.text_colored(ERROR_COLOR, "no mesh")
