"""Model panel: the loaded model, a path field, a native file dialog, recent files, drag and drop, load errors."""
from __future__ import annotations

import os
import shutil
import sys

from imgui_bundle import imgui

from ..gl import Texture
from .file_browser import FileBrowser
from ..panes import DIM_COLOR, ERROR_COLOR, WARN_COLOR

FLAT_STD = 2.0   # uint8 levels: below this standard deviation a render counts as one flat colour
DARK_MEAN = 6.0  # uint8 levels: below this mean a render counts as black
MODEL_FILTERS = ["Model files (.pkl .pt)", "*.pkl *.pt", "All files", "*"]


class ModelWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.path_text = ""
        self.dialog = None
        self.browser = FileBrowser("model", (".pkl", ".pt"))
        self._about_for: str | None = None
        self.about_text = ""
        self.strip = None                 # [H, W, 3] uint8 strip of training images, or None
        self.strip_texture: Texture | None = None

    def _poll_dialog(self) -> None:
        if self.dialog is not None and self.dialog.ready():
            picked = self.dialog.result()
            self.dialog = None
            if picked:
                self.viewer.open_model(picked[0])

    def _browse(self) -> None:
        if sys.platform.startswith("linux") and not any(shutil.which(t) for t in ("zenity", "kdialog", "matedialog",
                                                                                    "qarma", "yad")):
            self.browser.open(self.path_text or None)   # no native dialog program: the in-app browser
            return
        try:
            from imgui_bundle import portable_file_dialogs as pfd
            self.dialog = pfd.open_file("Open a model", self.path_text, MODEL_FILTERS)
        except Exception as e:  # noqa: BLE001 - no dialog program (zenity/kdialog) on this system
            self.viewer.load_error = f"no native file dialog available ({e}); type the path instead"

    def _about(self) -> None:
        """What the model was trained on: ``<model>.about.txt`` (one line) and ``<model>.training.png`` (a strip of
        its training images, ``tools/training_strip.py``) beside the model file, when they exist."""
        v = self.viewer
        if v.model_path != self._about_for:
            self._about_for, self.about_text, self.strip = v.model_path, "", None
            stem = os.path.splitext(v.model_path or "")[0]
            try:
                with open(stem + ".about.txt", encoding="utf-8") as f:
                    self.about_text = f.readline().strip()
            except OSError:
                pass
            from core.files.image_io import PhotoError, read_image
            if os.path.isfile(stem + ".training.png"):
                try:
                    self.strip = read_image(stem + ".training.png")
                    self.strip_texture = self.strip_texture or Texture(nearest=False)
                    self.strip_texture.upload(self.strip)
                except PhotoError:
                    self.strip = None
        if self.about_text:
            imgui.text_colored(DIM_COLOR, self.about_text)
        if self.strip is not None:
            h, w = self.strip.shape[:2]
            width = imgui.get_content_region_avail().x
            imgui.image(imgui.ImTextureRef(self.strip_texture.handle), imgui.ImVec2(width, width * h / max(w, 1)))
            imgui.text_colored(DIM_COLOR, "its training images")

    def _tuned(self) -> None:
        """Tuned weights are a mode: said in colour, with the way back."""
        v = self.viewer
        if not v.tuned_note:
            return
        imgui.push_text_wrap_pos(0.0)
        imgui.text_colored(WARN_COLOR, f"{v.tuned_note} weights: every latent (seeds too) renders through them")
        imgui.pop_text_wrap_pos()
        if imgui.button("Back to the original weights"):
            v.back_to_original()

    def flat_panes(self) -> list[str]:
        """Branches whose newest render is one flat colour or nearly black: what random weights (the reference
        fixtures, a run that just started) draw."""
        out = []
        for b, p in self.viewer.panes.items():
            img = p.result.image if p.result is not None and p.result.error is None else None
            if img is not None and (float(img.std()) < FLAT_STD or float(img.mean()) < DARK_MEAN):
                out.append(b)
        return out

    def _untrained(self) -> None:
        """A flat or black render gets an explanation instead of leaving the user to guess."""
        flat = self.flat_panes()
        if flat:
            imgui.text_colored(WARN_COLOR, f"{', '.join(flat)}: one flat colour or black. This model's weights "
                               "look untrained (random initialisation, or a run that just started); a trained "
                               "model draws objects here.")

    def __call__(self) -> None:
        v = self.viewer
        self._poll_dialog()
        if not imgui.collapsing_header("Model", imgui.TreeNodeFlags_.default_open):
            return
        if v.info is not None:
            imgui.text(v.info.name)
            info = v.info
            imgui.text_colored(DIM_COLOR, f"{', '.join(info.branches)} | {info.img_resolution} px | {info.device}")
            self._tuned()
            self._untrained()
            self._about()
        elif v.renderer.loading is None and v.load_error is None:
            imgui.text_colored(DIM_COLOR, "no model loaded")
        if v.renderer.loading is not None:
            imgui.text_colored(DIM_COLOR, f"loading {v.renderer.loading} ...")
        if v.load_error is not None:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(ERROR_COLOR, v.load_error)
            imgui.pop_text_wrap_pos()
        imgui.set_next_item_width(-imgui.get_font_size() * 3.5)
        entered, self.path_text = imgui.input_text("##model_path", self.path_text,
                                                   imgui.InputTextFlags_.enter_returns_true)
        imgui.same_line()
        if (imgui.button("Open") or entered) and self.path_text.strip():
            v.open_model(self.path_text.strip())
        if imgui.button("Browse..."):
            self._browse()
        picked = self.browser.draw()
        if picked is not None:
            self.path_text = str(picked)
            v.open_model(self.path_text)
        imgui.same_line()
        if imgui.begin_combo("##recent", "Recent files", imgui.ComboFlags_.height_large):
            if not v.recent.paths:
                imgui.text_colored(DIM_COLOR, "(none yet)")
            for path in v.recent.paths:
                if imgui.selectable(path, False)[0]:
                    self.path_text = path
                    v.open_model(path)
            imgui.end_combo()
        imgui.text_colored(DIM_COLOR, "or drop a model, session, latent or photo on the window")
        _, v.outdir = imgui.input_text("Output folder", v.outdir)
