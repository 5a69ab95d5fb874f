"""3D-aware tri-plane backbone of Mimic3D (Chen et al., ICCV 2023, Sec. 3.2 "3D-aware convolution";
``SeanChenxy/Mimic3D: training/networks_stylegan2.py``).

Tri-planes travel through these blocks *rolled out in the batch*: ``[3B, C, R, R]``, sample-major and
plane-minor (row ``3 b + k`` is plane ``k`` of sample ``b``). Plane storage, consistent with the Mimic3D
projection (x, y), (y, z), (z, x) whose first coordinate indexes the width:

* plane 0 = xy stored as ``[C, y, x]``;
* plane 1 = yz stored as ``[C, z, y]``;
* plane 2 = zx stored as ``[C, x, z]``.

Building blocks:

* :func:`aware3d` -- cross-plane axis pooling and broadcast: every plane is concatenated with the two other
  planes mean-pooled along the axis it does not share with them and broadcast along its own other axis
  (``[3B, C, R, R] -> [3B, 3C, R, R]``, blocks always in plane order 0, 1, 2).
* :class:`PlaneSynthesisLayer` / :class:`PlaneToRGBLayer` -- StyleGAN2 modulated layers whose convolution
  weights are shared by the three planes while the styles are per plane (the affine layer emits 3 x the
  conv's input channels). Mode ``"b"`` (3D-aware) applies :func:`aware3d` before the convolution, so the
  weight is ``[C_out, 3 C_in, k, k]``; mode ``"s"`` (plain per-plane) does not (``[C_out, C_in, k, k]``).
  The ToRGB style gain stays ``1 / sqrt(C_in)`` with the *un-expanded* C_in in both modes.
* :class:`PlaneSynthesisBlock` -- conv0 (optionally 2x upsampling), conv1, ToRGB, all driven by one w; the
  block's output is its own ToRGB image (no skip accumulation inside the 3D branch).
* :class:`Aware3DBlock` (state-dict name ``b3d{R}``) -- the 3D-aware block fed by the main branch's skip
  image at R (plus the previous 3D block's output); at the last resolution it optionally carries the detail
  tri-plane upsampler ("3D super-resolution"): ``block2`` (per-plane, 2x up) and ``block3`` (per-plane, same
  resolution) turning the coarse tri-planes into tri-planes of twice the resolution.
* :class:`Aware3DSynthesisNetwork` -- EG3D's StyleGAN2 synthesis network (main blocks ``b{R}``) interleaved
  with the ``b3d{R}`` chain; returns tri-planes ``[B, 3, C, R, R]`` (coarse) and, when the detail blocks exist
  and are asked for, the detail tri-planes ``[B, 3, C, 2R, 2R]``.

State-dict names match the Mimic3D reference (``backbone.synthesis.b3d{R}.block.conv0.weight`` ...).
"""
from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from .layers import FullyConnectedLayer, SynthesisLayer, SynthesisNetwork, ToRGBLayer, block_dtype
from .ops import conv2d_resample

MODES = ("b", "s")  # "b": 3D-aware (cross-plane pooling before every conv); "s": plain per-plane


