"""core.student: shapes, camera conditioning, initialisation from the teacher, the model-file round trip."""
from __future__ import annotations

import io

import pytest
import torch

from core import ops
from core.files.checkpoint import save_snapshot
from core.config import ConfigError
from core.model import load_model
from core.errors import CheckpointError
from core.student import (StudentConfig, StudentGenerator, build_student, init_from_teacher, set_camera_statistics,
                          student_config_for_teacher, student_payload)
from core.triplane import RenderOptions

TINY = dict(style_dim=32, mapping_layers=2, channel_base=512, channel_max=32)


@pytest.fixture(scope="module")
def student(eg3d_G_dev, device) -> StudentGenerator:
    torch.manual_seed(0)
    s = StudentGenerator(student_config_for_teacher(eg3d_G_dev, **TINY)).to(device).eval()
    init_from_teacher(s, eg3d_G_dev, num_samples=64)
    return s


@pytest.fixture(scope="module")
def ws(eg3d_G_dev, device) -> torch.Tensor:
    z = torch.randn(2, eg3d_G_dev.z_dim, generator=torch.Generator().manual_seed(1)).to(device)
    c = torch.zeros(2, 25, device=device)
    with torch.no_grad():
        return eg3d_G_dev.mapping(z, c)


def _cams(*yaws: float, device=None) -> torch.Tensor:
    from core.cameras import Camera
    return Camera.frontal_offset(torch.tensor(yaws), 0.0).to_label().to(device)


def test_interfaces_come_from_the_teacher(student, eg3d_G):
    cfg = student.cfg
    assert (cfg.w_dim, cfg.num_ws, cfg.c_dim) == (eg3d_G.w_dim, eg3d_G.num_ws, 25)
    assert cfg.feature_resolution == eg3d_G.cfg.neural_rendering_resolution == 64
    assert cfg.feature_channels == 32 and cfg.img_resolution == 128 and cfg.sr_kind == "2X"


def test_shapes(student, ws):
    out = student(ws, _cams(0.0, 0.3, device=ws.device))
    assert out["feature_image"].shape == (2, 32, 64, 64)
    assert out["image_raw"].shape == (2, 3, 64, 64)
    assert out["image"].shape == (2, 3, 128, 128)
    assert torch.equal(out["image_raw"], out["feature_image"][:, :3])
    assert all(torch.isfinite(v).all() for v in out.values())


@pytest.mark.slow
def test_camera_conditioning(student, ws):
    w = ws[:1].expand(3, -1, -1)
    with torch.no_grad():
        out = student(w, _cams(0.0, 0.4, 0.0, device=ws.device))["image"]
        again = student(w, _cams(0.0, 0.4, 0.0, device=ws.device))["image"]
    assert not torch.allclose(out[0], out[1], atol=1e-3)   # same w, different camera: different image
    assert torch.equal(out[0], out[2])                      # same w, same camera: the same image
    assert torch.equal(out, again)                          # deterministic (no noise)


def test_inference_path_matches_training_path(student, ws):
    c = _cams(0.1, -0.2, device=ws.device)
    with torch.no_grad():
        fast = student(ws, c)                               # per-sample, folded-gain inference convolutions
    slow = student(ws, c)                                   # autograd path, whole batch
    for k in fast:
        torch.testing.assert_close(fast[k], slow[k].detach(), atol=2e-4, rtol=1e-4)


def test_teacher_super_resolution_is_copied(student, eg3d_G_dev, ws):
    """Teacher features into the student's SR head give the teacher's own image: the head starts as the teacher's."""
    c = _cams(0.2, device=ws.device)
    opts = RenderOptions(resolution=64, depth_resolution=6, depth_resolution_importance=6)
    with torch.no_grad():
        ref = eg3d_G_dev.synthesis(ws[:1], c, opts)
        img = student.superresolution(ref["feature_image"][:, :3], ref["feature_image"], ws[:1])
    torch.testing.assert_close(img, ref["image"], atol=1e-5, rtol=1e-5)


def test_ws_statistics_from_the_teacher(student, eg3d_G_dev):
    assert torch.equal(student.mapping.w_avg, eg3d_G_dev.backbone.mapping.w_avg)
    assert 0 < float(student.mapping.w_scale) < float("inf")


def test_camera_statistics_standardise_the_label(eg3d_G):
    s = StudentGenerator(student_config_for_teacher(eg3d_G, **TINY))
    cams = _cams(*torch.linspace(-0.5, 0.5, 33).tolist())
    set_camera_statistics(s, cams)
    z = (cams - s.mapping.c_mean) * s.mapping.c_scale
    std = cams.std(0)
    varying, constant = std > 0.05, std < 1e-6
    torch.testing.assert_close(z[:, varying].std(0), torch.ones(int(varying.sum())))  # pose entries: unit std
    torch.testing.assert_close(z[:, constant], torch.zeros_like(z[:, constant]), atol=1e-6, rtol=0)  # centred
    assert float(s.mapping.c_scale.max()) <= 20.0                                     # min std 0.05


def test_light_head_starts_as_upsampled_raw(eg3d_G, ws):
    torch.manual_seed(0)
    s = StudentGenerator(student_config_for_teacher(eg3d_G, **TINY, sr_kind="light", sr_channels=[16])).to(ws.device).eval()
    with torch.no_grad():
        out = s(ws, _cams(0.0, 0.1, device=ws.device))
    up = ops.upsample2d(out["image_raw"], s.superresolution.block0.f1d)
    torch.testing.assert_close(out["image"], up, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="needs 1 positive channel"):
        student_config_for_teacher(eg3d_G, sr_kind="light", sr_channels=[16, 8])


