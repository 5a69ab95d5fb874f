"""Held-out evaluation and comparison grids for distillation (Shahbazi et al. 2023, Sec. 4: PSNR against the teacher).

The held-out set is a fixed list of (ws, camera) pairs drawn like the training pairs but from a separate seed; the
teacher's renders of it are computed once. Scores compare the student's EMA with the teacher:

* ``eval/psnr`` (final image) and ``eval/psnr_raw`` (raw RGB at the neural rendering resolution), dB, images in
  [-1, 1] clamped;
* ``eval/feature_l1`` (32-channel feature image) and ``eval/image_l1``;
* ``eval/lpips`` only when the distillation has real LPIPS weights (a random test trunk is not a metric).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from core.cameras import Camera
from core.files.image_io import save_png, to_uint8
from core.metrics.fidelity import psnr
from core.student import StudentGenerator

from .loop import EVAL_SEED_OFFSET, Distiller, sample_pairs, teacher_targets


@dataclass
class HeldOut:
    ws: Tensor                       # [N, num_ws, w_dim]
    c: Tensor                        # [N, 25]
    targets: dict[str, Tensor]       # teacher renders, each [N, ...]


@torch.no_grad()
def make_held_out(d: Distiller, n: int, seed: int, batch: int = 4) -> HeldOut:
    gen = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)
    ws, c = sample_pairs(d, n, gen)
    parts = [teacher_targets(d, w, cc) for w, cc in zip(ws.split(batch), c.split(batch))]
    return HeldOut(ws, c, {k: torch.cat([p[k] for p in parts]) for k in parts[0]})


@torch.no_grad()
def evaluate(student: StudentGenerator, held: HeldOut, lpips: torch.nn.Module | None = None,
             batch: int = 4) -> dict[str, float]:
    """Mean scores of ``student`` against the teacher's held-out renders."""
    scores: dict[str, list[Tensor]] = {}
    for i in range(0, held.ws.shape[0], batch):
        out = student(held.ws[i:i + batch], held.c[i:i + batch])
        tgt = {k: v[i:i + batch] for k, v in held.targets.items()}
        scores.setdefault("eval/psnr", []).append(psnr(out["image"], tgt["image"]))
        scores.setdefault("eval/psnr_raw", []).append(psnr(out["image_raw"], tgt["image_raw"]))
        scores.setdefault("eval/feature_l1", []).append((out["feature_image"] - tgt["feature_image"]).abs().mean([1, 2, 3]))
        scores.setdefault("eval/image_l1", []).append((out["image"] - tgt["image"]).abs().mean([1, 2, 3]))
        if lpips is not None and not getattr(lpips, "random_trunk", False):
            scores.setdefault("eval/lpips", []).append(lpips(out["image"].clamp(-1, 1), tgt["image"].clamp(-1, 1)))
    return {k: float(torch.cat(v).mean()) for k, v in scores.items()}


@torch.no_grad()
def save_comparison_grid(d: Distiller, path: Path, grid: tuple[int, int], seed: int = 0) -> None:
    """Rows: per latent, the teacher's image then the student's; columns: a yaw sweep (3D consistency at a glance)."""
    cols, rows = grid
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, d.teacher.z_dim, generator=gen).to(d.device)
    ws = d.teacher.mapping(z, None, truncation_psi=0.7)
    yaws = np.linspace(-0.5, 0.5, cols)
    cams = Camera.frontal_offset(torch.tensor(yaws, dtype=torch.float32), 0.0, d.teacher.pivot, d.teacher.radius,
                                 d.cfg.sampling.fov_deg).to_label().to(d.device)
    lines = []
    for r in range(rows):
        w = ws[r:r + 1].expand(cols, -1, -1)
        lines.append(torch.cat(list(teacher_targets(d, w, cams)["image"]), dim=2))
        lines.append(torch.cat(list(d.student_ema(w, cams)["image"]), dim=2))
    save_png(path, to_uint8(torch.cat(lines, dim=1)))
