"""Editing directions in W (the mapping network's output space), found from the model itself or taught by example.

An edit moves ws [N, num_ws, w_dim] on a layer range ``[start, stop)``: ``ws[:, start:stop] += x * sigma * v``
with ``v`` a unit vector in W and ``x`` the strength in units of ``sigma``, the standard deviation of sampled w
along ``v`` (so strengths mean the same for every method; GANSpace, Harkonen et al. 2020, §2, edits in these units).

* **SeFa** (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021, §3.2):
  the synthesis layers turn w into styles ``A w + b`` (the ``affine`` layers of StyleGAN2/EG3D); the unit
  directions that move the styles of the chosen layers most maximise ``||A n||^2``: the eigenvectors of ``A^T A``
  with the largest eigenvalues, A stacking the chosen layers' weight matrices. As the authors' code
  (genforce/sefa, ``utils.py`` ``factorize_weight``) each output unit's weight row is normalised to unit length.
  No sampling (only the sigma uses samples).
* **GANSpace** (Harkonen et al., NeurIPS 2020, §2): PCA of sampled w = mapping(z, c); components ordered by
  variance, sigma the component's standard deviation. EG3D's mapping is conditioned on a camera: the samples use
  the frontal camera unless told otherwise, and the direction says which.
* **Taught by example** (InterFaceGAN, Shen et al., CVPR 2020, §2): the user marks samples that have or lack an
  attribute; the unit normal of a linear separation in W is the direction (here an L2-regularised logistic
  regression, or the difference of the class means); conditional manipulation projects other directions out.

Both kinds are directions in W, so the same edit moves every branch (sr2d, direct3d and the student all take ws).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ...errors import TridentError
from ...model import Model
from ...triplane import RenderOptions

__all__ = ["EditError", "DirectionMismatchError", "check_model", "Direction", "Conditioning", "check_layers",
           "affine_layers", "sample_w", "sefa_matrix", "sefa", "ganspace", "fit_direction", "project_out",
           "taught_direction"]

METHODS = ("sefa", "ganspace", "taught")


class EditError(TridentError):
    """A direction or an edit that cannot be computed or does not fit the model."""


class DirectionMismatchError(EditError):
    """Directions computed for another model (content hash): they are not applied."""


@dataclass(frozen=True)
class Conditioning:
    """The camera the mapping network was conditioned on when w was sampled (radians from frontal)."""

    yaw: float = 0.0
    pitch: float = 0.0

    def describe(self) -> str:
        if self.yaw == 0.0 and self.pitch == 0.0:
            return "frontal camera"
        return f"camera yaw {self.yaw:+.3f} rad, pitch {self.pitch:+.3f} rad from frontal"


@dataclass(frozen=True)
class Direction:
    """One direction. The vector is stored as its float32 bytes, so directions are hashable and compare bit-exactly."""

    data: bytes                       # float32 [w_dim], unit length (see :attr:`vector`)
    layers: tuple[int, int]           # the ws layers [start, stop) it applies to
    sigma: float                      # std of sampled w along the vector: strength 1.0 moves w by sigma
    method: str                       # "sefa" | "ganspace" | "taught"
    source: str                       # how it was found, one line
    model_sha256: str                 # the model file it belongs to
    name: str = ""
    score: float = 0.0                # SeFa eigenvalue, GANSpace variance, taught: training accuracy

    @classmethod
    def make(cls, vector, **kw) -> "Direction":
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        return cls(data=v.tobytes(), **kw)

    @property
    def vector(self) -> np.ndarray:
        """[w_dim] float32, read-only."""
        return np.frombuffer(self.data, dtype=np.float32)

    @property
    def w_dim(self) -> int:
        return len(self.data) // 4


def check_layers(layers: tuple[int, int] | None, num_ws: int) -> tuple[int, int]:
    """None -> all layers; else a non-empty [start, stop) inside [0, num_ws)."""
    if layers is None:
        return (0, num_ws)
    a, b = int(layers[0]), int(layers[1])
    if not 0 <= a < b <= num_ws:
        raise EditError(f"layer range {a}:{b} is not a non-empty range inside 0:{num_ws}")
    return (a, b)


def check_model(directions, sha256: str, what: str = "directions") -> None:
    """Raise :class:`DirectionMismatchError` unless ``directions`` (a :class:`Direction` or anything with
    ``model_sha256``, e.g. a set of them) belong to the model file with content hash ``sha256``."""
    if directions.model_sha256 != sha256:
        path = getattr(directions, "model_path", "")
        raise DirectionMismatchError(
            f"{what}: computed for another model (sha256 {directions.model_sha256[:12]}"
            f"{f', {path}' if path else ''}); this model is {sha256[:12]}: not applied (compute them for this "
            "model with `python -m core directions`)")


# -- the synthesis affine layers -------------------------------------------------------------------------------
def affine_layers(model: Model) -> list[tuple[str, int, torch.nn.Module]]:
    """Every ``affine`` layer of the generator with the ws index that drives it: [(name, ws index, module)].

    Found by one probe render of each branch with ws[:, i] = i + 1 (every entry), recording the w each affine
    layer receives, so the result follows the generator's own wiring (main blocks, ToRGB, Mimic3D's 3D-aware
    blocks, the super-resolution's last w) without a table of architectures here.
    """
    probe = torch.arange(1, model.num_ws + 1, dtype=torch.float32).view(1, -1, 1).expand(1, -1, model.w_dim)
    seen: dict[str, set[float]] = {}
    hooks = []
    modules = {n: m for n, m in model.G.named_modules() if n.rsplit(".", 1)[-1] == "affine"}

    def record(name):
        def hook(_mod, inputs, _out):
            x = inputs[0].detach().float()
            seen.setdefault(name, set()).update(torch.unique(x).tolist())
        return hook

    for name, mod in modules.items():
        hooks.append(mod.register_forward_hook(record(name)))
    try:
        opts = RenderOptions(resolution=8, depth_resolution=2, depth_resolution_importance=0, chunk=None)
        with torch.no_grad():
            for branch in model.branches:
                model.render(branch, probe.to(model.device), model.camera_label(), opts)
    finally:
        for h in hooks:
            h.remove()
    out = []
    for name, mod in modules.items():
        values = seen.get(name)
        if not values:
            raise EditError(f"affine layer {name} is not used by any branch's render")
        if len(values) != 1 or next(iter(values)) not in range(1, model.num_ws + 1):
            raise EditError(f"affine layer {name} does not take one w of ws (it saw {sorted(values)[:4]})")
        out.append((name, int(next(iter(values))) - 1, mod))
    return out


# -- sampling W -------------------------------------------------------------------------------------------------
def sample_w(model: Model, num: int, seed: int = 0, cond: Conditioning = Conditioning(),
             batch: int = 2048) -> np.ndarray:
    """``num`` samples w = mapping(z, c) with z ~ N(0, I) from ``RandomState(seed)``, psi = 1, c the conditioning
    camera.  # [num, w_dim] float64"""
    if num < 2:
        raise EditError("sampling W needs at least 2 samples")
    z = np.random.RandomState(seed).randn(num, model.z_dim)
    c = model.camera_label(cond.yaw, cond.pitch)
    out = []
    for i in range(0, num, batch):
        zb = torch.from_numpy(z[i:i + batch]).float()
        out.append(model.mapping(zb, c.expand(zb.shape[0], -1), truncation_psi=1.0)[:, 0].double().cpu().numpy())
    return np.concatenate(out)


