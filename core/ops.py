"""StyleGAN2 low-level operators in pure PyTorch (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN", Sec. 2.2 weight demodulation; upfirdn resampling of StyleGAN2-ADA).

Every operator has two implementations that compute the same function:

* a *plain* path that follows the reference algorithm literally (zero insertion + 2D depthwise FIR
  convolution, grouped "fused" modulated convolution), kept as the ground truth for tests and for the
  benchmark's reference column;
* a *fast* path used by default: separable FIR filters evaluated with strided slices, and modulated
  convolutions evaluated by scaling activations before and after one shared-weight convolution
  (mathematically identical to the fused form, and much faster on CPU).

No custom CUDA/C++ extension is involved anywhere. Filters are 1D taps (all filters in these networks are
outer products of a 1D filter); the 2D filter is ``outer(f, f)``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LRELU_SLOPE = 0.2
ModConv = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x, weight, styles) -> conv2d_resample(x * styles, weight)
CHANNELS_LAST_MIN = 32             # channels-last pays off only from this many input channels ...
CHANNELS_LAST_MIN_ELEMS = 2 ** 22  # ... and from this activation size (C*H*W) for plain convolutions,
CHANNELS_LAST_MIN_ELEMS_UP = 2 ** 18  # or this one for transposed (up-sampling) ones (CPU measurements)


def use_channels_last(x: Tensor, up: int) -> bool:
    """Whether an inference conv runs channels-last. oneDNN's transposed convolution is ~2x faster channels-last;
    plain convolutions gain ~20% only on large activations and lose on small ones (format conversions)."""
    c = x.shape[1]
    elems = c * x.shape[2] * x.shape[3]
    return c >= CHANNELS_LAST_MIN and elems >= (CHANNELS_LAST_MIN_ELEMS_UP if up > 1 else CHANNELS_LAST_MIN_ELEMS)
LRELU_GAIN = math.sqrt(2.0)


def setup_filter_1d(taps: list[float] | tuple[float, ...] = (1, 3, 3, 1)) -> Tensor:
    """Normalised separable FIR filter: 1D taps whose outer product sums to 1.  # [T]"""
    f = torch.as_tensor(taps, dtype=torch.float32)
    return f / f.sum()


def filter_2d(f1d: Tensor) -> Tensor:
    """The 2D filter ``outer(f, f)`` that the reference implementation stores as ``resample_filter``."""
    return torch.outer(f1d, f1d)


# ----------------------------------------------------------------------------------------------------------
# bias + activation


def bias_act(x: Tensor, b: Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None) -> Tensor:
    """Add a per-channel bias (dim 1), apply 'linear' or 'lrelu' (slope 0.2), scale by gain, then clamp.

    The default gain is 1 for 'linear' and sqrt(2) for 'lrelu' (StyleGAN2-ADA ``bias_act``).
    """
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2)).to(x.dtype)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = LRELU_GAIN if gain is None else gain
    elif act != "linear":
        raise ValueError(f"unsupported activation {act!r}")
    if gain is not None and gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


# ----------------------------------------------------------------------------------------------------------
# upfirdn2d: upsample (zero insertion), pad/crop, FIR filter, downsample


def _pad_or_crop(x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """Pad (positive) or crop (negative) the last two dims. pad = (x0, x1, y0, y1)."""
    px0, px1, py0, py1 = pad
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    return x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]


