"""The inference API over a whole model file: one latent space, up to three renderers ("branches").

A :class:`Model` wraps what a model file holds (Trident snapshot, EG3D or Mimic3D network pickle) and renders any
branch it has from the same ``ws`` and camera label:

* ``sr2d``     tri-plane NeRF at the neural rendering resolution + 2D super-resolution (EG3D);
* ``direct3d`` coarse + detail tri-planes volume-rendered at the output resolution (Mimic3D);
* ``student``  pose-conditioned convolutional generator distilled from the NeRF-GAN (Shahbazi et al. 2023).

:class:`Model` is the only branch API: every caller (``python -m core samples|video|mesh|invert|metrics|bench``,
the viewer, inversion, the training grid, distillation) renders through :meth:`Model.render`, computes tri-planes
through :meth:`Model.triplanes` and asks :attr:`Model.branches` what a model has. Adding a branch touches this
module (:data:`BRANCHES`, :attr:`Model.branches`, :meth:`Model.render`, and :data:`VOLUME_BRANCHES` or
:data:`EXTRA_BRANCHES` where it applies) and the new branch's generator module, nothing else.

:meth:`Model.render` leaves gradients to the caller: inference wraps it in ``torch.no_grad()``, inversion
optimises through it.

Example::

    model = load_model("model.pkl", device="cpu")
    ws = model.mapping(model.z_from_seed(0), model.camera_label(0.0, 0.0))
    with torch.no_grad():
        out = model.render("sr2d", ws, model.camera_label(0.3, 0.0))   # {'image': [1, 3, H, W], ...}
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .build import build_generator
from .cameras import Camera
from .conventions import DEFAULT_FOV_DEG
from .errors import TridentError
from .files.checkpoint import load_snapshot
from .files.snapshot import Snapshot
from .layers import set_compute_dtype
from .student import build_student
from .triplane import RenderOptions, TriPlaneGenerator

BRANCHES = ("sr2d", "direct3d", "student")
VOLUME_BRANCHES = ("sr2d", "direct3d")   # rendered from tri-planes: Model.render takes Model.triplanes(ws) as planes
EXTRA_BRANCHES = ("student",)            # stored in a snapshot's ``extra`` under their branch name


class BranchError(TridentError):
    """A branch that the model does not have, or an unknown branch name."""


@dataclass
class Model:
    """A loaded model: the tri-plane generator (``G_ema``) plus any other branches the file holds."""

    G: TriPlaneGenerator
    device: torch.device
    snapshot: Snapshot | None = None     # the file's contents (None for a generator that is still training)
    student: torch.nn.Module | None = None
    path: str | None = None

    # -- what the model has ---------------------------------------------------------------------------------
    @property
    def branches(self) -> tuple[str, ...]:
        """Branch ids present in this model, in the canonical order of :data:`BRANCHES`."""
        have = {"sr2d"}
        if self.G.has_direct3d:
            have.add("direct3d")
        if self.student is not None:
            have.add("student")
        return tuple(b for b in BRANCHES if b in have)

    def check_branch(self, branch: str) -> None:
        if branch not in BRANCHES:
            raise BranchError(f"unknown branch {branch!r} (choose from {', '.join(BRANCHES)})")
        if branch not in self.branches:
            raise BranchError(f"branch {branch!r} is not in this model (it has: {', '.join(self.branches)})")

    @property
    def z_dim(self) -> int:
        return self.G.z_dim

    @property
    def w_dim(self) -> int:
        return self.G.w_dim

    @property
    def num_ws(self) -> int:
        return self.G.num_ws

    @property
    def pivot(self) -> tuple[float, float, float]:
        return tuple(self.G.cfg.rendering.avg_camera_pivot)

    @property
    def radius(self) -> float:
        return float(self.G.cfg.rendering.avg_camera_radius)

    @property
    def img_resolution(self) -> int:
        return self.G.img_resolution

    # -- latents and cameras --------------------------------------------------------------------------------
    def z_from_seed(self, seed: int) -> Tensor:
        """EG3D's ``gen_samples.py`` convention: ``RandomState(seed).randn(z_dim)``.  # [1, z_dim]"""
        return torch.from_numpy(np.random.RandomState(seed).randn(1, self.z_dim)).float().to(self.device)

    def camera_label(self, yaw: float = 0.0, pitch: float = 0.0, radius: float | None = None,
                     fov_deg: float = DEFAULT_FOV_DEG) -> Tensor:
        """Look-at orbit camera at yaw pi/2 + ``yaw``, pitch pi/2 + ``pitch`` (radians) around the model's pivot.
        # [1, 25]"""
        return Camera.frontal_offset(yaw, pitch, self.pivot, self.radius if radius is None else radius, fov_deg,
                                     device=self.device).to_label()

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = 14) -> Tensor:
        """z [B, z_dim] (+ conditioning camera [B, 25], default frontal) -> ws [B, num_ws, w_dim]."""
        if c is None:
            c = self.camera_label().expand(z.shape[0], -1)
        with torch.no_grad():
            return self.G.mapping(z.to(self.device), c.to(self.device), truncation_psi=truncation_psi,
                                  truncation_cutoff=truncation_cutoff)

    def ws_from_seed(self, seed: int, truncation_psi: float = 1.0, truncation_cutoff: int | None = 14) -> Tensor:
        """The samples command's latent for a seed (conditioned on the frontal camera).  # [1, num_ws, w_dim]"""
        return self.mapping(self.z_from_seed(seed), None, truncation_psi, truncation_cutoff)

    # -- rendering ------------------------------------------------------------------------------------------
    def triplanes(self, ws: Tensor, noise_mode: str = "const", plain: bool = False) -> list[Tensor]:
        """ws [B, num_ws, w_dim] -> [coarse [B, 3, C, R, R]] or, with Mimic3D's detail tri-planes,
        [coarse, detail [B, 3, C, 2R, 2R]]: one backbone run that every branch in :data:`VOLUME_BRANCHES` can
        reuse (``render(..., planes=...)``)."""
        return self.G.triplanes(ws.to(self.device), noise_mode=noise_mode, plain=plain)

    def render(self, branch: str, ws: Tensor, c: Tensor, opts: RenderOptions = RenderOptions(),
               planes: list[Tensor] | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Render ``branch`` for ws [B, num_ws, w_dim] from camera labels c [B, 25] (or [1, 25]).

        Returns {'image': [B, 3, H, W] (about [-1, 1]), optionally 'image_depth': [B, 1, h, w] and
        'image_raw': [B, 3, h, w]; sr2d adds 'feature_image' [B, 32, h, w], the distillation target of the
        student}. ``planes`` (:meth:`triplanes` of the same ws) skips the backbone for the volume-rendered
        branches. Autograd is the caller's choice (``torch.no_grad()`` for inference).
        """
        self.check_branch(branch)
        if c.shape[0] != ws.shape[0]:
            c = c.expand(ws.shape[0], -1)
        ws, c = ws.to(self.device), c.to(self.device)
        if branch == "sr2d":
            out = self.G.synthesis(ws, c, opts, planes=None if planes is None else planes[0], generator=generator)
            return {"image": out["image"], "image_depth": out["image_depth"], "image_raw": out["image_raw"],
                    "feature_image": out["feature_image"]}
        if branch == "direct3d":
            # coarse + detail tri-planes (``opts.triplanes``) at ``opts.resolution`` or the output size
            out = self.G.synthesis_direct3d(ws, c, opts, planes=planes, generator=generator)
            return {"image": out["image"], "image_depth": out["image_depth"]}
        # the distilled student: no ray marching, so no depth; sampling options do not apply
        out = self.student(ws, c, plain=opts.plain)
        return {"image": out["image"], "image_raw": out["image_raw"]}

    def set_precision(self, precision: str) -> None:
        """Inference precision of every branch: 'fp32', 'fp16' (EG3D's half-precision blocks, CUDA) or 'bf16'
        (every convolution stack, the decoder MLP and the student; see ``core.precision``). 'auto' is resolved by
        :func:`core.precision.resolve` first."""
        self.G.set_precision(precision)
        if self.student is not None:
            set_compute_dtype(self.student, torch.bfloat16 if precision == "bf16" else None)

    def to(self, device: str | torch.device) -> "Model":
        self.device = torch.device(device)
        self.G.to(self.device)
        if self.student is not None:
            self.student.to(self.device)
        return self


def model_from_snapshot(snap: Snapshot, device: str | torch.device = "cpu", path: str | None = None) -> Model:
    device = torch.device(device)
    G = build_generator(snap.generator, snap.G_ema, device)
    student = build_student(snap.extra["student"], device) if "student" in snap.extra else None
    return Model(G=G, device=device, snapshot=snap, student=student, path=path)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> Model:
    """Load a Trident snapshot or an EG3D/Mimic3D network pickle (never executes code from the file)."""
    return model_from_snapshot(load_snapshot(path), device, path=str(path))
