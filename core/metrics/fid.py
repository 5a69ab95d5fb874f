"""FID and KID on Inception features (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule", Sec. 4;
Binkowski et al. 2018, "Demystifying MMD GANs", Sec. 3 and Appendix D).

Features come from the Inception-v3 network that the StyleGAN family measures with: the TorchScript file
``inception-2015-12-05.pt`` (2048-d pool features; it takes uint8 images [N, 3, H, W] of any size and resizes
them itself, called as ``detector(images, return_features=True)``). The file cannot be downloaded here, so it is
read from an explicit path, ``$TRIDENT_INCEPTION``, or the standard cache folders listed by
:func:`detector_search_paths`; when it is missing, :class:`DetectorError` names the file and where to put it.
Any TorchScript module with the same call signature works (the tests use a small stand-in).

* FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))  (Fréchet distance of Gaussians fitted to features)
* KID = unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets
  (StyleGAN2-ADA's protocol: 100 subsets of at most 1000 samples); reported x 1e3 is common, here it is raw.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from ..errors import TridentError

INCEPTION_FILE = "inception-2015-12-05.pt"


class DetectorError(TridentError):
    """The feature network is missing or unusable."""


def detector_search_paths() -> list[Path]:
    """Where the Inception file is looked for, in order (after an explicit path)."""
    paths = []
    if os.environ.get("TRIDENT_INCEPTION"):
        paths.append(Path(os.environ["TRIDENT_INCEPTION"]).expanduser())
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser()
    paths.append(torch_home / "hub" / "checkpoints" / INCEPTION_FILE)
    paths.append(Path.home() / ".cache" / "trident" / INCEPTION_FILE)
    return paths


def load_detector(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The Inception feature network (TorchScript) from ``path`` or the search paths."""
    candidates = [Path(path).expanduser()] if path is not None else detector_search_paths()
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        where = str(candidates[0]) if path is not None else " or ".join(str(p) for p in candidates)
        raise DetectorError(f"FID/KID need the Inception network {INCEPTION_FILE} (TorchScript, as used by "
                            f"StyleGAN2-ADA/StyleGAN3 metrics): not found at {where}; put it there or pass "
                            f"--inception PATH")
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in new torch, but it is the format of this file
            warnings.simplefilter("ignore", DeprecationWarning)
            det = torch.jit.load(str(found), map_location=device)
    except Exception as e:  # noqa: BLE001 - torch.jit raises many types for damaged files
        raise DetectorError(f"{found} is not a usable TorchScript feature network ({type(e).__name__})") from None
    return det.eval()


def to_detector_input(images: Tensor) -> Tensor:
    """Images in [-1, 1] float [N, 3, H, W] -> uint8 [N, 3, H, W] (the StyleGAN metrics' conversion)."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def extract_features(detector: torch.nn.Module, images: Tensor, batch: int = 32,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """Features of images in [-1, 1] [N, 3, H, W] -> float64 [N, D]."""
    feats = []
    for i in range(0, images.shape[0], batch):
        x = to_detector_input(images[i:i + batch]).to(device)
        f = detector(x, return_features=True)
        if f.ndim != 2 or f.shape[0] != x.shape[0]:
            raise DetectorError(f"feature network returned shape {tuple(f.shape)}, expected [{x.shape[0]}, D]")
        feats.append(f.double().cpu().numpy())
    return np.concatenate(feats)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    import scipy.linalg  # imported here: every command's startup would pay for it

    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # singular product: regularise (few samples, rank-deficient covariances)
        eps = 1e-6 * np.eye(sigma1.shape[0])
        covmean = scipy.linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    covmean = np.real(covmean)
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean), 0.0))


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets [N, D] (each needs at least 2 samples)."""
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("FID needs at least 2 samples per set")
    return frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two samples [m, D] with the cubic polynomial kernel (off-diagonal within-set means)."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
        seed: int = 0) -> float:
    """KID: the mean unbiased MMD^2 over ``num_subsets`` random equal-size subsets of both sets."""
    m = min(len(real), len(fake), max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.RandomState(seed)
    vals = [mmd2_unbiased(fake[rng.choice(len(fake), m, replace=False)], real[rng.choice(len(real), m, replace=False)])
            for _ in range(num_subsets)]
    return float(np.mean(vals))
