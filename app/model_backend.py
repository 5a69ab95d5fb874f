"""The real render backend: a ``core.model.Model`` behind the :class:`app.requests.Backend` interface.

Runs on the render thread only. Caches (as the backbone cache of ``NVlabs/eg3d: eg3d/viz/renderer.py``):
mapped latents per (seed, psi, cutoff, conditioning camera), and the tri-planes of the current latent (EG3D's, or
Mimic3D's coarse + detail), so orbiting, zooming and changing render options skip the StyleGAN2 backbone.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from typing import Hashable

import torch
from torch import Tensor

from core.cameras import fov_to_focal
from core.defaults import CAMERA_RANGE_DEG
from core.files.image_io import to_uint8
from core.model import VOLUME_BRANCHES, Model, load_model
from core.precision import resolve as resolve_precision
from core.tools.edit.apply import apply_edits
from core.tools.edit.session import branch_resolution, mixed_seed_ws
from core.triplane import RenderOptions

from .requests import BranchResult, LatentBank, LatentSpec, ModelInfo, RenderRequest, depth_range
from .state import VIEWER_PRECISIONS


class LRU(OrderedDict):
    """A tiny least-recently-used dict."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key: Hashable, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        while len(self) > self.size:
            self.popitem(last=False)
        return value


def camera_range(model: Model) -> dict:
    """The model's training camera range: ``extra['camera_range']`` ({'yaw_deg', 'pitch_deg'}) when the file records
    it, else :data:`core.defaults.CAMERA_RANGE_DEG` (EG3D FFHQ; Trident's synthetic dataset is clipped to it)."""
    extra = model.snapshot.extra if model.snapshot is not None else {}
    rec = extra.get("camera_range") if isinstance(extra, dict) else None
    if isinstance(rec, dict) and {"yaw_deg", "pitch_deg"} <= set(rec):
        yaw, pitch, source = float(rec["yaw_deg"]), float(rec["pitch_deg"]), "recorded in the model file"
    else:
        yaw, pitch = CAMERA_RANGE_DEG
        synth = "dataset synth" in str(extra.get("provenance", "")) if isinstance(extra, dict) else False
        source = "synthetic dataset's range" if synth else "EG3D FFHQ range (not recorded in the file)"
    return {"camera_range": (math.radians(yaw), math.radians(pitch)), "camera_range_source": source}


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return device


