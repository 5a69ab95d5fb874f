"""Loss terms of the EG3D recipe as small functions of tensors (EG3D Sec. 4.3 and Appendix B; ``NVlabs/eg3d:
eg3d/training/loss.py``).

The training loop composes them; none of them knows about optimizers, phases or devices.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from core import ops

from .schedules import blur_kernel


def g_nonsaturating(fake_logits: Tensor) -> Tensor:
    """Generator loss softplus(-D(G(z))) per sample (Goodfellow et al. 2014, non-saturating form).  # [B, 1]"""
    return F.softplus(-fake_logits)


def d_logistic(real_logits: Tensor | None, fake_logits: Tensor | None) -> Tensor:
    """Discriminator loss softplus(D(fake)) + softplus(-D(real)) per sample; either term may be omitted."""
    terms = []
    if fake_logits is not None:
        terms.append(F.softplus(fake_logits))
    if real_logits is not None:
        terms.append(F.softplus(-real_logits))
    return sum(terms)


def r1_penalty(real_logits: Tensor, inputs: list[Tensor]) -> Tensor:
    """R1 = sum over inputs of ||d sum(D(x)) / d x||^2 per sample (Mescheder et al. 2018, Eq. 9).

    EG3D's dual discrimination penalises the gradients w.r.t. both the image and the raw image. The inputs must
    require grad; the graph is kept so the penalty can be back-propagated.  # [B]
    """
    grads = torch.autograd.grad(outputs=real_logits.sum(), inputs=inputs, create_graph=True, only_inputs=True)
    return sum(g.square().sum(dim=[1, 2, 3]) for g in grads)


def density_smoothness(sigma_fn: Callable[[Tensor], Tensor], batch: int, p_dist: float, num_points: int = 1000,
                       generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
    """L1 difference of raw density between random points in [-1, 1]^3 and slightly perturbed copies (EG3D 'l1').

    ``sigma_fn`` maps coords [B, 2N, 3] to raw densities [B, 2N, 1]. Points are drawn in [-1, 1]^3 regardless of
    the box size, exactly as the reference.  # scalar
    """
    pts = torch.rand(batch, num_points, 3, generator=generator).to(device) * 2 - 1
    perturbed = pts + torch.randn(pts.shape, generator=generator).to(device) * p_dist
    sigma = sigma_fn(torch.cat([pts, perturbed], dim=1))
    return F.l1_loss(sigma[:, :num_points], sigma[:, num_points:])


BLUR_MATRIX_RATIO = 16  # band matrices when taps * this >= the image side (measured crossover, 1 thread)


def blur(images: Tensor, sigma: float) -> Tensor:
    """Separable 'same'-size blur with EG3D's base-2 Gaussian taps (zero padding); identity when sigma is 0.

    Two evaluations of the same function: the FIR filter of :func:`core.ops.upfirdn2d` (one pass over the image per
    tap and axis), or, for filters long relative to the image, a product with a band matrix per axis
    (:func:`blur_matrix`): at sigma 10 (61 taps, the start of every run's blur fade) on 64 px images forward and
    backward take 0.8 ms instead of 17 ms, on 512 px 0.6 s instead of 1.6 s; with 3 taps the FIR is faster.
    # [B, C, H, W]"""
    if sigma <= 0:
        return images
    f = blur_kernel(sigma).to(images.device)
    f = f / f.sum()
    h, w = images.shape[-2:]
    if f.numel() * BLUR_MATRIX_RATIO < max(h, w):
        r = (f.numel() - 1) // 2
        return ops.upfirdn2d(images, f, padding=(r, r, r, r))
    f = f.to(images.dtype)
    return blur_matrix(f, h).t() @ images @ blur_matrix(f, w)


def blur_matrix(taps: Tensor, n: int) -> Tensor:
    """[n, n] band matrix M with M[i, j] = taps[i - j + r] (zero outside the band): x @ M filters the rows of x
    with the (symmetric) taps and zero padding, i.e. 'same'-size convolution along the last axis."""
    r = (taps.numel() - 1) // 2
    i = torch.arange(n, device=taps.device)
    d = i[:, None] - i[None, :]
    return torch.where(d.abs() <= r, taps[(d + r).clamp(0, 2 * r)], torch.zeros((), dtype=taps.dtype, device=taps.device))


def swap_conditioning(c: Tensor, swapping_prob: float, generator: torch.Generator | None = None) -> Tensor:
    """Generator pose conditioning: with probability ``swapping_prob`` a sample is conditioned on the previous
    sample's camera (roll by one in the batch), otherwise on its own (EG3D ``run_G``).  # [B, 25]"""
    swap = torch.rand(c.shape[0], 1, generator=generator).to(c.device) < swapping_prob
    return torch.where(swap, torch.roll(c, 1, 0), c)