def _sigma(w_samples: np.ndarray, v: np.ndarray) -> float:
    return float(np.std(w_samples @ v.astype(np.float64), ddof=1))


def _fix_sign(v: np.ndarray) -> np.ndarray:
    """Eigenvectors have no sign: make the largest-magnitude entry positive, so results are reproducible."""
    return v if v[np.argmax(np.abs(v))] >= 0 else -v


# -- SeFa ----------------------------------------------------------------------------------------------------
def sefa_matrix(model: Model, layers: tuple[int, int] | None = None) -> tuple[np.ndarray, list[str]]:
    """A: the chosen layers' affine weights stacked, each row normalised to unit length, and the layer names.
    # [sum of style channels, w_dim] float64"""
    a, b = check_layers(layers, model.num_ws)
    chosen = [(n, m) for n, i, m in affine_layers(model) if a <= i < b]
    if not chosen:
        raise EditError(f"no affine layer takes ws layers {a}:{b}")
    A = np.concatenate([m.weight.detach().double().cpu().numpy() for _, m in chosen], axis=0)
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.maximum(norms, 1e-12), [n for n, _ in chosen]


def sefa(model: Model, model_sha256: str, layers: tuple[int, int] | None = None, num: int = 5,
         w_samples: np.ndarray | None = None, cond: Conditioning = Conditioning()) -> list[Direction]:
    """The top ``num`` SeFa directions of ``layers`` (all by default), largest eigenvalue first. ``w_samples``
    (default: 10000 from :func:`sample_w`) only set each direction's sigma."""
    a, b = check_layers(layers, model.num_ws)
    A, names = sefa_matrix(model, (a, b))
    values, vectors = np.linalg.eigh(A.T @ A)   # ascending, orthonormal columns
    order = np.argsort(values)[::-1][:num]
    if w_samples is None:
        w_samples = sample_w(model, 10000, cond=cond)
    out = []
    for k, j in enumerate(order):
        v = _fix_sign(vectors[:, j])
        out.append(Direction.make(
            v, layers=(a, b), sigma=_sigma(w_samples, v), method="sefa", name=f"sefa {k}",
            source=f"SeFa eigenvector {k} of {len(names)} affine layers (ws {a}:{b}); sigma from "
                   f"{len(w_samples)} w sampled with the {cond.describe()}",
            model_sha256=model_sha256, score=float(values[j])))
    return out


