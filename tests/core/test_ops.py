"""StyleGAN2 operators: the fast path against the plain reference (and the plain reference against a literal
numpy definition), forward values and gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import ops

FIR = ops.setup_filter_1d([1, 3, 3, 1])
TOL = dict(atol=2e-5, rtol=1e-5)


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _fwd_bwd(fn, *inputs, seed=99):
    """Run fn, backprop a fixed random cotangent; return (output, grads of every input)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    y = fn(*leaves)
    g = _rand(*y.shape, seed=seed, dtype=y.dtype).to(y.device)
    (y * g).sum().backward()
    return y.detach(), [t.grad for t in leaves]


def _assert_same(a, b, **tol):
    tol = tol or TOL
    (ya, ga), (yb, gb) = a, b
    torch.testing.assert_close(ya, yb, **tol)
    for i, (x, y) in enumerate(zip(ga, gb)):
        torch.testing.assert_close(x, y, **tol, msg=lambda m, i=i: f"gradient of input {i}: {m}")


def _numpy_upfirdn2d(x: np.ndarray, f1d: np.ndarray, up: int, down: int, pad, gain: float) -> np.ndarray:
    """Literal definition: zero insertion, pad/crop, true 2D convolution with outer(f, f) * gain, decimation."""
    b, c, h, w = x.shape
    z = np.zeros((b, c, h * up, w * up))
    z[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    z = np.pad(z, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]
    f2 = np.outer(f1d, f1d) * gain
    t = len(f1d)
    oh, ow = z.shape[2] - t + 1, z.shape[3] - t + 1
    out = np.zeros((b, c, oh, ow))
    for a in range(t):
        for bb in range(t):
            out += z[:, :, a:a + oh, bb:bb + ow] * f2[t - 1 - a, t - 1 - bb]
    return out[:, :, ::down, ::down]


# ----------------------------------------------------------------------------------------------------------
# upfirdn2d

UPFIRDN_CASES = [
    # up, down, padding (x0, x1, y0, y1), gain, taps
    (1, 1, (0, 0, 0, 0), 1.0, (1, 3, 3, 1)),
    (1, 1, (1, 2, 2, 1), 1.0, (1, 3, 3, 1)),
    (2, 1, (2, 1, 2, 1), 4.0, (1, 3, 3, 1)),     # the polyphase fast path
    (2, 1, (2, 1, 2, 1), 1.0, (1, 3, 3, 1)),     # same padding, other gain: generic path
    (2, 1, (1, 2, 1, 2), 4.0, (1, 3, 3, 1)),
    (2, 1, (0, 0, 0, 0), 2.5, (1, 3, 3, 1)),
    (1, 2, (1, 1, 1, 1), 1.0, (1, 3, 3, 1)),
    (1, 2, (0, 0, 0, 0), 1.0, (1, 3, 3, 1)),
    (1, 2, (2, 1, 1, 2), 0.5, (1, 3, 3, 1)),
    (2, 2, (2, 1, 2, 1), 4.0, (1, 3, 3, 1)),
    (1, 1, (-1, -1, -1, -1), 1.0, (1, 3, 3, 1)),  # cropping
    (1, 1, (-2, 1, 3, -1), 1.0, (1, 3, 3, 1)),
    (2, 1, (-1, 2, 1, -2), 4.0, (1, 3, 3, 1)),
    (1, 2, (-1, 0, 1, -1), 1.0, (1, 3, 3, 1)),
    (1, 1, (1, 1, 1, 1), 1.0, (1, 2, 1)),        # odd length
    (2, 1, (1, 1, 1, 1), 4.0, (1, 2, 1)),
    (1, 2, (1, 2, 0, 1), 1.0, (1, 2, 3, 4)),      # asymmetric: catches a missing filter flip
    (2, 1, (2, 1, 2, 1), 4.0, (1, 2, 3, 4)),
]


@pytest.mark.parametrize("up,down,pad,gain,taps", UPFIRDN_CASES)
def test_upfirdn2d_fast_matches_plain(up, down, pad, gain, taps, device):
    f = ops.setup_filter_1d(taps).to(device)
    x = _rand(2, 3, 9, 11, seed=1).to(device)
    fast = _fwd_bwd(lambda t: ops.upfirdn2d(t, f, up=up, down=down, padding=pad, gain=gain), x)
    plain = _fwd_bwd(lambda t: ops.upfirdn2d(t, f, up=up, down=down, padding=pad, gain=gain, plain=True), x)
    _assert_same(fast, plain)


@pytest.mark.parametrize("taps,pad", [((1, 3, 3, 1), 1), ((1, 2, 3, 4), 2), ((1, 2, 1), 0)])
def test_fir_depthwise_inference_path_matches_the_definition(taps, pad):
    """Channels-last inference activations take the one-pass depthwise form (the filter after every up-sampling
    convolution); it is the same function as the literal definition, asymmetric taps included."""
    f = ops.setup_filter_1d(taps)
    x = _rand(1, 32, 9, 11, seed=3, dtype=torch.float64)
    want = _numpy_upfirdn2d(x.numpy(), f.double().numpy(), 1, 1, (pad,) * 4, 4.0)
    with torch.no_grad():
        xc = x.contiguous(memory_format=torch.channels_last)
        got = ops.upfirdn2d(xc, f.double(), padding=(pad,) * 4, gain=4.0)
        direct = ops.fir2d_depthwise(xc, f.double(), pad, 4.0)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12, rtol=0)
    np.testing.assert_allclose(direct.numpy(), want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("up,down,pad,gain,taps", UPFIRDN_CASES)
def test_upfirdn2d_plain_matches_the_literal_definition(up, down, pad, gain, taps):
    f = ops.setup_filter_1d(taps)
    x = _rand(1, 2, 7, 6, seed=2, dtype=torch.float64)
    got = ops.upfirdn2d_plain(x, f.double(), up=up, down=down, padding=pad, gain=gain)
    want = _numpy_upfirdn2d(x.numpy(), f.double().numpy(), up, down, pad, gain)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("plain", [False, True])
def test_upsample_downsample_2d(plain):
    x = _rand(2, 4, 8, 8, seed=3)
    up = ops.upsample2d(x, FIR, plain=plain)
    down = ops.downsample2d(x, FIR, plain=plain)
    assert up.shape == (2, 4, 16, 16) and down.shape == (2, 4, 4, 4)
    # StyleGAN2 paddings: upsample (2, 1) per axis with gain up^2; downsample (1, 1)
    torch.testing.assert_close(up, ops.upfirdn2d_plain(x, FIR, up=2, padding=(2, 1, 2, 1), gain=4), **TOL)
    torch.testing.assert_close(down, ops.upfirdn2d_plain(x, FIR, down=2, padding=(1, 1, 1, 1)), **TOL)
    # DC gain 1: a constant stays constant away from the border
    ones = torch.ones(1, 1, 8, 8)
    torch.testing.assert_close(ops.upsample2d(ones, FIR, plain=plain)[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    torch.testing.assert_close(ops.downsample2d(ones, FIR, plain=plain)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))
    fast_up = _fwd_bwd(lambda t: ops.upsample2d(t, FIR), x)
    plain_up = _fwd_bwd(lambda t: ops.upsample2d(t, FIR, plain=True), x)
    _assert_same(fast_up, plain_up)
    fast_dn = _fwd_bwd(lambda t: ops.downsample2d(t, FIR), x)
    plain_dn = _fwd_bwd(lambda t: ops.downsample2d(t, FIR, plain=True), x)
    _assert_same(fast_dn, plain_dn)


# ----------------------------------------------------------------------------------------------------------
# conv2d_resample


def _generic_conv2d_resample(x, w, f, up=1, down=1, padding=0, groups=1, flip_weight=True):
    """StyleGAN2-ADA's generic fallback: pad + FIR upsample, plain convolution, FIR downsample."""
    t = len(f)
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (t + up - 1) // 2
        px1 += (t - up) // 2
        py0, py1 = px0, px1
    if down > 1:
        px0 += (t - down + 1) // 2
        px1 += (t - down) // 2
        py0, py1 = px0, px1
    x = ops.upfirdn2d_plain(x, f if up > 1 else torch.ones(1), up=up, padding=(px0, px1, py0, py1), gain=up ** 2)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = ops.upfirdn2d_plain(x, f, down=down)
    return x


CONV_CASES = [
    # up, down, kernel, padding, groups, flip_weight
    (2, 1, 3, 1, 1, False),   # SynthesisLayer conv0
    (2, 1, 3, 1, 1, True),
    (2, 1, 1, 0, 1, True),
    (1, 2, 3, 1, 1, True),    # DiscriminatorBlock conv1
    (1, 2, 1, 0, 1, True),    # DiscriminatorBlock skip
    (1, 1, 3, 1, 1, True),    # plain 3x3
    (1, 1, 3, 1, 1, False),
    (1, 1, 1, 0, 1, True),
    (1, 1, 3, 1, 2, True),    # grouped (fused modulated conv)
    (2, 1, 3, 1, 2, False),   # grouped + up (fused modulated conv0)
    (1, 2, 3, 1, 2, True),
]


@pytest.mark.parametrize("up,down,k,padding,groups,flip", CONV_CASES)
def test_conv2d_resample_fast_and_plain_match_generic_reference(up, down, k, padding, groups, flip, device):
    x = _rand(2, 4, 8, 8, seed=4).to(device)
    w = _rand(6, 4 // groups, k, k, seed=5).to(device)
    fir = FIR.to(device)
    ref = _fwd_bwd(lambda a, b: _generic_conv2d_resample(a, b, fir, up, down, padding, groups, flip), x, w)
    fast = _fwd_bwd(lambda a, b: ops.conv2d_resample(a, b, fir, up=up, down=down, padding=padding, groups=groups,
                                                     flip_weight=flip), x, w)
    plain = _fwd_bwd(lambda a, b: ops.conv2d_resample(a, b, fir, up=up, down=down, padding=padding, groups=groups,
                                                      flip_weight=flip, plain=True), x, w)
    assert fast[0].shape == (2, 6, 8 * up // down, 8 * up // down)
    _assert_same(fast, plain)
    _assert_same(fast, ref)


# ----------------------------------------------------------------------------------------------------------
# modulated convolution


def _reference_modconv(x, weight, styles, noise, up, padding, demodulate, flip_weight, fir=FIR):
    """Per-sample literal StyleGAN2 Eq. 1-3: w' = w * s, w'' = w' / sqrt(sum w'^2 + 1e-8), one conv per sample."""
    outs = []
    for b in range(x.shape[0]):
        wb = weight * styles[b].reshape(1, -1, 1, 1)
        if demodulate:
            wb = wb * (wb.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        outs.append(_generic_conv2d_resample(x[b:b + 1], wb, fir, up=up, padding=padding, flip_weight=flip_weight))
    y = torch.cat(outs)
    return y + noise if noise is not None else y


@pytest.mark.parametrize("up,k,flip", [(1, 3, True), (2, 3, False), (1, 1, True)])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("with_noise", [False, True])
def test_modulated_conv2d_fused_nonfused_and_reference(up, k, flip, demodulate, with_noise, device):
    x = _rand(3, 5, 6, 6, seed=6).to(device)
    weight = _rand(4, 5, k, k, seed=7).to(device)
    styles = (_rand(3, 5, seed=8) * 0.5 + 1).to(device)
    res = 6 * up
    noise = (_rand(3, 1, res, res, seed=9) * 0.3).to(device) if with_noise else None
    pad = k // 2
    args = (x, weight, styles) + ((noise,) if with_noise else ())
    fir = FIR.to(device)

    def run(fused, plain=False):
        def fn(a, w, s, n=None):
            return ops.modulated_conv2d(a, w, s, noise=n, up=up, padding=pad, f1d=fir, demodulate=demodulate,
                                        flip_weight=flip, fused=fused, plain=plain)
        return _fwd_bwd(fn, *args)

    ref = _fwd_bwd(lambda a, w, s, n=None: _reference_modconv(a, w, s, n, up, pad, demodulate, flip, fir), *args)
    nonfused = run(False)
    assert nonfused[0].shape == (3, 4, res, res)
    _assert_same(nonfused, ref, atol=5e-5, rtol=1e-5)
    _assert_same(run(True), ref, atol=5e-5, rtol=1e-5)
    _assert_same(run(True, plain=True), nonfused, atol=5e-5, rtol=1e-5)


def test_modulated_conv2d_demodulation_normalises_output_scale():
    # demodulated: scaling the styles by a constant does not change the output
    x, w, s = _rand(2, 8, 5, 5, seed=10), _rand(4, 8, 3, 3, seed=11), _rand(2, 8, seed=12)
    a = ops.modulated_conv2d(x, w, s, padding=1, f1d=FIR)
    b = ops.modulated_conv2d(x, w, s * 7.0, padding=1, f1d=FIR)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    c = ops.modulated_conv2d(x, w, s * 7.0, padding=1, f1d=FIR, demodulate=False)
    torch.testing.assert_close(c, 7.0 * ops.modulated_conv2d(x, w, s, padding=1, f1d=FIR, demodulate=False),
                               atol=1e-4, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------------
# bias_act and normalize_2nd_moment


@pytest.mark.parametrize("act,gain,clamp", [
    ("linear", None, None), ("linear", None, 0.5), ("lrelu", None, None), ("lrelu", None, 0.8),
    ("lrelu", 0.5, 0.3), ("linear", 2.0, 1.0), ("lrelu", None, 256.0),
])
def test_bias_act(act, gain, clamp, device):
    x = _rand(4, 6, 3, 3, seed=13).to(device)
    b = _rand(6, seed=14).to(device)

    def manual(t, bb):
        y = t + bb.reshape(1, -1, 1, 1)
        if act == "lrelu":
            y = torch.where(y >= 0, y, 0.2 * y)
        gg = gain if gain is not None else (math.sqrt(2) if act == "lrelu" else 1.0)
        y = y * gg
        if clamp is not None:
            y = y.clamp(-clamp, clamp)
        return y

    got = _fwd_bwd(lambda t, bb: ops.bias_act(t, bb, act=act, gain=gain, clamp=clamp), x, b)
    want = _fwd_bwd(manual, x, b)
    _assert_same(got, want, atol=1e-6, rtol=1e-6)
    if clamp is not None and clamp < 1:
        y, (gx, _) = got
        assert float(y.abs().max()) <= clamp + 1e-7
        saturated = y.abs() >= clamp
        assert bool(saturated.any()) and bool((gx[saturated] == 0).all()), "no gradient through the clamp"


def test_bias_act_rejects_unknown_activation():
    with pytest.raises(ValueError):
        ops.bias_act(torch.zeros(1, 2), act="relu6")


@pytest.mark.parametrize("shape,dim", [((4, 512), 1), ((3, 7), 1), ((2, 5, 6), 2)])
def test_normalize_2nd_moment(shape, dim):
    x = _rand(*shape, seed=15) * 3 + 0.5
    got = _fwd_bwd(lambda t: ops.normalize_2nd_moment(t, dim=dim), x)
    want = _fwd_bwd(lambda t: t / torch.sqrt(t.square().mean(dim=dim, keepdim=True) + 1e-8), x)
    _assert_same(got, want, atol=1e-6, rtol=1e-5)
    ms = got[0].square().mean(dim=dim)
    torch.testing.assert_close(ms, torch.ones_like(ms), atol=1e-5, rtol=0)


def test_conv2d_resample_generic_path_asymmetric_padding():
    """Padding that no fast path handles (here: none at all, i.e. a 'valid' 3x3 conv, and a cropped 1x1) falls back
    to pad/crop + conv, equal to the definition."""
    from core import ops as _ops
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 9, 9, generator=g)
    w = torch.randn(4, 3, 3, 3, generator=g)
    got = _ops.conv2d_resample(x, w, None, padding=-1)
    want = torch.nn.functional.conv2d(x, w)[:, :, 1:-1, 1:-1]
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("pad", [(-1, -1, -1, -1), (2, 1, 2, 1), (1, 2, 0, 3)])
def test_fir_fast_backward_is_the_adjoint(pad):
    """Training-mode FIR (pad/crop + filter, no resampling) has an explicit backward: check it and its own
    backward (double backward) against autograd numerics, and the values against the plain operator."""
    x = _rand(2, 3, 7, 6, seed=11, dtype=torch.float64).requires_grad_(True)
    f = FIR.double()
    fast = ops.upfirdn2d(x, f, padding=pad, gain=4)
    torch.testing.assert_close(fast, ops.upfirdn2d(x, f, padding=pad, gain=4, plain=True), rtol=0, atol=1e-12)
    torch.autograd.gradcheck(lambda a: ops.upfirdn2d(a, f, padding=pad, gain=4), (x,))
    torch.autograd.gradgradcheck(lambda a: ops.upfirdn2d(a, f, padding=pad, gain=4), (x,))
    asym = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64) / 8
    torch.autograd.gradcheck(lambda a: ops.upfirdn2d(a, asym, padding=pad), (x,))


@pytest.mark.parametrize("up,k,flip", [(1, 3, True), (2, 3, False)])
@pytest.mark.parametrize("noise_shape,clamp", [(None, None), ((3, 1, 0, 0), 0.5), ((0, 0), None)])
def test_modulated_conv2d_lrelu_matches_the_layer_steps(up, k, flip, noise_shape, clamp, device):
    """The one-node training form equals modulated_conv2d + bias_act in value and in every gradient."""
    res = 6 * up
    x, weight = _rand(3, 5, 6, 6, seed=12), _rand(4, 5, k, k, seed=13)
    styles, bias = _rand(3, 5, seed=14) * 0.5 + 1, _rand(4, seed=15)
    inputs = [x, weight, styles, bias]
    if noise_shape is not None:
        inputs.append(_rand(*[d or res for d in noise_shape], seed=16) * 0.3)
    inputs = [t.to(device) for t in inputs]
    gain = ops.LRELU_GAIN * 0.7
    fir = FIR.to(device)

    def steps(a, w, s, b, n=None):
        y = ops.modulated_conv2d(a, w, s, noise=n, up=up, padding=k // 2, f1d=fir, flip_weight=flip)
        return ops.bias_act(y, b, act="lrelu", gain=gain, clamp=clamp)

    def one_node(a, w, s, b, n=None):
        return ops.modulated_conv2d_lrelu(a, w, s, b, n, gain, clamp, up=up, padding=k // 2, f1d=fir,
                                          flip_weight=flip)
    ref, fast = _fwd_bwd(steps, *inputs), _fwd_bwd(one_node, *inputs)
    if clamp is not None:
        assert (ref[0].abs() == clamp).any()  # the clamp is exercised
    _assert_same(fast, ref, atol=5e-5, rtol=1e-5)
