"""Inversion panel: open one or several photos of a person (path, Browse, or dropped on the window; each read and
aligned off the UI thread: every face with its landmarks drawn over the photo, the EG3D crop, the estimated camera
as yaw/pitch and a head-pose gizmo; pick another face or fall back to a manual crop), choose W / W+ / fast stage /
PTI and the steps, run in the background with progress, live preview and cancel; one latent for all photos with one
camera per photo (``core.tools.inversion``); the result becomes the current latent and the selected photo's camera,
and "Paste back" shows the re-rendered face in each original photo."""
from __future__ import annotations

import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from imgui_bundle import imgui

from core.defaults import INVERT_LOSS, INVERT_STEPS, PTI_STEPS

from ..gl import Texture
from .file_browser import FileBrowser
from .head_gizmo import draw_head_gizmo
from ..panes import DIM_COLOR, ERROR_COLOR
from ..tasks import Task

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
PHOTO_FILTERS = ["Images", " ".join("*" + x for x in PHOTO_SUFFIXES), "All files", "*"]


def is_photo(path: str) -> bool:
    """A file the panel opens as a photo (by its suffix; the content is checked when it is read)."""
    return Path(path).suffix.lower() in PHOTO_SUFFIXES


@dataclass(eq=False)
class PhotoEntry:
    """One photo in the panel's list: its crop as the inversion sees it and its starting camera."""
    path: str
    photo: np.ndarray                    # [S, S, 3] uint8: the EG3D crop, or the manual crop at the model's size
    aligned: object = None               # app.jobs.PhotoAlignment (None: manual crop)
    yaw: float = 0.0                     # starting camera (radians from frontal): the estimate, or set by hand
    pitch: float = 0.0
    photo_tex: Texture | None = None
    overlay_tex: Texture | None = None
    composite: np.ndarray | None = None  # the inversion pasted back into the photo
    composite_tex: Texture | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path) or self.path

    def delete(self) -> None:
        for tex in (self.photo_tex, self.overlay_tex, self.composite_tex):
            if tex is not None:
                tex.delete()
        self.photo_tex = self.overlay_tex = self.composite_tex = None


class InversionWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.path = ""
        self.crop = [0, 0, 0]          # left, top, size; size 0 = the centred square
        self.photos: list[PhotoEntry] = []
        self.selected = 0              # the photo shown (its faces, crop, camera) and whose camera the result takes
        self.photo_error: str | None = None
        self.space = 1                 # 0 = W, 1 = W+
        self.steps = INVERT_STEPS
        self.lpips = INVERT_LOSS == "lpips"
        self.pti = False
        self.pti_steps = PTI_STEPS
        self.optimize_camera = False
        self.task: Task | None = None
        self.outcome = None
        self.inverted: list[PhotoEntry] = []   # the photos of ``task`` / ``outcome``, in the job's order
        self._applied = None
        self.preview_tex: Texture | None = None
        self._preview_src = None
        self.dialog = None
        self.browser = FileBrowser("photo", PHOTO_SUFFIXES)
        self.outdir = "inversion"
        self.save_task: Task | None = None
        self.expand = False
        self.manual = False            # True: no face detection, the crop box below
        self.loads: list[tuple[Task, str, PhotoEntry | None]] = []   # photos being read: (task, path, the entry
        #                                                                it replaces, None: appended)
        self.load_task: Task | None = None                      # the last one started
        self.fast = True               # first stage through the student, when the model has one
        self.fast_steps = 100
        self._jump_after_load: str | None = None

    # -- the selected photo -----------------------------------------------------------------------------------
    @property
    def current(self) -> PhotoEntry | None:
        return self.photos[self.selected] if 0 <= self.selected < len(self.photos) else None

    @property
    def photo(self) -> np.ndarray | None:
        return self.current.photo if self.current is not None else None

    @property
    def aligned(self):
        return self.current.aligned if self.current is not None else None

    @property
    def composite(self) -> np.ndarray | None:
        return self.current.composite if self.current is not None else None

    @property
    def yaw(self) -> float:
        return self.current.yaw if self.current is not None else 0.0

    @yaw.setter
    def yaw(self, value: float) -> None:
        if self.current is not None:
            self.current.yaw = value

    @property
    def pitch(self) -> float:
        return self.current.pitch if self.current is not None else 0.0

    @pitch.setter
    def pitch(self, value: float) -> None:
        if self.current is not None:
            self.current.pitch = value

    # -- actions --------------------------------------------------------------------------------------------
    def _read(self, path: str, face: int | str, replace: PhotoEntry | None) -> Task:
        """Read ``path`` on a background task: aligned (faces, EG3D crop, estimated camera), or with the manual crop
        box resized to the model's size. ``_poll`` puts it in the list (in place of ``replace`` when given) or shows
        its one-line error; the list is unchanged until the photo has been read."""
        from ..jobs import align_photo, load_photo
        v = self.viewer
        self.photo_error = None
        if self.manual:
            size = v.info.img_resolution if v.info is not None else 512
            box = tuple(self.crop) if self.crop[2] > 0 else None
            task = v.start_task("photo", lambda t: load_photo(path, size, box))
        else:
            task = v.start_task("photo", lambda t: align_photo(path, face, t))
        self.loads.append((task, path, replace))
        self.load_task = task
        return task

    def load(self, path: str | None = None, face: int | str = "largest") -> Task:
        """Open ``path`` (default: the path field) in place of the selected photo (the first photo when none)."""
        self.path = path or self.path
        return self._read(self.path, face, self.current)

    def add(self, path: str) -> Task:
        """Add a photo to the list (a photo already in it is read again in its place)."""
        same = next((e for e in self.photos if os.path.abspath(e.path) == os.path.abspath(path)), None)
        self.path = path
        return self._read(path, "largest", same)

    def reload_all(self) -> None:
        """Read every photo again (the manual crop was switched on or off)."""
        for e in list(self.photos):
            self._read(e.path, "largest", e)

    def remove(self, index: int) -> None:
        e = self.photos.pop(index)
        e.delete()
        self.selected = min(self.selected, len(self.photos) - 1) if self.photos else 0

    def clear(self) -> None:
        while self.photos:
            self.remove(0)

    def take_dropped(self, paths: list[str]) -> list[str]:
        """Files dropped on the window: photos are added to the list (the panel opens); returns the others."""
        photos = [p for p in paths if is_photo(p)]
        for path in photos:
            self.add(path)
        if photos:
            self.viewer.jump_to = self._jump_after_load = "Inversion"   # and again once read (the panel grew)
        return [p for p in paths if not is_photo(p)]

    def _loaded(self, path: str, result, replace: PhotoEntry | None) -> None:
        if isinstance(result, np.ndarray):                 # manual crop: the camera guess is kept
            old = replace if replace in self.photos else None
            e = PhotoEntry(path, result, None, old.yaw if old else 0.0, old.pitch if old else 0.0)
        else:
            e = PhotoEntry(path, result.alignment.crop, result, result.yaw, result.pitch)
            self.optimize_camera = True                     # the estimate is a start (pitch reads high on photos)
            e.overlay_tex = Texture(nearest=False)
            e.overlay_tex.upload(np.ascontiguousarray(result.overlay))
        e.photo_tex = Texture(nearest=False)
        e.photo_tex.upload(np.ascontiguousarray(e.photo))
        if replace in self.photos:
            i = self.photos.index(replace)
            self.photos[i] = e
            replace.delete()
        else:
            self.photos.append(e)
            i = len(self.photos) - 1
        self.selected = i

    def paste_back(self) -> None:
        """Composite the result's re-rendered face into the selected photo (shown below the result)."""
        from ..jobs import paste_back
        e = self.current
        if e is None or e.aligned is None or self.outcome is None or e not in self.inverted:
            return
        e.composite = paste_back(e.aligned, self.outcome, self.inverted.index(e))
        e.composite_tex = e.composite_tex or Texture(nearest=False)
        e.composite_tex.upload(np.ascontiguousarray(e.composite))

    def start(self) -> Task | None:
        """Invert every photo in the list: one latent, one camera per photo."""
        from ..jobs import InversionJob, JobPhoto, invert
        v = self.viewer
        backend = v.model_backend()
        if backend is None or not self.photos or self.loads or (self.task is not None and self.task.running):
            return None            # (photos still being read would be left out)
        r = v.state.render  # optimise at the viewer's render settings (fast enough on a CPU at low resolution)
        samples = (r.depth_samples or v.info.depth_samples, r.importance_samples or v.info.importance_samples)
        photos = tuple(JobPhoto(e.photo, e.yaw, e.pitch, e.aligned.alignment.label if e.aligned is not None else None)
                       for e in self.photos)
        job = InversionJob(photos=photos, fov_deg=v.state.camera.fov_deg,
                           space=("w", "w+")[self.space], steps=int(self.steps), loss="lpips" if self.lpips else "mse",
                           pti_steps=int(self.pti_steps) if self.pti else 0, optimize_camera=self.optimize_camera,
                           resolution=r.resolution or None,
                           samples=samples if (r.depth_samples or r.importance_samples) else None,
                           fast_steps=int(self.fast_steps) if self.fast and self.has_student() else 0)
        self.inverted = list(self.photos)
        for e in self.photos:
            e.composite = None
        self.task = v.start_task("inversion", lambda t: invert(backend, job, t))
        return self.task

    def has_student(self) -> bool:
        return self.viewer.info is not None and "student" in self.viewer.info.branches

    def apply(self, outcome) -> None:
        """Make the inversion the current latent and the selected photo's camera the current camera."""
        v = self.viewer
        s = v.state.latent
        s.stored, s.use_stored = v.bank.add(outcome.ws), True
        self.outcome = outcome
        e = self.current
        self.view_from(self.inverted.index(e) if e in self.inverted else 0)

    def view_from(self, index: int) -> None:
        """The viewer's camera becomes photo ``index``'s camera of the result."""
        c = self.viewer.state.camera
        c.yaw, c.pitch, c.radius, c.fov_deg = self.outcome.camera(index)

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
        """latent.npy, camera.npy (+ cameras.npy with several photos), compare.png, inversion.json (+ the tuned
        network.pkl with PTI) in ``outdir``."""
        from ..jobs import save_inversion
        backend, outcome, outdir = self.viewer.model_backend(), self.outcome, self.viewer.output_path(self.outdir)
        if backend is not None and outcome is not None:
            self.save_task = self.viewer.start_task("save", lambda t: save_inversion(backend, outcome, outdir, t))

    def _browse(self) -> None:
        if sys.platform.startswith("linux") and not any(shutil.which(t) for t in ("zenity", "kdialog", "qarma", "yad")):
            self.browser.open(self.path or None)   # no native dialog program: the in-app browser
            return
        from imgui_bundle import portable_file_dialogs as pfd
        self.dialog = pfd.open_file("Add photos", self.path, PHOTO_FILTERS, pfd.opt.multiselect)

    # -- UI -------------------------------------------------------------------------------------------------
    def _poll(self) -> None:
        if self.dialog is not None and self.dialog.ready():
            picked, self.dialog = self.dialog.result(), None
            for path in picked or ():
                self.add(path)
        while self.loads and self.loads[0][0].done:       # in the order they were asked for: the list's order
            task, path, replace = self.loads.pop(0)
            if task.result is not None:
                self._loaded(path, task.result, replace)
            else:
                self.photo_error = f"{os.path.basename(path)}: {task.error}"
            if not self.loads and self._jump_after_load:
                self.viewer.jump_to, self._jump_after_load = self._jump_after_load, None
        t = self.task
        if t is not None and t.done and t.result is not None and t.result is not self._applied:
            self._applied = t.result
            self.apply(t.result)

    def _image(self, tex: Texture | None, side: float, aspect: float = 1.0) -> None:
        if tex is not None:
            imgui.image(imgui.ImTextureRef(tex.handle), imgui.ImVec2(side, side / aspect))
        else:
            imgui.dummy(imgui.ImVec2(side, side))

    def _camera_line(self, yaw: float, pitch: float, text: str, tip: str) -> None:
        """A head-pose gizmo with the camera's yaw / pitch in degrees beside it."""
        size = imgui.get_font_size() * 4
        draw_head_gizmo(yaw, pitch, size, tip)
        imgui.same_line()
        imgui.begin_group()
        imgui.text_colored(DIM_COLOR, f"{text}\nyaw {math.degrees(yaw):.1f}, pitch {math.degrees(pitch):.1f} deg")
        imgui.end_group()

    GIZMO_TIP = ("the head as this camera sees it: nose blue, up green, ear to ear red (the person's left); "
                 "frontal = the nose seen end-on")

    def _photo_list(self) -> None:
        """One row per photo: select it, its camera, remove it."""
        remove = None
        for i, e in enumerate(self.photos):
            if imgui.small_button(f"x##photo{i}"):
                remove = i
            if imgui.is_item_hovered():
                imgui.set_tooltip("remove this photo")
            imgui.same_line()
            how = "manual crop" if e.aligned is None else f"face {e.aligned.alignment.index}"
            label = f"{i + 1}. {e.name} ({how}; yaw {math.degrees(e.yaw):.0f}, pitch {math.degrees(e.pitch):.0f})"
            if imgui.selectable(f"{label}##photo{i}", i == self.selected)[0]:
                self.selected = i
        if remove is not None:
            self.remove(remove)

    def __call__(self) -> None:
        v = self.viewer
        self._poll()
        if self.expand:                # open the header once (a test or a caller showing the panel)
            imgui.set_next_item_open(True)
            self.expand = False
        if not imgui.collapsing_header("Inversion"):
            return
        if v.model_backend() is None:
            imgui.text_colored(DIM_COLOR, "needs a loaded model" + (f" ({len(self.photos)} photos wait)"
                                                                    if self.photos else ""))
            return
        entered, self.path = imgui.input_text("Photo", self.path, imgui.InputTextFlags_.enter_returns_true)
        if (imgui.button("Load##photo") or entered) and self.path.strip():
            self.load(self.path.strip())
        if imgui.is_item_hovered():
            imgui.set_tooltip("open this photo in place of the selected one")
        imgui.same_line()
        if imgui.button("Add##photo") and self.path.strip():
            self.add(self.path.strip())
        if imgui.is_item_hovered():
            imgui.set_tooltip("another photo of the same person: one latent, one camera per photo")
        imgui.same_line()
        if imgui.button("Browse...##photo"):
            self._browse()
        picked = self.browser.draw()
        if picked is not None:
            self.add(str(picked))
        imgui.text_colored(DIM_COLOR, "or drop photos on the window")
        changed_manual, self.manual = imgui.checkbox("Manual crop (no face detection)", self.manual)
        if changed_manual:
            self.reload_all()
        if self.manual:
            changed, crop = imgui.input_int3("Crop l,t,size", self.crop)
            self.crop = [max(0, int(x)) for x in crop]
            if changed and self.current is not None:
                self.load(self.current.path)
            imgui.text_colored(DIM_COLOR, "size 0 = centred square; the crop is resized to the model's size")
        for task, _, _ in self.loads:
            v.task_status(task)
        if self.photo_error:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(ERROR_COLOR, self.photo_error)
            imgui.pop_text_wrap_pos()
        if self.photos:
            n = len(self.photos)
            imgui.separator_text("1 photo" if n == 1 else f"{n} photos of one person")
            self._photo_list()
        e = self.current
        a = e.aligned if e is not None else None
        if a is not None:
            full = imgui.get_content_region_avail().x
            h, w = a.overlay.shape[:2]
            self._image(e.overlay_tex, min(full, imgui.get_font_size() * 18), w / h)
            al = a.alignment
            names = [f"face {i}: {f.width:.0f}x{f.height:.0f} px, score {f.score:.2f}" for i, f in enumerate(al.faces)]
            changed, k = imgui.combo("Face", al.index, names)
            if changed and k != al.index:
                self.load(a.path, face=k)
            moved = max(abs(e.yaw - a.yaw), abs(e.pitch - a.pitch)) > 1e-4    # the sliders hold float32
            self._camera_line(e.yaw, e.pitch, "starting camera (set below)" if moved else "estimated camera",
                              self.GIZMO_TIP)
            if moved:
                imgui.text_colored(DIM_COLOR, f"estimate: yaw {math.degrees(a.yaw):.1f}, pitch "
                                              f"{math.degrees(a.pitch):.1f} deg")
            imgui.text_colored(DIM_COLOR, "green: chosen face, yellow: crop")
        elif e is not None:
            self._camera_line(e.yaw, e.pitch, "camera guess (set below)", self.GIZMO_TIP)
        t = self.task
        n_prev = max(1, len(self.inverted)) if t is not None else 1
        side = min(imgui.get_content_region_avail().x / (1 + n_prev) - 4, imgui.get_font_size() * 9)
        self._image(e.photo_tex if e is not None else None, side)
        imgui.same_line()
        if t is not None and t.preview is not None and t.preview is not self._preview_src:
            self.preview_tex = self.preview_tex or Texture(nearest=False)
            self.preview_tex.upload(t.preview)
            self._preview_src = t.preview
        self._image(self.preview_tex, side * n_prev, n_prev)
        if e is not None:
            _, e.yaw = imgui.slider_angle("Camera yaw", e.yaw, -60.0, 60.0)
            _, e.pitch = imgui.slider_angle("Camera pitch", e.pitch, -40.0, 40.0)
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
        imgui.begin_disabled(not self.photos or bool(self.loads) or (t is not None and t.running))
        n = len(self.photos)
        if imgui.button("Invert" if n <= 1 else f"Invert {n} photos (one latent)"):
            self.start()
        imgui.end_disabled()
        if t is not None:
            v.task_status(t, done_text=f"done in {t.elapsed:.0f} s: {t.result.psnr:.1f} dB; now the current latent"
                          if t.result is not None else None)
            k = self.inverted.index(e) if e in self.inverted else 0
            if t.running and f"yaw_deg{k}" in t.values:
                self._camera_line(math.radians(t.values[f"yaw_deg{k}"]), math.radians(t.values[f"pitch_deg{k}"]),
                                  "camera being optimised", self.GIZMO_TIP)
        o = self.outcome
        if o is not None and o.result.tuned is not None:
            if imgui.button("Explore the PTI-tuned generator"):
                self.use_tuned_model()
        if o is not None:
            self._result(o, e)

    def _result(self, o, e: PhotoEntry | None) -> None:
        v = self.viewer
        k = self.inverted.index(e) if e in self.inverted else None
        if len(o.cameras) > 1:
            for i, (yaw, pitch, _, _) in enumerate(o.cameras):
                name = self.inverted[i].name if i < len(self.inverted) else f"photo {i + 1}"
                imgui.text_colored(DIM_COLOR, f"{name}: camera yaw {math.degrees(yaw):.1f}, pitch "
                                              f"{math.degrees(pitch):.1f} deg, {o.psnrs[i]:.1f} dB")
        if k is not None:
            yaw, pitch, _, _ = o.camera(k)
            self._camera_line(yaw, pitch, "camera found" + (f" for {e.name}" if len(o.cameras) > 1 else ""),
                              self.GIZMO_TIP)
            if len(o.cameras) > 1 and imgui.button("View from this photo's camera"):
                self.view_from(k)
            if e.aligned is not None:
                if imgui.button("Paste back into the photo"):
                    self.paste_back()
                if e.composite is not None:
                    h, w = e.composite.shape[:2]
                    self._image(e.composite_tex, min(imgui.get_content_region_avail().x,
                                                     imgui.get_font_size() * 18), w / h)
        _, self.outdir = imgui.input_text("Save to", self.outdir)
        if imgui.button("Save latent, camera, comparison"):
            self.save()
        if self.save_task is not None:
            v.task_status(self.save_task, done_text=f"saved {v.output_path(self.outdir)}/" if self.save_task.result
                          else None)