def _zero_insert(x: Tensor, up: int) -> Tensor:
    """[B, C, H, W] -> [B, C, H*up, W*up] with the input at every up-th pixel, zeros elsewhere."""
    if up == 1:
        return x
    b, c, h, w = x.shape
    x = x.reshape(b, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
    return x.reshape(b, c, h * up, w * up)


def upfirdn2d_plain(x: Tensor, f1d: Tensor, up: int = 1, down: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                    gain: float = 1.0) -> Tensor:
    """Reference upfirdn2d: zero insertion, pad, 2D depthwise FIR convolution, decimation.  # [B, C, H', W']"""
    x = _zero_insert(x, up)
    x = _pad_or_crop(x, padding)
    f = filter_2d(f1d.to(x.device)) * gain
    f = f.flip([0, 1]).to(x.dtype)  # true convolution; filters here are symmetric anyway
    c = x.shape[1]
    x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


def _fir_1d(x: Tensor, taps: list[float], dim: int, down: int) -> Tensor:
    """Valid 1D FIR convolution along ``dim`` with strided slices (no weight tensor, no depthwise conv).

    One allocation, then in-place multiply-accumulates: memory traffic, not page faults, bounds the cost.
    """
    n = x.shape[dim] - len(taps) + 1
    rev = list(reversed(taps))  # convolution = correlation with the flipped filter
    out = x.narrow(dim, 0, n) * rev[0]
    for t in range(1, len(rev)):
        out.add_(x.narrow(dim, t, n), alpha=rev[t])
    if down > 1:
        idx = [slice(None)] * x.ndim
        idx[dim] = slice(None, None, down)
        out = out[tuple(idx)]
    return out


def upsample2x_fast(x: Tensor, f1d: Tensor) -> Tensor:
    """Polyphase form of ``upfirdn2d(up=2, pad=(2,1,2,1), gain=4)`` for a 4-tap filter.  # [B, C, 2H, 2W]

    With per-axis taps g = 2f (e.g. [0.25, 0.75, 0.75, 0.25]) the even outputs are g2 x[i] + g0 x[i-1] and the
    odd outputs g1 x[i] + g3 x[i+1], with zeros outside the image.
    """
    g = (f1d * 2).tolist()
    assert len(g) == 4
    for dim in (3, 2):
        xp = F.pad(x, [1, 1] if dim == 3 else [0, 0, 1, 1])
        n = x.shape[dim]
        mid = xp.narrow(dim, 1, n)
        even = mid * g[2] + xp.narrow(dim, 0, n) * g[0]
        odd = mid * g[1] + xp.narrow(dim, 2, n) * g[3]
        x = torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)
    return x


