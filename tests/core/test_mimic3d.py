"""Mimic3D: the reference fixture through the samples CLI (both branches), patch alignment, snapshot round trip."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.__main__ import main
from core.cameras import Camera
from core.build import build_generator
from core.files.checkpoint import save_snapshot, snapshot_from_modules
from core.model import load_model
from core.rendering import PatchWindows, crop_patches, sample_patch_windows, sample_triplane
from core.triplane import RenderOptions
from tests.conftest import tiny_mimic3d_config

ROOT = Path(__file__).resolve().parents[2]
MAE, MAX = 1e-3, 2e-2  # tolerance stated in the fixture's README
# npz key written by `samples` -> fixture key prefix, per branch
BRANCH_KEYS = {"sr2d": {"image": "image", "image_raw": "image_raw", "image_depth": "image_depth"},
               "direct3d": {"image": "direct", "image_depth": "direct_depth"}}


def assert_close(name: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape, f"{name}: {got.dtype} {got.shape} vs {want.shape}"
    d = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert d.mean() < MAE and d.max() < MAX, f"{name}: mean abs err {d.mean():.3g}, max {d.max():.3g}"


def samples_argv(fixture_dir: Path, expected: dict, branch: str, pose: int, outdir: Path, device) -> list[str]:
    """The samples command that reproduces the fixture's pose ``pose``, read from the fixture itself."""
    seeds = [int(s) for s in expected["seeds"]]
    assert seeds == list(range(seeds[0], seeds[-1] + 1))
    yaw, pitch = (float(v) for v in expected["poses_yaw_pitch"][pose])
    return ["samples", "--network", str(fixture_dir / "network.pkl"), "--seeds", f"{seeds[0]}-{seeds[-1]}",
            "--trunc", "0.7", "--yaw", repr(yaw), "--pitch", repr(pitch), "--fov-deg", repr(float(expected["fov_deg"])),
            "--branch", branch, "--deterministic", "--save-npz", "--outdir", str(outdir), "--device", str(device)]


def check_outputs(outdir: Path, expected: dict, branch: str, pose: int) -> None:
    for i, seed in enumerate(int(s) for s in expected["seeds"]):
        with np.load(outdir / f"seed{seed:04d}.npz") as f:
            arrays = {k: f[k] for k in f.files}
        assert set(arrays) == set(BRANCH_KEYS[branch]) | {"ws"}, sorted(arrays)
        assert_close("ws", arrays["ws"], expected["ws_psi070"][i])
        for key, ref in BRANCH_KEYS[branch].items():
            assert_close(f"{branch} {key} seed {seed} pose {pose}", arrays[key], expected[f"{ref}_psi070_pose{pose}"][i])


def test_config_read_from_pickle(mimic3d_snapshot, mimic3d_fixture_dir):
    import json
    ref = json.loads((mimic3d_fixture_dir / "config.json").read_text())
    g = mimic3d_snapshot.generator
    assert g.rendering.plane_convention == "mimic3d" and g.const_batch_dim
    assert list(g.aware3d_res) == ref["aware3d_res"] and g.detail_blocks == -ref["retidx"][0] - 1
    assert (g.triplane_resolution, g.img_resolution, g.neural_rendering_resolution) == (
        ref["triplane_resolution"], ref["img_resolution"], ref["neural_rendering_resolution"])
    assert mimic3d_snapshot.patch_discriminator is not None and not mimic3d_snapshot.patch_discriminator.dual
    assert mimic3d_snapshot.patch_discriminator.c_dim == 0 and mimic3d_snapshot.D_patch


@pytest.mark.slow
def test_acceptance_command_direct3d(mimic3d_fixture_dir, mimic3d_expected, tmp_path, device):
    """The documented command in a fresh process: `python -m core samples --branch direct3d ... --save-npz`."""
    argv = samples_argv(mimic3d_fixture_dir, mimic3d_expected, "direct3d", 1, tmp_path, device)
    proc = subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    check_outputs(tmp_path, mimic3d_expected, "direct3d", 1)


@pytest.mark.parametrize("branch,pose", [("sr2d", 0), ("sr2d", 1), ("direct3d", 0)])
def test_samples_reproduce_fixture(mimic3d_fixture_dir, mimic3d_expected, tmp_path, branch, pose, device):
    assert main(samples_argv(mimic3d_fixture_dir, mimic3d_expected, branch, pose, tmp_path, device)) == 0
    check_outputs(tmp_path, mimic3d_expected, branch, pose)


