"""Two training processes on CPU with gloo, started the way users start them (torchrun)."""
from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.cameras import Camera
from core.files.checkpoint import load_snapshot
from training.dataset_tool import Item, write_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path):
    rng = np.random.RandomState(0)
    items = [Item(label=Camera.frontal_offset(float(rng.uniform(-0.5, 0.5)), 0.0).to_label()[0].numpy(),
                  image=rng.randint(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(16)]
    write_dataset(tmp_path / "d.zip", items)
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "training", "train", "--config", "synth-tiny", "--data", str(tmp_path / "d.zip"),
           "--outdir", str(out), "--kimg", "0.016", "--snap-kimg", "0.016", "--device", "cpu",
           "--set", "optim.batch=8", "--set", "optim.batch_gpu=4", "--set", "run.tick_kimg=0.008",
           "--set", "generator.rendering.depth_resolution=4", "--set", "generator.rendering.depth_resolution_importance=0",
           "--set", "run.grid=[1, 1]", "--set", "data.workers=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list(out.iterdir())  # rank 0 alone creates the run folder and writes files
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [round(r["kimg"], 3) for r in stats] == [0.008, 0.016]  # 2 steps of 2 processes x 4 images each tick
    assert all(np.isfinite(r["loss/G"]) for r in stats)
    (snap,) = list(run.glob("network-snapshot-*.pkl"))
    assert load_snapshot(snap).extra["train"]["progress"]["cur_nimg"] == 16
    assert proc.stdout.count("new run") == 1
