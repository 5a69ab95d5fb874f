"""Loss terms (training/losses.py) against closed forms."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training import losses as L


def test_logistic_losses():
    x = torch.tensor([[-2.0], [0.0], [3.0]])
    assert torch.allclose(L.g_nonsaturating(x), torch.log1p(torch.exp(-x)))
    d = L.d_logistic(x, -x)
    assert torch.allclose(d, 2 * torch.log1p(torch.exp(-x)))
    assert torch.allclose(L.d_logistic(None, x), F.softplus(x))
    assert abs(float(L.d_logistic(torch.tensor([[0.0]]), torch.tensor([[0.0]]))) - math.log(4)) < 1e-6


def test_r1_matches_analytic_gradient_over_both_inputs():
    """D(img, raw) = sum(a * img) + sum(b * raw^2): grads a and 2 b raw, so R1 = |a|^2 + |2 b raw|^2 per sample."""
    g = torch.Generator().manual_seed(0)
    img = torch.randn(3, 3, 4, 4, generator=g, requires_grad=True)
    raw = torch.randn(3, 3, 2, 2, generator=g, requires_grad=True)
    a = torch.randn(1, 3, 4, 4, generator=g)
    b = torch.randn(1, 3, 2, 2, generator=g)
    logits = (a * img).sum(dim=[1, 2, 3]) + (b * raw.square()).sum(dim=[1, 2, 3])
    pen = L.r1_penalty(logits[:, None], [img, raw])
    expected = a.square().sum() + (2 * b * raw.detach()).square().sum(dim=[1, 2, 3])
    assert torch.allclose(pen, expected, rtol=1e-5)
    pen.sum().backward()  # create_graph=True: the penalty itself is differentiable
    assert raw.grad is not None and raw.grad.abs().sum() > 0


def test_density_smoothness():
    g = torch.Generator().manual_seed(0)
    const = L.density_smoothness(lambda x: torch.ones(x.shape[0], x.shape[1], 1), 2, 0.004, generator=g)
    assert float(const) == 0.0
    lin = L.density_smoothness(lambda x: x[..., :1] * 10, 2, 0.004, num_points=4000, generator=g)
    # E|10 * N(0, 0.004)| = 10 * 0.004 * sqrt(2/pi)
    assert abs(float(lin) - 0.04 * math.sqrt(2 / math.pi)) < 0.004


def test_blur_keeps_constants_and_mass_and_is_identity_at_zero():
    x = torch.ones(1, 2, 32, 32)
    y = L.blur(x, 2.0)
    assert y.shape == x.shape
    assert torch.allclose(y[..., 8:-8, 8:-8], torch.ones(1, 2, 16, 16), atol=1e-6)
    imp = torch.zeros(1, 1, 33, 33)
    imp[..., 16, 16] = 1
    assert abs(float(L.blur(imp, 3.0).sum()) - 1) < 1e-5
    assert L.blur(imp, 0.0) is imp


def test_swap_conditioning():
    c = torch.arange(5, dtype=torch.float32)[:, None].repeat(1, 25)
    assert torch.equal(L.swap_conditioning(c, 0.0), c)
    assert torch.equal(L.swap_conditioning(c, 1.0), torch.roll(c, 1, 0))
    g = torch.Generator().manual_seed(1)
    mixed = L.swap_conditioning(c.repeat(200, 1), 0.5, generator=g)
    frac = float((mixed != c.repeat(200, 1)).any(dim=1).float().mean())
    assert 0.4 < frac < 0.6


@pytest.mark.parametrize("size, sigma", [(64, 10.0), (32, 3.0), (64, 0.5), (16, 10.0), (40, 1.0)])
def test_blur_band_matrix_equals_the_fir_filter(size, sigma):
    """Long filters use band matrices (training.losses.blur_matrix); values and gradients equal the FIR's."""
    from core import ops
    from training.schedules import blur_kernel

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, size, size + 8, generator=g)
    f = blur_kernel(sigma)
    r = (f.numel() - 1) // 2
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ref = ops.upfirdn2d(xa, f / f.sum(), padding=(r, r, r, r))
    out = L.blur(xb, sigma)
    assert out.shape == x.shape and torch.allclose(out, ref, atol=1e-6)
    w = torch.randn(ref.shape, generator=g)
    (ref * w).sum().backward()
    (out * w).sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-6)
