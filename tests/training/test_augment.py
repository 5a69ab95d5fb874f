"""Augmentation (training/augment.py) and ADA's p in training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.augment import AugmentPipe


def _imgs(n=6, res=32, seed=0):
    return torch.rand(n, 3, res, res, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_p_zero_is_identity_and_p_one_changes_every_image():
    x = _imgs()
    assert torch.equal(AugmentPipe("bgc", p=0.0)(x), x)
    y = AugmentPipe("bgc", p=1.0)(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert all(not torch.allclose(a, b) for a, b in zip(x, y))


def test_blitting_only_moves_pixels():
    """x-flips, 90-degree rotations and integer translations of a square image only rearrange pixel values."""
    x = _imgs(8, 16)
    y = AugmentPipe("b", p=1.0)(x, torch.Generator().manual_seed(2))
    for a, b in zip(x, y):
        vals = a.flatten()
        dist = (b.flatten()[:, None] - vals[None]).abs().min(dim=1).values
        assert float(dist.max()) < 1e-4


def test_colour_keeps_gray_gray_and_is_shared_across_rgb_triples():
    gray = torch.rand(8, 1, 8, 8).repeat(1, 3, 1, 1) * 0.5
    y = AugmentPipe("c", p=1.0)(gray, torch.Generator().manual_seed(3))
    assert torch.allclose(y[:, 0], y[:, 1], atol=1e-5) and torch.allclose(y[:, 1], y[:, 2], atol=1e-5)
    x = _imgs(4, 16)
    both = AugmentPipe("bgc", p=1.0)(torch.cat([x, x], 1), torch.Generator().manual_seed(4))
    assert torch.allclose(both[:, :3], both[:, 3:], atol=1e-6)  # image and raw get the same transform


def test_differentiable_and_deterministic():
    x = _imgs(4, 16).requires_grad_(True)
    pipe = AugmentPipe("bgc", p=0.8)
    y1 = pipe(x, torch.Generator().manual_seed(5))
    y2 = pipe(x, torch.Generator().manual_seed(5))
    assert torch.equal(y1, y2)
    y1.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        pipe(torch.zeros(1, 4, 8, 8))


@pytest.mark.slow
def test_ada_p_moves_and_resumes(tmp_path):
    from core.cameras import Camera
    from training.__main__ import main
    from training.dataset_tool import Item, write_dataset
    from training.runs import latest_snapshot
    from core.files.checkpoint import load_snapshot

    rng = np.random.RandomState(0)
    items = [Item(label=Camera.frontal_offset(float(rng.uniform(-0.5, 0.5)), 0.0).to_label()[0].numpy(),
                  image=rng.randint(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(8)]
    write_dataset(tmp_path / "d.zip", items)
    args = ["train", "--config", "synth-tiny", "--data", str(tmp_path / "d.zip"), "--outdir", str(tmp_path / "r"),
            "--kimg", "0.016", "--snap-kimg", "0.016", "--set", "augment.mode=ada", "--set", "augment.interval=1",
            "--set", "augment.kimg=0.1", "--set", "generator.rendering.depth_resolution=4",
            "--set", "generator.rendering.depth_resolution_importance=0", "--set", "run.grid=[1, 1]",
            "--set", "data.workers=0", "--set", "run.tick_kimg=0.004"]
    assert main(args) == 0
    (run,) = list((tmp_path / "r").iterdir())
    ps = [json.loads(line)["augment/p"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert any(p > 0 for p in ps)  # D is confident on reals early on: p rises from 0
    saved = load_snapshot(latest_snapshot(run)).extra["train"]["augment_p"]
    assert saved == pytest.approx(ps[-1], abs=0.05)