def test_config_errors():
    with pytest.raises(ConfigError, match="power of two"):
        StudentConfig(feature_resolution=48)
    with pytest.raises(ConfigError, match="outputs 128 px"):
        StudentConfig(img_resolution=256, sr_kind="2X")
    with pytest.raises(ConfigError, match="equal feature_resolution"):
        StudentConfig(img_resolution=128, feature_resolution=64, sr_kind=None)
    with pytest.raises(ConfigError, match="not light"):
        StudentConfig(sr_kind="9X")


def test_payload_round_trip_weights_only(student, ws):
    buf = io.BytesIO()
    torch.save(student_payload(student), buf)
    buf.seek(0)
    again = build_student(torch.load(buf, weights_only=True), ws.device)
    c = _cams(0.3, -0.3, device=ws.device)
    with torch.no_grad():
        assert torch.equal(again(ws, c)["image"], student(ws, c)["image"])
    with pytest.raises(CheckpointError, match="not {'config'"):
        build_student({"config": {}})
    bad = student_payload(student)
    bad["config"]["style_dim"] = "wide"
    with pytest.raises(CheckpointError, match="bad student config"):
        build_student(bad)


@torch.no_grad()
def test_student_branch_in_a_trident_file(student, eg3d_snapshot, ws, tmp_path):
    """One file holds the teacher and the student; load_model exposes both branches through Model.render."""
    snap = eg3d_snapshot
    import dataclasses
    path = tmp_path / "with_student.pkl"
    save_snapshot(path, dataclasses.replace(snap, extra={"student": student_payload(student)}))
    model = load_model(path, ws.device)
    assert model.branches == ("sr2d", "student")
    c = _cams(0.25, device=ws.device)
    out = model.render("student", ws[:1], c)
    assert set(out) == {"image", "image_raw"}
    with torch.no_grad():
        assert torch.equal(out["image"], student(ws[:1], c)["image"])


@pytest.mark.slow
def test_bench_student_rows(student, eg3d_snapshot, tmp_path):
    """`python -m core bench` times the student inside --network against its teacher (no wall-clock asserts)."""
    import dataclasses
    import json

    from tests.core.test_bench import run_cli

    path = tmp_path / "with_student.pkl"
    save_snapshot(path, dataclasses.replace(eg3d_snapshot, extra={"student": student_payload(student)}))
    out = tmp_path / "b.json"
    proc = run_cli("--quick", "--no-reference", "--device", "cpu", "--threads", "1", "--network", str(path),
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(out.read_text())["student_rows"]
    assert row["student"] == "fixture" and row["source"] == "file" and row["batch"] == 1
    assert row["image_resolution"] == 128 and row["nrr"] == 64 and row["sr_kind"] == "2X"
    assert row["ms_per_image_student"] > 0 and row["ms_per_image_teacher"] > 0 and row["peak_mb_student"] >= 0
    assert row["speedup"] == pytest.approx(row["ms_per_image_teacher"] / row["ms_per_image_student"])
    assert "student ms/img" in proc.stdout
    bad = run_cli("--quick", "--students", "nope", "--out", str(tmp_path / "c.json"))
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --students")


@pytest.mark.slow
def test_fidelity_metric(student, eg3d_snapshot, tmp_path, monkeypatch, capsys):
    """`python -m core metrics --metrics fidelity`: the student's PSNR against its teacher on held-out draws; LPIPS
    where the trunk weights exist, otherwise null with the reason."""
    import dataclasses
    import json

    import numpy as np

    from core.__main__ import main
    from core.metrics.lpips import LPIPS
    from core.metrics.fidelity import branch_fidelity, held_out_draws, psnr

    path = tmp_path / "with_student.pkl"
    save_snapshot(path, dataclasses.replace(eg3d_snapshot, extra={"student": student_payload(student)}))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))  # no VGG16 trunk here, whatever the machine has
    out = tmp_path / "m.json"
    assert main(["metrics", "--network", str(path), "--metrics", "fidelity", "--pairs", "2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())["fidelity"]
    assert (res["branch"], res["teacher"], res["pairs"]) == ("student", "sr2d", 2) and len(res["psnr_per_pair"]) == 2
    assert np.isfinite(res["psnr"]) and np.isfinite(res["psnr_raw"])
    assert res["lpips"] is None and "vgg16" in res["lpips_note"]
    assert "fidelity student vs sr2d" in capsys.readouterr().out

    # the protocol by hand for the first draw: frontal-conditioned latent, orbit camera, deterministic teacher
    model = load_model(path)
    yaw, pitch = held_out_draws(2, 0)
    w = model.mapping(torch.from_numpy(np.random.RandomState(0).randn(1, model.z_dim)).float(), None)
    c = model.camera_label(float(yaw[0]), float(pitch[0]))
    opts = RenderOptions(deterministic=True, noise_mode="const")
    with torch.no_grad():
        expect = psnr(model.render("student", w, c, opts)["image"], model.render("sr2d", w, c, opts)["image"])
    assert res["psnr_per_pair"][0] == pytest.approx(float(expect), abs=1e-4)
    # with an LPIPS network the distance is reported (a seeded random trunk stands in for the VGG16 weights)
    r = branch_fidelity(model, 2, lpips=LPIPS("vgg", random_trunk=True))
    assert r.lpips is not None and r.lpips > 0 and r.psnr == pytest.approx(res["psnr"], abs=1e-4)
    # a model without a student: one error line
    assert main(["metrics", "--network", str(tmp_path / "none.pkl"), "--metrics", "fidelity"]) == 2
    save_snapshot(tmp_path / "teacher.pkl", eg3d_snapshot)
    assert main(["metrics", "--network", str(tmp_path / "teacher.pkl"), "--metrics", "fidelity"]) == 2
    assert "fidelity:" in capsys.readouterr().err
