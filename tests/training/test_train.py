"""Training smoke runs through the CLI: synth-tiny on CPU, snapshots that core renders, resume, fine-tuning."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.__main__ import main as core_main
from training.__main__ import main
from tests.training.datasets import random_dataset

TINY = ["--set", "generator.rendering.depth_resolution=6", "--set", "generator.rendering.depth_resolution_importance=4",
        "--set", "run.grid=[2, 1]", "--set", "run.tick_kimg=0.008", "--set", "data.workers=0"]


def _dataset(path: Path, res: int = 64, n: int = 12) -> Path:
    return random_dataset(path, res, n)


def _stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_synth_tiny_smoke_snapshot_renders_and_resume_auto(tmp_path, device):
    data = _dataset(tmp_path / "d.zip")
    out = tmp_path / "runs"
    args = ["train", "--config", "synth-tiny", "--data", str(data), "--outdir", str(out), "--kimg", "0.016",
            "--snap-kimg", "0.008", "--device", str(device), *TINY]
    assert main(args) == 0
    (run,) = list(out.iterdir())
    stats = _stats(run)
    assert len(stats) == 2 and all(np.isfinite(v) for r in stats for k, v in r.items() if k.startswith("loss/"))
    assert {"loss/G", "loss/D_real", "loss/D_fake", "loss/D_r1", "loss/G_density"} <= set().union(*stats)
    assert (run / "config.yaml").exists() and list(run.glob("fakes*.png"))
    snap = sorted(run.glob("network-snapshot-*.pkl"))[-1]
    assert core_main(["samples", "--network", str(snap), "--seeds", "0", "--outdir", str(tmp_path / "s"),
                      "--device", str(device)]) == 0
    assert (tmp_path / "s" / "seed0000.png").exists()
    # --resume auto continues the same run from its last snapshot
    assert main(["train", "--config", "synth-tiny", "--data", str(data), "--outdir", str(out), "--kimg", "0.024",
                 "--resume", "auto", "--device", str(device), *TINY]) == 0
    assert list(out.iterdir()) == [run]
    stats = _stats(run)
    assert [round(r["kimg"], 3) for r in stats] == [0.008, 0.016, 0.024]


@pytest.mark.slow
def test_finetune_from_eg3d_fixture(eg3d_fixture_dir, tmp_path):
    data = _dataset(tmp_path / "d128.zip", res=128, n=8)
    out = tmp_path / "ft"
    args = ["train", "--config", "synth-tiny", "--data", str(data), "--outdir", str(out), "--kimg", "0.008",
            "--init", str(eg3d_fixture_dir / "network.pkl"), "--set", "run.grid=[1, 1]", "--set", "data.workers=0",
            "--set", "run.tick_kimg=0.004"]
    assert main(args) == 0
    (run,) = list(out.iterdir())
    stats = _stats(run)
    assert stats and all(np.isfinite(r["loss/G"]) for r in stats)
    assert stats[0]["schedule/swap_prob"] == pytest.approx(0.5)  # no GPC fade when starting from a model
    assert stats[0]["schedule/blur_sigma"] == 0.0


def test_train_errors(tmp_path, capsys):
    data = _dataset(tmp_path / "d.zip")
    assert main(["train", "--config", "nope", "--data", str(data), "--outdir", str(tmp_path / "o")]) == 2
    assert main(["train", "--config", "synth-tiny", "--outdir", str(tmp_path / "o")]) == 2
    assert main(["train", "--config", "synth-tiny", "--data", str(data), "--outdir", str(tmp_path / "o"),
                 "--resume", str(tmp_path / "missing.pkl")]) == 2
    assert main(["train", "--config", "synth-64", "--data", str(data), "--outdir", str(tmp_path / "o"),
                 "--set", "optim.precision=fp16", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(e.startswith("error:") for e in err)
    assert "fp16 needs a CUDA device" in err[-1]


@pytest.mark.slow
def test_half_precision_training_step(tmp_path, device):
    """Half precision through the CLI with finite losses: on CUDA fp16 in the fp16-flagged blocks (here: 2
    synthesis, all SR and 2 D blocks, with conv clamping: EG3D's mode); on the CPU bf16 mixed precision (every
    block; tests/training/test_train_precision.py compares it with fp32)."""
    data = _dataset(tmp_path / "d.zip", n=8)
    out = tmp_path / "half"
    precision = "fp16" if device.type == "cuda" else "bf16"
    assert main(["train", "--config", "synth-tiny", "--data", str(data), "--outdir", str(out), "--kimg", "0.008",
                 "--device", str(device), "--set", f"optim.precision={precision}", "--set", "generator.num_fp16_res=2",
                 "--set", "generator.sr_num_fp16_res=4", "--set", "discriminator.num_fp16_res=2", *TINY]) == 0
    (run,) = list(out.iterdir())
    stats = _stats(run)
    assert stats and all(np.isfinite(v) for r in stats for k, v in r.items() if k.startswith("loss/"))


def test_snapshot_names_never_collide_and_latest_is_by_images_seen(tmp_path):
    """Whole-kimg snapshots keep EG3D's names; fractional ones get a .NNN suffix; --resume picks the most images."""
    from training.runs import latest_snapshot, snapshot_name, snapshot_nimg, snapshot_tag
    assert snapshot_name(12000) == "network-snapshot-000012.pkl" and snapshot_tag(12500) == "000012.500"
    assert snapshot_tag(4) == "000000.004"
    for nimg in (500, 1000, 1500, 2000, 2528):
        (tmp_path / snapshot_name(nimg)).write_bytes(b"")
        assert snapshot_nimg(tmp_path / snapshot_name(nimg)) == nimg
    (tmp_path / "network-snapshot-latest.pkl").write_bytes(b"")  # not a snapshot tag: ignored
    assert latest_snapshot(tmp_path).name == "network-snapshot-000002.528.pkl"


