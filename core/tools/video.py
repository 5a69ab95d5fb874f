"""Turntable, orbit and latent-interpolation videos of any branch (EG3D ``gen_videos.py`` conventions, Chan et al.
2022, supplementary video; ``NVlabs/eg3d: eg3d/gen_videos.py``).

Camera paths (F frames, f = 0..F-1, angles as offsets from the frontal view yaw = pitch = pi/2):

* ``turntable``: yaw = c_yaw + 0.35 sin(2 pi f / F), pitch = c_pitch + 0.25 cos(2 pi f / F), c_pitch = -0.05 by
  default (EG3D: yaw = pi/2 + 0.35 sin, pitch = pi/2 - 0.05 + 0.25 cos; one ellipse per video);
* ``orbit360``: yaw = c_yaw + 2 pi f / F at pitch c_pitch (a full circle around the pivot);
* ``interp``: the turntable camera while the latent of each grid cell moves through its keyframes (one per seed)
  by cubic interpolation that wraps around, so the video loops (EG3D: ``interp1d(kind='cubic')`` over keyframes
  tiled with wraps = 2);
* ``sweep``: an edit sweep: each cell's latent moved along ``sweep.direction`` by x = -s cos(2 pi f / F) sigma
  (s = ``sweep.strength``: from -s to +s and back, so the video loops; ``core.tools.edit``), seen from the turntable
  camera with ``sweep_orbit``, else from the fixed centre camera; the panels are labelled with the strength;
* ``before_after``: two latents (before, after an edit) side by side, labelled, from the turntable camera.

Latents: ws of each seed from the frontal conditioning camera (``Model.ws_from_seed``), or given ``latents``
(e.g. an inversion's ``latent.npy``). Cells fill a grid; with ``branch="all"`` every cell shows each branch of the
model side by side, labelled. Outputs: ``image``, ``depth`` (EG3D: -depth, min-max normalised per frame) or
``raw`` (the neural rendering before super-resolution). MP4 is H.264 yuv420p through imageio-ffmpeg with the
frame padded (black, centred) to a multiple of 16 pixels; GIF stores delays in hundredths of a second, so its
frame rate is 100 / round(100 / fps) and identical consecutive frames are merged by the encoder.

Example::

    info = render_video(model, VideoSpec(seeds=(0, 1), mode="turntable", frames=120, fps=30), "out.mp4")
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from ..conventions import DEFAULT_FOV_DEG
from ..defaults import (DETERMINISTIC, TRUNCATION_CUTOFF, TRUNCATION_PSI, TURNTABLE_PITCH, TURNTABLE_YAW,
                        VIDEO_FPS, VIDEO_FRAMES, VIDEO_MIN_SIDE)
from ..errors import TridentError
from ..files.atomic import atomic_output
from ..files.image_io import to_uint8
from ..model import Model
from ..triplane import RenderOptions
from .edit.apply import Edit, apply_edits
from .progress import CancelFlag, ProgressFn, check_cancel, report

__all__ = ["VideoError", "VideoSpec", "VideoInfo", "VideoPlan", "plan_video", "frame_offsets", "render_frame",
           "render_video", "label_panel", "panel_label", "sweep_strength", "MODES", "OUTPUTS", "FORMATS"]

MODES = ("turntable", "orbit360", "interp", "sweep", "before_after")
OUTPUTS = ("image", "depth", "raw")
FORMATS = (".mp4", ".gif")
MACRO_BLOCK = 16


class VideoError(TridentError):
    """A video request that cannot be rendered (bad settings, branch or output not available)."""


@dataclass(frozen=True)
class VideoSpec:
    """What to render. Angles are radians, offsets from the frontal view."""

    seeds: tuple[int, ...] = (0,)
    latents: tuple[Tensor, ...] | None = None     # ws [1, num_ws, w_dim] each; used instead of seeds when given
    mode: str = "turntable"                       # turntable | orbit360 | interp
    branch: str = "sr2d"                          # a branch of the model, or "all" (side by side, labelled)
    output: str = "image"                         # image | depth | raw
    frames: int = VIDEO_FRAMES
    fps: float = float(VIDEO_FPS)
    grid: tuple[int, int] | None = None           # (columns, rows) of cells; default: a near-square grid
    truncation_psi: float = TRUNCATION_PSI
    truncation_cutoff: int | None = TRUNCATION_CUTOFF
    nrr: int | None = None                        # neural rendering resolution (default: the model's)
    samples: tuple[int, int] | None = None        # (coarse, importance) depth samples per ray
    deterministic: bool = DETERMINISTIC           # no depth jitter, so frames do not flicker
    panel_size: int | None = None                 # side of each panel in pixels (default: the largest output,
    #                                               upscaled until the video's long side is >= min_side)
    min_side: int = VIDEO_MIN_SIDE
    fov_deg: float = DEFAULT_FOV_DEG
    yaw_range: float = TURNTABLE_YAW
    pitch_range: float = TURNTABLE_PITCH
    center_yaw: float = 0.0
    center_pitch: float = -0.05
    radius: float | None = None                   # camera distance (default: the model's avg_camera_radius)
    labels: bool | None = None                    # branch names on the panels (default: with branch="all")
    quality: int = 8                              # MP4 quality 0..10 (imageio-ffmpeg's scale)
    sweep: Edit | None = None                     # sweep: the direction and the largest strength s (sigma)
    sweep_orbit: bool = False                     # sweep: turntable camera (else the fixed centre camera)


@dataclass
class VideoInfo:
    path: Path
    frames: int
    width: int
    height: int
    fps: float


@dataclass
class VideoPlan:
    """Validated spec plus what it resolves to for a model: branches, cells and their keyframe latents."""

    spec: VideoSpec
    branches: tuple[str, ...]
    keyframes: list[Tensor | None]                # per cell: ws [K, num_ws, w_dim] (None: empty cell)
    cols: int
    rows: int
    opts: RenderOptions
    labels: bool
    panel: int = 0
    _interp: list = field(default_factory=list)

    @property
    def cells(self) -> int:
        return len(self.keyframes)

    def cell_latents(self, f: int) -> list[Tensor | None]:
        """ws [1, num_ws, w_dim] of every cell at frame f (None for empty cells)."""
        if self.spec.mode == "sweep":
            edit = (Edit(self.spec.sweep.direction, sweep_strength(self.spec, f)),)
            return [None if kf is None else apply_edits(kf, edit) for kf in self.keyframes]
        if self.spec.mode != "interp":
            return list(self.keyframes)
        t = f * self.keyframes[0].shape[0] / self.spec.frames            # keyframe position in [0, K)
        return [fn(t) for fn in self._interp]


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise VideoError(msg)


def plan_video(model: Model, spec: VideoSpec) -> VideoPlan:
    """Validate ``spec`` against ``model`` (one-line :class:`VideoError` on bad input) and compute the latents."""
    _check(spec.mode in MODES, f"unknown video mode {spec.mode!r} (choose from {', '.join(MODES)})")
    _check(spec.output in OUTPUTS, f"unknown video output {spec.output!r} (choose from {', '.join(OUTPUTS)})")
    _check(isinstance(spec.frames, int) and 1 <= spec.frames <= 100_000, f"frames must be 1..100000, got {spec.frames}")
    _check(0 < spec.fps <= 240, f"fps must be in (0, 240], got {spec.fps}")
    _check(spec.nrr is None or 8 <= spec.nrr <= 2048, f"neural rendering resolution must be 8..2048, got {spec.nrr}")
    _check(spec.panel_size is None or 8 <= spec.panel_size <= 4096, f"panel size must be 8..4096, got {spec.panel_size}")
    _check(spec.radius is None or 0.3 <= spec.radius <= 30, f"camera radius must be 0.3..30, got {spec.radius}")
    _check(0 <= spec.min_side <= 4096, f"minimum video side must be 0..4096, got {spec.min_side}")
    _check(0 <= spec.quality <= 10, f"quality must be 0..10, got {spec.quality}")
    if spec.samples is not None:
        s, i = spec.samples
        _check(s >= 2 and i >= 0 and (i == 0 or s >= 4),
               "samples need COARSE >= 2 (>= 4 with IMPORTANCE > 0) and IMPORTANCE >= 0")
    if spec.branch == "all":
        branches = model.branches
    else:
        try:
            model.check_branch(spec.branch)
        except ValueError as e:
            raise VideoError(str(e)) from None
        branches = (spec.branch,)

    if spec.latents is not None:
        _check(len(spec.latents) > 0, "no latents given")
        sources = []
        for ws in spec.latents:
            ws = ws.reshape(-1, *ws.shape[-2:]) if ws.ndim >= 2 else ws
            _check(ws.ndim == 3 and ws.shape[0] == 1 and tuple(ws.shape[1:]) == (model.num_ws, model.w_dim),
                   f"a latent must be [1, {model.num_ws}, {model.w_dim}], got {tuple(ws.shape)}")
            sources.append(ws.to(model.device).float())
    else:
        _check(len(spec.seeds) > 0, "no seeds given")
        _check(all(isinstance(s, int) and 0 <= s < 2 ** 32 for s in spec.seeds), "seeds must be 0 .. 2^32-1")
        sources = [model.ws_from_seed(s, spec.truncation_psi, spec.truncation_cutoff) for s in spec.seeds]

    n = len(sources)
    if spec.mode == "sweep":
        _check(spec.sweep is not None, "an edit sweep needs a direction and a strength")
        _check(spec.sweep.strength > 0, f"the sweep strength must be positive, got {spec.sweep.strength}")
        d = spec.sweep.direction
        _check(d.w_dim == model.w_dim and d.layers[1] <= model.num_ws,
               f"direction {d.name or d.method!r} (w_dim {d.w_dim}, layers {d.layers[0]}:{d.layers[1]}) does not "
               "fit this model")
    if spec.mode == "before_after":
        _check(n == 2, f"before/after takes two latents (before, after), got {n}")
        _check(spec.grid in (None, (2, 1)), "before/after is a 2x1 grid")
    if spec.mode == "before_after":
        cols, rows = 2, 1
    elif spec.grid is not None:
        cols, rows = spec.grid
        _check(cols >= 1 and rows >= 1 and cols * rows <= 256, f"bad grid {cols}x{rows}")
    elif spec.mode == "interp":
        cols = rows = 1
    else:
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
    cells = cols * rows
    if spec.mode == "interp":
        _check(n % cells == 0, f"interp needs a number of seeds/latents divisible by the {cells} grid cells, got {n}")
        k = n // cells
        keyframes = [torch.cat(sources[c * k:(c + 1) * k]) for c in range(cells)]
    else:
        _check(n <= cells, f"{n} seeds/latents do not fit a {cols}x{rows} grid")
        keyframes = [sources[c] if c < n else None for c in range(cells)]   # row by row; empty cells stay black
    opts = RenderOptions(resolution=spec.nrr, deterministic=spec.deterministic,
                         depth_resolution=spec.samples[0] if spec.samples else None,
                         depth_resolution_importance=spec.samples[1] if spec.samples else None)
    labels = spec.labels if spec.labels is not None else spec.branch == "all" or spec.mode in ("sweep",
                                                                                              "before_after")
    plan = VideoPlan(spec, branches, keyframes, cols, rows, opts, labels)
    if spec.mode == "interp":
        plan._interp = [_cubic_loop(kf) for kf in keyframes]
    return plan


def _cubic_loop(keyframes: Tensor):
    """Cubic interpolation through K keyframes that wraps around: t in [0, K) -> ws [1, num_ws, w_dim]."""
    import scipy.interpolate

    k = keyframes.shape[0]
    arr = keyframes.detach().cpu().double().numpy()                # [K, num_ws, w_dim]
    if k == 1:
        return lambda t: keyframes[:1]
    wraps = 2
    x = np.arange(-k * wraps, k * (wraps + 1))
    y = np.tile(arr, (wraps * 2 + 1, 1, 1))
    fn = scipy.interpolate.interp1d(x, y, kind="cubic", axis=0)
    return lambda t: torch.from_numpy(fn(t)).float()[None].to(keyframes.device)


def sweep_strength(spec: VideoSpec, f: int) -> float:
    """The sweep's strength (sigma) at frame f: -s at the first frame, +s halfway, back towards -s."""
    return -spec.sweep.strength * math.cos(2 * math.pi * f / spec.frames)


