"""Background jobs of the viewer, each a thin call into core's API (``core.tools.mesh``, ``core.tools.video``,
``core.tools.inversion``) with the task's progress and cancel hooks. They run on :class:`app.tasks.Task` threads and,
like :mod:`app.model_backend`, are the only app code that touches torch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.conventions import DEFAULT_FOV_DEG
from core.defaults import (INVERT_LOSS, INVERT_STEPS, MESH_GRID, MESH_LEVEL, TURNTABLE_PITCH, TURNTABLE_YAW,
                           VIDEO_FPS, VIDEO_FRAMES, VIDEO_MIN_SIDE)

from .model_backend import ModelBackend
from .requests import LatentSpec
from .tasks import Task


CAMERA_VALUE = re.compile(r"(yaw|pitch)_deg\d+")   # per-photo cameras in an inversion's progress (not in its text)


def _hooks(task: Task):
    """(progress, cancel) callbacks for core's APIs, reporting into ``task``."""
    def progress(p) -> None:
        task.values = dict(getattr(p, "values", {}))     # all of them (e.g. the cameras being optimised)
        values = " ".join(f"{k} {v:.3g}" for k, v in task.values.items() if not CAMERA_VALUE.fullmatch(k))
        task.report(p.fraction, f"{p.stage} {p.done}/{p.total}" + (f" | {values}" if values else ""), p.preview)
    return progress, (lambda: task.cancelled)


# -- mesh -----------------------------------------------------------------------------------------------------
@dataclass
class MeshJob:
    latent: LatentSpec
    resolution: int = MESH_GRID
    level: float = MESH_LEVEL
    colors: bool = True


@dataclass
class MeshResult:
    mesh: object          # core.tools.mesh.Mesh (vertices, faces, normals, colors)
    volume: object        # core.tools.mesh.Volume, kept to re-mesh at another iso level without querying the field
    job: MeshJob


def extract_mesh(backend: ModelBackend, job: MeshJob, task: Task, volume=None) -> MeshResult:
    """Density grid (or the given ``volume``) -> marching cubes at ``job.level`` -> vertex colours."""
    from core.tools.mesh import density_volume, extract_mesh as core_extract
    progress, cancel = _hooks(task)
    ws = backend.ws(job.latent)
    if volume is None:
        volume = density_volume(backend.model, ws, job.resolution, progress=progress, cancel=cancel)
    mesh = core_extract(backend.model, ws, job.resolution, job.level, colors=job.colors, progress=progress,
                        cancel=cancel, volume=volume)
    return MeshResult(mesh, volume, job)