def aware3d(x: Tensor) -> Tensor:
    """Cross-plane axis pooling and broadcast (Mimic3D's 3D-aware convolution input).

    x: rolled-out tri-planes  # [3B, C, R, R]
    returns: per target plane, channel blocks [plane0-derived, plane1-derived, plane2-derived]  # [3B, 3C, R, R]

    For the xy plane [y, x]: yz averaged over z (a function of y) broadcast along x, and zx averaged over z
    (a function of x) broadcast along y; likewise for yz [z, y] and zx [x, z]. A plane's own features sit in
    block k for plane k.
    """
    n, c, h, w = x.shape
    if n % 3 or h != w:
        raise ValueError(f"aware3d needs rolled-out square tri-planes [3B, C, R, R], got {tuple(x.shape)}")
    p = x.reshape(n // 3, 3, c, h, w)
    xy, yz, zx = p[:, 0], p[:, 1], p[:, 2]  # [B, C, y, x], [B, C, z, y], [B, C, x, z]
    yz_y = yz.mean(dim=2)  # over z -> [B, C, y]
    yz_z = yz.mean(dim=3)  # over y -> [B, C, z]
    zx_x = zx.mean(dim=3)  # over z -> [B, C, x]
    zx_z = zx.mean(dim=2)  # over x -> [B, C, z]
    xy_y = xy.mean(dim=3)  # over x -> [B, C, y]
    xy_x = xy.mean(dim=2)  # over y -> [B, C, x]
    size = (n // 3, c, h, w)
    t_xy = torch.cat([xy, yz_y[..., :, None].expand(size), zx_x[..., None, :].expand(size)], 1)  # [B, 3C, y, x]
    t_yz = torch.cat([xy_y[..., None, :].expand(size), yz, zx_z[..., :, None].expand(size)], 1)  # [B, 3C, z, y]
    t_zx = torch.cat([xy_x[..., :, None].expand(size), yz_z[..., None, :].expand(size), zx], 1)  # [B, 3C, x, z]
    return torch.stack([t_xy, t_yz, t_zx], 1).reshape(n, 3 * c, h, w)


def _reduced_broadcast_conv(v: Tensor, weight: Tensor, axis: int, up: int, padding: int, f1d: Tensor | None,
                            flip_weight: bool) -> tuple[Tensor, int]:
    """conv2d_resample of per-plane vectors broadcast along one spatial axis, run on short planes.

    v: one vector per (sample, target plane), already modulated  # [B, 3, C, R]
    weight: per-target-plane weights stacked for a 3-group convolution  # [3 O, C, k, k]
    axis: 3 -> v varies along the height and is constant along the width; 2 -> the transpose.
    returns (y, m): the layer's output on planes ``2 m + 1`` pixels long along ``axis`` (at most R), where m is
    the receptive-field margin in input pixels  # [3B, O, R * up, (2m + 1) * up] for axis 3

    For an input constant along ``axis``, a zero-padded (transposed) convolution + FIR filter whose receptive
    field reaches at most m input pixels gives outputs that depend on the border only in the first and last
    ``m * up`` positions; all others equal the interior value of the same phase (``up`` phases), which the
    short planes' middle pixel holds (:func:`_add_broadcast` puts it back to full length).
    """
    b, _, c, r = v.shape
    margin = weight.shape[-1] // 2 + (len(f1d) // 2 if (up > 1 and f1d is not None) else 0)
    reduced = min(r, 2 * margin + 1)
    shape = (b, 3, c, r, reduced) if axis == 3 else (b, 3, c, reduced, r)
    xb = (v[..., :, None] if axis == 3 else v[..., None, :]).expand(shape).reshape(b, 3 * c, *shape[-2:])
    y = conv2d_resample(xb, weight, f1d, up=up, padding=padding, groups=3, flip_weight=flip_weight)
    return y.reshape(3 * b, -1, y.shape[-2], y.shape[-1]), margin  # [3B, O, ., .]


def _stretch_add_(out: Tensor, part: Tensor, axis: int, up: int, margin: int) -> Tensor:
    """out += ``part`` stretched to out's length along ``axis``, in place (see :func:`_reduced_broadcast_conv`).

    part: the short-plane output, (2m + 1) * up long along ``axis`` (or already full length). The interior
    phase values are broadcast over the whole axis, the 2 m * up border positions take their own values; the
    result equals out + the stretched tensor element for element (same rounding).
    """
    size = out.shape[axis]
    if part.shape[axis] == size:
        return out.add_(part)
    lo = margin * up
    first = out.narrow(axis, 0, lo) + part.narrow(axis, 0, lo)
    last = out.narrow(axis, size - lo, lo) + part.narrow(axis, lo + up, lo)
    out.unflatten(axis, (size // up, up)).add_(part.narrow(axis, lo, up).unsqueeze(axis))
    out.narrow(axis, 0, lo).copy_(first)
    out.narrow(axis, size - lo, lo).copy_(last)
    return out


def _stretch_grad(grad: Tensor, axis: int, length: int, up: int, margin: int) -> Tensor:
    """Adjoint of the stretch in :func:`_stretch_add_`: grad summed back onto the ``length`` short positions."""
    size = grad.shape[axis]
    if length == size:
        return grad
    lo = margin * up
    mid = grad.narrow(axis, lo, size - 2 * lo).unflatten(axis, ((size - 2 * lo) // up, up)).sum(axis)
    return torch.cat([grad.narrow(axis, 0, lo), mid, grad.narrow(axis, size - lo, lo)], axis)


class _AddStretched(torch.autograd.Function):
    """y + stretch(part_h along the width) + stretch(part_w along the height), with a gather-free backward."""

    @staticmethod
    def forward(ctx, y: Tensor, part_h: Tensor, part_w: Tensor, up: int, margin: int) -> Tensor:
        ctx.meta = (part_h.shape[3], part_w.shape[2], up, margin)
        out = _stretch_add_(y.clone(), part_h, 3, up, margin)
        return _stretch_add_(out, part_w, 2, up, margin)  # [3B, O, H', W']

    @staticmethod
    def backward(ctx, grad: Tensor):
        len_h, len_w, up, margin = ctx.meta
        return (grad, _stretch_grad(grad, 3, len_h, up, margin), _stretch_grad(grad, 2, len_w, up, margin),
                None, None)


class _AxisMeans(torch.autograd.Function):
    """(mean over the height, mean over the width) of planes [..., H, W]; backward in one broadcast pass."""

    @staticmethod
    def forward(ctx, p: Tensor) -> tuple[Tensor, Tensor]:
        ctx.hw = p.shape[-2:]
        return p.mean(dim=-2), p.mean(dim=-1)  # [..., W], [..., H]

    @staticmethod
    def backward(ctx, g_h: Tensor | None, g_w: Tensor | None):
        h, w = ctx.hw
        if g_h is None:
            return (g_w / w).unsqueeze(-1).expand(*g_w.shape, w).contiguous()
        if g_w is None:
            return (g_h / h).unsqueeze(-2).expand(*g_h.shape[:-1], h, w).contiguous()
        return torch.add((g_h / h).unsqueeze(-2), (g_w / w).unsqueeze(-1))


def aware3d_modconv(x: Tensor, weight: Tensor, styles: Tensor, up: int = 1, padding: int = 0,
                    f1d: Tensor | None = None, flip_weight: bool = True) -> Tensor:
    """``conv2d_resample(aware3d(x) * styles, weight)`` without materialising the [3B, 3C, R, R] input.

    x: rolled-out tri-planes  # [3B, C, R, R]; weight: shared  # [O, 3C, k, k]; styles: per plane  # [3B, 3C]
    returns  # [3B, O, R * up, R * up]

    The convolution is linear in its input channel blocks, so it splits into (i) the plane's own block: a
    3-group convolution of the [B, 3C, R, R] planes (group k = plane k with weight block k), a third of the
    full convolution's work, and (ii)-(iii) the two pooled blocks, constant along one axis, convolved on
    planes a few pixels long along that axis (:func:`_reduced_broadcast_conv`). The pooled blocks of plane k
    are plane (k+1) mod 3 averaged over its height (block (k+1) mod 3, varying along k's height) and plane
    (k+2) mod 3 averaged over its width (block (k+2) mod 3, varying along k's width), see :func:`aware3d`.
    """
    n, c, h, w = x.shape
    if n % 3 or h != w:
        raise ValueError(f"aware3d needs rolled-out square tri-planes [3B, C, R, R], got {tuple(x.shape)}")
    b, o, kh, kw = n // 3, weight.shape[0], weight.shape[-2], weight.shape[-1]
    p = x.reshape(b, 3, c, h, w)
    s = styles.reshape(b, 3, 3, c)  # [B, target plane k, block j, C]
    k = torch.arange(3, device=x.device)
    wb = weight.reshape(o, 3, c, kh, kw).transpose(0, 1)  # [3 (block), O, C, k, k]
    own = (p * s[:, k, k, :, None, None]).reshape(b, 3 * c, h, w)  # [B, 3C, R, R]
    y = conv2d_resample(own, wb.reshape(3 * o, c, kh, kw), f1d, up=up, padding=padding, groups=3,
                        flip_weight=flip_weight).reshape(n, o, h * up, w * up)  # [3B, O, R', R']
    j_h, j_w = (k + 1) % 3, (k + 2) % 3
    mean_h, mean_w = _AxisMeans.apply(p)  # over each plane's height / width  # [B, 3, C, R] each
    v_h = mean_h[:, j_h] * s[:, k, j_h, :, None]  # [B, 3, C, R] (function of plane k's height)
    v_w = mean_w[:, j_w] * s[:, k, j_w, :, None]  # [B, 3, C, R] (function of plane k's width)
    part_h, m = _reduced_broadcast_conv(v_h, wb[j_h].reshape(3 * o, c, kh, kw), 3, up, padding, f1d, flip_weight)
    part_w, m = _reduced_broadcast_conv(v_w, wb[j_w].reshape(3 * o, c, kh, kw), 2, up, padding, f1d, flip_weight)
    return _AddStretched.apply(y, part_h, part_w, up, m)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"plane roll-out mode must be one of {MODES}, got {mode!r}")


class PlaneSynthesisLayer(SynthesisLayer):
    """Modulated 3x3 conv over rolled-out tri-planes: weights shared across planes, styles per plane.

    x [3B, C_in, H, W], w [B, w_dim] -> [3B, C_out, H*up, W*up]. Parameters: ``affine`` FC(w_dim -> 3 * I),
    ``weight`` [C_out, I, k, k] with I = 3 C_in (mode "b") or C_in (mode "s").
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, mode: str, up: int = 1,
                 conv_clamp: float | None = None):
        _check_mode(mode)
        conv_in = 3 * in_channels if mode == "b" else in_channels
        super().__init__(conv_in, out_channels, w_dim, resolution, up=up, conv_clamp=conv_clamp)
        self.mode, self.plane_channels = mode, in_channels
        self.affine = FullyConnectedLayer(w_dim, 3 * conv_in, bias_init=1)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", fused: bool = False, plain: bool = False,
                gain: float = 1.0) -> Tensor:
        styles = self.affine(w).reshape(x.shape[0], -1)  # [B, 3I] -> [3B, I] (plane-minor)
        if self.mode != "b":
            return self.forward_styles(x, styles, noise_mode, fused, plain, gain)
        if plain or fused:  # the literal form: the [3B, 3C, H, W] input, then the (fused) modulated conv
            return self.forward_styles(aware3d(x), styles, noise_mode, fused, plain, gain)
        modconv = functools.partial(aware3d_modconv, up=self.up, padding=self.padding, f1d=self.f1d,
                                    flip_weight=(self.up == 1))
        return self.forward_styles(x, styles, noise_mode, fused, plain, gain, modconv=modconv)


class PlaneToRGBLayer(ToRGBLayer):
    """Modulated 1x1 conv (no demodulation) over rolled-out tri-planes, per-plane styles.

    The style gain is 1/sqrt(C_in) with the plane's own channel count even in mode "b" (``SeanChenxy/Mimic3D:
    training/networks_stylegan2.py``).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, mode: str, conv_clamp: float | None = None):
        _check_mode(mode)
        conv_in = 3 * in_channels if mode == "b" else in_channels
        super().__init__(conv_in, out_channels, w_dim, conv_clamp=conv_clamp)
        self.mode, self.plane_channels = mode, in_channels
        self.affine = FullyConnectedLayer(w_dim, 3 * conv_in, bias_init=1)
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor, fused: bool = False, plain: bool = False) -> Tensor:
        styles = self.affine(w).reshape(x.shape[0], -1) * self.weight_gain  # [3B, I]
        if self.mode != "b":
            return self.forward_styles(x, styles, fused, plain)
        if plain or fused:
            return self.forward_styles(aware3d(x), styles, fused, plain)
        return self.forward_styles(x, styles, fused, plain, modconv=aware3d_modconv)


class PlaneSynthesisBlock(nn.Module):
    """conv0 (2x up when ``up == 2``), conv1, ToRGB over rolled-out tri-planes, one w for all three layers.

    forward: x [3B, C, R/up, R/up], w [B, w_dim] -> (features [3B, C, R, R], image [3B, img_channels, R, R]).
    """

    def __init__(self, channels: int, img_channels: int, w_dim: int, resolution: int, mode: str, up: int = 2,
                 conv_clamp: float | None = None):
        super().__init__()
        if up not in (1, 2):
            raise ValueError(f"up must be 1 or 2, got {up}")
        self.resolution, self.mode, self.up = resolution, mode, up
        self.compute_dtype: torch.dtype | None = None  # inference precision (core.layers.set_compute_dtype)
        self.conv0 = PlaneSynthesisLayer(channels, channels, w_dim, resolution, mode, up=up, conv_clamp=conv_clamp)
        self.conv1 = PlaneSynthesisLayer(channels, channels, w_dim, resolution, mode, conv_clamp=conv_clamp)
        self.torgb = PlaneToRGBLayer(channels, img_channels, w_dim, mode, conv_clamp=conv_clamp)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", fused: bool = False,
                plain: bool = False) -> tuple[Tensor, Tensor]:
        x = self.conv0(x.to(block_dtype(self)), w, noise_mode=noise_mode, fused=fused, plain=plain)
        x = self.conv1(x, w, noise_mode=noise_mode, fused=fused, plain=plain)
        return x, self.torgb(x, w, fused=fused, plain=plain).float()


class Aware3DBlock(nn.Module):
    """``b3d{R}``: 3D-aware block at backbone resolution R (+ the detail upsampler at the last resolution).

    ``block`` (mode "b") maps the main branch's skip image at R (viewed as rolled-out planes), plus the previous
    3D block's output, to planes at 2R (R < last) or R (R = last). With ``detail_blocks`` = n > 0 (last block
    only) ``block2`` (2x up) and ``block3`` ... ``block{n+1}`` (same resolution), all per-plane (mode "s"), turn
    the coarse planes into the detail planes (Mimic3D's 3D super-resolution, ``SeanChenxy/Mimic3D:
    training/networks_stylegan2.py``).
    """

    def __init__(self, resolution: int, channels: int, w_dim: int, is_last: bool, detail_blocks: int = 0,
                 conv_clamp: float | None = None):
        super().__init__()
        if detail_blocks and not is_last:
            raise ValueError("detail blocks belong to the last 3D-aware block")
        self.resolution, self.is_last, self.detail_blocks = resolution, is_last, detail_blocks
        out_res = resolution if is_last else 2 * resolution
        self.block = PlaneSynthesisBlock(channels, channels, w_dim, out_res, "b", up=1 if is_last else 2,
                                         conv_clamp=conv_clamp)
        for i in range(detail_blocks):
            setattr(self, f"block{i + 2}", PlaneSynthesisBlock(channels, channels, w_dim, 2 * out_res, "s",
                                                               up=2 if i == 0 else 1, conv_clamp=conv_clamp))

    def forward(self, planes: Tensor, w: Tensor, noise_mode: str = "random", fused: bool = False,
                plain: bool = False) -> Tensor:
        """planes [3B, C, R, R] (skip image + previous 3D output), w [B, w_dim] -> [3B, C, R', R']."""
        return self.block(planes, w, noise_mode=noise_mode, fused=fused, plain=plain)[1]

    def detail(self, coarse: Tensor, w: Tensor, noise_mode: str = "random", fused: bool = False,
               plain: bool = False) -> Tensor:
        """Detail tri-planes from the coarse ones: [3B, C, R, R] -> [3B, C, 2R, 2R] (each block's ToRGB image)."""
        x = coarse
        for i in range(self.detail_blocks):
            x = getattr(self, f"block{i + 2}")(x, w, noise_mode=noise_mode, fused=fused, plain=plain)[1]
        return x


class Aware3DSynthesisNetwork(SynthesisNetwork):
    """StyleGAN2 synthesis (main blocks ``b{R}``) + the ``b3d{R}`` chain (``SeanChenxy/Mimic3D:
    training/networks_stylegan2.py``).

    Chain: f = b3d_{R0}(img_{R0}); f = b3d_R(img_R + f) for the following R; the last block's output is the
    coarse tri-plane. img_R is the main branch's accumulated skip image at R viewed as [3B, C, R, R]; each
    b3d block uses the w of the main block's ToRGB at R. ``forward`` returns the coarse tri-planes
    [B, 3, C, R, R] or, with ``detail=True``, ``[coarse, detail]``.

    ``gain`` (``generator.aware3d_gain``) scales both tri-plane outputs (1 = the reference). The chain ends in an
    un-demodulated ToRGB image, and at the small synthetic presets its tri-planes start about 60x larger (RMS
    about 94) than an EG3D backbone's (about 1.6), which saturates the decoder at initialisation.
    """

    def __init__(self, w_dim: int, img_resolution: int, plane_channels: int, aware3d_res: tuple[int, ...],
                 detail_blocks: int = 0, channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, const_batch_dim: bool = False, gain: float = 1.0):
        super().__init__(w_dim, img_resolution, 3 * plane_channels, channel_base=channel_base,
                         channel_max=channel_max, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
                         const_batch_dim=const_batch_dim)
        self.plane_channels = plane_channels
        self.aware3d_res = tuple(aware3d_res)
        self.detail_blocks = detail_blocks
        self.gain = gain
        check_aware3d_res(self.aware3d_res, img_resolution)
        # Register b{R}, b3d{R} in the reference's interleaved order (state-dict order only).
        mains = {res: self._modules.pop(f"b{res}") for res in self.block_resolutions}
        for res in self.block_resolutions:
            setattr(self, f"b{res}", mains[res])
            if res in self.aware3d_res:
                last = res == self.aware3d_res[-1]
                setattr(self, f"b3d{res}", Aware3DBlock(res, plane_channels, w_dim, is_last=last,
                                                        detail_blocks=detail_blocks if last else 0))

    @property
    def has_detail(self) -> bool:
        return self.detail_blocks > 0

    def forward(self, ws: Tensor, noise_mode: str = "random", fused: bool = False, plain: bool = False,
                detail: bool = False) -> Tensor | list[Tensor]:
        if detail and not self.has_detail:
            raise ValueError("this backbone has no detail tri-plane blocks")
        x = img = f = None
        c = self.plane_channels
        for res, cur_ws in zip(self.block_resolutions, self.block_ws(ws)):
            x, img = getattr(self, f"b{res}")(x, img, cur_ws, noise_mode=noise_mode, fused=fused, plain=plain)
            if res not in self.aware3d_res:
                continue
            b3d: Aware3DBlock = getattr(self, f"b3d{res}")
            w = cur_ws[:, -1]  # the main ToRGB's w at this resolution  # [B, w_dim]
            planes = img.float().reshape(-1, c, res, res)  # [3B, C, R, R]
            f = b3d(planes if f is None else planes + f, w, noise_mode=noise_mode, fused=fused, plain=plain)
            if b3d.is_last:
                b = ws.shape[0]
                coarse = f.reshape(b, 3, c, f.shape[-2], f.shape[-1])
                if not detail:
                    return coarse * self.gain if self.gain != 1 else coarse
                d = b3d.detail(f, w, noise_mode=noise_mode, fused=fused, plain=plain)
                d = d.reshape(b, 3, c, d.shape[-2], d.shape[-1])
                return [coarse * self.gain, d * self.gain] if self.gain != 1 else [coarse, d]
        raise AssertionError("unreachable: the last 3D-aware block returns")


def check_aware3d_res(aware3d_res: tuple[int, ...], triplane_resolution: int) -> None:
    """The 3D-aware blocks form an unbroken doubling chain of powers of two >= 4 ending at the tri-plane size."""
    if not aware3d_res:
        raise ValueError("aware3d_res is empty")
    if aware3d_res[-1] != triplane_resolution:
        raise ValueError(f"aware3d_res must end at the tri-plane resolution {triplane_resolution}, "
                         f"got {list(aware3d_res)}")
    for a, b in zip(aware3d_res, aware3d_res[1:]):
        if b != 2 * a:
            raise ValueError(f"aware3d_res must double from one entry to the next, got {list(aware3d_res)}")
    if aware3d_res[0] < 4 or aware3d_res[0] & (aware3d_res[0] - 1):
        raise ValueError(f"aware3d_res entries must be powers of two >= 4, got {list(aware3d_res)}")