class _Fir2d(torch.autograd.Function):
    """Pad/crop + separable FIR (no resampling) with an explicit backward: the adjoint is the same operator with
    the reversed taps and padding T - 1 - p, so no slice-backward zero tensors are materialised."""

    @staticmethod
    def forward(ctx, x: Tensor, taps: tuple[float, ...], padding: tuple[int, int, int, int]) -> Tensor:
        ctx.taps, ctx.padding = taps, padding
        x = _pad_or_crop(x, padding)
        x = _fir_1d(x, list(taps), dim=3, down=1)
        return _fir_1d(x, list(taps), dim=2, down=1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        t = len(ctx.taps)
        adj = tuple(t - 1 - p for p in ctx.padding)
        return _Fir2d.apply(grad, tuple(reversed(ctx.taps)), adj), None, None


def upfirdn2d_fast(x: Tensor, f1d: Tensor, up: int = 1, down: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                   gain: float = 1.0) -> Tensor:
    """Same function as :func:`upfirdn2d_plain`, evaluated separably with slices."""
    if (up == 1 and down == 1 and not torch.is_grad_enabled() and len(set(padding)) == 1 and padding[0] >= 0
            and x.shape[1] >= CHANNELS_LAST_MIN and x.is_contiguous(memory_format=torch.channels_last)):
        return fir2d_depthwise(x, f1d, padding[0], gain)
    taps = f1d.tolist()
    symmetric = taps == taps[::-1]
    if up == 2 and down == 1 and len(taps) == 4 and symmetric and tuple(padding) == (2, 1, 2, 1) and abs(gain - 4) < 1e-12:
        return upsample2x_fast(x, f1d)
    if up == 1 and down == 1 and torch.is_grad_enabled():
        return _Fir2d.apply(x, tuple(t * math.sqrt(gain) for t in taps), tuple(padding))
    x = _zero_insert(x, up)
    x = _pad_or_crop(x, padding)
    g = [t * math.sqrt(gain) for t in taps]
    x = _fir_1d(x, g, dim=3, down=down)
    return _fir_1d(x, g, dim=2, down=down)


def fir2d_depthwise(x: Tensor, f1d: Tensor, padding: int, gain: float = 1.0) -> Tensor:
    """Zero-pad by ``padding`` and FIR-filter with ``outer(f, f) * gain`` as one depthwise convolution.

    For channels-last activations (the inference convolutions' layout) oneDNN evaluates this in one pass over the
    image, about 3x faster than the separable slices (which pad, then make two passes with a multiply-add per
    tap); it is the filter that follows every up-sampling (transposed) convolution.  # [B, C, H', W']
    """
    c = x.shape[1]
    f = (filter_2d(f1d.to(x.device)) * gain).flip([0, 1])  # true convolution
    return F.conv2d(x, f[None, None].expand(c, 1, -1, -1).to(x.dtype), padding=padding, groups=c)


def upfirdn2d(x: Tensor, f1d: Tensor, up: int = 1, down: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
              gain: float = 1.0, plain: bool = False) -> Tensor:
    fn = upfirdn2d_plain if plain else upfirdn2d_fast
    return fn(x, f1d, up=up, down=down, padding=tuple(padding), gain=gain)


def upsample2d(x: Tensor, f1d: Tensor, up: int = 2, plain: bool = False) -> Tensor:
    """Upsample by ``up`` with the FIR filter; the output keeps the input's DC gain."""
    t = len(f1d)
    pad = ((t + up - 1) // 2, (t - up) // 2)
    return upfirdn2d(x, f1d, up=up, padding=(pad[0], pad[1], pad[0], pad[1]), gain=up * up, plain=plain)


def downsample2d(x: Tensor, f1d: Tensor, down: int = 2, plain: bool = False) -> Tensor:
    t = len(f1d)
    pad = ((t - down + 1) // 2, (t - down) // 2)
    return upfirdn2d(x, f1d, down=down, padding=(pad[0], pad[1], pad[0], pad[1]), plain=plain)


# ----------------------------------------------------------------------------------------------------------
# convolution with resampling


def conv2d_resample(x: Tensor, w: Tensor, f1d: Tensor | None, up: int = 1, down: int = 1, padding: int = 0,
                    groups: int = 1, flip_weight: bool = True, plain: bool = False) -> Tensor:
    """2D convolution fused with FIR up/downsampling, as in StyleGAN2-ADA ``conv2d_resample``.

    ``flip_weight=True`` means ``F.conv2d``'s correlation; the up=2 path uses a transposed convolution whose
    weight is not flipped, exactly as the reference does.
    """
    out_ch, in_ch_per_group, kh, kw = w.shape
    t = len(f1d) if f1d is not None else 1
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (t + up - 1) // 2
        px1 += (t - up) // 2
        py0 += (t + up - 1) // 2
        py1 += (t - up) // 2
    if down > 1:
        px0 += (t - down + 1) // 2
        px1 += (t - down) // 2
        py0 += (t - down + 1) // 2
        py1 += (t - down) // 2

    def conv(x: Tensor, w: Tensor, stride: int = 1, pad: tuple[int, int] | int = 0, transpose: bool = False,
             flip: bool = True) -> Tensor:
        if not flip and (kw > 1 or kh > 1):
            w = w.flip([2, 3])
        if transpose:
            return F.conv_transpose2d(x, w, stride=stride, padding=pad, groups=groups)
        return F.conv2d(x, w, stride=stride, padding=pad, groups=groups)

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f1d, down=down, padding=(px0, px1, py0, py1), plain=plain)
        return conv(x, w, flip=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = conv(x, w, flip=flip_weight)
        return upfirdn2d(x, f1d, up=up, padding=(px0, px1, py0, py1), gain=up ** 2, plain=plain)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f1d, padding=(px0, px1, py0, py1), plain=plain)
        return conv(x, w, stride=down, flip=flip_weight)
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_ch // groups, in_ch_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_ch_per_group, out_ch // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = conv(x, w, stride=up, pad=(pyt, pxt), transpose=True, flip=not flip_weight)
        x = upfirdn2d(x, f1d, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up ** 2, plain=plain)
        if down > 1:
            x = upfirdn2d(x, f1d, down=down, plain=plain)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return conv(x, w, pad=(py0, px0), flip=flip_weight)
    # Generic path (asymmetric or negative padding, up and down together): upsample + pad, convolve, downsample.
    if up > 1:
        x = upfirdn2d(x, f1d, up=up, padding=(px0, px1, py0, py1), gain=up ** 2, plain=plain)
    else:
        x = _pad_or_crop(x, (px0, px1, py0, py1))
    x = conv(x, w, flip=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f1d, down=down, plain=plain)
    return x


# ----------------------------------------------------------------------------------------------------------
# modulated convolution (StyleGAN2 Sec. 2.2, Eq. 1-3)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, noise: Tensor | None = None, up: int = 1,
                     padding: int = 0, f1d: Tensor | None = None, demodulate: bool = True, flip_weight: bool = True,
                     fused: bool = False, plain: bool = False, modconv: ModConv | None = None) -> Tensor:
    """Modulated (and optionally demodulated) convolution.

    Args:
        x: input activations  # [B, I, H, W]
        weight: shared weight  # [O, I, k, k]
        styles: per-sample input-channel scales s  # [B, I]
        noise: added after demodulation, broadcastable to the output  # [B|1, 1, H', W'] or [H', W']
        fused: evaluate as one grouped convolution with per-sample weights (the reference's inference form);
            otherwise scale activations by s, convolve with the shared weight, then scale by the
            demodulation coefficients (identical result, Eq. 3: w'' = w' / sqrt(sum w'^2 + eps)).
        modconv: evaluates ``conv2d_resample(x * styles, weight, ...)`` (the unfused form's first two steps)
            in a structure-aware way, e.g. Mimic3D's 3D-aware convolution (``core.aware3d.aware3d_modconv``);
            called as ``modconv(x, weight, styles)``. Not combinable with ``fused``.
    """
    batch = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # pre-normalise to avoid fp16 overflow (reference behaviour)
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = None
    if demodulate or fused:
        wmod = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)  # [B, O, I, k, k]
    if demodulate:
        dcoefs = (wmod.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [B, O]
    if modconv is not None and fused:
        raise ValueError("modconv and fused are exclusive")
    if modconv is not None:
        x = modconv(x, weight.to(x.dtype), styles.to(x.dtype))
    elif not fused:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f1d, up=up, padding=padding, flip_weight=flip_weight, plain=plain)
    if not fused:
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    if dcoefs is not None:
        wmod = wmod * dcoefs.reshape(batch, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    wmod = wmod.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(x, wmod.to(x.dtype), f1d, up=up, padding=padding, groups=batch, flip_weight=flip_weight,
                        plain=plain)
    x = x.reshape(batch, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class _DemodBiasLrelu(torch.autograd.Function):
    """out = clamp(lrelu(x * d + noise + b) * gain): a synthesis layer's post-convolution steps as one node.

    With gain > 0, lrelu(a) * gain = lrelu(a * gain), so the gain is folded into d, noise and b; the backward
    derives the activation's slope from the output (same sign as the pre-activation) and needs no
    intermediate tensors besides the convolution output x.
    """

    @staticmethod
    def forward(ctx, x: Tensor, d: Tensor, noise: Tensor | None, b: Tensor, gain: float,
                clamp: float | None) -> Tensor:
        dg = d * gain  # [N, O]
        out = torch.addcmul((b * gain).reshape(1, -1, 1, 1), x, dg.reshape(*dg.shape, 1, 1))  # [N, O, H, W]
        if noise is not None:
            out.add_(noise, alpha=gain)
        F.leaky_relu_(out, LRELU_SLOPE)
        mask = None
        if clamp is not None and clamp >= 0:
            mask = (out >= -clamp) & (out <= clamp)
            out.clamp_(-clamp, clamp)
        ctx.gain = gain
        ctx.noise_shape = None if noise is None else noise.shape
        ctx.save_for_backward(x, dg, out, mask)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, dg, out, mask = ctx.saved_tensors
        gain = ctx.gain
        gy = torch.ops.aten.leaky_relu_backward(grad, out, LRELU_SLOPE, True)  # d out / d (pre * gain)
        if mask is not None:
            gy.mul_(mask)
        n, o = gy.shape[:2]
        gx = gd = gn = gb = None
        if ctx.needs_input_grad[0]:
            gx = gy * dg.reshape(n, o, 1, 1)
        if ctx.needs_input_grad[1]:
            gd = (gy * x).sum(dim=[2, 3]) * gain
        if ctx.needs_input_grad[2]:
            gn = gy.sum_to_size(ctx.noise_shape) * gain
        if ctx.needs_input_grad[3]:
            gb = gy.sum([0, 2, 3]) * gain
        return gx, gd, gn, gb, None, None


def modulated_conv2d_lrelu(x: Tensor, weight: Tensor, styles: Tensor, bias: Tensor, noise: Tensor | None,
                           gain: float, clamp: float | None, up: int = 1, padding: int = 0,
                           f1d: Tensor | None = None, flip_weight: bool = True,
                           modconv: ModConv | None = None) -> Tensor:
    """Fast training form of a synthesis layer (fp32, demodulated, lrelu), equal up to float rounding to
    ``bias_act(modulated_conv2d(x, weight, styles, noise, ...), bias, 'lrelu', gain, clamp)``.

    The shared-weight convolution of the modulated input runs as in :func:`modulated_conv2d`; demodulation,
    noise, bias, activation, gain and clamp form one autograd node (:class:`_DemodBiasLrelu`), which saves a
    handful of full-size passes and temporaries per layer in forward and backward.
    """
    batch = x.shape[0]
    wmod = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)  # [B, O, I, k, k]
    dcoefs = (wmod.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [B, O]
    if modconv is not None:
        y = modconv(x, weight, styles)
    else:
        y = conv2d_resample(x * styles.reshape(batch, -1, 1, 1), weight, f1d, up=up, padding=padding,
                            flip_weight=flip_weight)
    return _DemodBiasLrelu.apply(y.contiguous(), dcoefs, noise, bias, float(gain), clamp)


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean(x^2) + eps) along ``dim`` (StyleGAN mapping-network input normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ----------------------------------------------------------------------------------------------------------
# inference fast path: modulation, demodulation, gain and bias folded into one (grouped) convolution


def modulated_conv2d_inference(x: Tensor, weight: Tensor, styles: Tensor, bias: Tensor | None, gain: float,
                               up: int = 1, padding: int = 0, f1d: Tensor | None = None, demodulate: bool = True,
                               flip_weight: bool = True, modconv: ModConv | None = None) -> Tensor:
    """Bias/activation-free part of a modulated conv layer for inference: gain * (demod(conv(x, w * s)) + bias).

    Batch 1: the per-sample weight w * s * d * gain (d = demodulation, Eq. 3) makes the layer one plain
    convolution with the bias folded in, so no pass over the activations is spent on scaling. Larger batches
    scale the activations by s, run one batched convolution and rescale in place. Activations are kept
    channels-last, which the CPU (oneDNN) convolutions, and transposed convolutions especially, run fastest on.
    Equal to ``(modulated_conv2d(...) + bias) * gain`` up to float rounding. ``modconv``: as in
    :func:`modulated_conv2d` (then always the scale-after form).
    """
    batch = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if modconv is None and use_channels_last(x, up):
        x = x.contiguous(memory_format=torch.channels_last)
    wmod = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)  # [B, O, I, k, k]
    scale = torch.full((batch, out_ch), float(gain), dtype=wmod.dtype, device=wmod.device)
    if demodulate:
        scale = scale * (wmod.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    b = None if bias is None else (bias * gain).to(x.dtype)
    if batch == 1 and modconv is None:
        w1 = (wmod[0] * scale.reshape(out_ch, 1, 1, 1)).to(x.dtype)
        if up == 1:
            if not flip_weight and (kh > 1 or kw > 1):
                w1 = w1.flip([2, 3])
            return F.conv2d(x, w1, b, padding=padding)
        y = conv2d_resample(x, w1, f1d, up=up, padding=padding, flip_weight=flip_weight)
        return y.add_(b.reshape(1, -1, 1, 1)) if b is not None else y
    if modconv is not None:
        y = modconv(x, weight.to(x.dtype), styles.to(x.dtype))
    else:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        y = conv2d_resample(x, weight.to(x.dtype), f1d, up=up, padding=padding, flip_weight=flip_weight)
    y.mul_(scale.to(y.dtype).reshape(batch, out_ch, 1, 1))
    return y.add_(b.reshape(1, -1, 1, 1)) if b is not None else y
