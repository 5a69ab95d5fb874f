"""core.tools.inversion: recovering a known latent of the EG3D fixture (PSNR > 30 dB, W+, MSE), cameras on the look-at
orbit, LPIPS path, PTI on a copy, outputs that load back, cancel. (W space and camera optimisation: through the
CLI in test_exports_cli.py.)"""
from __future__ import annotations

import dataclasses
import json
import math
import threading

import numpy as np
import pytest
import torch

from core.metrics.fidelity import psnr
from core.tools.inversion import (InversionError, InversionSpec, invert, label_from_orbit, orbit_from_label,
                                  save_inversion)
from core.files.latent_files import load_camera, load_latent
from core.metrics.lpips import LPIPS
from core.model import load_model, model_from_snapshot
from core.tools.progress import Cancelled
from core.triplane import RenderOptions

FAST = dict(nrr=16, samples=(4, 4), w_avg_samples=64)


@pytest.fixture(scope="module")
def model(eg3d_snapshot, device):
    return model_from_snapshot(eg3d_snapshot, device)


@pytest.fixture(scope="module")
def bundled_model():
    """assets/default.pkl: the bundled model, the one with a student branch."""
    from pathlib import Path
    return load_model(Path(__file__).resolve().parents[2] / "assets" / "default.pkl", torch.device("cpu"))


@pytest.fixture(scope="module")
def target(model):
    """The fixture's image of a known latent (seed 7, psi 0.7) from a side view, at the test render settings."""
    ws = model.ws_from_seed(7, 0.7)
    cam = model.camera_label(0.3, -0.1)
    with torch.no_grad():
        image = model.render("sr2d", ws, cam, RenderOptions(resolution=16, depth_resolution=4,
                                                            depth_resolution_importance=4))["image"]
    return ws, cam, image


