"""3D consistency of a renderer: warp a nearby view into a reference view with depth and cameras, masked PSNR.

Why: EG3D's 2D super-resolution is not strictly multi-view consistent, while Mimic3D's direct 3D rendering is
(Chen et al. 2023, Sec. 1, Sec. 4.2). For a pair of views A and B of the same latent:

1. every pixel p of A is lifted to the 3D point X = o_A + d_A(p) dir_A(p) (d: expected ray distance, unit
   directions; the depth is bilinearly resized to the image resolution when it is coarser, as for ``sr2d``);
2. X is projected into B (OpenCV pinhole with EG3D's normalised intrinsics) and B's image is sampled there
   (bilinear); this is A as predicted by B;
3. the mask keeps pixels whose projection lies inside B, in front of it, and not occluded in B: B's own depth at
   the projection agrees with |X - o_B| within ``rel_tol`` (forward-backward depth check), away from B's depth
   edges (the 2 x 2 pixels the bilinear sample reads span less than ``rel_tol`` in depth);
4. the score is the PSNR (images mapped from [-1, 1] to [0, 1], peak 1) of A against the warped B over the mask.

Higher is more consistent: a renderer whose pixels are a function of the 3D surface alone scores high (limited
by the bilinear resampling), one whose appearance changes with the viewpoint scores lower. The depth must
describe the geometry that the image shows; the ``student`` branch renders no depth, so callers give it the
depth of the tri-plane geometry (``python -m core metrics`` uses the ``direct3d`` depth where the model has that
branch, else the ``sr2d`` depth, upsampled).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..rendering import make_rays

# A renderer for the metric: camera labels [B, 25] -> (image [B, 3, H, W] in about [-1, 1], depth [B, 1, h, w]).
ViewRenderer = Callable[[Tensor], tuple[Tensor, Tensor]]


def _split_label(c: Tensor) -> tuple[Tensor, Tensor]:
    return c[:, :16].reshape(-1, 4, 4), c[:, 16:25].reshape(-1, 3, 3)


def resize_depth(depth: Tensor, size: int) -> Tensor:
    """Depth [B, 1, h, w] -> [B, 1, size, size] (bilinear, align_corners=False; identity when already that size)."""
    if depth.shape[-1] == size and depth.shape[-2] == size:
        return depth
    return F.interpolate(depth, size=(size, size), mode="bilinear", align_corners=False)


def backproject(depth: Tensor, c: Tensor) -> Tensor:
    """Pixel-centre points of depth [B, 1, R, R] (distance along unit rays) seen by cameras c [B, 25] -> [B, R*R, 3]."""
    cam2world, intrinsics = _split_label(c)
    origins, dirs = make_rays(cam2world, intrinsics, depth.shape[-1])
    return origins + dirs * depth.reshape(depth.shape[0], -1, 1)


def project(points: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """World points [B, N, 3] -> (normalised image coordinates (u, v) in [0, 1]^2 [B, N, 2], camera z [B, N],
    distance to the camera centre [B, N]). Inverse of :func:`core.rendering.make_rays` (skew included)."""
    cam2world, k = _split_label(c)
    rot, t = cam2world[:, :3, :3], cam2world[:, :3, 3]
    cam = torch.bmm(points - t[:, None, :], rot)  # R^T (X - t), row vectors  # [B, N, 3]
    z = cam[..., 2]
    zs = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)
    x, y = cam[..., 0] / zs, cam[..., 1] / zs
    fx, fy, sk = k[:, 0, 0, None], k[:, 1, 1, None], k[:, 0, 1, None]
    cx, cy = k[:, 0, 2, None], k[:, 1, 2, None]
    u = fx * x + sk * y + cx
    v = fy * y + cy
    return torch.stack([u, v], -1), z, (points - t[:, None, :]).norm(dim=-1)


def warp(image_b: Tensor, depth_a: Tensor, depth_b: Tensor, c_a: Tensor, c_b: Tensor, rel_tol: float = 0.02
         ) -> tuple[Tensor, Tensor]:
    """View B resampled into view A through A's depth.

    image_b [B, C, R, R], depth_a and depth_b [B, 1, R, R], labels [B, 25] -> (warped [B, C, R, R], mask [B, 1, R, R]).
    """
    b, _, r, _ = image_b.shape
    pts = backproject(depth_a, c_a)  # [B, R*R, 3]
    uv, z, dist = project(pts, c_b)
    grid = (uv * 2 - 1).reshape(b, r, r, 2)  # align_corners=False: pixel centres at (i + 0.5) / R
    warped = F.grid_sample(image_b, grid, mode="bilinear", padding_mode="border", align_corners=False)
    depth_at = F.grid_sample(depth_b, grid, mode="bilinear", padding_mode="border", align_corners=False)
    px = uv * r - 0.5  # continuous pixel index; bilinear needs both neighbours inside the image
    inside = ((px >= -1e-3) & (px <= r - 1 + 1e-3)).all(-1) & (z > 0)  # (rounding at the border pixels)
    visible = (depth_at.reshape(b, -1) - dist).abs() <= rel_tol * dist
    # B's depth range over the 2x2 pixels that the bilinear sample reads: a depth edge there (a silhouette) mixes
    # two surfaces, so neither the colour nor the occlusion test can be trusted
    spread = (F.max_pool2d(depth_b, 2, 1) + F.max_pool2d(-depth_b, 2, 1)).reshape(b, -1)  # [B, (R-1)^2]
    i0 = px.detach().floor().long().clamp(0, r - 2)  # [B, N, 2] (x, y)
    smooth = torch.gather(spread, 1, i0[..., 1] * (r - 1) + i0[..., 0]) <= rel_tol * dist
    mask = (inside & visible & smooth).reshape(b, 1, r, r)
    return warped, mask


def masked_psnr(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """PSNR in dB of images in [-1, 1] (peak 1 after mapping to [0, 1]) over mask [B, 1, H, W] -> [B] (NaN if empty)."""
    diff = ((a - b) * 0.5).square().mean(1, keepdim=True)  # [B, 1, H, W]
    m = mask.to(diff.dtype)
    n = m.sum(dim=(1, 2, 3))
    mse = (diff * m).sum(dim=(1, 2, 3)) / n.clamp_min(1)
    psnr = 10 * torch.log10(1.0 / mse.clamp_min(1e-12))
    return torch.where(n > 0, psnr, torch.full_like(psnr, float("nan")))


@dataclass
class ConsistencyResult:
    """Per-renderer summary: mean PSNR over pairs (dB), mean mask coverage, and the per-pair values."""

    psnr: float
    coverage: float
    pairs: int
    psnr_per_pair: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"psnr": self.psnr, "coverage": self.coverage, "pairs": self.pairs, "psnr_per_pair": self.psnr_per_pair}


def view_pairs(num: int, seed: int = 0, yaw_range: float = 0.35, pitch_range: float = 0.15, delta: float = 0.1
               ) -> np.ndarray:
    """``num`` pairs of nearby orbit offsets: A uniform in the ranges (radians), B = A with yaw + delta.
    -> [num, 4] (yaw_a, pitch_a, yaw_b, pitch_b)."""
    rng = np.random.RandomState(seed)
    yaw = rng.uniform(-yaw_range, yaw_range, num)
    pitch = rng.uniform(-pitch_range, pitch_range, num)
    sign = np.where(rng.uniform(size=num) < 0.5, -1.0, 1.0)
    return np.stack([yaw, pitch, yaw + sign * delta, pitch], 1)


@torch.no_grad()
def pair_scores(render: ViewRenderer, c_a: Tensor, c_b: Tensor, rel_tol: float = 0.02) -> tuple[Tensor, Tensor]:
    """Render both views, warp B into A: (PSNR [B], mask coverage [B])."""
    img_a, dep_a = render(c_a)
    img_b, dep_b = render(c_b)
    r = img_a.shape[-1]
    warped, mask = warp(img_b.float(), resize_depth(dep_a.float(), r), resize_depth(dep_b.float(), r), c_a, c_b,
                        rel_tol)
    return masked_psnr(img_a.float(), warped, mask), mask.float().mean(dim=(1, 2, 3))


def summarize(psnr: list[float], coverage: list[float]) -> ConsistencyResult:
    finite = [p for p in psnr if math.isfinite(p)]
    return ConsistencyResult(psnr=float(np.mean(finite)) if finite else float("nan"),
                             coverage=float(np.mean(coverage)) if coverage else 0.0, pairs=len(psnr),
                             psnr_per_pair=[float(p) for p in psnr])


# ----------------------------------------------------------------------------------------------------------
# over the branches of a model (core.model)

# Where a branch that renders no depth (the student) borrows the depth of the tri-plane geometry, in order.
DEPTH_SOURCES = ("direct3d", "sr2d")


def branch_renderer(model, branch: str, ws: Tensor, opts) -> ViewRenderer:
    """A :data:`ViewRenderer` for one branch of a :class:`core.model.Model` and latents ws [1, num_ws, w_dim]."""
    def render(c: Tensor) -> tuple[Tensor, Tensor]:
        out = model.render(branch, ws, c, opts)
        depth = out.get("image_depth")
        if depth is None:
            source = next(b for b in DEPTH_SOURCES if b in model.branches)
            depth = model.render(source, ws, c, opts)["image_depth"]
        return out["image"], depth
    return render


@torch.no_grad()
def model_consistency(model, branches: list[str], num_pairs: int, seed: int = 0, truncation_psi: float = 1.0,
                      delta: float = 0.1, rel_tol: float = 0.02, opts=None, progress=None
                      ) -> dict[str, ConsistencyResult]:
    """The metric for each branch on the same ``num_pairs`` (latent, view pair) draws.

    Latents: z ~ RandomState(seed) N(0, I), mapped with the frontal conditioning camera (as ``samples``); views
    from :func:`view_pairs`; deterministic rendering (``opts`` default: ``RenderOptions()``)."""
    from ..triplane import RenderOptions

    opts = opts or RenderOptions()
    pairs = view_pairs(num_pairs, seed, delta=delta)
    rng = np.random.RandomState(seed)
    psnr: dict[str, list[float]] = {b: [] for b in branches}
    cover: dict[str, list[float]] = {b: [] for b in branches}
    for ya, pa, yb, pb in (progress(pairs) if progress else pairs):
        ws = model.mapping(torch.from_numpy(rng.randn(1, model.z_dim)).float(), None, truncation_psi=truncation_psi)
        c_a, c_b = model.camera_label(float(ya), float(pa)), model.camera_label(float(yb), float(pb))
        for branch in branches:
            p, m = pair_scores(branch_renderer(model, branch, ws, opts), c_a, c_b, rel_tol)
            psnr[branch] += p.tolist()
            cover[branch] += m.tolist()
    return {b: summarize(psnr[b], cover[b]) for b in branches}