# -- GANSpace ------------------------------------------------------------------------------------------------
def ganspace(model: Model, model_sha256: str, layers: tuple[int, int] | None = None, num: int = 5,
             w_samples: np.ndarray | None = None, num_samples: int = 10000, seed: int = 0,
             cond: Conditioning = Conditioning()) -> list[Direction]:
    """The first ``num`` principal components of sampled w (largest variance first), applied on ``layers``."""
    a, b = check_layers(layers, model.num_ws)
    if w_samples is None:
        w_samples = sample_w(model, num_samples, seed=seed, cond=cond)
    x = w_samples - w_samples.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)   # singular values descending
    var = s ** 2 / (len(x) - 1)
    out = []
    for k in range(min(num, len(s))):
        v = _fix_sign(vt[k])
        out.append(Direction.make(
            v, layers=(a, b), sigma=float(np.sqrt(var[k])), method="ganspace", name=f"ganspace {k}",
            source=f"GANSpace component {k} of {len(x)} w sampled with the {cond.describe()} (seed {seed})",
            model_sha256=model_sha256, score=float(var[k])))
    return out


# -- taught by example ---------------------------------------------------------------------------------------
def project_out(v: np.ndarray, others: Sequence[np.ndarray]) -> np.ndarray:
    """``v`` minus its component in the span of ``others``, unit length (InterFaceGAN's conditional manipulation)."""
    v = np.asarray(v, dtype=np.float64)
    if len(others):
        q, _ = np.linalg.qr(np.stack([np.asarray(o, dtype=np.float64) for o in others], axis=1))
        v = v - q @ (q.T @ v)
    n = np.linalg.norm(v)
    if n < 1e-6:
        raise EditError("the direction lies in the span of the directions to keep fixed")
    return v / n


