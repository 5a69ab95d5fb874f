"""Inversion panel: open a photo, see the crop, set the camera guess, choose W / W+ / PTI and the steps, run in the
background with progress, live preview and cancel; the result becomes the current latent (``core.tools.inversion``)."""
from __future__ import annotations

import math
import shutil
import sys

import numpy as np
from imgui_bundle import imgui

from core.defaults import INVERT_LOSS, INVERT_STEPS, PTI_STEPS

from ..gl import Texture
from ..panes import DIM_COLOR, ERROR_COLOR
from ..tasks import Task

PHOTO_FILTERS = ["Images", "*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff", "All files", "*"]


class InversionWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.path = ""
        self.crop = [0, 0, 0]          # left, top, size; size 0 = the centred square
        self.photo: np.ndarray | None = None
        self.photo_error: str | None = None
        self.yaw = self.pitch = 0.0
        self.space = 1                 # 0 = W, 1 = W+
        self.steps = INVERT_STEPS
        self.lpips = INVERT_LOSS == "lpips"
        self.pti = False
        self.pti_steps = PTI_STEPS
        self.optimize_camera = False
        self.task: Task | None = None
        self.outcome = None
        self._applied = None
        self.photo_tex: Texture | None = None
        self.preview_tex: Texture | None = None
        self._preview_src = None
        self.dialog = None
        self.outdir = "inversion"
        self.save_task: Task | None = None
        self.photo_task: Task | None = None

    # -- actions --------------------------------------------------------------------------------------------
    def load(self, path: str | None = None) -> Task:
        """Read, crop and show the photo (the size the model renders) in a background task, so a large or slow
        photo never freezes the window; :meth:`_poll` shows the result (or its error line) when it is done."""
        from ..jobs import load_photo
        v = self.viewer
        self.path = path or self.path
        box = tuple(self.crop) if self.crop[2] > 0 else None
        where, size = self.path, v.info.img_resolution
        self.photo_task = v.start_task("photo", lambda t: load_photo(where, size, box))
        return self.photo_task

    def _photo_done(self) -> None:
        t, self.photo_task = self.photo_task, None
        if t.error is not None or t.result is None:  # unreadable image, bad crop: shown in the panel
            self.photo, self.photo_error = None, t.error or "cancelled"
            return
        self.photo, self.photo_error = t.result, None
        self.photo_tex = self.photo_tex or Texture(nearest=False)
        self.photo_tex.upload(self.photo)

    def start(self) -> Task | None:
        from ..jobs import InversionJob, invert
        v = self.viewer
        backend = v.model_backend()
        if backend is None or self.photo is None or (self.task is not None and self.task.running):
            return None
        r = v.state.render  # optimise at the viewer's render settings (fast enough on a CPU at low resolution)
        samples = (r.depth_samples or v.info.depth_samples, r.importance_samples or v.info.importance_samples)
        job = InversionJob(photo=self.photo, yaw=self.yaw, pitch=self.pitch, fov_deg=v.state.camera.fov_deg,
                           space=("w", "w+")[self.space], steps=int(self.steps), loss="lpips" if self.lpips else "mse",
                           pti_steps=int(self.pti_steps) if self.pti else 0, optimize_camera=self.optimize_camera,
                           resolution=r.resolution or None,
                           samples=samples if (r.depth_samples or r.importance_samples) else None)
        self.task = v.start_task("inversion", lambda t: invert(backend, job, t))
        return self.task

    def apply(self, outcome) -> None:
        """Make the inversion the current latent and its camera the current camera."""
        v = self.viewer
        s, c = v.state.latent, v.state.camera
        s.stored, s.use_stored = v.bank.add(outcome.ws), True
        c.yaw, c.pitch, c.radius, c.fov_deg = outcome.yaw, outcome.pitch, outcome.radius, outcome.fov_deg
        self.outcome = outcome

    def use_tuned_model(self) -> None:
        """With PTI: explore the tuned generator (it replaces the loaded model in the viewer)."""
        from ..model_backend import ModelBackend
        v = self.viewer
        tuned = self.outcome.result.tuned
        ws = self.outcome.ws
        backend = ModelBackend(tuned, v.bank, name=f"{v.info.name} (PTI-tuned)")

        def after_load() -> None:  # the new model resets the latent; point it at the inversion again
            v.state.latent.stored, v.state.latent.use_stored = v.bank.add(ws), True
        v.explore_tuned(backend, "PTI-tuned", after_load)

    def save(self) -> None:
        """latent.npy, camera.npy, compare.png, inversion.json (+ the tuned network.pkl with PTI) in ``outdir``."""
        from ..jobs import save_inversion
        backend, outcome, outdir = self.viewer.model_backend(), self.outcome, self.viewer.output_path(self.outdir)
        if backend is not None and outcome is not None:
            self.save_task = self.viewer.start_task("save", lambda t: save_inversion(backend, outcome, outdir, t))

    def _browse(self) -> None:
        if sys.platform.startswith("linux") and not any(shutil.which(t) for t in ("zenity", "kdialog", "qarma", "yad")):
            self.photo_error = "no native file dialog here (install zenity); type the path"
            return
        from imgui_bundle import portable_file_dialogs as pfd
        self.dialog = pfd.open_file("Open a photo", self.path, PHOTO_FILTERS)

    # -- UI -------------------------------------------------------------------------------------------------
    def _poll(self) -> None:
        if self.photo_task is not None and self.photo_task.done:
            self._photo_done()
        if self.dialog is not None and self.dialog.ready():
            picked, self.dialog = self.dialog.result(), None
            if picked:
                self.load(picked[0])
        t = self.task
        if t is not None and t.done and t.result is not None and t.result is not self._applied:
            self._applied = t.result
            self.apply(t.result)

    def _image(self, tex: Texture | None, side: float) -> None:
        if tex is not None:
            imgui.image(imgui.ImTextureRef(tex.handle), imgui.ImVec2(side, side))
        else:
            imgui.dummy(imgui.ImVec2(side, side))

    def __call__(self) -> None:
        v = self.viewer
        self._poll()
        if not imgui.collapsing_header("Inversion"):
            return
        if v.model_backend() is None:
            imgui.text_colored(DIM_COLOR, "needs a loaded model")
            return
        entered, self.path = imgui.input_text("Photo", self.path, imgui.InputTextFlags_.enter_returns_true)
        if (imgui.button("Load##photo") or entered) and self.path.strip():
            self.load(self.path.strip())
        imgui.same_line()
        if imgui.button("Browse...##photo"):
            self._browse()
        changed, crop = imgui.input_int3("Crop l,t,size", self.crop)
        self.crop = [max(0, int(x)) for x in crop]
        if changed and self.photo is not None:
            self.load()
        imgui.text_colored(DIM_COLOR, "size 0 = centred square; the crop is resized to the model's size")
        if self.photo_error:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(ERROR_COLOR, self.photo_error)
            imgui.pop_text_wrap_pos()
        side = min(imgui.get_content_region_avail().x / 2 - 4, imgui.get_font_size() * 9)
        self._image(self.photo_tex, side)
        imgui.same_line()
        t = self.task
        if t is not None and t.preview is not None and t.preview is not self._preview_src:
            self.preview_tex = self.preview_tex or Texture(nearest=False)
            self.preview_tex.upload(t.preview)
            self._preview_src = t.preview
        self._image(self.preview_tex, side)
        _, self.yaw = imgui.slider_angle("Camera yaw", self.yaw, -60.0, 60.0)
        _, self.pitch = imgui.slider_angle("Camera pitch", self.pitch, -40.0, 40.0)
        _, self.optimize_camera = imgui.checkbox("Optimise the camera too", self.optimize_camera)
        if imgui.radio_button("W", self.space == 0):
            self.space = 0
        imgui.same_line()
        if imgui.radio_button("W+", self.space == 1):
            self.space = 1
        imgui.same_line()
        _, self.pti = imgui.checkbox("PTI", self.pti)
        imgui.same_line()
        _, self.lpips = imgui.checkbox("LPIPS loss", self.lpips)
        if imgui.is_item_hovered():
            imgui.set_tooltip("LPIPS + MSE (needs the ImageNet VGG16 weights); off: MSE only")
        _, self.steps = imgui.slider_int("Steps", self.steps, 10, 2000)
        imgui.text_colored(DIM_COLOR, "renders at the Render panel's resolution and samples")
        if self.pti:
            _, self.pti_steps = imgui.slider_int("PTI steps", self.pti_steps, 10, 1000)
        imgui.begin_disabled(self.photo is None or (t is not None and t.running))
        if imgui.button("Invert"):
            self.start()
        imgui.end_disabled()
        if t is not None:
            v.task_status(t, done_text=f"done in {t.elapsed:.0f} s: {t.result.psnr:.1f} dB; now the current latent"
                          if t.result is not None else None)
        o = self.outcome
        if o is not None and o.result.tuned is not None:
            if imgui.button("Explore the PTI-tuned generator"):
                self.use_tuned_model()
        if o is not None:
            imgui.text_colored(DIM_COLOR, f"camera: yaw {math.degrees(o.yaw):.1f}, "
                                          f"pitch {math.degrees(o.pitch):.1f} deg")
            _, self.outdir = imgui.input_text("Save to", self.outdir)
            if imgui.button("Save latent, camera, comparison"):
                self.save()
            if self.save_task is not None:
                v.task_status(self.save_task, done_text=f"saved {v.output_path(self.outdir)}/" if self.save_task.result
                              else None)
