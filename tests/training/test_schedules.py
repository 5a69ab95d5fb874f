"""Schedules against the reference numbers of ``NVlabs/eg3d: eg3d/training/loss.py`` and
``training/training_loop.py``."""
from __future__ import annotations

import math

import pytest
import torch

from training import schedules as S


def test_swapping_prob():
    assert S.swapping_prob(500_000, 0.5, 1000) == pytest.approx(0.75)
    assert S.swapping_prob(0, 0.5, 1000) == 1.0
    assert S.swapping_prob(5_000_000, 0.8, 1000) == pytest.approx(0.8)
    assert S.swapping_prob(123, 0.5, 0) == 0.5  # resume: no fade
    assert S.swapping_prob(123, None) == 1.0


def test_neural_rendering_resolution():
    assert S.neural_rendering_resolution(500_000, 64, 128, 1000) == 96
    assert S.neural_rendering_resolution(0, 64, 128, 1000) == 64
    assert S.neural_rendering_resolution(10**9, 64, 128, 1000) == 128
    assert S.neural_rendering_resolution(500_000, 64, None) == 64


def test_blur_sigma5_31_taps_and_sigma10_61_taps():
    sigma = S.blur_sigma(100_000, 10, 200 * 32 / 32)
    assert sigma == pytest.approx(5.0)
    k = S.blur_kernel(sigma)
    assert k.numel() == 31 and float(k.sum()) == pytest.approx(1.0)
    assert torch.allclose(k, k.flip(0))
    # base-2 Gaussian: f(x) / f(0) = 2^-(x/sigma)^2
    c = k.numel() // 2
    assert float(k[c + 5] / k[c]) == pytest.approx(0.5)
    assert S.blur_kernel(10.0).numel() == 61
    assert S.blur_sigma(300_000, 10, 200) == 0.0


def test_ema_beta():
    assert S.ema_beta(32, 10**9, 10, 0.05) == pytest.approx(0.997784, abs=1e-6)
    # ramp-up: early on the half-life is 5% of the images seen
    assert S.ema_beta(32, 64_000, 10, 0.05) == pytest.approx(0.5 ** (32 / 3200))
    assert S.ema_beta(32, 0, 10, None) == pytest.approx(0.997784, abs=1e-6)


def test_lazy_regularization():
    lr, betas = S.lazy_regularization(0.0025, (0, 0.99), 4)
    assert lr == pytest.approx(0.002) and betas[1] == pytest.approx(0.991992, abs=1e-6) and betas[0] == 0
    lr, betas = S.lazy_regularization(0.002, (0, 0.99), 16)
    assert lr == pytest.approx(0.0018824, abs=1e-7) and betas[1] == pytest.approx(0.990585, abs=1e-6)
    assert S.lazy_regularization(0.002, (0, 0.99), 0) == (0.002, (0, 0.99))


def test_ada_adjust():
    # batch 32, interval 4, ada_kimg 500: step of 32*4/500000 per update towards the target
    step = 32 * 4 / 500_000
    assert S.ada_adjust(0.1, 0.9, 0.6, 32, 4, 500) == pytest.approx(0.1 + step)
    assert S.ada_adjust(0.1, 0.2, 0.6, 32, 4, 500) == pytest.approx(0.1 - step)
    assert S.ada_adjust(0.0, 0.2, 0.6, 32, 4, 500) == 0.0
    assert S.ada_adjust(0.3, 0.6, 0.6, 32, 4, 500) == 0.3
    assert math.isfinite(S.ada_adjust(0.0, 1.0, 0.6, 1, 1, 0.001))
