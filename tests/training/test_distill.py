"""Distillation: a CPU smoke run from the EG3D fixture teacher through the CLI (reconstruction improves, stage 2,
snapshots that core renders, resume), exact resume at function level, pair sampling, errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.__main__ import main as core_main
from core.cameras import Camera
from core.files.checkpoint import load_snapshot
from core.model import load_model
from core.triplane import RenderOptions
from training.distill import loop as distill
from training.__main__ import main
from training.dataset_tool import Item, write_dataset
from training.distill.config import load_distill_config

FAST = ["--set", "teacher.depth_resolution=6", "--set", "teacher.depth_resolution_importance=6",
        "--set", "run.grid=[2, 1]", "--set", "run.eval_pairs=4", "--set", "optim.batch_gpu=4", "--device", "cpu"]


def _records(run: Path) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    return [r for r in lines if "tick" in r], [r for r in lines if "eval/psnr" in r]


@pytest.fixture(scope="module")
def teacher_snap(eg3d_fixture_dir):
    return load_snapshot(eg3d_fixture_dir / "network.pkl")


@pytest.mark.slow
def test_cli_smoke_run_from_eg3d_fixture(eg3d_fixture_dir, tmp_path, capsys, device):
    out = tmp_path / "runs"
    teacher = str(eg3d_fixture_dir / "network.pkl")
    args = ["distill", "--teacher", teacher, "--config", "distill-tiny", "--outdir", str(out), "--kimg", "0.04",
            "--snap-kimg", "0.02", "--set", "run.tick_kimg=0.008", "--set", "loss.adv_start_kimg=0.024", *FAST, "--device", str(device)]
    assert main(args) == 0
    (run,) = list(out.iterdir())
    ticks, evals = _records(run)
    assert [round(r["kimg"], 3) for r in ticks] == [0.008, 0.016, 0.024, 0.032, 0.04]
    assert [r["schedule/stage"] for r in ticks] == [1, 1, 1, 2, 2]
    assert all(math.isfinite(v) for r in ticks for k, v in r.items() if k.startswith("loss/"))
    assert {"loss/S_adv", "loss/D_real", "loss/D_fake", "loss/D_r1"} <= set(ticks[-1]) | set(ticks[-2])
    # reconstruction improves: training loss, and the held-out scores of the student's EMA against the teacher
    assert ticks[-1]["loss/recon"] < 0.8 * ticks[0]["loss/recon"]
    assert [r["kimg"] for r in evals] == [0.0, 0.02, 0.04]
    assert evals[-1]["eval/feature_l1"] < 0.8 * evals[0]["eval/feature_l1"]
    assert evals[-1]["eval/image_l1"] < 0.8 * evals[0]["eval/image_l1"]
    assert evals[-1]["eval/psnr"] > evals[0]["eval/psnr"] + 3
    assert "eval/lpips" not in evals[-1]                       # no LPIPS weights in this preset
    assert (run / "config.yaml").exists() and list(run.glob("compare*.png"))

    # the snapshot: one weights-only file with the teacher (unchanged) and the student
    snap_path = sorted(run.glob("network-snapshot-*.pkl"))[-1]
    raw = torch.load(snap_path, weights_only=True)
    assert set(raw["extra"]) >= {"student", "distill"}
    snap = load_snapshot(snap_path)
    src = load_snapshot(teacher)
    assert all(torch.equal(snap.G_ema[k], v) for k, v in src.G_ema.items())
    assert all(torch.equal(snap.D[k], v) for k, v in src.D.items())  # the teacher's own D is kept as it was
    model = load_model(snap_path)
    assert model.branches == ("sr2d", "student")
    assert core_main(["samples", "--network", str(snap_path), "--seeds", "0-1", "--branch", "student", "--yaw", "0.3",
                      "--save-npz", "--outdir", str(tmp_path / "s"), "--device", str(device)]) == 0
    with np.load(tmp_path / "s" / "seed0001.npz") as f:
        assert f["image"].shape == (3, 128, 128) and f["image_raw"].shape == (3, 64, 64) and "image_depth" not in f

    # --resume auto continues the same run (the teacher comes from the snapshot)
    assert main(["distill", "--config", "distill-tiny", "--outdir", str(out), "--kimg", "0.048",
                 "--resume", "auto", "--device", str(device)]) == 0
    assert list(out.iterdir()) == [run]
    ticks, evals = _records(run)
    assert [round(r["kimg"], 3) for r in ticks][-1] == 0.048 and len(evals) == 4
    capsys.readouterr()


@pytest.mark.slow
def test_resume_is_exact(teacher_snap, tmp_path):
    """2 + 2 steps with a snapshot in between equal 4 steps in one go (weights, EMA, D, optimisers, RNG)."""
    cfg = load_distill_config("distill-tiny", ["optim.batch=2", "loss.adv_start_kimg=0.002", "loss.r1_interval=2",
                                               "teacher.depth_resolution=4", "teacher.depth_resolution_importance=4"])
    dev = torch.device("cpu")
    a = distill.build_distiller(cfg, teacher_snap, dev)
    for _ in range(4):
        a_stats = distill.distill_step(a)
    b = distill.build_distiller(cfg, teacher_snap, dev)
    for _ in range(2):
        distill.distill_step(b)
    path = tmp_path / "half.pkl"
    distill.save_distill_snapshot(b, path)
    c = distill.build_distiller(cfg, load_snapshot(path), dev)
    distill.restore_distill_snapshot(c, load_snapshot(path))
    assert c.progress.cur_nimg == 4
    for _ in range(2):
        c_stats = distill.distill_step(c)
    assert a_stats["schedule/stage"] == 2 and a_stats == c_stats
    for ma, mc in ((a.student, c.student), (a.student_ema, c.student_ema), (a.D, c.D)):
        for (k, va), vc in zip(ma.state_dict().items(), mc.state_dict().values()):
            assert torch.equal(va, vc), k


@pytest.mark.slow
def test_student_warm_start(teacher_snap, tmp_path):
    """--init-student copies a trained student's weights but keeps the new teacher's ws and camera statistics."""
    cfg = load_distill_config("distill-tiny", ["optim.batch=2", "teacher.depth_resolution=4",
                                               "teacher.depth_resolution_importance=4"])
    dev = torch.device("cpu")
    a = distill.build_distiller(cfg, teacher_snap, dev)
    distill.distill_step(a)
    path = tmp_path / "a.pkl"
    distill.save_distill_snapshot(a, path)
    payload = load_snapshot(path).extra["student"]
    cams = load_distill_config("distill-tiny", ["optim.batch=2", "sampling.yaw_std=0.6"])
    b = distill.build_distiller(cams, teacher_snap, dev, student_init=payload)
    fresh = distill.build_distiller(cams, teacher_snap, dev)
    sa, sb, sf = a.student_ema.state_dict(), b.student.state_dict(), fresh.student.state_dict()
    for k in sb:
        assert torch.equal(sb[k], sf[k] if k in distill.STATISTICS else sa[k]), k
    assert not torch.equal(sb["mapping.c_scale"], sa["mapping.c_scale"])  # wider yaw spread: new statistics
    other = load_distill_config("distill-tiny", ["optim.batch=2", "student.style_dim=32"])
    with pytest.raises(distill.ConfigError, match="another architecture"):
        distill.build_distiller(other, teacher_snap, dev, student_init=payload)


def test_pair_sampling(teacher_snap, tmp_path):
    cfg = load_distill_config("distill-tiny", ["sampling.truncation_psi=[0.0, 0.0]", "sampling.cond_frontal_prob=1.0",
                                               "loss.adv_weight=0"])
    d = distill.build_distiller(cfg, teacher_snap, torch.device("cpu"))
    assert d.D is None
    ws, c = distill.sample_pairs(d, 64, torch.Generator().manual_seed(0))
    assert ws.shape == (64, d.teacher.num_ws, d.teacher.w_dim) and c.shape == (64, 25)
    torch.testing.assert_close(ws[:, :14], d.teacher.G.backbone.mapping.w_avg.expand(64, 14, -1))  # psi 0
    cam = Camera.from_label(c)
    assert torch.allclose(cam.origin.norm(dim=1), torch.full((64,), 2.7), atol=1e-4)  # on the teacher's orbit
    yaw = torch.atan2(cam.origin[:, 0], cam.origin[:, 2])
    assert yaw.abs().max() <= math.radians(35) + 1e-4 and yaw.std() > 0.1
    # cameras from a dataset's labels
    labels = np.stack([Camera.frontal_offset(y, 0.0).to_label()[0].numpy() for y in (-0.4, 0.4)])
    write_dataset(tmp_path / "d.zip", [Item(label=lab, image=np.zeros((16, 16, 3), np.uint8)) for lab in labels])
    cfg = load_distill_config("distill-tiny", ["sampling.cameras=dataset", "loss.adv_weight=0"])
    d = distill.build_distiller(cfg, teacher_snap, torch.device("cpu"), labels=labels)
    c = distill.sample_cameras(d, 32, torch.Generator().manual_seed(0)).numpy()
    assert all(np.abs(labels - row).max(axis=1).min() < 1e-6 for row in c)
    assert len({round(float(row[3]), 4) for row in c}) == 2


def test_distill_errors(eg3d_fixture_dir, tmp_path, capsys, monkeypatch):
    teacher = str(eg3d_fixture_dir / "network.pkl")
    o = str(tmp_path / "o")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))  # certainly no LPIPS trunk weights
    assert main(["distill", "--config", "distill-tiny", "--outdir", o]) == 2
    assert main(["distill", "--teacher", teacher, "--config", "nope", "--outdir", o]) == 2
    assert main(["distill", "--teacher", teacher, "--config", "distill-tiny", "--outdir", o,
                 "--set", "loss.colour=1"]) == 2
    assert main(["distill", "--teacher", teacher, "--config", "distill-tiny", "--outdir", o,
                 "--set", "loss.lpips_weight=1", "--device", "cpu"]) == 2
    assert main(["distill", "--teacher", teacher, "--config", "distill-tiny", "--outdir", o,
                 "--set", "teacher.target=direct3d", "--device", "cpu"]) == 2
    assert main(["distill", "--teacher", teacher, "--config", "distill-tiny", "--outdir", o,
                 "--set", "sampling.cameras=dataset", "--device", "cpu"]) == 2
    assert main(["distill", "--config", "distill-tiny", "--outdir", o, "--resume", teacher, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 7 and all(e.startswith("error:") for e in err), err
    assert "--teacher" in err[0] and "distillation presets" in err[1] and "loss.colour" in err[2]
    assert "vgg16-397923af.pth" in err[3] and "loss.lpips_weight=0" in err[3]
    assert "direct3d" in err[4] and "--data" in err[5] and "no distillation state" in err[6]


def test_bench_student_architectures_match_the_presets():
    """`python -m core bench` times random-weight students of the distillation presets' architectures."""
    from core.commands.bench_student import PRESET_OF, STUDENT_ARCHS

    for name, preset in PRESET_OF.items():
        arch = dict(vars(load_distill_config(preset).student))
        if arch["sr_kind"] != "light":
            arch.pop("sr_channels")
        assert arch == STUDENT_ARCHS[name], name


