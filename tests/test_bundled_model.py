"""The bundled model in assets/ loads safely (plain-data Trident file) and renders every branch it has."""
from __future__ import annotations

from pathlib import Path

import torch

from core.model import load_model
from core.triplane import RenderOptions

BUNDLED = Path(__file__).resolve().parents[1] / "assets" / "default.pkl"


def test_bundled_model_renders_each_branch():
    assert BUNDLED.is_file(), "assets/default.pkl is missing"
    assert torch.load(BUNDLED, weights_only=True, map_location="cpu")["format"] == "trident-snapshot"
    model = load_model(BUNDLED)
    assert "sr2d" in model.branches
    ws = model.ws_from_seed(0, truncation_psi=0.7)
    for branch in model.branches:
        for yaw in (-0.4, 0.4):
            img = model.render(branch, ws, model.camera_label(yaw, 0.0), RenderOptions())["image"]
            assert img.shape == (1, 3, model.img_resolution, model.img_resolution)
            assert torch.isfinite(img).all() and img.std() > 0.05  # a trained model draws an object, not a flat image
    provenance = model.snapshot.extra["provenance"]
    assert provenance["branches"] == list(model.branches)
    assert any(cmd.startswith("python -m training train") for cmd in provenance["commands"])
    if "student" in model.branches:
        assert any(cmd.startswith("python -m training distill") for cmd in provenance["commands"])
    assert model.snapshot.G is None and model.snapshot.D is None  # packed: no training state shipped
