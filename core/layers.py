"""StyleGAN2 layers with equalised learning rate (Karras et al. 2020, Sec. 2.2 and Appendix B).

Parameter and buffer names follow the StyleGAN2/EG3D state-dict layout (``weight``, ``bias``, ``affine``,
``noise_const``, ``noise_strength``, ``const``, ``torgb`` ...) so that network-snapshot tensors map one to one.
Stored weights are unscaled; the runtime gains (lr_mul / sqrt(fan_in) etc.) are applied in ``forward``.

Mixed precision: blocks flagged ``use_fp16`` (where the reference trains in fp16) compute in
``self.half_dtype`` when it is set (see :func:`set_half_dtype`); everything else stays fp32. For inference,
``compute_dtype`` (see :func:`set_compute_dtype`, ``core.precision``) runs *every* block in that type.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import ops

NOISE_MODES = ("const", "random", "none")


def set_half_dtype(module: nn.Module, dtype: torch.dtype | None) -> None:
    """Run the fp16-flagged blocks of ``module`` in ``dtype`` (torch.float16 / torch.bfloat16), or fp32 if None."""
    for m in module.modules():
        if hasattr(m, "half_dtype"):
            m.half_dtype = dtype


def set_compute_dtype(module: nn.Module, dtype: torch.dtype | None) -> None:
    """Run every block of ``module`` that has a ``compute_dtype`` (synthesis blocks, the tri-plane decoder) in
    ``dtype`` (inference precision, ``core.precision``), or as built (None: fp32 / the half-precision flags)."""
    for m in module.modules():
        if hasattr(m, "compute_dtype"):
            m.compute_dtype = dtype


def block_dtype(block: nn.Module) -> torch.dtype:
    """The type a block computes in: its ``compute_dtype`` if set, else its half type if it is fp16-flagged,
    else float32."""
    if getattr(block, "compute_dtype", None) is not None:
        return block.compute_dtype
    if getattr(block, "use_fp16", False) and getattr(block, "half_dtype", None) is not None:
        return block.half_dtype
    return torch.float32


class FullyConnectedLayer(nn.Module):
    """Dense layer: y = act(x W^T * lr_mul / sqrt(in) + b * lr_mul)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:  # [N, in] -> [N, out]
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ops.bias_act(x.matmul(w.t()), b, act=self.activation)


