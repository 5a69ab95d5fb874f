"""Mimic3D generator: 3D-aware tri-plane backbone, detail tri-planes, direct 3D rendering (Chen et al., ICCV 2023).

:class:`Mimic3DGenerator` is EG3D's :class:`~core.triplane.TriPlaneGenerator` whose backbone is
:class:`core.aware3d.Aware3DSynthesisNetwork` (config ``aware3d_res`` non-empty). It is built for every such
config, i.e. for both training stages (``SeanChenxy/Mimic3D: configs/ffhq512_2d.yaml``, ``ffhq512_3d.yaml``):

* stage 1 ("2D" model, ``detail_blocks = 0``): the tri-planes are the coarse output of the 3D-aware chain; the
  only branch is ``sr2d`` (coarse planes rendered at the neural rendering resolution + 2D super-resolution);
* stage 2 ("3D" model, ``detail_blocks = 2``): the detail upsampler adds tri-planes of twice the resolution and
  the ``direct3d`` branch renders coarse + detail (features summed) at the output resolution with no 2D
  super-resolution (:meth:`Mimic3DGenerator.synthesis_direct3d`; ``has_direct3d`` is True).

API used by inference and training (B = batch, C = channels per plane, R = tri-plane resolution):

* ``planes(ws)`` -> coarse tri-planes [B, 3, C, R, R] (inherited; what ``sr2d`` renders, Mimic3D coarse=1);
* ``triplanes(ws)`` -> ``[coarse, detail]`` (detail [B, 3, C, 2R, 2R]), or ``[coarse]`` without detail blocks;
* ``select_triplanes(planes, which)`` -> what ``which`` in {"coarse", "detail", "both"} renders
  (``SeanChenxy/Mimic3D: training/dual_triplane.py``);
* ``synthesis(ws, c, opts, planes=coarse)`` -> the ``sr2d`` outputs, unchanged from EG3D;
* ``synthesis_direct3d(ws, c, opts, planes=None)`` -> {'image' [B, 3, H, W], 'image_depth' [B, 1, H, W],
  'feature_image' [B, F, H, W], 'weight_total', 'planes'} at H = ``opts.resolution`` or ``img_resolution``,
  rendering ``opts.triplanes`` (default "both"), in ray chunks of ``opts.chunk`` (bounded memory at 512 px);
* ``synthesis_patch(ws, c, windows, opts, planes=None)`` -> the same keys for per-sample windows
  (:func:`core.rendering.sample_patch_windows`): the 3D-branch patch aligned pixel for pixel with
  :func:`core.rendering.crop_patches` of the super-resolved image (``SeanChenxy/Mimic3D:
  training/volumetric_rendering/ray_sampler.py``; the imitation
  target of ``training/loss.py``).

Tri-plane projection convention: the generator follows ``cfg.rendering.plane_convention``; Mimic3D files use
"mimic3d" ((x, y), (y, z), (z, x)), which is also the layout :func:`core.aware3d.aware3d` assumes.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from . import rendering
from .config import GeneratorConfig
from .triplane import RenderOptions, TriPlaneGenerator, _per_sample

TRIPLANE_CHOICES = ("coarse", "detail", "both")


class Mimic3DGenerator(TriPlaneGenerator):
    """EG3D generator with the 3D-aware backbone (+ detail tri-planes and the ``direct3d`` branch)."""

    def __init__(self, cfg: GeneratorConfig):
        if not cfg.aware3d_res:
            raise ValueError("a Mimic3D generator needs aware3d_res (the 3D-aware backbone resolutions)")
        super().__init__(cfg)
        self.has_direct3d = cfg.detail_blocks > 0   # the detail tri-planes exist (Mimic3D's 3D stage)

    # -- tri-planes -----------------------------------------------------------------------------------------
    def triplanes(self, ws: Tensor, noise_mode: str = "const", plain: bool = False) -> list[Tensor]:
        """ws -> [coarse [B, 3, C, R, R], detail [B, 3, C, 2R, 2R]] (only [coarse] without detail blocks)."""
        if not self.has_direct3d:
            return [self.planes(ws, noise_mode=noise_mode, plain=plain)]
        if _per_sample(ws, self.img_resolution):
            parts = [self.triplanes(ws[i:i + 1], noise_mode, plain) for i in range(ws.shape[0])]
            return [torch.cat([p[k] for p in parts]) for k in range(2)]
        return self.backbone.synthesis(ws, noise_mode=noise_mode, fused=plain, plain=plain, detail=True)

    @staticmethod
    def select_triplanes(planes: list[Tensor], which: str) -> Tensor | list[Tensor]:
        """The tri-planes to render: "coarse", "detail", or "both" (a list: sampled features are summed)."""
        if which not in TRIPLANE_CHOICES:
            raise ValueError(f"triplanes must be one of {TRIPLANE_CHOICES}, got {which!r}")
        if which != "coarse" and len(planes) < 2:
            raise ValueError(f"triplanes={which!r} needs detail tri-planes; this model has none")
        return {"coarse": planes[0], "detail": planes[-1], "both": list(planes[:2])}[which]

    # -- direct 3D rendering --------------------------------------------------------------------------------
    def synthesis_direct3d(self, ws: Tensor, c: Tensor, opts: RenderOptions = RenderOptions(),
                           planes: list[Tensor] | None = None,
                           generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The ``direct3d`` branch: tri-planes volume-rendered at the output resolution, no 2D super-resolution.

        ws [B, num_ws, w_dim], camera labels c [B, 25] -> {'image' [B, 3, H, W] (first 3 composited features),
        'image_depth' [B, 1, H, W], 'feature_image' [B, F, H, W], 'weight_total' [B, 1, H, W], 'planes'}.
        """
        if not self.has_direct3d:
            raise ValueError("this generator has no detail tri-planes (no direct3d branch)")
        if planes is None:
            planes = self.triplanes(ws, noise_mode=opts.noise_mode, plain=opts.plain)
        res = opts.resolution or self.img_resolution
        out = self.render_planes(self.select_triplanes(planes, opts.triplanes), c,
                                 dataclasses.replace(opts, resolution=res), generator=generator)
        return {"image": out["feature_image"][:, :3], "image_depth": out["image_depth"],
                "feature_image": out["feature_image"], "weight_total": out["weight_total"], "planes": planes}

    def synthesis_patch(self, ws: Tensor, c: Tensor, windows: rendering.PatchWindows,
                        opts: RenderOptions = RenderOptions(), planes: list[Tensor] | None = None,
                        generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The 3D branch rendered only in per-sample windows at full-image pixel density (``SeanChenxy/Mimic3D:
        training/volumetric_rendering/ray_sampler.py``).

        Returns the keys of :meth:`synthesis_direct3d` at windows.size px; 'image' [B, 3, p, p] is the patch
        that imitates ``crop_patches(sr_image.detach(), windows)``.
        """
        if planes is None:
            planes = self.triplanes(ws, noise_mode=opts.noise_mode, plain=opts.plain)
        out = self.render_planes(self.select_triplanes(planes, opts.triplanes), c, opts, generator=generator,
                                 windows=windows)
        return {"image": out["feature_image"][:, :3], "image_depth": out["image_depth"],
                "feature_image": out["feature_image"], "weight_total": out["weight_total"], "planes": planes}
