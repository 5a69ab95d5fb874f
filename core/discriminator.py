"""EG3D dual discriminator (Chan et al. 2022, Sec. 4.3 "Dual discrimination"; StyleGAN2 ResNet D, Appendix B).

The super-resolved image and the raw neural rendering (bilinearly resized, antialiased) are concatenated into
6 channels; the camera label conditions the logit by projection onto a mapped embedding (cmap).
With ``dual=False`` it is a plain single-image discriminator (Mimic3D's unconditional patch D).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import DiscriminatorConfig
from .layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork, block_channels, block_dtype


class DiscriminatorBlock(nn.Module):
    """fromRGB (first block only), conv0, conv1 (down 2) and a 1x1 down-sampling skip, merged with gain sqrt(1/2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 use_fp16: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.use_fp16 = in_channels, use_fp16
        self.half_dtype: torch.dtype | None = None
        self.compute_dtype: torch.dtype | None = None  # bf16 training (core.layers.set_compute_dtype)
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor | None, img: Tensor, plain: bool = False) -> Tensor:
        dtype = block_dtype(self)
        if self.in_channels == 0:
            x = self.fromrgb(img.to(dtype), plain=plain)
        else:
            x = x.to(dtype)
        y = self.skip(x, gain=math.sqrt(0.5), plain=plain)
        x = self.conv0(x, plain=plain)
        x = self.conv1(x, gain=math.sqrt(0.5), plain=plain)
        return y + x


class MinibatchStdLayer(nn.Module):
    """Append the across-group standard deviation of features as extra channels (Karras et al. 2018, Sec. 3)."""

    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            raise ValueError(f"minibatch-std: batch {n} is not a multiple of the group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, n, F, c, H, W]
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, mbstd_group_size: int,
                 mbstd_num_channels: int, conv_clamp: float | None):
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Tensor, cmap: Tensor | None, plain: bool = False) -> Tensor:
        x = x.to(torch.float32)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x, plain=plain)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x  # [B, 1]


class DualDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        self.c_dim, self.img_resolution = cfg.c_dim, cfg.img_resolution
        log2 = int(np.log2(cfg.img_resolution))
        if cfg.img_resolution != 2 ** log2 or cfg.img_resolution < 8:
            raise ValueError(f"discriminator resolution must be a power of two >= 8, got {cfg.img_resolution}")
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        ch = {r: block_channels(r, cfg.channel_base, cfg.channel_max) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)
        cmap_dim = ch[4] if cfg.cmap_dim is None else cfg.cmap_dim
        if cfg.c_dim == 0:
            cmap_dim = 0
        img_channels = cfg.img_channels * (2 if cfg.dual else 1)
        for res in self.block_resolutions:
            in_ch = ch[res] if res < cfg.img_resolution else 0
            setattr(self, f"b{res}", DiscriminatorBlock(in_ch, ch[res], ch[res // 2], img_channels,
                                                        use_fp16=res >= fp16_resolution, conv_clamp=cfg.conv_clamp))
        if cfg.c_dim > 0:
            self.mapping = MappingNetwork(0, cfg.c_dim, cmap_dim, num_ws=None, num_layers=cfg.mapping_layers,
                                          w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim, 4, cfg.mbstd_group_size, cfg.mbstd_num_channels,
                                        cfg.conv_clamp)

    def forward(self, img: dict[str, Tensor], c: Tensor | None, plain: bool = False) -> Tensor:
        """img {'image': [B, 3, R, R], 'image_raw': [B, 3, r, r]}, c [B, 25] -> logits [B, 1]."""
        x_img = img["image"]
        if self.cfg.dual:
            size = x_img.shape[-1]
            raw = F.interpolate(img["image_raw"], size=(size, size), mode="bilinear", align_corners=False,
                                antialias=True)
            x_img = torch.cat([x_img, raw], 1)
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, x_img, plain=plain)
        cmap = None
        if self.c_dim > 0:
            if self.cfg.disc_c_noise > 0:
                c = c + torch.randn_like(c) * c.std(0) * self.cfg.disc_c_noise
            cmap = self.mapping(None, c)
        return self.b4(x, cmap, plain=plain)