class ModelBackend:
    """Renders :class:`RenderRequest` s of one loaded model, any branch it has."""

    def __init__(self, model: Model, bank: LatentBank | None = None, name: str | None = None):
        self.model = model
        self.bank = bank or LatentBank()
        r = model.G.cfg.rendering
        auto = resolve_precision("auto", model.device)
        self.info = ModelInfo(
            name=name or os.path.basename(model.path or "model"), branches=tuple(model.branches),
            num_ws=model.num_ws, img_resolution=model.img_resolution,
            neural_resolution=model.G.cfg.neural_rendering_resolution, depth_samples=r.depth_resolution,
            importance_samples=r.depth_resolution_importance, radius=model.radius, pivot=model.pivot,
            device=str(model.device), auto_precision=auto.precision, auto_precision_reason=auto.reason,
            **camera_range(model))
        self.precision = "fp32"   # the number type the model computes in now (core.precision); see set_precision
        self._ws_cache = LRU(64)
        self._planes_cache = LRU(2)
        self._lock = threading.Lock()  # ws() is also called by background jobs (mesh, video)

    @classmethod
    def open(cls, path: str, device: str = "auto", bank: LatentBank | None = None) -> "ModelBackend":
        """Load a Trident / EG3D / Mimic3D model file (never executes code from it)."""
        return cls(load_model(path, resolve_device(device)), bank)

    # -- latents --------------------------------------------------------------------------------------------
    def _seed_ws(self, seed: int, spec: LatentSpec) -> Tensor:
        key = (seed, spec.psi, spec.cutoff, spec.cond_yaw, spec.cond_pitch)

        def make() -> Tensor:
            c = self.model.camera_label(spec.cond_yaw, spec.cond_pitch)
            return self.model.mapping(self.model.z_from_seed(seed), c, spec.psi, spec.cutoff)
        return self._ws_cache.get_or(key, make)

    def ws(self, spec: LatentSpec) -> Tensor:
        """The latent a spec describes.  # [1, num_ws, w_dim]"""
        with self._lock, torch.no_grad():
            return self._ws(spec)

    def _ws(self, spec: LatentSpec) -> Tensor:
        if spec.stored is not None:
            ws = torch.from_numpy(self.bank.get(spec.stored))[None].to(self.model.device)
        else:
            ws = mixed_seed_ws(lambda seed: self._seed_ws(seed, spec), spec, self.model.num_ws)
        return apply_edits(ws, spec.edits) if spec.edits else ws

    # -- rendering ------------------------------------------------------------------------------------------
    def resolved_precision(self, requested: str) -> str:
        """``auto`` -> this device's choice (:attr:`ModelInfo.auto_precision`); fp32 / bf16 as they are. fp16 is not
        offered by the viewer (EG3D's half blocks only, CUDA only; ``core samples --precision fp16`` has it)."""
        if requested not in VIEWER_PRECISIONS:
            raise ValueError(f"precision must be auto, fp32 or bf16, got {requested!r}")
        return self.info.auto_precision if requested == "auto" else requested

    def set_precision(self, requested: str) -> str:
        """Compute in ``requested`` from now on, for renders and for the jobs that use this model (video, mesh,
        inversion); cached tri-planes of the other precision are dropped. Returns the resolved precision."""
        p = self.resolved_precision(requested)
        with self._lock:
            if p != self.precision:
                self.model.set_precision(p)
                self._planes_cache.clear()
                self.precision = p
        return p

    def _triplanes(self, spec: LatentSpec, ws: Tensor, noise_mode: str) -> list[Tensor]:
        """[coarse] or, with Mimic3D detail planes, [coarse, detail]; one backbone run serves every branch."""
        return self._planes_cache.get_or((spec, noise_mode), lambda: self.model.triplanes(ws, noise_mode=noise_mode))

    def _render(self, branch: str, spec: LatentSpec, ws: Tensor, c: Tensor, opts: RenderOptions) -> dict:
        """Model.render's outputs for ``branch``; the volume-rendered branches reuse cached tri-planes, so orbiting,
        zooming and changing render options skip the StyleGAN2 backbone (tests check equality with Model.render)."""
        planes = self._triplanes(spec, ws, opts.noise_mode) if branch in VOLUME_BRANCHES else None
        return self.model.render(branch, ws, c, opts, planes=planes)

    def branch_options(self, request: RenderRequest, branch: str) -> RenderOptions:
        """The request's resolution is sr2d's neural rendering resolution; direct3d renders at its output resolution
        scaled by the same factor (so "half resolution while moving" halves every branch)."""
        return RenderOptions(resolution=branch_resolution(self.model, request.resolution, branch),
                             depth_resolution=request.depth_samples,
                             depth_resolution_importance=request.importance_samples,
                             deterministic=request.deterministic)

    def render(self, request: RenderRequest, branch: str) -> BranchResult:
        t0 = time.perf_counter()
        cam = request.camera
        precision = self.set_precision(request.precision)
        with torch.no_grad():
            ws = self.ws(request.latent)
            c = self.model.camera_label(cam.yaw, cam.pitch, cam.radius, cam.fov_deg)
            out = self._render(branch, request.latent, ws, c, self.branch_options(request, branch))
            res = BranchResult(branch=branch, request=request, image=to_uint8(out["image"][0]),
                               focal=fov_to_focal(cam.fov_deg), precision=precision)
            if "image_raw" in out:
                res.raw = to_uint8(out["image_raw"][0])
            if "image_depth" in out:
                res.depth = out["image_depth"][0, 0].float().cpu().numpy()
                res.depth_range = depth_range(res.depth)
        if self.model.device.type == "cuda":
            torch.cuda.synchronize(self.model.device)
        res.render_ms = (time.perf_counter() - t0) * 1000
        return res

    def memory(self) -> str:
        parts = []
        if self.model.device.type == "cuda":
            parts.append(f"CUDA {torch.cuda.memory_allocated(self.model.device) / 2**20:.0f} MiB "
                         f"(peak {torch.cuda.max_memory_allocated(self.model.device) / 2**20:.0f})")
        parts.append(f"process {process_rss_mib():.0f} MiB")
        return ", ".join(parts)


def process_rss_mib() -> float:
    """Resident memory of this process (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