@pytest.mark.parametrize("batch, snap_kimg, total_kimg, expect", [
    (250, 0.5, 2.6, [500, 1000, 1500, 2000, 2500, 2750]),   # fractional interval, final snapshot off the grid
    (320, 1.0, 2.5, [1000, 2000, 2560]),                     # EG3D-style: named by the grid point passed
])
def test_run_ticks_snapshot_points(tmp_path, batch, snap_kimg, total_kimg, expect):
    from training.plumbing import Progress, run_ticks
    p = Progress()

    def step():
        p.cur_nimg += batch
        return {"loss": 1.0}

    saved = []
    last = run_ticks(p, step, tmp_path / "stats.jsonl", total_kimg, snap_kimg, 0.5, True, saved.append, lambda: None)
    assert saved == expect and last == expect[-1]
    assert all("loss" in json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines())


def test_run_ticks_deadline_ends_at_a_tick_with_a_snapshot(tmp_path, monkeypatch):
    """A time-boxed run (--max-minutes) stops at the first tick boundary past its deadline and snapshots there."""
    import time as time_mod

    from training.plumbing import Progress, run_ticks
    clock = [1000.0]
    monkeypatch.setattr(time_mod, "time", lambda: clock[0])
    p = Progress()

    def step():
        p.cur_nimg += 100
        clock[0] += 1.0  # each step takes one (fake) second
        return {"loss": 1.0}

    saved = []
    last = run_ticks(p, step, tmp_path / "stats.jsonl", 100.0, 10.0, 0.5, True, saved.append, lambda: None,
                     deadline=1000.0 + 12.5)
    assert p.cur_nimg == 1500 and saved == [1500] and last == 1500  # ticks every 500 images; 13 s passes 12.5 s
    ticks = [json.loads(line)["kimg"] for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert ticks == [0.5, 1.0, 1.5]


def test_max_minutes_must_be_positive(tmp_path, capsys):
    data = _dataset(tmp_path / "d.zip", n=4)
    assert main(["train", "--config", "synth-tiny", "--data", str(data), "--outdir", str(tmp_path / "o"),
                 "--max-minutes", "0", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: --max-minutes must be positive"
