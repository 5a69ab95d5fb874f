"""SWD (core/metrics/swd.py): zero for identical sets, symmetric, grows with a distribution shift."""
from __future__ import annotations

import pytest
import torch

from core.metrics.swd import extract_patches, laplacian_pyramid, swd


def _images(seed: int, n: int = 16, res: int = 32, shift: float = 0.0, blur: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, res, res, generator=g) * 2 - 1
    if blur:
        x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    return (x + shift).clamp(-1, 1)


def test_pyramid_reconstructs_and_has_expected_levels():
    x = _images(0, 2, 64)
    levels = laplacian_pyramid(x, 16)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    assert torch.isfinite(torch.cat([lv.flatten() for lv in levels])).all()


def test_patches_are_real_windows():
    x = torch.arange(2 * 3 * 10 * 10, dtype=torch.float32).reshape(2, 3, 10, 10)
    p = extract_patches(x, 5, 7, torch.Generator().manual_seed(0)).reshape(10, 3, 7, 7)
    for patch in p:
        n = int(patch[0, 0, 0]) // 300
        y0, x0 = divmod(int(patch[0, 0, 0]) - n * 300, 10)
        assert torch.equal(patch, x[n, :, y0:y0 + 7, x0:x0 + 7])


@pytest.mark.slow
def test_swd_properties():
    a, a2 = _images(1), _images(1)
    # patch positions are drawn independently for the two sets (PGGAN's estimator): identical sets only
    # reach the sampling-noise floor, which must sit far below a real distribution change
    floor = swd(a, a2)["swd_mean"]
    b = _images(2)
    same_dist = swd(a, b)["swd_mean"]
    shifted = swd(a, _images(2, shift=0.4))["swd_mean"]
    blurred = swd(a, _images(2, blur=True))["swd_mean"]
    assert same_dist < shifted / 5 and same_dist < blurred / 5 and floor < shifted / 5
    assert floor == pytest.approx(same_dist, rel=0.5)
    assert swd(b, a)["swd_mean"] == pytest.approx(swd(a, b)["swd_mean"], rel=0.05)
    assert set(swd(a, b)) == {"swd_32", "swd_16", "swd_mean"}
    with pytest.raises(ValueError):
        swd(a, _images(1, n=8))
