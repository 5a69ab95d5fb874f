"""Precision and recall of image sets (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models", §2, Eq. 1-3), reported relative to the same measure between two halves of the data, in a
feature space where objects differ by their parts rather than by their background colour. Needs no pretrained
network.

Manifold estimate (Eq. 1): a set of feature vectors ``Phi`` covers the union of the balls around each of its
vectors with radius the distance to that vector's k-th nearest neighbour in ``Phi`` (k = 3 as in the paper).
``precision`` = share of generated vectors inside the real manifold (Eq. 2); ``recall`` = share of real vectors
inside the generated manifold (Eq. 3). A generator that draws one object in many backgrounds has a small generated
manifold in a part-sensitive feature space, so few real objects fall inside it: low recall.

Features (``part_features``): a histogram of oriented gradients in the spirit of Dalal & Triggs 2005 -- per pixel
the strongest RGB-channel gradient, its unsigned orientation binned into 9 directions (linear interpolation
between bins), magnitudes above a small threshold (a smooth background ramp stays below it) summed in cells of 8x8 and 16x16 pixels at 64 px -- normalised once per *image* (not per
block as in the paper's HOG: per-block normalisation would blow the faint gradients of an empty, smoothly
coloured background up to full weight) and square-rooted (Hellinger). Edges of eyes, ears, horns, hats and
silhouettes dominate; a background's colour and its smooth gradients barely register. Plain pixel distance does
the opposite and cannot tell a collapsed generator from its data when the backgrounds still vary.

The relative numbers divide the model's value by the value of the data's second half against its first half, at
the same set sizes (the estimate depends on them): 1.0 means as varied (recall) or as faithful (precision) as a
fresh draw of the data itself.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

FEATURE_RES = 64
ORIENTATIONS = 9
CELLS = (8, 16)  # cell sizes in pixels at FEATURE_RES
K = 3            # the paper's neighbourhood size
EDGE_THRESHOLD = 0.05  # per-pixel gradient (images in [-1, 1]) below which nothing counts: a full-range colour
                       # ramp across a 64 px background changes by 2 / 64 = 0.03 per pixel


def part_features(images: Tensor) -> Tensor:
    """[N, 3, H, W] in about [-1, 1] -> [N, D] part-sensitive descriptors (see the module docstring)."""
    x = images.float()
    if x.shape[-1] != FEATURE_RES or x.shape[-2] != FEATURE_RES:
        x = F.interpolate(x, size=(FEATURE_RES, FEATURE_RES), mode="bilinear", align_corners=False, antialias=True)
    x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = (x[..., 1:-1, 2:] - x[..., 1:-1, :-2]) / 2         # central differences, [N, 3, R, R]
    gy = (x[..., 2:, 1:-1] - x[..., :-2, 1:-1]) / 2
    mag = torch.sqrt(gx.square() + gy.square())
    best = mag.argmax(dim=1, keepdim=True)                  # the strongest colour channel per pixel
    mag = (mag.gather(1, best)[:, 0] - EDGE_THRESHOLD).clamp_min(0)  # smooth shading and gradients drop out
    theta = torch.atan2(gy.gather(1, best), gx.gather(1, best))[:, 0] % math.pi  # unsigned, [0, pi)
    pos = theta / math.pi * ORIENTATIONS - 0.5              # bin centres at (i + 0.5) * pi / 9
    lo = torch.floor(pos)
    frac = pos - lo
    lo = lo.long() % ORIENTATIONS
    hi = (lo + 1) % ORIENTATIONS
    n = x.shape[0]
    hist = torch.zeros(n, ORIENTATIONS, FEATURE_RES, FEATURE_RES, dtype=mag.dtype, device=mag.device)
    hist.scatter_add_(1, lo[:, None], (mag * (1 - frac))[:, None])
    hist.scatter_add_(1, hi[:, None], (mag * frac)[:, None])
    parts = [F.avg_pool2d(hist, cell).flatten(1) for cell in CELLS]
    feats = torch.cat(parts, dim=1)
    feats = feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return feats.sqrt()


def knn_radii(feats: Tensor, k: int = K) -> Tensor:
    """Distance of each vector to its k-th nearest neighbour in the same set (itself excluded)."""
    d = torch.cdist(feats, feats)
    return d.kthvalue(k + 1, dim=1).values  # the 1st smallest is the vector itself (0)


def coverage(manifold: Tensor, queries: Tensor, k: int = K) -> float:
    """Share of ``queries`` inside the k-NN manifold of ``manifold`` (Kynkaanniemi et al. 2019, Eq. 1)."""
    radii = knn_radii(manifold, k)
    inside = (torch.cdist(queries, manifold) <= radii[None]).any(dim=1)
    return float(inside.float().mean())


@dataclass
class PrecisionRecall:
    precision: float            # share of fakes inside the real manifold
    recall: float               # share of reals inside the fake manifold
    data_precision: float       # the same between the data's two halves (second half as the "fakes")
    data_recall: float
    relative_precision: float   # precision / data_precision
    relative_recall: float      # recall / data_recall: the diversity ratio, 1.0 = as varied as the data
    num: int
    k: int

    def as_dict(self) -> dict:
        return asdict(self)


def precision_recall(reals_a: Tensor, reals_b: Tensor, fakes: Tensor, k: int = K) -> PrecisionRecall:
    """Feature sets of the same size: the fakes against the data's first half, and the second half against the
    first for the reference values."""
    if not (len(reals_a) == len(reals_b) == len(fakes)) or len(fakes) <= k:
        raise ValueError(f"precision/recall needs three sets of the same size above k={k}, got "
                         f"{len(reals_a)}, {len(reals_b)}, {len(fakes)}")
    p, r = coverage(reals_a, fakes, k), coverage(fakes, reals_a, k)
    dp, dr = coverage(reals_a, reals_b, k), coverage(reals_b, reals_a, k)
    return PrecisionRecall(precision=p, recall=r, data_precision=dp, data_recall=dr,
                           relative_precision=p / dp if dp > 0 else float("nan"),
                           relative_recall=r / dr if dr > 0 else float("nan"), num=len(fakes), k=k)