def test_model_branches(mimic3d_fixture_dir, eg3d_fixture_dir):
    assert load_model(mimic3d_fixture_dir / "network.pkl").branches == ("sr2d", "direct3d")
    assert load_model(eg3d_fixture_dir / "network.pkl").branches == ("sr2d",)


# ----------------------------------------------------------------------------------------------------------
# tiny random model: rendering options, patches, round trip


@pytest.mark.slow
def test_direct3d_fidelity_to_sr2d(mimic3d_fixture_dir, tmp_path, capsys, device):
    """`metrics --metrics fidelity` on a model without a student scores direct3d against the sr2d image it imitates."""
    import json
    out = tmp_path / "f.json"
    assert main(["metrics", "--network", str(mimic3d_fixture_dir / "network.pkl"), "--metrics", "fidelity",
                 "--pairs", "1", "--out", str(out), "--device", str(device)]) == 0
    res = json.loads(out.read_text())["fidelity"]
    assert (res["branch"], res["teacher"], res["psnr_raw"]) == ("direct3d", "sr2d", None)
    assert 5 < res["psnr"] < 60  # random weights (the fixture): different, not unrelated images
    assert main(["metrics", "--network", str(mimic3d_fixture_dir / "network.pkl"), "--metrics", "fidelity",
                 "--branch", "sr2d"]) == 2
    assert "both sr2d" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_G():
    torch.manual_seed(0)
    G = build_generator(tiny_mimic3d_config())
    with torch.no_grad():  # random weights put little density in the box; shift it so renders have content
        G.decoder.net[2].bias[0] += 3.0
    return G


def _cams(n: int, radius: float = 2.7) -> torch.Tensor:
    return torch.cat([Camera.frontal_offset(0.3 * i - 0.2, 0.1 * i, (0, 0, 0.2), radius).to_label() for i in range(n)])


def test_triplane_options(tiny_G):
    ws = torch.randn(1, tiny_G.num_ws, 16)
    c = _cams(1)
    pts = torch.rand(1, 50, 3) - 0.5
    with torch.no_grad():
        planes = tiny_G.triplanes(ws)
        out = {w: tiny_G.synthesis_direct3d(ws, c, RenderOptions(triplanes=w, resolution=12), planes=planes)
               for w in ("coarse", "detail", "both")}
        # "both": the decoder sees the sum of the coarse and detail samples (SeanChenxy/Mimic3D:
        # training/volumetric_rendering/renderer.py)
        both = tiny_G.sample_planes(tiny_G.select_triplanes(planes, "both"), pts)
        rgb, sigma = tiny_G.decoder(sample_triplane(planes[0], pts, 1.0, "mimic3d")
                                    + sample_triplane(planes[1], pts, 1.0, "mimic3d"))
    torch.testing.assert_close(both["sigma"], sigma)
    torch.testing.assert_close(both["rgb"], rgb)
    assert out["both"]["image"].shape == (1, 3, 12, 12)
    assert not torch.allclose(out["coarse"]["image"], out["both"]["image"])
    assert not torch.allclose(out["detail"]["image"], out["both"]["image"])
    with pytest.raises(ValueError, match="triplanes must be one of"):
        tiny_G.synthesis_direct3d(ws, c, RenderOptions(triplanes="all"), planes=planes)


@pytest.mark.slow
def test_direct3d_default_resolution_and_chunking(tiny_G):
    ws = torch.randn(2, tiny_G.num_ws, 16)
    c = _cams(2)
    with torch.no_grad():
        a = tiny_G.synthesis_direct3d(ws, c, RenderOptions(chunk=None))
        b = tiny_G.synthesis_direct3d(ws, c, RenderOptions(chunk=77), planes=a["planes"])
    assert a["image"].shape == (2, 3, 32, 32) and a["image_depth"].shape == (2, 1, 32, 32)
    torch.testing.assert_close(a["image"], b["image"], rtol=0, atol=1e-5)
    torch.testing.assert_close(a["image_depth"], b["image_depth"], rtol=0, atol=1e-5)


