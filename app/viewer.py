"""The viewer: one window with a control panel and one live pane per branch of the loaded model (+ a mesh pane).

Frame loop (``NVlabs/stylegan3: visualizer.py`` structure): take finished renders -> advance animations ->
build the UI (widgets mutate ``state``; pane drags move the camera) -> submit the request the state describes ->
draw. Rendering happens on the render thread (:mod:`app.async_renderer`); this thread never waits for it.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from typing import Callable

import glfw
import numpy as np
from imgui_bundle import imgui

from core.files.image_io import save_png

from .async_renderer import AsyncRenderer, LoadFailed, ModelLoaded
from .capture import next_free
from .keys import handle_keys
from .mesh_view import MeshView
from .orbit import drag_orbit, outside_range, pingpong, swing, wheel_zoom, wrap_angle
from .outputs import default_outdir, resolve as resolve_output
from .panes import DIM_COLOR, ERROR_COLOR, DisplayShader, ImagePane
from .recent import RecentFiles
from .requests import Backend, BranchResult, LatentBank, ModelInfo, branch_label
from .state import ViewerState
from .tasks import Task
from .undo import UndoTracker
from .widgets.camera import CameraWidget
from .widgets.compare import CompareWidget
from .widgets.edit import EditWidget
from .widgets.export import ExportWidget
from .widgets.help import HelpWidget
from .widgets.history import HistoryWidget
from .widgets.inversion import InversionWidget
from .widgets.latent import LatentWidget
from .widgets.mesh import MeshWidget
from .widgets.model import ModelWidget
from .widgets.perf import PerfWidget
from .widgets.render import RenderWidget
from .widgets.session import SessionWidget
from .window import Window

PANEL_WIDTH_EM = 26          # control panel width in font sizes
LABEL_WIDTH_EM = 7.5         # room for the labels right of the controls
REDRAW_EVERY_S = 0.5         # redraw at least this often even when nothing seems to change
PANE_FLAGS = (imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_resize | imgui.WindowFlags_.no_collapse
              | imgui.WindowFlags_.no_scrollbar | imgui.WindowFlags_.no_scroll_with_mouse
              | imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_background)


def panel_name(widget) -> str:
    """A sidebar panel's name (its header): the widget's ``name`` or its class name without "Widget"."""
    return getattr(widget, "name", type(widget).__name__.removesuffix("Widget"))


FULL_GRID_SHARE = 0.75       # a grid without empty slots wins unless its panes are less than this share of the best


def grid_layout(n: int, width: float, height: float) -> tuple[int, int, float]:
    """(columns, rows, side) placing ``n`` square panes in a width x height area: the largest side, except that a
    grid with no empty slot (three panes in a row) is preferred while its side is at least ``FULL_GRID_SHARE`` of
    the largest (a 2x2 grid with a hole looks broken)."""
    options = []
    for cols in range(1, max(n, 1) + 1):
        rows = math.ceil(n / cols)
        options.append((cols, rows, min(width / cols, height / rows)))
    best = max(options, key=lambda o: o[2])
    full = [o for o in options if o[0] * o[1] == max(n, 1) and o[2] >= FULL_GRID_SHARE * best[2]]
    return max(full, key=lambda o: o[2]) if full else best


class Viewer:
    """``loader(path) -> Backend`` opens models on the render thread (default: :class:`ModelBackend`)."""

    def __init__(self, loader: Callable[[str], Backend] | None = None, width: int = 1280, height: int = 800,
                 device: str = "auto", fixed_dt: float | None = None, fps_limit: int = 60,
                 background_renders: bool = True):
        self.window = Window(width, height, fixed_dt=fixed_dt)
        self.fixed_dt = fixed_dt
        self.bank = LatentBank()
        self.device = device
        self.renderer = AsyncRenderer(loader or self._load_model, on_event=glfw.post_empty_event,
                                      background=background_renders)
        self.state = ViewerState()
        self.recent = RecentFiles()
        self.info: ModelInfo | None = None
        self.model_path: str | None = None
        self.load_error: str | None = None
        self.display = DisplayShader()
        self.panes: dict[str, ImagePane] = {}
        self.mesh_view: MeshView | None = None
        self.fps_limit = fps_limit
        self.frame_times: deque[float] = deque(maxlen=240)  # seconds between loop iterations (the UI rate)
        self.draw_ms: deque[float] = deque(maxlen=240)      # work of frames that were drawn (UI + GL + swap)
        self.drawn_frames = 0
        self._last_draw = 0.0
        self.branch_ms: dict[str, deque[float]] = {}
        self.last_saved = ""
        self.clock = 0.0 if fixed_dt is not None else time.monotonic()
        self._last_frame = time.perf_counter()
        self._capture_to: str | None = None
        self._last_camera = None
        self._drawn_content: tuple = ()
        self.initial_camera = (0.0, 0.0)  # yaw, pitch (radians) set when a model is opened
        self.initial_radius: float | None = None  # camera distance set when a model is opened (None: the model's)
        self.pending_after_load: Callable[[], None] | None = None  # run once after the next model load
        self.outdir = str(default_outdir())   # screenshots, videos, meshes, inversions go below it (app.outputs)
        self.original: tuple[Backend, str] | None = None  # while exploring tuned weights: the model to go back to
        self.tuned_note = ""                  # what the tuned weights are ("PTI-tuned on photo.png")
        self.undo = UndoTracker()
        self.tasks: list[Task] = []
        self.session_widget = SessionWidget(self)
        self.inversion_widget = InversionWidget(self)
        self.widgets = [ModelWidget(self), HistoryWidget(self), LatentWidget(self), EditWidget(self),
                        CameraWidget(self), RenderWidget(self), self.inversion_widget, MeshWidget(self),
                        CompareWidget(self), ExportWidget(self), self.session_widget, PerfWidget(self),
                        HelpWidget(self)]
        self._held: dict[int, dict[str, BranchResult]] = {}   # lock-step: results waiting for their siblings
        self.jump_to: str | None = None   # a panel to open and scroll to (the buttons at the top of the sidebar)

    def _load_model(self, path: str) -> Backend:
        from .model_backend import ModelBackend  # torch is imported on first use, on the render thread
        return ModelBackend.open(path, self.device, self.bank)

    # -- actions --------------------------------------------------------------------------------------------
    def open_model(self, path: str) -> None:
        self.load_error = None
        self.original, self.tuned_note = None, ""   # a new model file leaves any tuned weights behind
        self.renderer.open(os.path.expanduser(path))

    def output_path(self, name: str) -> str:
        """``name`` below the output folder (absolute names are kept)."""
        return str(resolve_output(self.outdir, name))

    def explore_tuned(self, backend: Backend, note: str, after_load: Callable[[], None] | None = None) -> None:
        """Render through other weights (a PTI-tuned copy of the model) until :meth:`back_to_original`; the
        Model panel and every pane title say so."""
        if self.original is None and self.renderer.backend is not None:
            self.original = (self.renderer.backend, self.model_path or "")
        self.tuned_note = note
        self.pending_after_load = after_load
        self.renderer.set_backend(backend, self.model_path or "")

    def back_to_original(self) -> None:
        """Leave the tuned weights: the model that was open before comes back (latent and camera are kept)."""
        if self.original is None:
            return
        backend, path = self.original
        self.original, self.tuned_note = None, ""
        latent = self.state.latent
        keep = (latent.seed, latent.stored, latent.use_stored, self.state.camera.yaw, self.state.camera.pitch)

        def restore() -> None:
            (latent.seed, latent.stored, latent.use_stored, self.state.camera.yaw, self.state.camera.pitch) = keep
        self.pending_after_load = restore
        self.renderer.set_backend(backend, path)

    def pane_title(self, name: str) -> str:
        """What a pane renders: its branch, tuned weights, the student's fixed camera, views outside training."""
        notes = []
        if self.tuned_note:
            notes.append("PTI-tuned" if name != "student" else "NOT tuned")
        if name == "student":
            notes.append("ignores radius, FOV")
        c = self.state.camera
        if self.info is not None and outside_range(c.yaw, c.pitch, self.info.camera_range):
            notes.append("outside training views")
        return " | ".join([name] + notes) if notes else branch_label(name)

    def pane_names(self) -> list[str]:
        return list(self.panes) + (["mesh"] if self.mesh_view is not None else [])

    def ensure_mesh_view(self) -> MeshView:
        if self.mesh_view is None:
            self.mesh_view = MeshView()
        return self.mesh_view

    def close_mesh_view(self) -> None:
        if self.mesh_view is not None:
            self.mesh_view.delete()
            self.mesh_view = None

    def model_backend(self):
        """The loaded model's backend when it is a real model (jobs need ``core``'s Model), else None."""
        backend = self.renderer.backend
        return backend if getattr(backend, "model", None) is not None else None

    def start_task(self, name: str, fn) -> Task:
        """Run ``fn(task)`` in the background; the UI wakes up on each progress report. Tasks still running when
        the viewer closes are cancelled and waited for (a thread inside torch at interpreter exit aborts it)."""
        self.tasks = [t for t in self.tasks if t.running]
        task = Task(name, fn, on_update=glfw.post_empty_event)
        self.tasks.append(task)
        return task

    def task_status(self, task: Task, done_text: str | None = None) -> None:
        """Progress bar + Cancel while ``task`` runs; then its outcome (or error) in one line."""
        if task.running:
            imgui.progress_bar(task.progress, imgui.ImVec2(-imgui.get_font_size() * 5, 0), task.text)
            imgui.same_line()
            if imgui.button(f"Cancel##{id(task)}"):
                task.cancel()
        elif task.error:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(ERROR_COLOR, f"{task.name} failed: {task.error}")
            imgui.pop_text_wrap_pos()
        else:
            imgui.text_colored(DIM_COLOR, done_text or f"{task.name}: {task.status}")

    def save_screenshot(self, folder: str, pane: str | None = None) -> None:
        """Save the whole window (at the end of this frame) or one pane as the next NNNNN.png. A branch pane saves
        its render at the render's own resolution (the raw neural image in the raw view), not the display's
        upscale; in the depth and normals views also NNNNN_depth.npy (float32 distance along each ray) and
        NNNNN_<view>.png (the view as shown)."""
        try:
            path = next_free(folder)
            if pane is None:
                self._capture_to = str(path)
                return
            if pane == "mesh":
                self.last_saved = f"saved {save_png(path, self.mesh_view.read())}"
                return
            p, view = self.panes[pane], self.state.render.view
            if p.result is None:
                self.last_saved = f"nothing to save yet: {pane} has not rendered"
                return
            image = p.result.raw if view == "raw" and p.result.raw is not None else p.result.image
            saved = [save_png(path, image)]
            if view in ("depth", "normals") and p.result.depth is not None:
                depth_path = path.with_name(f"{path.stem}_depth.npy")
                np.save(depth_path, p.result.depth.astype(np.float32))
                saved += [depth_path, save_png(path.with_name(f"{path.stem}_{view}.png"), p.read())]
            self.last_saved = "saved " + ", ".join(str(s) for s in saved)
        except (OSError, KeyError, AttributeError) as e:
            self.last_saved = f"could not save: {e}"

    def ui_fps(self) -> float:
        ft = list(self.frame_times)[-60:]
        return len(ft) / sum(ft) if ft and sum(ft) > 0 else 0.0

    # -- events from the render thread ----------------------------------------------------------------------
    def _on_model(self, event: ModelLoaded) -> None:
        for pane in self.panes.values():
            pane.delete()
        self._held.clear()
        self.close_mesh_view()   # per-model state: the previous model's (or weights') mesh is not this one's
        for widget in self.widgets:
            if hasattr(widget, "model_changed"):
                widget.model_changed()
        self.info, self.model_path, self.load_error = event.info, event.path, None
        self.panes = {b: ImagePane(b, self.display) for b in event.info.branches}
        self.branch_ms = {b: deque(maxlen=60) for b in event.info.branches}
        self.state.camera.reset(event.info.radius)
        self.state.camera.yaw, self.state.camera.pitch = self.initial_camera
        if self.initial_radius is not None:
            self.state.camera.radius = self.initial_radius
        s = self.state.latent
        s.cutoff = min(s.cutoff, event.info.num_ws)
        s.mix_lo, s.mix_hi = min(s.mix_lo, event.info.num_ws), min(s.mix_hi, event.info.num_ws)
        s.stored, s.use_stored = None, False
        if self.pending_after_load is not None:
            self.pending_after_load()
            self.pending_after_load = None
        self._last_camera = self.state.camera.spec()  # a reset on load is not a camera move
        self.undo.reset(self.state, event.generation)
        if os.path.isfile(event.path):
            self.recent.add(event.path)

    def _on_result(self, result: BranchResult) -> None:
        if result.generation != self.renderer.generation:
            return  # from a model that has since been replaced
        if self.state.render.lockstep:
            held = self._held.setdefault(result.stamp, {})
            held[result.branch] = result
            if set(held) < set(result.request.branches):
                return   # shown when every branch has this frame
            for stamp in [s for s in self._held if s <= result.stamp]:
                done = self._held.pop(stamp)
                if stamp == result.stamp:
                    for r in done.values():
                        self._show_result(r)
            return
        for held in self._held.values():   # lock-step was switched off: show what was waiting
            for r in held.values():
                self._show_result(r)
        self._held.clear()
        self._show_result(result)

    def _show_result(self, result: BranchResult) -> None:
        pane = self.panes.get(result.branch)
        if pane is None:
            return
        if pane.accept(result) and result.error is None:
            self.branch_ms[result.branch].append(result.render_ms)

    def _handle_events(self) -> None:
        for event in self.renderer.poll():
            if isinstance(event, ModelLoaded):
                self._on_model(event)
            elif isinstance(event, LoadFailed):
                self.load_error = f"could not open {os.path.basename(event.path) or event.path}: {event.message}"
            else:
                self._on_result(event)

    # -- per-frame state updates ----------------------------------------------------------------------------
    def _animate(self, dt: float) -> None:
        c, s = self.state.camera, self.state.latent
        if c.auto_orbit:
            amplitude = self.info.camera_range[0] if self.info is not None else math.radians(35)
            c.orbit_phase, c.yaw = swing(c.orbit_phase, dt, c.orbit_speed, amplitude)
        if s.interp_animate:
            s.interp_phase = (s.interp_phase + s.interp_speed * dt) % 1.0
            s.interp_t = pingpong(s.interp_phase)

    def _apply_pane_input(self, drag: tuple[float, float], wheel: float, size_px: float) -> None:
        c = self.state.camera
        if drag != (0.0, 0.0):
            c.yaw, c.pitch = drag_orbit(c.yaw, c.pitch, drag[0], drag[1], size_px)
            c.yaw = wrap_angle(c.yaw)   # shown in degrees within +-180
        if wheel:
            c.radius = wheel_zoom(c.radius, wheel)

    def _track_motion(self) -> None:
        spec = self.state.camera.spec()
        if self._last_camera is not None and spec != self._last_camera:
            self.state.mark_moving(self.clock)
        self._last_camera = spec

    # -- drawing --------------------------------------------------------------------------------------------
    def _draw_controls(self, width: float, height: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(0, 0))
        imgui.set_next_window_size(imgui.ImVec2(width, height))
        imgui.begin("Trident", None, imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_resize
                    | imgui.WindowFlags_.no_collapse | imgui.WindowFlags_.no_saved_settings
                    | imgui.WindowFlags_.no_background)  # the clear colour is the background (window.py)
        imgui.push_item_width(-imgui.get_font_size() * LABEL_WIDTH_EM)
        self._draw_jump_bar()                      # stays at the top; the panels scroll below it
        imgui.begin_child("##panels")
        imgui.push_text_wrap_pos(0.0)              # help and status texts wrap at the panel's edge
        jump, self.jump_to = self.jump_to, None
        for widget in self.widgets:
            name = panel_name(widget)
            imgui.push_id(type(widget).__name__)   # one ID scope per panel: equal labels never conflict
            if name == jump:
                imgui.set_next_item_open(True)     # the panel's first item is its header
                imgui.set_scroll_y(imgui.get_cursor_pos_y() - imgui.get_style().item_spacing.y)
            widget()
            imgui.pop_id()
        imgui.pop_text_wrap_pos()
        imgui.end_child()
        imgui.pop_item_width()
        imgui.end()

    def _draw_jump_bar(self) -> None:
        """One small button per panel: opens it and scrolls it to the top (long panels stay one click away)."""
        right = imgui.get_cursor_screen_pos().x + imgui.get_content_region_avail().x
        for i, widget in enumerate(self.widgets):
            name = panel_name(widget)
            if i and imgui.get_item_rect_max().x + imgui.calc_text_size(name).x + 16 < right:
                imgui.same_line()
            if imgui.small_button(f"{name}##jump"):
                self.jump_to = name
        imgui.separator()

    def show_help(self) -> None:
        help_widget = next((w for w in self.widgets if isinstance(w, HelpWidget)), None)
        if help_widget is not None:
            self.jump_to = "Help"

    def _draw_panes(self, x0: float, width: float, height: float) -> None:
        names = self.pane_names()
        if not names:
            imgui.set_next_window_pos(imgui.ImVec2(x0, 0))
            imgui.set_next_window_size(imgui.ImVec2(width, height))
            imgui.begin("##empty", None, PANE_FLAGS | imgui.WindowFlags_.no_title_bar)
            msg = self.load_error or ("loading ..." if self.renderer.loading else "open a model (Model panel)")
            imgui.text_colored(DIM_COLOR, msg)
            imgui.end()
            return
        chrome = imgui.get_frame_height() + 2 * imgui.get_text_line_height_with_spacing() + 8
        cols, rows, side = grid_layout(len(names), width, height)
        pending = self.renderer.stamp
        for i, name in enumerate(names):
            x, y = x0 + (i % cols) * side, (i // cols) * side
            imgui.set_next_window_pos(imgui.ImVec2(x, y))
            imgui.set_next_window_size(imgui.ImVec2(side, side))
            if name == "mesh":
                mv = self.mesh_view
                imgui.begin(f"mesh: {mv.n_vertices} vertices, {mv.n_faces} faces###mesh", None, PANE_FLAGS)
                hint = "follows the render camera" if mv.follow else "drag to orbit, wheel to zoom"
                imgui.text_colored(DIM_COLOR, hint)
                if mv.follow:
                    mv.follow_camera(self.state.camera.yaw, self.state.camera.pitch)
                inp = mv.draw(max(16.0, side - chrome))
                if mv.follow:
                    self._apply_pane_input(inp.drag, 0.0, inp.size_px)
                imgui.end()
                continue
            pane = self.panes[name]
            imgui.begin(f"{self.pane_title(name)}###{name}", None, PANE_FLAGS)
            inp = pane.draw(self.state.render.view, max(16.0, side - chrome), pane.stamp < pending)
            self._apply_pane_input(inp.drag, inp.wheel, inp.size_px)
            imgui.end()

    # -- the frame ------------------------------------------------------------------------------------------
    def settled(self) -> bool:
        """A model is shown, nothing is queued or rendering, and every pane shows the newest request."""
        return (self.info is not None and self.renderer.idle and not self.state.moving(self.clock)
                and all(p.stamp == self.renderer.stamp for p in self.panes.values()))

    def step(self, capture: bool = False) -> np.ndarray | None:
        """Run one frame; with ``capture`` return the window image.  # [H, W, 3] uint8"""
        now = time.perf_counter()
        dt = self.fixed_dt if self.fixed_dt is not None else now - self._last_frame
        self.clock = self.clock + dt if self.fixed_dt is not None else time.monotonic()
        self._handle_events()
        self._animate(dt)
        self.window.begin_frame()
        if self.window.dropped_paths:
            dropped = list(self.window.dropped_paths)
            self.window.dropped_paths.clear()
            others = self.inversion_widget.take_dropped(dropped)   # photos go to the Inversion panel
            if others and not self.session_widget.open_dropped(others[-1]):  # sessions, latents; else a model
                self.open_model(others[-1])
        w, h = imgui.get_io().display_size  # layout in window coordinates (framebuffer pixels differ on HiDPI)
        panel = min(w * 0.45, imgui.get_font_size() * PANEL_WIDTH_EM)
        self._draw_controls(panel, h)
        handle_keys(self)
        self._draw_panes(panel, w - panel, h)
        self._track_motion()
        self.renderer.lockstep = self.state.render.lockstep
        self.undo.observe(self.state, self.clock, held=imgui.is_mouse_down(0))
        if self.info is not None:
            self.renderer.submit(self.state.request(self.info, self.clock))
        capture_to, self._capture_to = self._capture_to, None
        if self._content_key() != self._drawn_content or time.perf_counter() - self._last_draw > REDRAW_EVERY_S:
            self.window.needs_redraw = True  # pane/mesh textures changed behind identical ImGui draw data
        drawn, shot = self.window.end_frame(capture or capture_to is not None)
        if capture_to is not None:
            self.last_saved = f"saved {save_png(capture_to, shot)}"
        end = time.perf_counter()
        if drawn:
            self._drawn_content, self._last_draw = self._content_key(), end
            self.draw_ms.append((end - now) * 1000)
            self.drawn_frames += 1
        self.frame_times.append(end - self._last_frame)
        self._last_frame = end
        return shot

    def _content_key(self) -> tuple:
        panes = tuple(p._drawn_key for p in self.panes.values())
        return panes, None if self.mesh_view is None else self.mesh_view._drawn_key

    def idle(self) -> bool:
        """Nothing animates, moves or renders: the loop sleeps until input or a finished render."""
        return not (self.state.camera.auto_orbit or self.state.latent.interp_animate or not self.renderer.idle
                    or self.state.moving(self.clock))

    def pace(self) -> None:
        """Wait out the rest of the frame budget (FPS limit); when nothing moves or renders, sleep until input or a
        finished render wakes the loop (at least 4 frames a second still run)."""
        budget = 1.0 / max(self.fps_limit, 1) - (time.perf_counter() - self._last_frame)
        busy = self.state.camera.auto_orbit or self.state.latent.interp_animate or not self.renderer.idle
        self.window.wait_events(budget if busy else max(budget, 0.25))

    def run(self, exit_on_load_error: bool = False) -> int:
        """Interactive loop until the window closes. With ``exit_on_load_error`` a failure to open the first model
        ends the loop with status 1 after printing one line."""
        while not self.window.should_close():
            self.step()
            if exit_on_load_error and self.info is None and self.load_error and self.renderer.idle:
                print(f"error: {self.load_error}", file=sys.stderr)
                return 1
            self.pace()
        return 0

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            task.wait(60)
        self.renderer.close()
        for pane in self.panes.values():
            pane.delete()
        if self.mesh_view is not None:
            self.mesh_view.delete()
        self.window.close()
