"""Fidelity: how closely one branch reproduces another for the same latent and camera -- the distilled ``student``
against its teacher (Shahbazi et al. 2023, Sec. 4: PSNR against the teacher's renders; LPIPS where its weights exist),
or Mimic3D's ``direct3d`` against the super-resolved ``sr2d`` image that it imitates (Chen et al. 2023, Sec. 3.3).

Protocol: ``num`` held-out (z, camera) draws from ``RandomState(seed)``: z ~ N(0, I) mapped with the frontal
conditioning camera (what ``samples`` and the viewer do), the rendering camera on the orbit at yaw ~ U(-yaw_range,
yaw_range) and pitch ~ U(-pitch_range, pitch_range) radians; the teacher branch renders with deterministic depths
and constant noise (the distillation targets' mode). Scores, averaged over the draws:

* ``psnr``: PSNR in dB of the final images in [-1, 1] (peak 1 after mapping to [0, 1]);
* ``psnr_raw``: the same for the raw RGB at the neural rendering resolution, where the teacher branch has one;
* ``lpips``: LPIPS distance of the final images (lower is closer), when an LPIPS network is given.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor


def psnr(x: Tensor, y: Tensor, clamp: bool = True) -> Tensor:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2, i.e. the usual PSNR of the [0, 1] images), per sample;
    ``clamp=False`` scores the raw values (inversion: the fit of the render it optimises).  # [B]"""
    if clamp:
        x, y = x.clamp(-1, 1), y.clamp(-1, 1)
    mse = ((x.float() - y.float()) / 2).square().mean(dim=[1, 2, 3])
    return -10 * torch.log10(mse.clamp_min(1e-10))


@dataclass
class FidelityResult:
    """Mean scores over ``pairs`` draws, and the per-draw PSNR."""

    branch: str
    teacher: str
    pairs: int
    psnr: float
    psnr_raw: float | None
    lpips: float | None
    psnr_per_pair: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def held_out_draws(num: int, seed: int, yaw_range: float = 0.5, pitch_range: float = 0.2
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Rendering cameras of the held-out draws: yaw [num], pitch [num] in radians (a stream separate from the
    latents', so the same seed gives the same cameras whatever the latent size)."""
    rng = np.random.RandomState(seed + 1)
    return rng.uniform(-yaw_range, yaw_range, num), rng.uniform(-pitch_range, pitch_range, num)


@torch.no_grad()
def branch_fidelity(model, num: int, branch: str = "student", teacher: str = "sr2d", seed: int = 0,
                    truncation_psi: float = 1.0, yaw_range: float = 0.5, pitch_range: float = 0.2,
                    lpips: torch.nn.Module | None = None, progress: Callable[[Iterable], Iterable] | None = None
                    ) -> FidelityResult:
    """Score ``branch`` of ``model`` (a :class:`core.model.Model`) against its ``teacher`` branch."""
    from ..triplane import RenderOptions

    if branch == teacher:
        raise ValueError(f"fidelity compares two branches, got {branch} twice")
    model.check_branch(branch)
    model.check_branch(teacher)
    yaws, pitches = held_out_draws(num, seed, yaw_range, pitch_range)
    rng = np.random.RandomState(seed)
    opts = RenderOptions(deterministic=True, noise_mode="const")
    scores: dict[str, list[float]] = {"psnr": [], "psnr_raw": [], "lpips": []}
    draws = list(zip(yaws, pitches))
    for yaw, pitch in (progress(draws) if progress else draws):
        ws = model.mapping(torch.from_numpy(rng.randn(1, model.z_dim)).float(), None, truncation_psi=truncation_psi)
        c = model.camera_label(float(yaw), float(pitch))
        tgt = model.render(teacher, ws, c, opts)
        out = model.render(branch, ws, c, opts)
        scores["psnr"] += psnr(out["image"].float(), tgt["image"].float()).tolist()
        if "image_raw" in tgt and "image_raw" in out and tgt["image_raw"].shape == out["image_raw"].shape:
            scores["psnr_raw"] += psnr(out["image_raw"].float(), tgt["image_raw"].float()).tolist()
        if lpips is not None:
            d = lpips(out["image"].float().clamp(-1, 1), tgt["image"].float().clamp(-1, 1))
            scores["lpips"] += d.flatten().tolist()
    mean = {k: float(np.mean(v)) if v else None for k, v in scores.items()}
    return FidelityResult(branch=branch, teacher=teacher, pairs=num, psnr=mean["psnr"], psnr_raw=mean["psnr_raw"],
                          lpips=mean["lpips"], psnr_per_pair=scores["psnr"])
