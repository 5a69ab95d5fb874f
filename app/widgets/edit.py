"""Edit panel: directions of the current model (SeFa or GANSpace, computed in the background on first open and
cached per model file, or loaded from a directions file), one slider per direction in sigma units with its layer
range and a thumbnail strip (-3 .. +3 sigma); rename a direction; teach one by marking samples that have / lack an
attribute. Edits apply to the current latent whatever it is (seed, blend, mix, inversion), every branch at once
(``core.tools.edit``)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from imgui_bundle import imgui

from ..gl import Texture
from ..panes import DIM_COLOR, ERROR_COLOR
from ..tasks import Task
from ..threads import error_line

METHODS = ("sefa", "ganspace")
METHOD_LABELS = ("SeFa (closed form, affine weights)", "GANSpace (PCA of sampled w)")
MAX_STRENGTH = 5.0            # slider range, sigma
MIN_MARKS = 3                 # marked samples of each kind before a direction can be taught


def set_strength(edits: tuple, direction, strength: float) -> tuple:
    """``edits`` with ``direction`` at ``strength`` (appended when new, dropped at 0)."""
    from core.tools.edit.apply import Edit
    out, found = [], False
    for e in edits:
        if e.direction == direction:
            found = True
            if strength != 0:
                out.append(Edit(direction, float(strength)))
        else:
            out.append(e)
    if not found and strength != 0:
        out.append(Edit(direction, float(strength)))
    return tuple(out)


class EditWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.method = 0
        self.layers = [0, 0]              # [0, 0]: all of the model's
        self.num = 5
        self.directions: list = []        # core Direction, in panel order
        self.generation = -1
        self.task: Task | None = None     # computing directions
        self.strip_task: Task | None = None
        self.teach_task: Task | None = None
        self.strips: dict = {}            # Direction -> Texture
        self._taken: set[int] = set()
        self.file = ""
        self.message = ""
        self.error = ""
        self.has: list[np.ndarray] = []
        self.lacks: list[np.ndarray] = []
        self.teach_name = "taught"
        self.teach_layers = [0, 0]
        self.keep_fixed = False
        self.opened = False
        self.reveal_next = False          # open the panel and scroll it to the top of the controls (next frame)
        self.slider_rects: dict[int, tuple[float, float, float, float]] = {}  # row -> x0, y0, x1, y1 (window px)

    # -- actions --------------------------------------------------------------------------------------------
    def compute(self) -> Task | None:
        from ..edit_jobs import DirectionsJob, compute_directions
        v = self.viewer
        backend = v.model_backend()
        if backend is None or (self.task is not None and self.task.running):
            return None
        a, b = self.layers
        job = DirectionsJob(METHODS[self.method], (a, b) if b > a else None, int(self.num))
        self.task = v.start_task("directions", lambda t: compute_directions(backend, job, t))
        return self.task

    def load_file(self, path: str) -> bool:
        """Add a directions file's directions; one from another model is refused with a clear message."""
        from ..edit_jobs import load_direction_file
        backend = self.viewer.model_backend()
        if backend is None:
            return False
        try:
            dset = load_direction_file(backend, path)
        except Exception as e:  # noqa: BLE001 - corrupt file, other model: one line in the panel
            self.error, self.message = error_line(e), ""
            return False
        self.add(dset.directions)
        self.refresh_strips(missing_only=True)
        self.error, self.message = "", f"loaded {len(dset.directions)} {dset.method} direction(s) from {path}"
        return True

    def reveal(self) -> None:
        """Open the Edit panel and scroll the controls to it."""
        self.reveal_next = True

    def add(self, directions) -> None:
        for d in directions:
            if d not in self.directions:
                self.directions.append(d)

    def set_strength(self, direction, strength: float) -> None:
        s = self.viewer.state.latent
        s.edits = set_strength(s.edits, direction, strength)

    def strength(self, direction) -> float:
        return next((e.strength for e in self.viewer.state.latent.edits if e.direction == direction), 0.0)

    def rename(self, index: int, name: str) -> None:
        """Rename a direction (the edits that use it follow)."""
        from core.tools.edit.apply import Edit
        old = self.directions[index]
        new = replace(old, name=name)
        self.directions[index] = new
        s = self.viewer.state.latent
        s.edits = tuple(Edit(new, e.strength) if e.direction == old else e for e in s.edits)
        if old in self.strips:
            self.strips[new] = self.strips.pop(old)

    def refresh_strips(self, missing_only: bool = False) -> Task | None:
        """Thumbnail strips of every direction (``missing_only``: of those without one) for the current latent,
        rendered by the model's first branch."""
        from ..edit_jobs import strips
        v = self.viewer
        backend = v.model_backend()
        dirs = tuple(d for d in self.directions if not (missing_only and d in self.strips))
        if backend is None or not dirs or (self.strip_task is not None and self.strip_task.running):
            return None
        latent, branch = v.state.latent.spec(), v.info.branches[0]
        self.strip_task = v.start_task("thumbnails", lambda t: strips(backend, latent, dirs, branch, t))
        return self.strip_task

    def mark(self, has: bool) -> None:
        """Mark the latent the panes show as having / lacking the attribute to teach."""
        from ..edit_jobs import current_ws
        backend = self.viewer.model_backend()
        if backend is not None:
            (self.has if has else self.lacks).append(current_ws(backend, self.viewer.state.latent.spec()))

    def fit(self) -> Task | None:
        from ..edit_jobs import TeachJob, teach
        v = self.viewer
        backend = v.model_backend()
        if backend is None or len(self.has) < MIN_MARKS or len(self.lacks) < MIN_MARKS:
            return None
        a, b = self.teach_layers
        layers = (a, b) if b > a else (0, v.info.num_ws)
        fixed = tuple(e.direction for e in v.state.latent.edits) if self.keep_fixed else ()
        job = TeachJob(tuple(self.has), tuple(self.lacks), self.teach_name.strip() or "taught", layers, fixed)
        self.teach_task = v.start_task("teach", lambda t: teach(backend, job, t))
        return self.teach_task

    # -- per frame ------------------------------------------------------------------------------------------
    def _sync(self) -> None:
        v = self.viewer
        if v.renderer.generation != self.generation:       # another model: its directions are not ours
            self.generation = v.renderer.generation
            self.directions, self.has, self.lacks, self.message, self.error = [], [], [], "", ""
            for tex in self.strips.values():
                tex.delete()
            self.strips, self.opened = {}, False
        self.add(e.direction for e in v.state.latent.edits)   # a reopened session's or an undone edit's
        for task, what in ((self.task, "dirs"), (self.strip_task, "strips"), (self.teach_task, "teach")):
            if task is None or not task.done or task.result is None or id(task) in self._taken:
                continue
            self._taken.add(id(task))
            if what == "dirs":
                self.add(task.result.directions)
                self.refresh_strips(missing_only=True)
            elif what == "strips":
                for d, img in task.result.items():
                    tex = self.strips.get(d) or Texture(nearest=False)
                    tex.upload(img)
                    self.strips[d] = tex
            else:
                self.add((task.result,))
                self.message = f"taught {task.result.name!r}: {task.result.source}"
                self.refresh_strips(missing_only=True)

    def _direction_rows(self) -> None:
        for i, d in enumerate(list(self.directions)):
            imgui.push_id(f"dir{i}")
            x = self.strength(d)
            changed, x = imgui.slider_float("##s", x, -MAX_STRENGTH, MAX_STRENGTH, "%+.2f sigma")
            lo, hi = imgui.get_item_rect_min(), imgui.get_item_rect_max()
            self.slider_rects[i] = (lo.x, lo.y, hi.x, hi.y)
            if changed:
                self.set_strength(d, round(x, 3))
            imgui.same_line()
            imgui.set_next_item_width(imgui.get_font_size() * 6)
            done, name = imgui.input_text("##name", d.name, imgui.InputTextFlags_.enter_returns_true)
            if done and name.strip() and name.strip() != d.name:
                self.rename(i, name.strip())
            imgui.text_colored(DIM_COLOR, f"  ws {d.layers[0]}:{d.layers[1]} | {d.method} | sigma {d.sigma:.3g}")
            if imgui.is_item_hovered():
                imgui.set_tooltip(d.source)
            tex = self.strips.get(d)
            if tex is not None:
                width = imgui.get_content_region_avail().x
                imgui.image(imgui.ImTextureRef(tex.handle), imgui.ImVec2(width, width / 7))
            imgui.pop_id()

    def _teach(self) -> None:
        v = self.viewer
        imgui.separator_text("Teach a direction")
        _, self.teach_name = imgui.input_text("Name##teach", self.teach_name)
        _, a, b = imgui.drag_int_range2("Layers##teach", *self.teach_layers, 0.1, 0, v.info.num_ws)
        self.teach_layers = [a, b]
        if imgui.button("Current sample has it"):
            self.mark(True)
        imgui.same_line()
        if imgui.button("lacks it"):
            self.mark(False)
        imgui.same_line()
        if imgui.button("Clear##marks"):
            self.has, self.lacks = [], []
        imgui.text_colored(DIM_COLOR, f"marked: {len(self.has)} have, {len(self.lacks)} lack "
                                      f"(fit from {MIN_MARKS} of each)")
        _, self.keep_fixed = imgui.checkbox("Keep the moved directions fixed", self.keep_fixed)
        running = self.teach_task is not None and self.teach_task.running
        imgui.begin_disabled(len(self.has) < MIN_MARKS or len(self.lacks) < MIN_MARKS or running)
        if imgui.button("Fit the direction"):
            self.fit()
        imgui.end_disabled()
        if self.teach_task is not None and (self.teach_task.running or self.teach_task.error):
            v.task_status(self.teach_task)

    def __call__(self) -> None:
        v = self.viewer
        self._sync()
        if self.reveal_next:
            imgui.set_next_item_open(True)
        if not imgui.collapsing_header("Edit"):
            return
        if self.reveal_next:
            imgui.set_scroll_here_y(0.0)
            self.reveal_next = False
        if v.model_backend() is None or v.info is None:
            imgui.text_colored(DIM_COLOR, "needs a loaded model")
            return
        if not self.opened:              # first open for this model: its directions (cached after the first time)
            self.opened = True
            if not self.directions:
                self.compute()
        _, self.method = imgui.combo("Method", self.method, list(METHOD_LABELS))
        a, b = self.layers
        _, a, b = imgui.drag_int_range2("Layers", a, b, 0.1, 0, v.info.num_ws)
        self.layers = [a, b]
        _, self.num = imgui.slider_int("Directions", self.num, 1, 20)
        imgui.text_colored(DIM_COLOR, f"layers ws {a}:{b}" if b > a else f"all layers (ws 0:{v.info.num_ws})")
        running = self.task is not None and self.task.running
        imgui.begin_disabled(running)
        if imgui.button("Compute"):
            self.compute()
        imgui.end_disabled()
        imgui.same_line()
        imgui.begin_disabled(not self.directions or (self.strip_task is not None and self.strip_task.running))
        if imgui.button("Thumbnails for this latent"):
            self.refresh_strips()
        imgui.end_disabled()
        for t in (self.task, self.strip_task):
            if t is not None and (t.running or t.error):
                v.task_status(t)
        imgui.set_next_item_width(-imgui.get_font_size() * 3.5)
        entered, self.file = imgui.input_text("##dirfile", self.file, imgui.InputTextFlags_.enter_returns_true)
        imgui.same_line()
        if (imgui.button("Load##dirs") or entered) and self.file.strip():
            self.load_file(self.file.strip())
        if self.error:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(ERROR_COLOR, self.error)
            imgui.pop_text_wrap_pos()
        elif self.message:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(DIM_COLOR, self.message)
            imgui.pop_text_wrap_pos()
        if self.directions:
            imgui.separator_text("Directions (strength in sigma)")
            self._direction_rows()
            if imgui.button("Reset all edits"):
                v.state.latent.edits = ()
        self._teach()
