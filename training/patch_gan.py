"""Mimic3D's patch adversarial game (Chen et al. 2023, "Mimic3D", Sec. 3.3; ``SeanChenxy/Mimic3D: training/loss.py``).

The 3D branch renders small high-density patches: an ``r x r`` window (r = the neural rendering resolution) of the
``R x R`` pixel grid of the final image (R = r / patch_scale), at one random top/left per sample. An unconditional
StyleGAN2 ResNet discriminator (``D_patch``: no camera input, single 3-channel image) scores those patches against
``r x r`` crops of the real ``R x R`` images taken at *independent* random windows, so real and fake patches have
the same pixel density. Windows and crops are :func:`core.rendering.sample_patch_windows` / ``crop_patches``, the
same functions that place the 3D branch's patches. Notation: B batch, r patch side, R full image side.
"""
from __future__ import annotations

import torch
from torch import Tensor

from core import rendering
from core.config import DiscriminatorConfig
from core.discriminator import DualDiscriminator

from . import losses


def patch_discriminator_config(arch, patch_resolution: int) -> DiscriminatorConfig:
    """D_patch = Mimic3D's ``SingleDiscriminator(c_dim=0, img_resolution=r, img_channels=3)``.

    ``arch`` is a :class:`training.config.DiscriminatorArch` (channels, fp16 blocks, clamp, minibatch-std).
    """
    return arch.config(patch_resolution, c_dim=0, dual=False)


def real_patches(reals: Tensor, size: int, patch_scale: float, generator: torch.Generator | None = None) -> Tensor:
    """Random ``size x size`` crops of real images [B, 3, R, R], R = int(size / patch_scale), one independent
    window per sample (Mimic3D: independent of the fake patches' windows).  # [B, 3, r, r]"""
    windows = rendering.sample_patch_windows(reals.shape[0], size, patch_scale, generator, device=reals.device)
    return rendering.crop_patches(reals, windows)


def run_patch_D(D_patch: DualDiscriminator, patches: Tensor, blur_sigma: float = 0.0, augment=None,
                generator: torch.Generator | None = None) -> Tensor:
    """Logits of the unconditional patch discriminator, after the main blur and (ADA) the augment pipe.  # [B, 1]"""
    patches = losses.blur(patches, blur_sigma)
    if augment is not None and float(augment.p) > 0:
        patches = augment(patches, generator)
    return D_patch({"image": patches}, None)


def patch_features(D_patch: DualDiscriminator, patches: Tensor) -> list[Tensor]:
    """Activations after each ResNet block of D_patch (fp32), coarse last: [B, C_k, r / 2^k, r / 2^k] for k >= 1."""
    x, feats = None, []
    for res in D_patch.block_resolutions:
        x = getattr(D_patch, f"b{res}")(x, patches)
        feats.append(x.float())
    return feats


def patch_r1(D_patch: DualDiscriminator, patches: Tensor, blur_sigma: float = 0.0, augment=None,
             generator: torch.Generator | None = None) -> Tensor:
    """R1 penalty ||d sum D_patch(x) / d x||^2 on real patches (Mescheder et al. 2018).  # [B]"""
    x = patches.detach().requires_grad_(True)
    return losses.r1_penalty(run_patch_D(D_patch, x, blur_sigma, augment, generator), [x])