def test_patch_aligns_with_crop_of_full_render(tiny_G):
    """A patch at full-image density is, pixel for pixel, the crop of the full render (Mimic3D's patch ray sampler)."""
    ws = torch.randn(2, tiny_G.num_ws, 16)
    c = _cams(2)
    gen = torch.Generator().manual_seed(5)
    win = sample_patch_windows(2, size=8, patch_scale=0.25, generator=gen)
    assert win.full == 32 and win.top.shape == (2,)
    win = PatchWindows(32, 8, torch.tensor([3, 20]), torch.tensor([17, 0]))  # distinct windows per sample
    with torch.no_grad():
        planes = tiny_G.triplanes(ws)
        full = tiny_G.synthesis_direct3d(ws, c, RenderOptions(resolution=32), planes=planes)
        patch = tiny_G.synthesis_patch(ws, c, win, RenderOptions(), planes=planes)
    assert patch["image"].shape == (2, 3, 8, 8)
    for key in ("image", "image_depth"):
        torch.testing.assert_close(patch[key], crop_patches(full[key], win), rtol=0, atol=2e-5)
    # a window one pixel off does not line up
    off = PatchWindows(32, 8, win.top + 1, win.left)
    assert (crop_patches(full["image"], off) - patch["image"]).abs().max() > 1e-2


def test_patch_windows_distribution_and_errors():
    gen = torch.Generator().manual_seed(0)
    win = sample_patch_windows(4000, size=4, patch_scale=0.5, generator=gen)
    assert win.full == 8
    for t in (win.top, win.left):
        counts = torch.bincount(t, minlength=5)
        assert counts.numel() == 5 and counts.min() > 600  # uniform over [0, full - size], both ends included
    with pytest.raises(ValueError, match="inside"):
        PatchWindows(8, 4, torch.tensor([5]), torch.tensor([0]))
    with pytest.raises(ValueError, match="patch_scale"):
        sample_patch_windows(1, 4, 1.5)
    with pytest.raises(ValueError, match="belong to"):
        crop_patches(torch.zeros(1, 3, 16, 16), PatchWindows(8, 4, torch.tensor([0]), torch.tensor([0])))


@torch.no_grad()
def test_trident_round_trip_is_bit_identical(tiny_G, tmp_path):
    path = tmp_path / "m3d.pkl"
    save_snapshot(path, snapshot_from_modules(tiny_G))
    model = load_model(path)
    assert model.branches == ("sr2d", "direct3d")
    assert type(model.G) is type(tiny_G) and model.G.cfg == tiny_G.cfg
    ws = torch.randn(1, tiny_G.num_ws, 16)
    c = _cams(1)
    for branch in model.branches:
        a = model.render(branch, ws, c)
        with torch.no_grad():
            b = tiny_G.synthesis(ws, c) if branch == "sr2d" else tiny_G.synthesis_direct3d(ws, c)
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["image_depth"], b["image_depth"]), branch


def test_stage1_model_has_no_direct3d(tmp_path):
    torch.manual_seed(1)
    G = build_generator(tiny_mimic3d_config(detail_blocks=0))
    assert not G.has_direct3d and len(G.triplanes(torch.randn(1, G.num_ws, 16))) == 1
    save_snapshot(tmp_path / "s1.pkl", snapshot_from_modules(G))
    model = load_model(tmp_path / "s1.pkl")
    assert model.branches == ("sr2d",)
    with pytest.raises(ValueError, match="no detail"):
        G.synthesis_direct3d(torch.randn(1, G.num_ws, 16), _cams(1))


def test_patch_gradients_reach_detail_blocks_and_backbone():
    """The imitation loss trains the 3D branch through the patch: detail blocks, 3D-aware chain, main blocks."""
    torch.manual_seed(2)
    G = build_generator(tiny_mimic3d_config()).train().requires_grad_(True)
    ws = torch.randn(2, G.num_ws, 16)
    win = sample_patch_windows(2, size=4, patch_scale=0.125, generator=torch.Generator().manual_seed(0))
    out = G.synthesis_patch(ws, _cams(2), win, RenderOptions(deterministic=False, noise_mode="random"))
    out["image"].square().mean().backward()
    syn = G.backbone.synthesis
    for p in (syn.b3d16.block2.conv0.weight, syn.b3d16.block3.torgb.weight, syn.b3d4.block.conv1.weight,
              syn.b8.conv0.weight, G.decoder.net[0].weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