class MappingNetwork(nn.Module):
    """z (+ embedded camera label c) -> w, broadcast to ``num_ws`` layers, with truncation (StyleGAN Sec. 2)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if c_dim > 0 else 0
        features = [z_dim + embed_features] + [w_dim] * num_layers
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu",
                                                          lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: Tensor | None, c: Tensor | None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> Tensor:
        x = y = None
        if self.z_dim > 0:
            x = ops.normalize_2nd_moment(z.to(torch.float32))  # [B, z_dim]
        if self.c_dim > 0:
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))  # [B, w_dim]
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [B, num_ws, w_dim]
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x = x.clone()
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution + noise + bias + leaky ReLU (StyleGAN2 Fig. 2c)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu", conv_clamp: float | None = None,
                 resample_taps: tuple[int, ...] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.up, self.use_noise, self.activation, self.conv_clamp = up, use_noise, activation, conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = ops.LRELU_GAIN if activation == "lrelu" else 1.0
        self.f1d = ops.setup_filter_1d(resample_taps)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", fused: bool = False, plain: bool = False,
                gain: float = 1.0) -> Tensor:  # [B, I, H, W] -> [B, O, H*up, W*up]
        return self.forward_styles(x, self.affine(w), noise_mode, fused, plain, gain)

    def forward_styles(self, x: Tensor, styles: Tensor, noise_mode: str = "random", fused: bool = False,
                       plain: bool = False, gain: float = 1.0, modconv: ops.ModConv | None = None) -> Tensor:
        """The layer for given input-channel styles [B, I] (subclasses derive styles differently; ``modconv``:
        a structure-aware evaluation of the modulated convolution, see :func:`ops.modulated_conv2d`)."""
        if not plain and not torch.is_grad_enabled() and self.activation == "lrelu":
            return self._forward_inference(x, styles, noise_mode, gain, modconv)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        if not plain and not fused and self.activation == "lrelu" and x.dtype == torch.float32:
            clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
            return ops.modulated_conv2d_lrelu(x, self.weight, styles, self.bias, noise, self.act_gain * gain, clamp,
                                              up=self.up, padding=self.padding, f1d=self.f1d,
                                              flip_weight=(self.up == 1), modconv=modconv)
        x = ops.modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding, f1d=self.f1d,
                                 flip_weight=(self.up == 1), fused=fused, plain=plain, modconv=modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def _forward_inference(self, x: Tensor, styles: Tensor, noise_mode: str, gain: float,
                           modconv: ops.ModConv | None = None) -> Tensor:
        """Same function without autograd: gain and bias folded into the conv, noise and lrelu applied in place
        (lrelu(a) * g = lrelu(a * g) for g > 0)."""
        g = self.act_gain * gain
        y = ops.modulated_conv2d_inference(x, self.weight, styles, self.bias, g, up=self.up, padding=self.padding,
                                           f1d=self.f1d, flip_weight=(self.up == 1), modconv=modconv)
        if self.use_noise and noise_mode != "none" and float(self.noise_strength) != 0.0:
            if noise_mode == "random":
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            else:
                noise = self.noise_const
            y.add_(noise.to(y.dtype), alpha=float(self.noise_strength) * g)
        F.leaky_relu_(y, ops.LRELU_SLOPE)
        if self.conv_clamp is not None:
            y.clamp_(-self.conv_clamp * gain, self.conv_clamp * gain)
        return y


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution without demodulation (StyleGAN2 'tRGB')."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.conv_clamp = in_channels, out_channels, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: Tensor, w: Tensor, fused: bool = False, plain: bool = False) -> Tensor:
        return self.forward_styles(x, self.affine(w) * self.weight_gain, fused, plain)

    def forward_styles(self, x: Tensor, styles: Tensor, fused: bool = False, plain: bool = False,
                       modconv: ops.ModConv | None = None) -> Tensor:
        """The layer for given (already gain-scaled) input-channel styles [B, I] (``modconv``: see SynthesisLayer)."""
        if not plain and not torch.is_grad_enabled():
            y = ops.modulated_conv2d_inference(x, self.weight, styles, self.bias, 1.0, demodulate=False,
                                               modconv=modconv)
            return y.clamp_(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else y
        x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused, plain=plain, modconv=modconv)
        return ops.bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' synthesis network: [const | conv0 (up 2)], conv1, tRGB, skip upsampling.

    ``upsample=False`` gives EG3D's ``SynthesisBlockNoUp`` (no upsampling of x nor of the skip image), used by
    the super-resolution modules.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, use_fp16: bool = False, conv_clamp: float | None = None, upsample: bool = True,
                 const_batch_dim: bool = False, resample_taps: tuple[int, ...] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.is_last, self.use_fp16, self.upsample = is_last, use_fp16, upsample
        self.half_dtype: torch.dtype | None = None
        self.compute_dtype: torch.dtype | None = None
        self.f1d = ops.setup_filter_1d(resample_taps)
        self.num_conv = 0
        if in_channels == 0:
            shape = [out_channels, resolution, resolution]
            self.const = nn.Parameter(torch.randn([1] + shape if const_batch_dim else shape))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2 if upsample else 1,
                                        conv_clamp=conv_clamp, resample_taps=resample_taps)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp,
                                    resample_taps=resample_taps)
        self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_torgb = 1

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str = "random",
                fused: bool = False, plain: bool = False) -> tuple[Tensor, Tensor]:
        """x: features [B, I, R/2, R/2] (None for the first block); img: skip image [B, C, R/2, R/2]; ws [B, k, w_dim]."""
        w_iter: Iterator[Tensor] = iter(ws.unbind(dim=1))
        dtype = block_dtype(self)
        if self.in_channels == 0:
            x = self.const.to(dtype).reshape(1, self.out_channels, self.resolution, self.resolution)
            x = x.repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused=fused, plain=plain)
        else:
            x = x.to(dtype)
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused=fused, plain=plain)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused=fused, plain=plain)
        if img is not None and self.upsample:
            img = ops.upsample2d(img, self.f1d, plain=plain)
        y = self.torgb(x, next(w_iter), fused=fused, plain=plain).to(torch.float32)
        img = img + y if img is not None else y
        return x, img


def block_channels(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature channels at a resolution: min(channel_base / res, channel_max)."""
    return min(channel_base // resolution, channel_max)


class SynthesisNetwork(nn.Module):
    """StyleGAN2 synthesis network, 'skip' architecture, from a learned 4x4 constant to ``img_resolution``."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, conv_clamp: float | None = None,
                 const_batch_dim: bool = False):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(np.log2(img_resolution))
        if img_resolution != 2 ** log2 or img_resolution < 4:
            raise ValueError(f"synthesis resolution must be a power of two >= 4, got {img_resolution}")
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = block_channels(res // 2, channel_base, channel_max) if res > 4 else 0
            out_ch = block_channels(res, channel_base, channel_max)
            block = SynthesisBlock(in_ch, out_ch, w_dim, res, img_channels, is_last=(res == img_resolution),
                                   use_fp16=(res >= fp16_resolution), conv_clamp=conv_clamp,
                                   const_batch_dim=const_batch_dim)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last block's tRGB

    def block_ws(self, ws: Tensor) -> list[Tensor]:
        """Split ws [B, num_ws, w_dim] into the overlapping per-block slices (conv ws + the tRGB w)."""
        out, idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            out.append(ws.narrow(1, idx, block.num_conv + block.num_torgb))
            idx += block.num_conv
        return out

    def forward(self, ws: Tensor, noise_mode: str = "random", fused: bool = False, plain: bool = False) -> Tensor:
        x = img = None
        for res, cur_ws in zip(self.block_resolutions, self.block_ws(ws)):
            x, img = getattr(self, f"b{res}")(x, img, cur_ws, noise_mode=noise_mode, fused=fused, plain=plain)
        return img  # [B, img_channels, R, R]


class Conv2dLayer(nn.Module):
    """Equalised-lr convolution with optional FIR down/upsampling (discriminator layers)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, conv_clamp: float | None = None,
                 resample_taps: tuple[int, ...] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channels, self.out_channels, self.activation = in_channels, out_channels, activation
        self.up, self.down, self.conv_clamp = up, down, conv_clamp
        self.f1d = ops.setup_filter_1d(resample_taps)
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = ops.LRELU_GAIN if activation == "lrelu" else 1.0
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: Tensor, gain: float = 1.0, plain: bool = False) -> Tensor:
        w = self.weight * self.weight_gain
        x = ops.conv2d_resample(x, w.to(x.dtype), self.f1d, up=self.up, down=self.down, padding=self.padding,
                                flip_weight=(self.up == 1), plain=plain)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        b = self.bias.to(x.dtype) if self.bias is not None else None
        return ops.bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)
