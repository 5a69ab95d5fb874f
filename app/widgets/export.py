"""Export panel: screenshots (the whole window or one pane) and videos of the current latent and camera
(turntable, 360-degree orbit, a loop between the two interpolation seeds, an edit sweep along one of the moved
directions, or before / after the edits side by side; one branch or all side by side)."""
from __future__ import annotations

import time

from imgui_bundle import imgui

from ..capture import next_free
from ..gl import Texture
from ..panes import DIM_COLOR
from ..tasks import Task

VIDEO_MODES = ("turntable", "orbit360", "interp", "sweep", "before_after")
VIDEO_MODE_LABELS = ("Turntable", "360-degree orbit", "Loop seed -> seed B", "Edit sweep", "Before / after edits")
VIDEO_OUTPUTS = ("image", "depth", "raw")
VIDEO_FORMATS = (".mp4", ".gif")


class ExportWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.folder = "screenshots"
        self.target = 0  # 0 = whole window, then one entry per pane
        self.video_folder = "videos"
        self.mode = 0
        self.branch = 0  # index into branches + ["all"]
        self.output = 0
        self.format = 0
        self.frames = 120
        self.fps = 30
        self.sweep_edit = 0       # which of the current edits an edit sweep moves
        self.sweep_strength = 3.0
        self.sweep_orbit = False
        self.task: Task | None = None
        self.preview: Texture | None = None
        self._preview_src = None
        self._preview_at = 0.0

    def video_job(self, path: str):
        """The video the panel describes, for the viewer's current latent, camera and render settings."""
        from ..jobs import VideoJob
        v = self.viewer
        branches = list(v.info.branches) + ["all"]
        latent = v.state.latent.spec()
        mode = VIDEO_MODES[self.mode]
        sweep = None
        from dataclasses import replace
        if mode == "interp":
            latents = (replace(latent, interp_t=0.0), replace(latent, interp_t=1.0))
        elif mode == "sweep":
            from core.tools.edit.apply import Edit
            d = latent.edits[min(self.sweep_edit, len(latent.edits) - 1)].direction
            sweep = Edit(d, float(self.sweep_strength))
            latents = (replace(latent, edits=tuple(e for e in latent.edits if e.direction != d)),)
        elif mode == "before_after":
            latents = (replace(latent, edits=()), latent)
        else:
            latents = (latent,)
        cam, r = v.state.camera, v.state.render
        samples = (r.depth_samples or v.info.depth_samples, r.importance_samples or v.info.importance_samples)
        return VideoJob(path=path, latents=latents, mode=mode, branch=branches[min(self.branch, len(branches) - 1)],
                        output=VIDEO_OUTPUTS[self.output], frames=int(self.frames), fps=float(self.fps),
                        resolution=r.resolution or None, samples=samples if (r.depth_samples or r.importance_samples)
                        else None, center_yaw=cam.yaw, center_pitch=cam.pitch, fov_deg=cam.fov_deg, sweep=sweep,
                        sweep_orbit=self.sweep_orbit)

    def start_video(self, path: str | None = None) -> Task | None:
        from ..jobs import render_video
        v = self.viewer
        backend = v.model_backend()
        if backend is None or (self.task is not None and self.task.running):
            return None
        path = path or str(next_free(self.video_folder, suffix=VIDEO_FORMATS[self.format]))
        job = self.video_job(path)
        self.task = v.start_task("video", lambda t: render_video(backend, job, t))
        return self.task

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
        _, self.mode = imgui.combo("Camera", self.mode, list(VIDEO_MODE_LABELS))
        edits = v.state.latent.spec().edits
        needs_edit = VIDEO_MODES[self.mode] in ("sweep", "before_after")
        if VIDEO_MODES[self.mode] == "sweep" and edits:
            names = [e.direction.name or e.direction.method for e in edits]
            self.sweep_edit = min(self.sweep_edit, len(names) - 1)
            _, self.sweep_edit = imgui.combo("Sweep", self.sweep_edit, names)
            _, self.sweep_strength = imgui.slider_float("Sweep to +/-", self.sweep_strength, 0.5, 5.0, "%.1f sigma")
            _, self.sweep_orbit = imgui.checkbox("Orbit while sweeping", self.sweep_orbit)
        if needs_edit and not edits:
            imgui.text_colored(DIM_COLOR, "move a direction in the Edit panel first")
        branches = list(v.info.branches) + ["all"]
        labels = list(v.info.branches) + ["all, side by side"]
        _, self.branch = imgui.combo("Branch", min(self.branch, len(branches) - 1), labels)
        _, self.output = imgui.combo("Output", self.output, list(VIDEO_OUTPUTS))
        _, self.frames = imgui.slider_int("Frames", self.frames, 2, 600)
        _, self.fps = imgui.slider_int("FPS", self.fps, 1, 60)
        _, self.format = imgui.combo("Format", self.format, [f[1:].upper() for f in VIDEO_FORMATS])
        _, self.video_folder = imgui.input_text("Video folder", self.video_folder)
        imgui.begin_disabled(self.task is not None and self.task.running or needs_edit and not edits)
        if imgui.button("Render video"):
            self.start_video()
        imgui.end_disabled()
        imgui.text_colored(DIM_COLOR, "current latent, camera and render settings")
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
        targets = ["whole window"] + v.pane_names()
        self.target = min(self.target, len(targets) - 1)
        _, self.target = imgui.combo("Of", self.target, targets)
        if imgui.button("Save PNG"):
            v.save_screenshot(self.folder, None if self.target == 0 else targets[self.target])
        if v.last_saved:
            imgui.text_colored(DIM_COLOR, v.last_saved)
        if v.info is not None:
            self._video()
