"""The bundled model in assets/ loads safely (plain-data Trident file), has the three branches and renders each."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.model import load_model
from core.triplane import RenderOptions

BUNDLED = Path(__file__).resolve().parents[1] / "assets" / "default.pkl"


@pytest.fixture(scope="module")
def model():
    assert BUNDLED.is_file(), "assets/default.pkl is missing"
    return load_model(BUNDLED)


@pytest.mark.slow
@torch.no_grad()
def test_bundled_model_renders_each_branch(model):
    assert torch.load(BUNDLED, weights_only=True, map_location="cpu")["format"] == "trident-snapshot"
    assert BUNDLED.stat().st_size <= 25_000_000  # the size limit for the shipped file
    assert model.branches == ("sr2d", "direct3d", "student")
    ws = model.ws_from_seed(0, truncation_psi=0.7)
    for branch in model.branches:
        for yaw in (-0.4, 0.4):
            img = model.render(branch, ws, model.camera_label(yaw, 0.0), RenderOptions())["image"]
            assert img.shape == (1, 3, model.img_resolution, model.img_resolution)
            assert torch.isfinite(img).all() and img.std() > 0.05  # a trained model draws an object, not a flat image
    provenance = model.snapshot.extra["provenance"]
    assert provenance["branches"] == list(model.branches)
    commands = provenance["commands"]
    for preset in ("mimic3d-stage1-synth-tiny", "mimic3d-stage2-synth-tiny"):  # both stages, then distillation
        assert any(cmd.startswith("python -m training train") and f"--config {preset}" in cmd for cmd in commands)
    assert commands[-2].startswith("python -m training distill") and commands[-1].startswith("python -m core pack")
    assert model.snapshot.G is None and model.snapshot.D is None  # packed: no training state shipped


@pytest.mark.slow
def test_bundled_direct3d_is_more_consistent_than_sr2d(model):
    """The issue's acceptance claim, on a few of the metric's own draws (the README reports 64 pairs): direct3d,
    rendered straight from the tri-planes, beats sr2d (2D super-resolution after rendering) on 3D consistency."""
    from core.metrics.consistency import model_consistency

    result = model_consistency(model, ["sr2d", "direct3d"], num_pairs=6)
    assert result["direct3d"].psnr > result["sr2d"].psnr
    assert min(r.coverage for r in result.values()) > 0.5  # the warps compare the object, not empty background