@pytest.mark.parametrize("yaw,pitch", [(0.0, 0.0), (0.4, -0.2), (-1.0, 0.3), (2.5, 0.1)])
def test_orbit_label_round_trip(model, yaw, pitch):
    label = model.camera_label(yaw, pitch, fov_deg=20.0)
    y, p, r, f = orbit_from_label(label)
    assert (y, p, r) == pytest.approx((yaw, pitch, model.radius), abs=1e-5)
    assert f == pytest.approx(float(label[0, 16]))
    back = label_from_orbit(torch.tensor(y, device=label.device), torch.tensor(p, device=label.device), model.pivot, r, f)
    torch.testing.assert_close(back, label, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_recovers_known_latent_w_plus_mse(model):
    """Acceptance: the fixture's image of seed 5 (psi 0.7, deterministic sampling) inverted in W+ with MSE for 300
    steps at the default recipe re-renders at >= 30 dB (the projector's lr 0.01 and latent noise gave 24.2 dB here;
    RECIPES["mse"] 33.2 dB)."""
    opts = RenderOptions(resolution=16, depth_resolution=4, depth_resolution_importance=4, deterministic=True)
    cam = model.camera_label()
    with torch.no_grad():
        image = model.render("sr2d", model.ws_from_seed(5, 0.7), cam, opts)["image"]
    reports = []
    spec = InversionSpec(space="w+", steps=300, loss="mse", preview_every=100, **FAST)
    result = invert(model, image, cam, spec, progress=reports.append)
    print(f"recovered latent: PSNR {result.psnr:.2f} dB after {result.steps_done} W+ steps")
    assert result.psnr >= 30.0, result.psnr
    assert result.history[0]["psnr"] < 20 < result.psnr                       # it did have to move
    assert result.ws.shape == (1, model.num_ws, model.w_dim)
    assert [r.done for r in reports] == list(range(1, 301)) and {r.stage for r in reports} == {"w+"}
    previews = [r.preview for r in reports if r.preview is not None]
    assert len(previews) == 3 and previews[0].shape == (128, 128, 3) and previews[0].dtype == np.uint8
    # the re-rendered image of the recovered latent matches the target
    with torch.no_grad():
        again = model.render("sr2d", result.ws, cam, opts)["image"]
    assert float(psnr(again, image, clamp=False).mean()) == pytest.approx(result.psnr, abs=1e-3)


def test_recipe_follows_the_loss():
    assert (InversionSpec(loss="lpips").lr, InversionSpec(loss="lpips").noise_factor) == (0.01, 0.05)
    mse = InversionSpec(loss="mse")
    assert (mse.lr, mse.lr_rampup, mse.noise_factor) == (0.05, 0.0, 0.0)
    assert InversionSpec(loss="mse", lr=0.02, noise_factor=0.1).lr == 0.02      # given values are kept


def test_several_photos_share_one_latent(model, target):
    """Two views of one latent: one ws, one camera per photo (both optimised), a loss over both."""
    ws_true, cam, image = target
    cam2 = model.camera_label(-0.3, 0.1)
    with torch.no_grad():
        image2 = model.render("sr2d", ws_true, cam2, RenderOptions(resolution=16, depth_resolution=4,
                                                                    depth_resolution_importance=4))["image"]
    reports = []
    result = invert(model, torch.cat([image, image2]), torch.cat([cam, cam2]),
                    InversionSpec(steps=2, loss="mse", optimize_camera=True, preview_every=1, **FAST),
                    progress=reports.append)
    assert result.ws.shape == (1, model.num_ws, model.w_dim) and result.camera.shape == (2, 25)
    assert len(result.psnrs) == 2 and result.image.shape[0] == 2
    yaws = [orbit_from_label(c)[0] for c in result.camera]
    assert yaws[0] == pytest.approx(0.3, abs=0.01) and yaws[1] == pytest.approx(-0.3, abs=0.01)
    assert yaws[0] != pytest.approx(0.3, abs=1e-7)                             # each camera was optimised
    assert reports[-1].preview.shape == (128, 256, 3)                           # both renders side by side


def test_fast_stage_needs_a_student(model, target):
    _, cam, image = target
    with pytest.raises(InversionError, match="has none"):
        invert(model, image, cam, InversionSpec(loss="mse", steps=1, fast_steps=2, **FAST))


def test_fast_stage_runs_through_the_student_then_refines(bundled_model):
    """The bundled model has a student: fast steps render through it (not ray marching), then sr2d refines."""
    m = bundled_model
    cam = m.camera_label(0.2, 0.0)
    with torch.no_grad():
        image = m.render("sr2d", m.ws_from_seed(3, 0.7), cam, RenderOptions(resolution=16, depth_resolution=4,
                                                                             depth_resolution_importance=4))["image"]
    calls = []
    real = m.student.forward

    def spy(*a, **kw):
        calls.append(1)
        return real(*a, **kw)
    m.student.forward = spy
    try:
        reports = []
        result = invert(m, image, cam, InversionSpec(loss="mse", steps=2, fast_steps=3, **FAST),
                        progress=reports.append)
    finally:
        del m.student.forward
    assert [(r.stage, r.done) for r in reports] == [("fast", 1), ("fast", 2), ("fast", 3), ("w+", 1), ("w+", 2)]
    assert [h["stage"] for h in result.history] == ["fast"] * 3 + ["w+"] * 2
    assert len(calls) >= 3                                                     # one student pass per fast step
    assert result.image.shape[-1] == m.img_resolution and result.steps_done == 2
    secs = [h["seconds"] for h in result.history]
    assert secs == sorted(secs)


@pytest.mark.slow
def test_lpips_loss_and_pti_on_a_copy(model, target, tmp_path):
    _, cam, image = target
    before = {k: v.clone() for k, v in model.G.state_dict().items()}
    lpips = LPIPS("alex", random_trunk=True)                                   # no ImageNet weights in tests
    result = invert(model, image, cam, InversionSpec(steps=2, loss="lpips", pti_steps=2, pti_lpips_threshold=0.0,
                                                     **FAST), lpips=lpips)
    assert "lpips" in result.history[0] and result.lpips is not None and result.tuned_lpips is not None
    assert result.pti_steps_done == 2 and result.tuned is not None and result.tuned is not model
    assert all(torch.equal(v, before[k]) for k, v in model.G.state_dict().items())    # original untouched
    tuned = result.tuned.G.state_dict()
    assert any(not torch.equal(tuned[k], before[k]) for k in before)
    assert not any(p.requires_grad for p in result.tuned.G.parameters())

    files = save_inversion(result, model, tmp_path / "out", video_frames=2, video_nrr=16)
    names = sorted(f.name for f in files)
    assert names == ["camera.npy", "compare.png", "inversion.json", "latent.npy", "network.pkl", "orbit.mp4"]
    out = tmp_path / "out"
    ws = load_latent(out / "latent.npy", model.num_ws, model.w_dim)
    assert torch.equal(ws, result.ws) and np.load(out / "latent.npy").shape == (model.num_ws, model.w_dim)
    torch.testing.assert_close(load_camera(out / "camera.npy"), result.camera)
    reloaded = load_model(out / "network.pkl")                                 # a Trident model file
    opts = RenderOptions(resolution=16, depth_resolution=4, depth_resolution_importance=4)
    with torch.no_grad():
        again = reloaded.render("sr2d", ws, result.camera, opts)["image"]
    torch.testing.assert_close(again, result.tuned_image, atol=1e-5, rtol=0)
    summary = json.loads((out / "inversion.json").read_text())
    assert summary["pti_steps"] == 2 and math.isclose(summary["psnr"], result.psnr)
    from PIL import Image
    assert Image.open(out / "compare.png").size == (3 * 128, 128)              # photo | inversion | PTI
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]               # no staging folder left
    # a rerun without PTI and video into the same folder does not leave the old tuned model / video beside it
    plain = dataclasses.replace(result, tuned=None, tuned_image=None, tuned_psnr=None, tuned_lpips=None)
    save_inversion(plain, model, out, video_frames=0)
    assert sorted(p.name for p in out.iterdir()) == ["camera.npy", "compare.png", "inversion.json", "latent.npy"]


