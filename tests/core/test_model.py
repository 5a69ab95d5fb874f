"""core.model: the branch API every command and the viewer use."""
from __future__ import annotations

import pytest
import torch

from core.model import BranchError, Model, model_from_snapshot
from core.triplane import RenderOptions


@pytest.fixture(scope="module")
def model(eg3d_snapshot, device) -> Model:
    return model_from_snapshot(eg3d_snapshot, device)


def test_eg3d_model_has_only_sr2d(model):
    assert model.branches == ("sr2d",)
    with pytest.raises(BranchError, match="not in this model"):
        model.check_branch("student")
    with pytest.raises(BranchError, match="unknown branch"):
        model.check_branch("nerf")


@pytest.mark.slow
def test_render_matches_generator(model):
    opts = RenderOptions(resolution=16, depth_resolution=6, depth_resolution_importance=6)
    ws = model.ws_from_seed(3, truncation_psi=0.7)
    assert ws.shape == (1, model.num_ws, model.w_dim)
    c = model.camera_label(0.2, -0.1)
    with torch.no_grad():
        out = model.render("sr2d", ws, c, opts)
        ref = model.G.synthesis(ws, c, opts)
    assert torch.equal(out["image"], ref["image"])
    assert out["image_depth"].shape == (1, 1, 16, 16) and out["image_raw"].shape == (1, 3, 16, 16)


def test_render_broadcasts_one_camera_over_a_batch(model):
    opts = RenderOptions(resolution=16, depth_resolution=4, depth_resolution_importance=0)
    ws = torch.cat([model.ws_from_seed(s) for s in (0, 1)])
    out = model.render("sr2d", ws, model.camera_label(), opts)
    assert out["image"].shape[0] == 2
    assert not torch.equal(out["image"][0], out["image"][1])
