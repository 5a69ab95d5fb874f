"""3D-to-2D imitation (Chen et al. 2023, "Mimic3D", Sec. 3.2; ``SeanChenxy/Mimic3D: training/loss.py``): the 3D
branch's patch is pulled towards the
*detached* crop of the super-resolved image at the same pixel window, so gradients reach only the 3D branch.

Two distances, chosen by ``loss.imitation``:

* ``lpips``: LPIPS-VGG v0.1 (:mod:`core.metrics.lpips`), Mimic3D's choice. It needs the ImageNet VGG16 trunk file
  (``vgg16-397923af.pth`` in the torch hub cache or at ``loss.lpips_trunk``) and the ``lpips`` package's head
  file; a missing file is a :class:`core.metrics.lpips.LPIPSWeightsError` naming it, never a silent substitute.
* ``dpatch_features``: a weights-free perceptual distance with the LPIPS formula on the patch discriminator's own
  block activations, with uniform instead of learned per-channel weights (Zhang et al. 2018, Eq. 1 with w_l = 1):
  d(x, y) = sum_l mean_{h,w} || f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)| ||^2. D_patch is frozen during the generator
  phase, so the term trains only G; its features evolve with D_patch (a feature-matching flavour of imitation).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from core.config import ConfigError
from core.discriminator import DualDiscriminator

from .patch_gan import patch_features

IMITATION_KINDS = ("lpips", "dpatch_features")
_EPS = 1e-10

# (3D-branch patch [B, 3, r, r], detached 2D target [B, 3, r, r]) -> per-sample distance [B]
ImitationLoss = Callable[[Tensor, Tensor], Tensor]


def _unit(x: Tensor) -> Tensor:
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + _EPS)


def feature_distance(feats_x: list[Tensor], feats_y: list[Tensor]) -> Tensor:
    """LPIPS formula with unit weights over lists of activations [B, C_l, H_l, W_l].  # [B]"""
    total = feats_x[0].new_zeros(feats_x[0].shape[0])
    for a, b in zip(feats_x, feats_y):
        total = total + (_unit(a) - _unit(b)).square().sum(dim=1).mean(dim=(1, 2))
    return total


def dpatch_feature_loss(D_patch: DualDiscriminator) -> ImitationLoss:
    """Weights-free imitation distance on D_patch's block activations (see the module docstring)."""
    def loss(patch: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            feats_t = patch_features(D_patch, target.detach())
        return feature_distance(patch_features(D_patch, patch), feats_t)
    return loss


def lpips_loss(trunk_weights: str | None = None, device: torch.device | str = "cpu") -> ImitationLoss:
    """LPIPS-VGG v0.1 (Mimic3D's imitation loss); raises LPIPSWeightsError when a weights file is missing."""
    from core.metrics.lpips import LPIPS

    net = LPIPS("vgg", trunk_weights=trunk_weights).to(device)
    return lambda patch, target: net(patch, target.detach())


def make_imitation_loss(kind: str, D_patch: DualDiscriminator | None, trunk_weights: str | None = None,
                        device: torch.device | str = "cpu") -> ImitationLoss:
    """The configured imitation distance (``loss.imitation``)."""
    if kind == "lpips":
        return lpips_loss(trunk_weights, device)
    if kind == "dpatch_features":
        if D_patch is None:
            raise ConfigError("loss.imitation dpatch_features needs the patch discriminator (loss.patch_scale < 1)")
        return dpatch_feature_loss(D_patch)
    raise ConfigError(f"loss.imitation: {kind!r} (choose from {', '.join(IMITATION_KINDS)})")
