"""Training schedules of the EG3D recipe as pure functions of progress (EG3D Sec. 4.3, Appendix B; ``NVlabs/eg3d:
eg3d/training/loss.py``).

Every function takes the number of real images shown so far (``cur_nimg``) and returns a number, so the training
loop owns no schedule logic and each rule can be checked against the reference values.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def fade(cur_nimg: int, fade_kimg: float) -> float:
    """Linear ramp alpha = min(cur_nimg / (fade_kimg * 1000), 1); 1 at once when fade_kimg is 0."""
    if fade_kimg <= 0:
        return 1.0
    return min(cur_nimg / (fade_kimg * 1000.0), 1.0)


def swapping_prob(cur_nimg: int, gpc_reg_prob: float | None, fade_kimg: float = 1000.0) -> float:
    """Generator pose conditioning: probability that a sample is conditioned on another sample's camera.

    Fades from 1 to ``gpc_reg_prob`` (EG3D Sec. 4.3 "Modeling pose-correlated attributes"); None means pose
    conditioning is off and the mapping network always sees a zero label.
    """
    if gpc_reg_prob is None:
        return 1.0
    a = fade(cur_nimg, fade_kimg)
    return (1 - a) * 1.0 + a * gpc_reg_prob


def neural_rendering_resolution(cur_nimg: int, initial: int, final: int | None, fade_kimg: float = 1000.0) -> int:
    """Rendering resolution schedule: rint of a linear blend from ``initial`` to ``final`` (fixed if final is None)."""
    if final is None:
        return int(initial)
    a = fade(cur_nimg, fade_kimg)
    return int(round(initial * (1 - a) + final * a))


def blur_sigma(cur_nimg: int, init_sigma: float, fade_kimg: float) -> float:
    """Discriminator input blur, fading linearly to 0 (EG3D: sigma0 = 10 over 200 kimg at batch 32)."""
    if fade_kimg <= 0:
        return 0.0
    return max(1.0 - cur_nimg / (fade_kimg * 1000.0), 0.0) * init_sigma


def blur_kernel(sigma: float) -> Tensor:
    """Separable blur taps f(x) = 2^(-(x/sigma)^2) on x in [-floor(3 sigma), floor(3 sigma)], normalised.  # [T]

    Note the base-2 exponent of the reference (not exp(-x^2 / 2 sigma^2)).
    """
    radius = int(math.floor(sigma * 3))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    f = torch.exp2(-(x / sigma).square()) if sigma > 0 else torch.ones(1)
    return f / f.sum()


def ema_beta(batch_size: int, cur_nimg: int, ema_kimg: float, rampup: float | None) -> float:
    """EMA decay per step: 0.5 ** (batch / ema_nimg), with ema_nimg = min(ema_kimg*1000, cur_nimg*rampup) early on."""
    ema_nimg = ema_kimg * 1000.0
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


def lazy_regularization(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """Optimizer settings when a regulariser runs every ``interval`` steps (StyleGAN2 Sec. 3.1 lazy regularisation):
    lr * k/(k+1) and betas ** (k/(k+1)), so the moment estimates keep their time constants."""
    if not interval:
        return lr, betas
    r = interval / (interval + 1)
    return lr * r, (betas[0] ** r, betas[1] ** r)


def ada_adjust(p: float, sign_mean: float, target: float, batch_size: int, interval: int, ada_kimg: float) -> float:
    """StyleGAN2-ADA p update: p += sign(E[sign(D(real))] - target) * (batch * interval) / (ada_kimg * 1000), clamped
    at 0 (Karras et al. 2020, "Training GANs with Limited Data", Sec. 2.3)."""
    diff = sign_mean - target
    sign = (diff > 0) - (diff < 0)
    adjust = sign * (batch_size * interval) / (ada_kimg * 1000.0)
    return max(p + adjust, 0.0)
