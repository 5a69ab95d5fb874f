"""Background jobs of the Edit panel, thin calls into ``core.tools.edit``: the model's directions (cached per model),
thumbnail strips (the current latent moved along one direction), a direction taught by marked samples, and loading
a directions file (refused when it belongs to another model). Like :mod:`app.jobs`, app code that touches torch.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from core.files.image_io import to_uint8
from core.tools.edit.apply import Edit, apply_edits
from core.tools.edit.direction_files import DirectionSet, cached_directions, load_directions
from core.tools.edit.directions import Direction, check_model, sample_w, taught_direction
from core.tools.edit.model_id import model_sha256
from core.triplane import RenderOptions

from .model_backend import ModelBackend
from .requests import LatentSpec
from .tasks import Task

STRIP_STRENGTHS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)   # sigma units, the thumbnails of one direction
THUMB_RESOLUTION = 32                                        # neural rendering resolution of the thumbnails
THUMB_SIZE = 64                                              # thumbnail side in pixels
TEACH_SAMPLES = 2000                                         # w samples that set a taught direction's sigma


def backend_sha256(backend: ModelBackend) -> str:
    return model_sha256(backend.model)


@dataclass
class DirectionsJob:
    method: str = "sefa"                 # sefa | ganspace
    layers: tuple[int, int] | None = None
    num: int = 5


def compute_directions(backend: ModelBackend, job: DirectionsJob, task: Task) -> DirectionSet:
    """The model's directions, from the cache when they were computed before for this model file."""
    task.report(0.05, f"hashing {backend.info.name}")
    backend_sha256(backend)
    task.report(0.2, f"{job.method}: sampling w and solving (cached once done)")
    with torch.no_grad():
        return cached_directions(backend.model, job.method, job.layers, job.num)


def load_direction_file(backend: ModelBackend, path: str) -> DirectionSet:
    """A directions file for this model; another model's raises ``DirectionMismatchError`` (not applied)."""
    dset = load_directions(path)
    check_model(dset, backend_sha256(backend), what=f"directions file {path}")
    return dset


def strip(backend: ModelBackend, latent: LatentSpec, direction: Direction, branch: str) -> np.ndarray:
    """Thumbnails of ``latent`` (its other edits kept) moved by each of :data:`STRIP_STRENGTHS` along
    ``direction``, side by side.  # [THUMB_SIZE, 7 * THUMB_SIZE, 3] uint8"""
    from PIL import Image
    base = replace(latent, edits=tuple(e for e in latent.edits if e.direction != direction))
    ws = backend.ws(base)
    m = backend.model
    opts = RenderOptions(resolution=THUMB_RESOLUTION if branch == "sr2d" else None, depth_resolution=12,
                         depth_resolution_importance=12)
    c = m.camera_label()
    tiles = []
    with torch.no_grad():
        for x in STRIP_STRENGTHS:
            out = m.render(branch, apply_edits(ws, (Edit(direction, x),)), c, opts)
            img = Image.fromarray(to_uint8(out["image"][0])).resize((THUMB_SIZE, THUMB_SIZE), Image.LANCZOS)
            tiles.append(np.asarray(img))
    return np.concatenate(tiles, axis=1)


def strips(backend: ModelBackend, latent: LatentSpec, directions: tuple[Direction, ...], branch: str,
           task: Task) -> dict[Direction, np.ndarray]:
    out = {}
    for i, d in enumerate(directions):
        if task.cancelled:
            break
        task.report(i / len(directions), f"thumbnails {i + 1}/{len(directions)}")
        out[d] = strip(backend, latent, d, branch)
    return out


def current_ws(backend: ModelBackend, latent: LatentSpec) -> np.ndarray:
    """The latent as the panes show it (edits applied).  # [num_ws, w_dim] float32"""
    return backend.ws(latent)[0].float().cpu().numpy()


@dataclass
class TeachJob:
    has: tuple[np.ndarray, ...]          # ws [num_ws, w_dim] of samples marked "has"
    lacks: tuple[np.ndarray, ...]
    name: str
    layers: tuple[int, int]
    keep_fixed: tuple[Direction, ...] = ()


def teach(backend: ModelBackend, job: TeachJob, task: Task) -> Direction:
    """A direction fitted to the marked samples (``core.tools.edit.directions.taught_direction``)."""
    task.report(0.1, f"sampling {TEACH_SAMPLES} w for sigma")
    w = sample_w(backend.model, TEACH_SAMPLES)
    task.report(0.7, "fitting")
    return taught_direction(backend_sha256(backend), np.stack(job.has), np.stack(job.lacks), job.layers, w,
                            name=job.name, keep_fixed=job.keep_fixed)
