"""Zoom: the ray interval follows the camera distance (issue 16, item 2), for every volume-rendered branch and the
commands alike. A dolly zoom (camera at distance R, focal scaled by R / r) must show the same picture as the
training camera at r; with EG3D's fixed bounds [2.25, 3.3] it shows grey fog (R = 3.7) or a cut-off face (2.43)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import rendering
from core.__main__ import main
from core.cameras import focal_to_fov, fov_to_focal
from core.conventions import DEFAULT_FOV_DEG
from core.model import load_model

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "assets" / "default.pkl"


def dolly_fov(radius: float, base_radius: float) -> float:
    return focal_to_fov(fov_to_focal(DEFAULT_FOV_DEG) * radius / base_radius)


@pytest.fixture(scope="module")
def bundled():
    return load_model(BUNDLED)


@pytest.mark.parametrize("branch", ["sr2d", "direct3d"])
@pytest.mark.parametrize("radius", [2.43, 3.7, 6.0])
def test_dolly_zoom_shows_the_same_head(bundled, branch, radius):
    m = bundled
    ws = m.ws_from_seed(0, 0.7)
    with torch.no_grad():
        ref = m.render(branch, ws, m.camera_label(0.0, 0.0))["image"]
        img = m.render(branch, ws, m.camera_label(0.0, 0.0, radius=radius,
                                                 fov_deg=dolly_fov(radius, m.radius)))["image"]
    mae = float((img - ref).abs().mean())   # images in [-1, 1]; fixed bounds gave 0.25 (2.43) .. 1.08 (6.0)
    assert mae < 0.1, mae


def test_training_distance_keeps_eg3d_bounds_exactly():
    """Cameras at the training distance get the configured floats (bit-exact EG3D); others per-ray bounds."""
    origins = torch.tensor([[[0.0, 0.0, 2.7]]]).expand(1, 4, 3)
    assert rendering.camera_ray_bounds(origins, 2.25, 3.3, 2.7) == (2.25, 3.3)
    near, far = rendering.camera_ray_bounds(origins * 2, 2.25, 3.3, 2.7)
    assert torch.allclose(near, torch.full((1, 4, 1), 2.25 + 2.7)) and torch.allclose(far, torch.full((1, 4, 1), 6.0))
    near, _ = rendering.camera_ray_bounds(origins * 0.1, 2.25, 3.3, 2.7)   # inside the slab: never behind the camera
    assert float(near.min()) > rendering.MIN_NEAR - 1e-6


@pytest.mark.slow
def test_samples_command_follows_the_radius(tmp_path):
    net = str(BUNDLED)
    base = ["samples", "--network", net, "--seeds", "1", "--branch", "sr2d"]
    assert main(base + ["--outdir", str(tmp_path / "a")]) == 0
    far = 3.7
    assert main(base + ["--radius", str(far), "--fov-deg", repr(dolly_fov(far, 2.7)),
                        "--outdir", str(tmp_path / "b")]) == 0
    a = np.asarray(Image.open(tmp_path / "a" / "seed0001.png"), dtype=np.float64)
    b = np.asarray(Image.open(tmp_path / "b" / "seed0001.png"), dtype=np.float64)
    assert np.abs(a - b).mean() < 12, np.abs(a - b).mean()   # 0..255; fixed bounds: about 95
