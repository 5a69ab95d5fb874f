"""A training process SIGKILLed at random moments (including while it writes a snapshot) resumes with --resume auto
from its last complete snapshot, and nothing on disk is corrupted."""
from __future__ import annotations

import pytest

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from core.cameras import Camera
from core.files.checkpoint import load_snapshot
from training.dataset_tool import Item, write_dataset

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--config", "synth-tiny", "--snap-kimg", "0.004", "--set", "run.tick_kimg=0.004",
        "--set", "generator.rendering.depth_resolution=4", "--set", "generator.rendering.depth_resolution_importance=0",
        "--set", "run.grid=[1, 1]", "--set", "data.workers=0"]


def _train(data: Path, out: Path, kimg: float, resume: bool, write_delay: float = 0.0) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "training", "train", "--data", str(data), "--outdir", str(out), "--kimg", str(kimg),
           *ARGS, *(["--resume", "auto"] if resume else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRIDENT_SNAPSHOT_WRITE_DELAY": str(write_delay)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, run_glob: Path, wait: float, during_write: bool) -> bool:
    """SIGKILL ``wait`` seconds after the run's first complete snapshot exists (so the moment does not depend on
    how fast the machine starts a process), or (during_write) as soon as a snapshot temp file appears.
    Returns whether the process was killed while a snapshot temp file existed."""
    start_deadline = time.time() + 300
    while proc.poll() is None and time.time() < start_deadline:
        if during_write and list(run_glob.glob("*/*.tmp")):
            break
        if not during_write and list(run_glob.glob("*/network-snapshot-*.pkl")):
            time.sleep(wait)
            break
        time.sleep(0.005)
    mid_write = False
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        mid_write = bool(list(run_glob.glob("*/*.tmp")))
    proc.wait()
    return mid_write


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_auto(tmp_path):
    rng = np.random.RandomState(0)
    items = [Item(label=Camera.frontal_offset(float(rng.uniform(-0.5, 0.5)), 0.0).to_label()[0].numpy(),
                  image=rng.randint(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(8)]
    data = write_dataset(tmp_path / "d.zip", items) and tmp_path / "d.zip"
    out = tmp_path / "runs"
    total = 0.032
    moments = [("time", random.Random(1).uniform(0, 2)), ("write", 0), ("time", random.Random(2).uniform(0, 3))]
    killed_mid_write = False
    for kind, wait in moments:
        proc = _train(data, out, total, resume=out.exists(), write_delay=1.0 if kind == "write" else 0.0)
        killed_mid_write |= _kill_when(proc, out, wait, during_write=(kind == "write"))
        # whatever survived must be complete and loadable
        for snap in out.glob("*/network-snapshot-*.pkl"):
            assert "train" in load_snapshot(snap).extra
    proc = _train(data, out, total, resume=True)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    runs = list(out.iterdir())
    assert len(runs) == 1, runs  # every resume continued the same run
    run = runs[0]
    assert killed_mid_write, "no kill landed while a snapshot was being written"
    assert not list(run.glob("*.tmp")), "resume should clear temp files of interrupted writes"
    final = sorted(run.glob("network-snapshot-*.pkl"))[-1]
    snap = load_snapshot(final)
    assert snap.extra["train"]["progress"]["cur_nimg"] >= total * 1000
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line.strip()]
    assert stats and stats[-1]["kimg"] >= total
    assert all(np.isfinite(r["loss/G"]) for r in stats)
