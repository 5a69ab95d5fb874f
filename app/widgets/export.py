"""Export panel: screenshots (the whole window or one pane) and videos of the current latent and camera with the
command line's options (``python -m core video``): camera path (turntable, 360-degree orbit, a loop between the
two interpolation seeds, an edit sweep along one of the moved directions, or before / after the edits side by side),
one branch or all side by side, output, a grid of seeds, size, labels, frames, FPS.

Selections are kept by name (branch, screenshot target), so opening another model never silently picks another
branch. Files go under the viewer's output folder (:mod:`app.outputs`)."""
from __future__ import annotations

import time
from dataclasses import replace

from imgui_bundle import imgui

from core.defaults import TURNTABLE_PITCH, TURNTABLE_YAW, VIDEO_FPS, VIDEO_FRAMES, VIDEO_MIN_SIDE
from core.tools.video import panel_side

from ..capture import next_free
from ..gl import Texture
from ..panes import DIM_COLOR
from ..tasks import Task

VIDEO_MODES = ("turntable", "orbit360", "interp", "sweep", "before_after")
VIDEO_MODE_LABELS = ("Turntable", "360-degree orbit", "Loop seed -> seed B", "Edit sweep", "Before / after edits")
VIDEO_OUTPUTS = ("image", "depth", "raw")
VIDEO_FORMATS = (".mp4", ".gif")
GRIDS = (1, 2, 3)                   # 1x1 (the current latent), 2x2 and 3x3 seeds from the current one
WHOLE_WINDOW = "whole window"


def selection(names: list[str], name: str, fallback: str) -> int:
    """Index of ``name`` in ``names``; while it is absent (another model), the index of ``fallback``, never a
    neighbour of an old index. The name itself is kept, so it is selected again when its model comes back."""
    return names.index(name) if name in names else names.index(fallback)


class ExportWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.folder = "screenshots"           # under the output folder unless absolute
        self.target = WHOLE_WINDOW            # a pane name, or the whole window
        self.video_folder = "videos"
        self.mode = 0
        self.branch = "all"                   # a branch name, or "all"
        self.output = 0
        self.format = 0
        self.grid = 0                         # index into GRIDS
        self.min_side = VIDEO_MIN_SIDE
        self.labels = True
        self.yaw_range = TURNTABLE_YAW
        self.pitch_range = TURNTABLE_PITCH
        self.frames = VIDEO_FRAMES
        self.fps = VIDEO_FPS
        self.sweep_edit = 0       # which of the current edits an edit sweep moves
        self.sweep_strength = 3.0
        self.sweep_orbit = False
        self.task: Task | None = None
        self.preview: Texture | None = None
        self._preview_src = None
        self._preview_at = 0.0

    # -- what the panel describes ---------------------------------------------------------------------------
    def branches(self) -> list[str]:
        return list(self.viewer.info.branches) + ["all"]

    def grid_side(self) -> int:
        """Cells per side: 1 for a loop or a stored (inverted) latent, which have no neighbouring seeds."""
        s = self.viewer.state.latent
        return 1 if VIDEO_MODES[self.mode] in ("interp", "before_after") or s.use_stored else GRIDS[self.grid]

    def video_size(self) -> tuple[int, int]:
        """(width, height) in pixels that the video will have (before padding to a multiple of 16)."""
        info = self.viewer.info
        shown = [self.branch] if self.branch in info.branches else list(info.branches)
        output = VIDEO_OUTPUTS[self.output]
        full, low = info.img_resolution, info.neural_resolution
        sizes = {"image": {b: full for b in shown}, "raw": {b: low for b in shown if b != "direct3d"},
                 "depth": {b: (full if b == "direct3d" else low) for b in shown if b != "student"}}[output]
        native = max(sizes.values(), default=full)
        g = self.grid_side()
        across = (2 if VIDEO_MODES[self.mode] == "before_after" else g) * len(shown)   # before | after
        side = panel_side(native, max(across, g), self.min_side)
        return across * side, g * side

    def video_job(self, path: str):
        """The video the panel describes, for the viewer's current latent, camera and render settings."""
        from ..jobs import VideoJob
        v = self.viewer
        latent = v.state.latent.spec()
        mode = VIDEO_MODES[self.mode]
        g = self.grid_side()
        sweep = None
        if mode == "interp":
            latents = (replace(latent, interp_t=0.0), replace(latent, interp_t=1.0))
        elif mode == "sweep":
            from core.tools.edit.apply import Edit
            d = latent.edits[min(self.sweep_edit, len(latent.edits) - 1)].direction
            sweep = Edit(d, float(self.sweep_strength))
            others = tuple(e for e in latent.edits if e.direction != d)
            latents = tuple(replace(latent, seed=latent.seed + i, edits=others) for i in range(g * g))
        elif mode == "before_after":
            latents = (replace(latent, edits=()), latent)
        else:
            latents = tuple(replace(latent, seed=latent.seed + i) for i in range(g * g))
        cam, r = v.state.camera, v.state.render
        samples = (r.depth_samples or v.info.depth_samples, r.importance_samples or v.info.importance_samples)
        branch = self.branch if self.branch in self.branches() else "all"
        return VideoJob(path=path, latents=latents, mode=mode, branch=branch, output=VIDEO_OUTPUTS[self.output],
                        frames=int(self.frames), fps=float(self.fps), resolution=r.resolution or None,
                        samples=samples if (r.depth_samples or r.importance_samples) else None,
                        center_yaw=cam.yaw, center_pitch=cam.pitch, fov_deg=cam.fov_deg, radius=cam.radius,
                        grid=(g, g) if mode not in ("interp", "before_after") else None, min_side=int(self.min_side),
                        labels=self.labels, yaw_range=self.yaw_range, pitch_range=self.pitch_range,
                        sweep=sweep, sweep_orbit=self.sweep_orbit)

    def start_video(self, path: str | None = None) -> Task | None:
        from ..jobs import render_video
        v = self.viewer
        backend = v.model_backend()
        if backend is None or (self.task is not None and self.task.running):
            return None
        path = path or str(next_free(v.output_path(self.video_folder), suffix=VIDEO_FORMATS[self.format]))
        job = self.video_job(path)
        self.task = v.start_task("video", lambda t: render_video(backend, job, t))
        return self.task

    # -- drawing --------------------------------------------------------------------------------------------
    def _show_preview(self) -> None:
        t = self.task
        if t is None or t.preview is None:
            return
        now = time.monotonic()
        if t.preview is not self._preview_src and (now - self._preview_at > 0.25 or t.done):
            self.preview = self.preview or Texture(nearest=False)
            self.preview.upload(t.preview)
            self._preview_src, self._preview_at = t.preview, now
        if self.preview is not None:
            w, h = self.preview.size
            width = min(imgui.get_content_region_avail().x, imgui.get_font_size() * 16)
            imgui.image(imgui.ImTextureRef(self.preview.handle), imgui.ImVec2(width, width * h / max(w, 1)))

    def _video(self) -> None:
        v = self.viewer
        imgui.separator_text("Video")
        if v.model_backend() is None:
            imgui.text_colored(DIM_COLOR, "needs a loaded model")
            return
        _, self.mode = imgui.combo("Camera path", self.mode, list(VIDEO_MODE_LABELS))
        mode = VIDEO_MODES[self.mode]
        branches = self.branches()
        edits = v.state.latent.spec().edits
        needs_edit = mode in ("sweep", "before_after")
        if mode == "sweep" and edits:
            names = [e.direction.name or e.direction.method for e in edits]
            self.sweep_edit = min(self.sweep_edit, len(names) - 1)
            _, self.sweep_edit = imgui.combo("Sweep", self.sweep_edit, names)
            _, self.sweep_strength = imgui.slider_float("Sweep to +/-", self.sweep_strength, 0.5, 5.0, "%.1f sigma")
            _, self.sweep_orbit = imgui.checkbox("Orbit while sweeping", self.sweep_orbit)
        if needs_edit and not edits:
            imgui.text_colored(DIM_COLOR, "move a direction in the Edit panel first")
        labels = list(v.info.branches) + ["all, side by side"]
        changed, idx = imgui.combo("Branch", selection(branches, self.branch, "all"), labels)
        if changed:
            self.branch = branches[idx]
        _, self.output = imgui.combo("Output", self.output, list(VIDEO_OUTPUTS))
        imgui.begin_disabled(mode in ("interp", "before_after") or v.state.latent.use_stored)
        _, self.grid = imgui.combo("Seeds", self.grid, [f"{g}x{g}" for g in GRIDS])
        imgui.end_disabled()
        _, self.min_side = imgui.slider_int("Min. size (px)", self.min_side, 64, 2048)
        _, self.labels = imgui.checkbox("Branch labels", self.labels)
        if mode != "orbit360":
            _, self.yaw_range = imgui.slider_angle("Yaw swing", self.yaw_range, 0.0, 90.0)
            _, self.pitch_range = imgui.slider_angle("Pitch swing", self.pitch_range, 0.0, 45.0)
        _, self.frames = imgui.slider_int("Frames", self.frames, 2, 600)
        _, self.fps = imgui.slider_int("FPS", self.fps, 1, 60)
        _, self.format = imgui.combo("Format", self.format, [f[1:].upper() for f in VIDEO_FORMATS])
        _, self.video_folder = imgui.input_text("Video folder", self.video_folder)
        w, h = self.video_size()
        g = self.grid_side()
        seeds = f"seeds {v.state.latent.seed}-{v.state.latent.seed + g * g - 1}" if g > 1 else "the current latent"
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(DIM_COLOR, f"{w}x{h} px, {self.frames / max(self.fps, 1):.1f} s; {seeds}, the current "
                           f"camera (radius {v.state.camera.radius:.2f}) and render settings")
        if mode == "orbit360":
            imgui.text_colored(DIM_COLOR, "a full circle: most of it is outside the training camera range")
        imgui.pop_text_wrap_pos()
        imgui.begin_disabled(self.task is not None and self.task.running or needs_edit and not edits)
        if imgui.button("Render video"):
            self.start_video()
        imgui.end_disabled()
        if self.task is not None:
            done = f"saved {self.task.result.path} ({self.task.elapsed:.1f} s)" if self.task.result else None
            v.task_status(self.task, done_text=done)
            self._show_preview()

    def __call__(self) -> None:
        v = self.viewer
        if not imgui.collapsing_header("Export"):
            return
        imgui.separator_text("Screenshot")
        _, self.folder = imgui.input_text("Folder", self.folder)
        targets = [WHOLE_WINDOW] + v.pane_names()
        idx = selection(targets, self.target, WHOLE_WINDOW)
        changed, idx = imgui.combo("Of", idx, targets)
        if changed:
            self.target = targets[idx]
        if imgui.button("Save PNG"):
            v.save_screenshot(v.output_path(self.folder), None if targets[idx] == WHOLE_WINDOW else targets[idx])
        if v.last_saved:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(DIM_COLOR, v.last_saved)
            imgui.pop_text_wrap_pos()
        if v.info is not None:
            self._video()
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(DIM_COLOR, f"relative folders are under {v.outdir} (Model panel)")
        imgui.pop_text_wrap_pos()