@pytest.mark.slow
def test_cancel_midway_leaves_nothing(model, target, tmp_path):
    _, cam, image = target
    stop = threading.Event()

    def progress(p):
        if p.done == 2:
            stop.set()

    with pytest.raises(Cancelled):
        invert(model, image, cam, InversionSpec(steps=10, loss="mse", **FAST), progress=progress, cancel=stop)
    # cancelled while writing the outputs (during the orbit video): no output folder, no partial files
    result = invert(model, image, cam, InversionSpec(steps=1, loss="mse", **FAST))
    stop.clear()

    def progress_video(p):
        if p.stage == "frames" and p.done == 1:
            stop.set()

    with pytest.raises(Cancelled):
        save_inversion(result, model, tmp_path / "out", video_frames=4, video_nrr=16, progress=progress_video,
                       cancel=stop)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw,shape,message", [
    (dict(space="z"), None, "space must be"),
    (dict(loss="l1"), None, "loss must be"),
    (dict(steps=-1), None, "steps must be"),
    (dict(branch="student"), None, "not in this model"),
    (dict(nrr=2), None, "neural rendering resolution"),
    ({}, (1, 1, 128, 128), "target must be"),
])
def test_bad_inputs(model, target, kw, shape, message):
    _, cam, image = target
    img = torch.zeros(shape) if shape else image
    with pytest.raises(InversionError, match=message):
        invert(model, img, cam, InversionSpec(**{"loss": "mse", "steps": 1, **FAST, **kw}))
    with pytest.raises(InversionError, match="25 floats"):
        invert(model, image, cam[:, :24], InversionSpec(loss="mse", steps=1, **FAST))