@pytest.mark.slow
def test_mimic3d_teacher_direct3d_target(mimic3d_snapshot):
    """A Mimic3D teacher's direct3d render is the final-image target; its sr2d feature image the low-res one."""
    cfg = load_distill_config("distill-tiny", ["teacher.target=direct3d", "optim.batch=2", "loss.adv_weight=0",
                                               "teacher.depth_resolution=4", "teacher.depth_resolution_importance=4"])
    d = distill.build_distiller(cfg, mimic3d_snapshot, torch.device("cpu"))
    ws, c = distill.sample_pairs(d, 2, torch.Generator().manual_seed(0))
    tgt = distill.teacher_targets(d, ws, c)
    opts = distill.teacher_options(d)
    direct = RenderOptions(depth_resolution=4, depth_resolution_importance=4, deterministic=True, noise_mode="const")
    with torch.no_grad():
        assert torch.equal(tgt["image"], d.teacher.render("direct3d", ws, c, direct)["image"])
        assert torch.equal(tgt["feature_image"], d.teacher.render("sr2d", ws, c, opts)["feature_image"])
    assert tgt["feature_image"].shape[-1] == d.student.cfg.feature_resolution == 32
    assert tgt["image"].shape[-1] == d.student.cfg.img_resolution == 128
    stats = distill.distill_step(d)
    assert math.isfinite(stats["loss/recon"])
