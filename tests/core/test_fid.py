"""FID/KID statistics with a small TorchScript stand-in of the Inception network (same call interface)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.metrics.fid import (INCEPTION_FILE, DetectorError, extract_features, fid, frechet_distance, kid,
                              load_detector, mmd2_unbiased)


class TinyDetector(nn.Module):
    """uint8 [N, 3, H, W] -> [N, 16] pooled features of a fixed random conv (the real file gives [N, 2048])."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(16, 3, 3, 3, generator=g))
            self.conv.bias.zero_()

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor:
        x = F.interpolate(x.float() / 255.0, size=(32, 32), mode="bilinear", align_corners=False)
        return F.relu(self.conv(x)).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("det") / INCEPTION_FILE
    torch.jit.script(TinyDetector()).save(str(path))
    return path


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift(detector_file):
    det = load_detector(detector_file)
    g = torch.Generator().manual_seed(1)
    imgs = torch.rand(64, 3, 24, 24, generator=g) * 2 - 1
    f = extract_features(det, imgs, batch=20)
    assert f.shape == (64, 16) and f.dtype == np.float64
    assert fid(f, f) < 1e-6
    brighter = extract_features(det, (imgs + 0.3).clamp(-1, 1), batch=64)
    assert fid(f, brighter) > 100 * max(fid(f, f), 1e-9)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)


def test_mmd_matches_the_brute_force_unbiased_estimator():
    rng = np.random.RandomState(0)
    x, y = rng.randn(7, 5), rng.randn(6, 5) + 0.5
    k = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    xx = np.mean([k(x[i], x[j]) for i in range(7) for j in range(7) if i != j])
    yy = np.mean([k(y[i], y[j]) for i in range(6) for j in range(6) if i != j])
    xy = np.mean([k(x[i], y[j]) for i in range(7) for j in range(6)])
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
    rng = np.random.RandomState(0)
    same = [kid(rng.randn(40, 8), rng.randn(40, 8), num_subsets=5, seed=i) for i in range(200)]
    spread = np.std(same) / np.sqrt(len(same))
    assert abs(np.mean(same)) < 4 * spread  # the expectation is zero (a biased estimator would be > 0)
    assert min(same) < 0 < max(same)
    assert kid(rng.randn(40, 8), rng.randn(40, 8) + 1.0, num_subsets=5) > 20 * spread


def test_missing_or_damaged_detector_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRIDENT_INCEPTION", raising=False)
    with pytest.raises(DetectorError, match=INCEPTION_FILE) as e:
        load_detector()
    assert "\n" not in str(e.value) and str(tmp_path / "th") in str(e.value)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torchscript")
    with pytest.raises(DetectorError, match="not a usable TorchScript"):
        load_detector(bad)


def test_detector_found_through_the_environment(tmp_path, monkeypatch, detector_file):
    monkeypatch.setenv("TRIDENT_INCEPTION", str(detector_file))
    assert isinstance(load_detector(), torch.jit.ScriptModule)
