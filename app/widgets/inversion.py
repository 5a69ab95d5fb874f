"""Inversion panel: open a photo (read and aligned off the UI thread: every face with its landmarks drawn over the photo,
the EG3D crop, the estimated camera; pick another face or fall back to a manual crop), choose W / W+ / fast stage /
PTI and the steps, run in the background with progress, live preview and cancel; the result becomes the current
latent and camera (``core.tools.inversion``), and "Paste back" shows the re-rendered face in the original photo."""
from __future__ import annotations

import math
import shutil
import sys

import numpy as np
from imgui_bundle import imgui

from core.defaults import INVERT_LOSS, INVERT_STEPS, PTI_STEPS

from ..gl import Texture
from .file_browser import FileBrowser
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
        self.browser = FileBrowser("photo", tuple(PHOTO_FILTERS[1].replace("*", "").split()))
        self.outdir = "inversion"
        self.save_task: Task | None = None
        self.expand = False
        self.manual = False            # True: no face detection, the crop box below
        self.face = 0                  # index of the chosen face (0 = largest)
        self.aligned = None            # app.jobs.PhotoAlignment of the photo
        self.load_task: Task | None = None
        self.overlay_tex: Texture | None = None
        self.fast = True               # first stage through the student, when the model has one
        self.fast_steps = 100
        self.composite_tex: Texture | None = None
        self.composite: np.ndarray | None = None

    # -- actions --------------------------------------------------------------------------------------------
    def load(self, path: str | None = None, face: int | str = "largest") -> Task:
        """Read the photo on a background task: aligned (faces, EG3D crop, estimated camera), or with the manual crop
        box resized to the model's size. ``_poll`` shows the outcome."""
        from ..jobs import align_photo, load_photo
        v = self.viewer
        self.path = path or self.path
        path, size = self.path, v.info.img_resolution
        self.photo_error, self.composite = None, None
        if self.manual:
            box = tuple(self.crop) if self.crop[2] > 0 else None
            self.load_task = v.start_task("photo", lambda t: load_photo(path, size, box))
        else:
            self.load_task = v.start_task("photo", lambda t: align_photo(path, face, t))
        return self.load_task

    def _loaded(self, result) -> None:
        if isinstance(result, np.ndarray):                 # manual crop
            self.photo, self.aligned = result, None
        else:
            al = result.alignment
            self.aligned, self.photo, self.face = result, al.crop, al.index
            self.yaw, self.pitch = result.yaw, result.pitch
            self.optimize_camera = True                     # the estimate is a start (pitch reads high on photos)
            self.overlay_tex = self.overlay_tex or Texture(nearest=False)
            self.overlay_tex.upload(np.ascontiguousarray(result.overlay))
        self.photo_tex = self.photo_tex or Texture(nearest=False)
        self.photo_tex.upload(np.ascontiguousarray(self.photo))

    def paste_back(self) -> None:
        """Composite the result's re-rendered face into the original photo (shown below the result)."""
        from ..jobs import paste_back
        if self.aligned is None or self.outcome is None:
            return
        self.composite = paste_back(self.aligned, self.outcome)
        self.composite_tex = self.composite_tex or Texture(nearest=False)
        self.composite_tex.upload(np.ascontiguousarray(self.composite))

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
                           samples=samples if (r.depth_samples or r.importance_samples) else None,
                           label=self.aligned.alignment.label if self.aligned is not None else None,
                           fast_steps=int(self.fast_steps) if self.fast and self.has_student() else 0)
        self.composite = None
        self.task = v.start_task("inversion", lambda t: invert(backend, job, t))
        return self.task

    def has_student(self) -> bool:
        return self.viewer.info is not None and "student" in self.viewer.info.branches

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
            self.browser.open(self.path or None)   # no native dialog program: the in-app browser
            return
        from imgui_bundle import portable_file_dialogs as pfd
        self.dialog = pfd.open_file("Open a photo", self.path, PHOTO_FILTERS)

    # -- UI -------------------------------------------------------------------------------------------------
    def _poll(self) -> None:
        if self.dialog is not None and self.dialog.ready():
            picked, self.dialog = self.dialog.result(), None
            if picked:
                self.load(picked[0])
        lt = self.load_task
        if lt is not None and lt.done:
            self.load_task = None
            if lt.result is not None:
                self._loaded(lt.result)
            else:
                self.photo_error = lt.error
        t = self.task
        if t is not None and t.done and t.result is not None and t.result is not self._applied:
            self._applied = t.result
            self.apply(t.result)

    def _image(self, tex: Texture | None, side: float, aspect: float = 1.0) -> None:
        if tex is not None:
            imgui.image(imgui.ImTextureRef(tex.handle), imgui.ImVec2(side, side / aspect))
        else:
            imgui.dummy(imgui.ImVec2(side, side))

    def __call__(self) -> None:
        v = self.viewer
        self._poll()
        if self.expand:                # open the header once (a test or a caller showing the panel)
            imgui.set_next_item_open(True)
            self.expand = False
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
        picked = self.browser.draw()
        if picked is not None:
            self.load(str(picked))
        changed_manual, self.manual = imgui.checkbox("Manual crop (no face detection)", self.manual)
        if changed_manual and self.path.strip():
            self.load(self.path.strip())
        if self.manual:
            changed, crop = imgui.input_int3("Crop l,t,size", self.crop)
            self.crop = [max(0, int(x)) for x in crop]
            if changed and self.photo is not None:
                self.load()
            imgui.text_colored(DIM_COLOR, "size 0 = centred square; the crop is resized to the model's size")
        if self.load_task is not None:
            v.task_status(self.load_task)
        if self.photo_error:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(ERROR_COLOR, self.photo_error)
            imgui.pop_text_wrap_pos()
        a = self.aligned
        if a is not None and not self.manual:
            full = imgui.get_content_region_avail().x
            h, w = a.overlay.shape[:2]
            self._image(self.overlay_tex, min(full, imgui.get_font_size() * 18), w / h)
            al = a.alignment
            names = [f"face {i}: {f.width:.0f}x{f.height:.0f} px, score {f.score:.2f}" for i, f in enumerate(al.faces)]
            changed, k = imgui.combo("Face", al.index, names)
            if changed and k != al.index:
                self.load(a.path, face=k)
            imgui.text_colored(DIM_COLOR, f"estimated camera: yaw {math.degrees(self.yaw):.1f}, pitch "
                                          f"{math.degrees(self.pitch):.1f} deg (green: chosen face, yellow: crop)")
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
        if self.has_student():
            _, self.fast = imgui.checkbox("Fast stage through the student first", self.fast)
            if self.fast:
                _, self.fast_steps = imgui.slider_int("Fast steps", self.fast_steps, 10, 1000)
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
            if self.aligned is not None:
                if imgui.button("Paste back into the photo"):
                    self.paste_back()
                if self.composite is not None:
                    h, w = self.composite.shape[:2]
                    self._image(self.composite_tex, min(imgui.get_content_region_avail().x,
                                                        imgui.get_font_size() * 18), w / h)
            _, self.outdir = imgui.input_text("Save to", self.outdir)
            if imgui.button("Save latent, camera, comparison"):
                self.save()
            if self.save_task is not None:
                v.task_status(self.save_task, done_text=f"saved {v.output_path(self.outdir)}/" if self.save_task.result
                              else None)