def frame_offsets(spec: VideoSpec, f: int) -> tuple[float, float]:
    """(yaw, pitch) offsets from the frontal view of frame f."""
    a = 2 * math.pi * f / spec.frames
    if spec.mode == "sweep" and not spec.sweep_orbit:
        return spec.center_yaw, spec.center_pitch
    if spec.mode == "orbit360":
        return spec.center_yaw + a, spec.center_pitch
    return spec.center_yaw + spec.yaw_range * math.sin(a), spec.center_pitch + spec.pitch_range * math.cos(a)


def _to_panel(x: Tensor, output: str) -> np.ndarray:
    """One rendered output [C, h, w] -> uint8 [h, w, 3]."""
    x = x.detach().float().cpu()
    if output == "depth":
        d = -x[0]
        lo, hi = d.min(), d.max()
        d = (d - lo) / (hi - lo) if hi > lo else torch.zeros_like(d)
        g = (d * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        return np.repeat(g[..., None], 3, axis=2)
    return to_uint8(x[:3])


def _font(size: int):
    try:
        return ImageFont.load_default(size=max(8, size))
    except TypeError:  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def panel_side(native: int, across: int, min_side: int) -> int:
    """Default panel side: the rendered size, or larger so that ``across`` panels span at least ``min_side``."""
    return max(native, math.ceil(min_side / max(across, 1)))


def label_panel(panel: np.ndarray, text: str) -> np.ndarray:
    """``text`` in the top-left corner on a black box that covers at most about half of the panel's width."""
    img = Image.fromarray(panel)
    draw = ImageDraw.Draw(img)
    size = max(8, panel.shape[0] // 14)
    font = _font(size)
    while size > 8 and draw.textbbox((3, 2), text, font=font)[2] > panel.shape[1] // 2:
        size -= 1
        font = _font(size)
    box = draw.textbbox((3, 2), text, font=font)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((3, 2), text, fill=(255, 255, 255), font=font)
    return np.asarray(img)


def _resize(panel: np.ndarray, size: int, output: str) -> np.ndarray:
    if panel.shape[0] == size and panel.shape[1] == size:
        return panel
    resample = Image.LANCZOS
    return np.asarray(Image.fromarray(panel).resize((size, size), resample))


_OUTPUT_KEYS = {"image": "image", "depth": "image_depth", "raw": "image_raw"}


@torch.no_grad()
def render_frame(model: Model, plan: VideoPlan, f: int) -> np.ndarray:
    """Frame f of the plan -> uint8 [H, W, 3] (no padding)."""
    spec = plan.spec
    yaw, pitch = frame_offsets(spec, f)
    c = model.camera_label(yaw, pitch, radius=spec.radius, fov_deg=spec.fov_deg)
    ws_cells = plan.cell_latents(f)
    live = [i for i, w in enumerate(ws_cells) if w is not None]
    ws = torch.cat([ws_cells[i] for i in live])                         # [cells, num_ws, w_dim]
    key = _OUTPUT_KEYS[spec.output]
    panels: dict[tuple[int, str], np.ndarray] = {}
    for branch in plan.branches:
        out = model.render(branch, ws, c.expand(ws.shape[0], -1), plan.opts)
        if key not in out:
            if len(plan.branches) == 1:
                raise VideoError(f"branch {branch!r} has no {spec.output} output")
            continue
        for j, i in enumerate(live):
            panels[(i, branch)] = _to_panel(out[key][j], spec.output)
    size = spec.panel_size or plan.panel or panel_side(max(p.shape[0] for p in panels.values()),
                                                       max(plan.cols * len(plan.branches), plan.rows), spec.min_side)
    plan.panel = size
    blank = np.zeros((size, size, 3), np.uint8)
    rows = []
    for r in range(plan.rows):
        row = []
        for col in range(plan.cols):
            i = r * plan.cols + col
            for branch in plan.branches:
                p = panels.get((i, branch))
                if p is None:
                    p = blank if ws_cells[i] is None else label_panel(blank.copy(), f"{branch}: no {spec.output}")
                else:
                    p = _resize(p, size, spec.output)
                    if plan.labels:
                        p = label_panel(p, panel_label(plan, i, branch, f))
                row.append(p)
        rows.append(np.concatenate(row, axis=1))
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def panel_label(plan: VideoPlan, cell: int, branch: str, f: int) -> str:
    """The text on a panel: the branch (with several), 'before' / 'after', or the sweep's direction and strength."""
    spec = plan.spec
    parts = [branch] if len(plan.branches) > 1 or spec.mode not in ("sweep", "before_after") else []
    if spec.mode == "before_after":
        parts.insert(0, ("before", "after")[cell])
    elif spec.mode == "sweep":
        d = spec.sweep.direction
        parts.insert(0, f"{d.name or d.method} {sweep_strength(spec, f):+.1f} sigma")
    return " ".join(parts)


def _pad(frame: np.ndarray, multiple: int) -> np.ndarray:
    h, w = frame.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return frame
    return np.pad(frame, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


def gif_fps(fps: float) -> float:
    """The frame rate a GIF can store (delays are whole hundredths of a second)."""
    return 100.0 / max(1, round(100.0 / fps))


def render_video(model: Model, spec: VideoSpec, out_path: str | os.PathLike, progress: ProgressFn | None = None,
                 cancel: CancelFlag = None) -> VideoInfo:
    """Render ``spec`` to ``out_path`` (.mp4 or .gif). Reports ``Progress('frames', f, F, preview=frame)`` after
    each frame; on cancel (:class:`~core.tools.progress.Cancelled`) or error no output file is left behind."""
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    _check(suffix in FORMATS, f"video file must end in {' or '.join(FORMATS)}, got {out_path.name!r}")
    plan = plan_video(model, spec)
    check_cancel(cancel)
    with atomic_output(out_path) as tmp:
        if suffix == ".mp4":
            w, h = _write_mp4(model, plan, tmp, progress, cancel)
            fps = float(spec.fps)
        else:
            w, h = _write_gif(model, plan, tmp, progress, cancel)
            fps = gif_fps(spec.fps)
    return VideoInfo(out_path, spec.frames, w, h, fps)


def _frames(model: Model, plan: VideoPlan, progress: ProgressFn | None, cancel: CancelFlag):
    total = plan.spec.frames
    for f in range(total):
        check_cancel(cancel)
        frame = render_frame(model, plan, f)
        report(progress, "frames", f + 1, total, preview=frame)
        yield frame


def _write_mp4(model: Model, plan: VideoPlan, path: Path, progress, cancel) -> tuple[int, int]:
    import imageio_ffmpeg

    writer = None
    size = None
    try:
        for frame in _frames(model, plan, progress, cancel):
            frame = _pad(frame, MACRO_BLOCK)
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = imageio_ffmpeg.write_frames(
                    str(path), size, fps=plan.spec.fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
                    quality=plan.spec.quality, macro_block_size=1, ffmpeg_log_level="error",
                    output_params=["-movflags", "+faststart"])
                writer.send(None)
            writer.send(frame.tobytes())
    finally:
        if writer is not None:
            writer.close()
    return size


def _write_gif(model: Model, plan: VideoPlan, path: Path, progress, cancel) -> tuple[int, int]:
    frames = [Image.fromarray(f) for f in _frames(model, plan, progress, cancel)]
    delay_ms = int(round(1000.0 / gif_fps(plan.spec.fps)))
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=delay_ms, loop=0)
    return frames[0].width, frames[0].height
