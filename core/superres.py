"""2D super-resolution modules of EG3D (Chan et al. 2022, Sec. 4.2 "Super resolution", Appendix B).

The low-resolution feature image (32 channels, the first three being the raw RGB) is resized to the module's
input resolution and passed through two (or three) StyleGAN2 synthesis blocks. Every layer is modulated by
the backbone's *last* w (``ws[:, -1]``), and noise is off by default.

Variants, by EG3D class name (all are one :class:`SuperResolution` with a different block plan):

| kind    | output | input | blocks (channels, resolution, upsampling)            |
|---------|--------|-------|------------------------------------------------------|
| 2X      | 128    | 64    | (128, 64, no-up), (64, 128, up)                       |
| 4X      | 256    | 128   | (128, 128, no-up), (64, 256, up)                      |
| DeepFP32| 256    | 128   | same as 4X, always fp32                               |
| 8X      | 512    | 128   | (128, 256, up), (64, 512, up)                         |
| 8XDC    | 512    | 128   | (256, 256, up), (128, 512, up)                        |
| 16XDC   | 1024   | 128   | (256, 256, up), (128, 512, up), (64, 1024, up)        |
| 2X-64   | 64     | 32    | (64, 32, no-up), (32, 64, up)  (Trident: small CPU models) |
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import SynthesisBlock


@dataclass(frozen=True)
class SRPlan:
    output_resolution: int
    input_resolution: int
    blocks: tuple[tuple[int, int, bool], ...]  # (out_channels, resolution, upsample)
    resize_only_if_smaller: bool = False      # EG3D's 4X resizes only inputs below 128
    always_fp32: bool = False


SR_PLANS: dict[str, SRPlan] = {
    "2X": SRPlan(128, 64, ((128, 64, False), (64, 128, True))),
    "4X": SRPlan(256, 128, ((128, 128, False), (64, 256, True)), resize_only_if_smaller=True),
    "DeepFP32": SRPlan(256, 128, ((128, 128, False), (64, 256, True)), resize_only_if_smaller=True, always_fp32=True),
    "8X": SRPlan(512, 128, ((128, 256, True), (64, 512, True))),
    "8XDC": SRPlan(512, 128, ((256, 256, True), (128, 512, True))),
    "16XDC": SRPlan(1024, 128, ((256, 256, True), (128, 512, True), (64, 1024, True))),
    "2X-64": SRPlan(64, 32, ((64, 32, False), (32, 64, True))),
}

# EG3D class names -> Trident kind
EG3D_SR_CLASSES = {
    "SuperresolutionHybrid2X": "2X",
    "SuperresolutionHybrid4X": "4X",
    "SuperresolutionHybridDeepfp32": "DeepFP32",
    "SuperresolutionHybrid8X": "8X",
    "SuperresolutionHybrid8XDC": "8XDC",
    "SuperresolutionHybrid16XDC": "16XDC",
}


def sr_kind_for_resolution(img_resolution: int) -> str:
    """EG3D's default choice of super-resolution module by output resolution."""
    table = {64: "2X-64", 128: "2X", 256: "4X", 512: "8XDC", 1024: "16XDC"}
    if img_resolution not in table:
        raise ValueError(f"no default super-resolution module for {img_resolution} px (choose one of {sorted(table)})")
    return table[img_resolution]


class SuperResolution(nn.Module):
    """Feature image [B, 32, r, r] + raw RGB [B, 3, r, r] + ws -> image [B, 3, R, R]."""

    def __init__(self, kind: str, in_channels: int = 32, w_dim: int = 512, use_fp16: bool = False,
                 antialias: bool = True, img_channels: int = 3):
        super().__init__()
        if kind not in SR_PLANS:
            raise ValueError(f"unknown super-resolution kind {kind!r} (one of {sorted(SR_PLANS)})")
        self.kind, self.plan, self.antialias = kind, SR_PLANS[kind], antialias
        use_fp16 = use_fp16 and not self.plan.always_fp32
        self.input_resolution = self.plan.input_resolution
        ch = in_channels
        for i, (out_ch, res, up) in enumerate(self.plan.blocks):
            is_last = i == len(self.plan.blocks) - 1
            block = SynthesisBlock(ch, out_ch, w_dim, res, img_channels, is_last=is_last, use_fp16=use_fp16,
                                   conv_clamp=256 if use_fp16 else None, upsample=up)
            setattr(self, f"block{i}", block)
            ch = out_ch
        self.num_blocks = len(self.plan.blocks)

    def resize_input(self, t: Tensor) -> Tensor:
        size = t.shape[-1]
        r = self.input_resolution
        needs = size < r if self.plan.resize_only_if_smaller else size != r
        if not needs:
            return t
        # the antialiased bilinear resize has no bfloat16 kernel on the CPU: it always runs in float32 (the
        # feature image is float32 anyway: it comes out of the compositing)
        return F.interpolate(t.float(), size=(r, r), mode="bilinear", align_corners=False, antialias=self.antialias)

    def forward(self, rgb: Tensor, x: Tensor, ws: Tensor, noise_mode: str = "none", fused: bool = False,
                plain: bool = False) -> Tensor:
        return self.forward_with_alias(rgb, x, ws, noise_mode, fused, plain)[0]

    def forward_with_alias(self, rgb: Tensor, x: Tensor, ws: Tensor, noise_mode: str = "none", fused: bool = False,
                           plain: bool = False) -> tuple[Tensor, Tensor]:
        """Return (image, what EG3D reports as ``image_raw``).

        EG3D adds each block's tRGB output into the skip image *in place*. When the first block does not upsample
        and the input needs no resize, that skip image is a view of the rendered feature image, so the reference
        returns ``image_raw = raw RGB + block0 tRGB`` (2X always, 4X at 128 px rendering). Trident computes
        out of place and exposes the aliased value separately so that imported models can reproduce it.
        """
        ws = ws[:, -1:, :].repeat(1, 3, 1)  # [B, 3, w_dim]: the last w drives every SR layer
        raw = rgb
        x_in, rgb_in = self.resize_input(x), self.resize_input(rgb)
        aliased = rgb_in is rgb and not self.plan.blocks[0][2]
        x, rgb = x_in, rgb_in
        for i in range(self.num_blocks):
            x, rgb_next = getattr(self, f"block{i}")(x, rgb, ws, noise_mode=noise_mode, fused=fused, plain=plain)
            if i == 0 and aliased:
                raw = rgb_next
            rgb = rgb_next
        return rgb, raw
