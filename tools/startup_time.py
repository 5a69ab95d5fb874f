"""Startup and first-image times of the commands, as a user meets them: each is a fresh process, timed by the wall
clock from launch to exit (median of ``--repeats``), the machine's load average printed before and after.

    python tools/startup_time.py [--repeats 3] [--network assets/default.pkl]

Rows: ``python -c "import torch"`` (the floor every command pays), ``python -m core samples --help``, one image
with ``python -m core samples`` (load the model, render seed 0 at its resolution, write the PNG), and the viewer
from launch to its first complete window (``run_viz.py --screenshot``: every pane rendered, window saved, exit;
a private Xvfb is started when no DISPLAY is set, as on a headless server).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--network", default=str(ROOT / "assets" / "default.pkl"))
    args = p.parse_args()
    py = sys.executable
    print(f"load average before: {[round(x, 2) for x in os.getloadavg()]}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            ("import torch", [py, "-c", "import torch"]),
            ("core samples --help", [py, "-m", "core", "samples", "--help"]),
            ("core samples, one image", [py, "-m", "core", "samples", "--network", args.network, "--seeds", "0",
                                         "--outdir", os.path.join(tmp, "s")]),
            ("run_viz.py to the first full window", [py, "run_viz.py", "--pkl", args.network, "--frames", "1",
                                                     "--size", "1280x800", "--screenshot", os.path.join(tmp, "w.png")]),
        ]
        for name, argv in rows:
            t = timed(argv, args.repeats)
            print(f"{name}: median {statistics.median(t):.2f} s (runs {', '.join(f'{x:.2f}' for x in t)})",
                  flush=True)
    print(f"load average after: {[round(x, 2) for x in os.getloadavg()]}")


if __name__ == "__main__":
    main()