def fit_direction(w_has: np.ndarray, w_lacks: np.ndarray, method: str = "logistic",
                  l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Unit direction in W from samples that have [n1, w_dim] / lack [n0, w_dim] the attribute, pointing to "has";
    and the fraction of the marked samples it classifies right.

    ``logistic``: L2-regularised logistic regression (penalty ``l2 / 2 * ||beta||^2`` on w scaled to unit overall
    standard deviation; the intercept is free), solved by Newton's method; the normal of the separating
    hyperplane is the direction. ``mean``: the difference of the class means.
    """
    w_has, w_lacks = np.asarray(w_has, np.float64), np.asarray(w_lacks, np.float64)
    if w_has.ndim != 2 or w_lacks.ndim != 2 or w_has.shape[1] != w_lacks.shape[1]:
        raise EditError("marked samples must be arrays [n, w_dim] of the same w_dim")
    if len(w_has) < 1 or len(w_lacks) < 1:
        raise EditError("teaching a direction needs at least one sample that has the attribute and one that lacks it")
    x = np.concatenate([w_has, w_lacks])
    y = np.concatenate([np.ones(len(w_has)), np.zeros(len(w_lacks))])
    if method == "mean":
        v = w_has.mean(axis=0) - w_lacks.mean(axis=0)
        proj = x @ v   # threshold halfway between the class means
        predicted = proj > (proj[y == 1].mean() + proj[y == 0].mean()) / 2
    elif method == "logistic":
        scale = float(x.std()) or 1.0
        xa = np.concatenate([(x - x.mean(axis=0)) / scale, np.ones((len(x), 1))], axis=1)
        reg = np.full(xa.shape[1], float(l2))
        reg[-1] = 0.0
        beta = np.zeros(xa.shape[1])
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-np.clip(xa @ beta, -40, 40)))
            grad = xa.T @ (p - y) / len(x) + reg * beta
            hess = (xa.T * (p * (1 - p))) @ xa / len(x) + np.diag(reg) + 1e-9 * np.eye(len(beta))
            step = np.linalg.solve(hess, grad)
            beta -= step
            if np.linalg.norm(step) < 1e-10:
                break
        v = beta[:-1]
        predicted = xa @ beta > 0
    else:
        raise EditError(f"unknown fitting method {method!r} (logistic or mean)")
    n = np.linalg.norm(v)
    if n < 1e-12:
        raise EditError("the marked samples do not separate along any direction")
    return v / n, float(np.mean(predicted == (y == 1)))


def taught_direction(model_sha256: str, ws_has: np.ndarray, ws_lacks: np.ndarray, layers: tuple[int, int],
                     w_samples: np.ndarray, name: str = "taught", method: str = "logistic", l2: float = 1e-3,
                     keep_fixed: Sequence[Direction] = ()) -> Direction:
    """A direction taught by marked latents ws [n, num_ws, w_dim] (seeds, mixes or inversions): each sample is
    its w averaged over ``layers``; the directions in ``keep_fixed`` are projected out (conditional editing)."""
    a, b = layers
    feats = [np.asarray(ws, np.float64)[:, a:b].mean(axis=1) for ws in (ws_has, ws_lacks)]
    v, accuracy = fit_direction(feats[0], feats[1], method=method, l2=l2)
    if keep_fixed:
        v = project_out(v, [d.vector for d in keep_fixed])
    fixed = f", with {', '.join(d.name or d.method for d in keep_fixed)} projected out" if keep_fixed else ""
    return Direction.make(
        v, layers=(a, b), sigma=_sigma(w_samples, v), method="taught", name=name,
        source=f"taught by {len(feats[0])} marked 'has' / {len(feats[1])} 'lacks' samples ({method}, l2 {l2:g}; "
               f"training accuracy {accuracy:.2f}){fixed}",
        model_sha256=model_sha256, score=accuracy)
