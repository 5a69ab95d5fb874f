"""Inversion speed: ``sr2d`` alone against the student-first fast stage then ``sr2d``, on one photo and one model.

    python tools/bench_fast_inversion.py [--network assets/default.pkl] [--image PHOTO] [--steps 120]
        [--fast-steps 120] [--refine-steps 60] [--threads 2]

Both runs use ``core.tools.inversion.invert`` (W+, MSE, camera optimisation on, as ``python -m core invert`` runs
an aligned photo). The photo is aligned as ``invert`` does (default: scikit-image's astronaut portrait), so both
runs start from the same crop and estimated camera. Printed: steps per second of each stage, and the wall time
(from the start of ``invert``: w_avg sampling included) at which the ``sr2d`` loss first reaches each threshold;
the thresholds are the losses the ``sr2d``-only run reaches at 25 %, 50 %, 75 % and 100 % of its steps. Losses of
the fast stage are the student's and do not count: a threshold is reached only by an ``sr2d`` step.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.model import load_model  # noqa: E402
from core.tools.inversion import InversionSpec, aligned_start, invert  # noqa: E402
from core.tools.photo.align import align_image  # noqa: E402


def stage_rates(history: list[dict]) -> dict[str, float]:
    """steps per second of each stage, from the per-step wall clock."""
    out = {}
    for stage in dict.fromkeys(h["stage"] for h in history):
        rows = [h for h in history if h["stage"] == stage]
        before = [h["seconds"] for h in history if h["step"] < rows[0]["step"]]
        span = rows[-1]["seconds"] - (before[-1] if before else rows[0]["seconds"])
        steps = len(rows) if before else len(rows) - 1   # without a previous step, the first one is the origin
        out[stage] = steps / span if span > 0 else float("nan")
    return out


def time_to(history: list[dict], loss: float, stage: str) -> float | None:
    for h in history:
        if h["stage"] == stage and h["loss"] <= loss:
            return h["seconds"]
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="assets/default.pkl")
    ap.add_argument("--image", default=None, help="a photo (default: skimage.data.astronaut())")
    ap.add_argument("--steps", type=int, default=120, help="sr2d-only steps")
    ap.add_argument("--fast-steps", type=int, default=120, help="student steps of the fast run")
    ap.add_argument("--refine-steps", type=int, default=60, help="sr2d steps after them")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.network, torch.device("cpu"))
    if args.image:
        from core.files.image_io import read_image
        photo = read_image(args.image)
    else:
        from skimage import data
        photo = data.astronaut()
    al = align_image(photo, Path(args.image).name if args.image else "astronaut")
    target, camera = aligned_start(model, al.crop, al.label, fov_deg=18.837)
    base = dict(space="w+", loss="mse", optimize_camera=True, preview_every=0, w_avg_samples=600)
    runs = {}
    for name, spec in (("sr2d only", InversionSpec(steps=args.steps, **base)),
                       ("student then sr2d", InversionSpec(steps=args.refine_steps, fast_steps=args.fast_steps,
                                                           **base))):
        t0 = time.perf_counter()
        result = invert(model, target, camera, spec)
        runs[name] = (result, time.perf_counter() - t0)
    ref = [h["loss"] for h in runs["sr2d only"][0].history]
    marks = [min(ref[:max(1, round(len(ref) * f))]) for f in (0.25, 0.5, 0.75, 1.0)]
    print(f"{args.network}, photo {al.name} ({model.img_resolution} px), {torch.get_num_threads()} thread(s)")
    for name, (result, wall) in runs.items():
        rates = ", ".join(f"{k} {v:.2f} steps/s" for k, v in stage_rates(result.history).items())
        reach = ", ".join(f"{m:.4f} at {t:.1f} s" if (t := time_to(result.history, m, "w+")) is not None
                          else f"{m:.4f} not reached" for m in marks)
        print(f"{name}: {rates}; wall {wall:.1f} s; final sr2d loss {result.history[-1]['loss']:.4f}, "
              f"PSNR {result.psnr:.2f} dB; sr2d loss reached: {reach}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