def save_mesh(mesh, path: str, task: Task) -> Path:
    from core.tools.mesh import save_mesh as core_save
    task.report(0.5, f"writing {Path(path).name}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return core_save(mesh, path)


# -- video ----------------------------------------------------------------------------------------------------
@dataclass
class VideoJob:
    path: str
    latents: tuple[LatentSpec, ...]      # one (turntable/orbit) or the keyframes of a loop (interp)
    mode: str = "turntable"
    branch: str = "sr2d"                 # or "all": every branch side by side
    output: str = "image"
    frames: int = VIDEO_FRAMES
    fps: float = float(VIDEO_FPS)
    resolution: int | None = None        # neural rendering resolution
    samples: tuple[int, int] | None = None
    center_yaw: float = 0.0
    center_pitch: float = -0.05
    fov_deg: float = DEFAULT_FOV_DEG
    radius: float | None = None          # camera distance (None: the model's)
    grid: tuple[int, int] | None = None  # cells (columns, rows); the latents fill them row by row
    min_side: int = VIDEO_MIN_SIDE       # panels are upscaled until the video's long side is at least this
    labels: bool | None = None           # branch names on the panels (None: with branch "all")
    yaw_range: float = TURNTABLE_YAW
    pitch_range: float = TURNTABLE_PITCH
    sweep: object = None                 # mode "sweep": core.tools.edit.apply.Edit (direction, largest strength)
    sweep_orbit: bool = False


def render_video(backend: ModelBackend, job: VideoJob, task: Task):
    """The viewer's current latent(s) and camera as an MP4/GIF through ``core.tools.video.render_video``."""
    from core.tools.video import VideoSpec, render_video as core_render
    progress, cancel = _hooks(task)
    spec = VideoSpec(latents=tuple(backend.ws(s) for s in job.latents), mode=job.mode, branch=job.branch,
                     output=job.output, frames=job.frames, fps=job.fps, nrr=job.resolution, samples=job.samples,
                     center_yaw=job.center_yaw, center_pitch=job.center_pitch, fov_deg=job.fov_deg,
                     radius=job.radius, grid=job.grid, min_side=job.min_side, labels=job.labels,
                     yaw_range=job.yaw_range, pitch_range=job.pitch_range,
                     sweep=job.sweep, sweep_orbit=job.sweep_orbit)
    return core_render(backend.model, spec, job.path, progress=progress, cancel=cancel)


# -- inversion ------------------------------------------------------------------------------------------------
def load_photo(path: str, size: int, box: tuple[int, int, int] | None = None) -> np.ndarray:
    """The photo as the inversion will see it (oriented, RGB, square crop, resized).  # [size, size, 3] uint8"""
    from core.files.image_io import load_photo as core_load
    return core_load(path, size, box)


@dataclass
class PhotoAlignment:
    """A photo read and aligned off the UI thread: the photo, the faces drawn over it, the EG3D crop and camera."""
    path: str
    photo: np.ndarray                    # [H, W, 3] uint8, the whole photo
    overlay: np.ndarray                  # the photo with every face, its landmarks and the crop box (core align's)
    alignment: object                    # core.tools.photo.align.Alignment (faces, chosen index, crop, label, ...)
    yaw: float                           # the estimated camera as look-at orbit offsets from frontal (radians)
    pitch: float


def align_photo(path: str, face: int | str, task: Task) -> PhotoAlignment:
    """Read (size checked before decoding), detect faces, crop and estimate the camera of face ``face``."""
    from core.files.image_io import read_image
    from core.tools.photo.align import align_image, draw_overlay
    task.report(0.1, "reading the photo")
    img = read_image(path)
    task.report(0.4, "finding faces")
    from core.tools.photo.camera import label_orbit_deg
    al = align_image(img, Path(path).name, face)
    yaw, pitch = label_orbit_deg(al.label)
    return PhotoAlignment(path, img, draw_overlay(img, al, max_side=1024), al, math.radians(yaw), math.radians(pitch))


@dataclass
class JobPhoto:
    """One photo of an inversion: its crop and its starting camera."""
    photo: np.ndarray                    # [S, S, 3] uint8, already cropped (the manual crop or the EG3D crop)
    yaw: float = 0.0                     # camera guess (radians from frontal)
    pitch: float = 0.0
    label: np.ndarray | None = None      # an aligned photo's estimated camera (25 floats; yaw / pitch start there)


@dataclass
class InversionJob:
    photos: tuple[JobPhoto, ...] = ()    # several photos of one person: one latent, one camera per photo
    fov_deg: float = DEFAULT_FOV_DEG
    space: str = "w+"
    steps: int = INVERT_STEPS
    loss: str = INVERT_LOSS
    pti_steps: int = 0
    optimize_camera: bool = False
    branch: str = "sr2d"
    resolution: int | None = None        # neural rendering resolution while optimising (default: the model's)
    samples: tuple[int, int] | None = None
    fast_steps: int = 0                  # steps through the student first (0: none)


@dataclass
class InversionOutcome:
    ws: np.ndarray                       # [num_ws, w_dim]
    cameras: list[tuple[float, float, float, float]]   # per photo: (yaw, pitch, radius, fov_deg) as orbit offsets
    psnr: float
    result: object                       # core.tools.inversion.InversionResult (its ``tuned`` model with PTI)

    def camera(self, i: int = 0) -> tuple[float, float, float, float]:
        return self.cameras[i]

    @property
    def yaw(self) -> float:              # the first photo's camera
        return self.cameras[0][0]

    @property
    def pitch(self) -> float:
        return self.cameras[0][1]

    @property
    def psnrs(self) -> list[float]:
        """Per photo, of the latent through the original generator (dB)."""
        return list(self.result.psnrs)


def invert(backend: ModelBackend, job: InversionJob, task: Task) -> InversionOutcome:
    """One latent for all of ``job.photos`` (``core.tools.inversion.invert`` with N targets and N cameras)."""
    import torch

    from core.cameras import focal_to_fov
    from core.files.image_io import photo_to_tensor
    from core.tools.inversion import InversionSpec, aligned_start, invert as core_invert, orbit_from_label
    if not job.photos:
        raise ValueError("no photo to invert")
    progress, cancel = _hooks(task)
    m = backend.model
    spec = InversionSpec(space=job.space, steps=job.steps, loss=job.loss, pti_steps=job.pti_steps,
                         optimize_camera=job.optimize_camera, branch=job.branch, nrr=job.resolution,
                         samples=job.samples, fast_steps=job.fast_steps)
    targets, cameras = [], []
    for p in job.photos:
        if p.label is not None:   # the EG3D crop resized as ``core invert`` does
            target, _ = aligned_start(m, p.photo, p.label, job.fov_deg)
        else:
            target = photo_to_tensor(np.array(p.photo), m.device)  # a writable copy for torch
        targets.append(target)    # the camera: the estimate's orbit offsets as aligned_start reads them, or as set
        cameras.append(m.camera_label(p.yaw, p.pitch, fov_deg=job.fov_deg))
    result = core_invert(m, torch.cat(targets), torch.cat(cameras), spec, progress=progress, cancel=cancel)
    orbits = []
    for label in result.camera:
        yaw, pitch, radius, focal = orbit_from_label(label)
        orbits.append((yaw, pitch, radius, focal_to_fov(focal)))
    return InversionOutcome(result.ws[0].detach().cpu().numpy(), orbits,
                            result.tuned_psnr if result.tuned_psnr is not None else result.psnr, result)


def save_inversion(backend: ModelBackend, outcome: InversionOutcome, outdir: str, task: Task) -> list[Path]:
    from core.tools.inversion import save_inversion as core_save
    progress, cancel = _hooks(task)
    return core_save(outcome.result, backend.model, outdir, video_frames=0, progress=progress, cancel=cancel)


def paste_back(aligned: PhotoAlignment, outcome: InversionOutcome, index: int = 0) -> np.ndarray:
    """The inversion's re-rendered face of photo ``index`` put back where its crop came from in the photo.
    # [H, W, 3] uint8"""
    from core.files.image_io import to_uint8
    from core.tools.photo.crop import paste_back as core_paste
    result = outcome.result
    image = result.tuned_image if result.tuned_image is not None else result.image
    return core_paste(aligned.photo, to_uint8(image[index]), aligned.alignment.transform)
