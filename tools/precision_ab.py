"""fp32 against bf16, interleaved in one process: the numbers of docs/speed.md.

    python tools/precision_ab.py [--repeats 5] [--threads 2]

For each case the two precisions run alternately (fp32, bf16, fp32, bf16, ...) after one untimed run each, so a
shared machine's load hits both alike; it prints the median wall-clock ms of each, their ratio and the PSNR of the
bf16 image against the fp32 one (unclamped outputs). Cases: EG3D's official FFHQ-512 architecture (random weights,
sr2d at neural rendering 64, 48+48 deterministic samples), the FFHQ-512 student of ``distill-ffhq512`` (random
weights, light super-resolution to 512 px), the EG3D reference fixture's sr2d, and every branch of the bundled
model (``assets/default.pkl``). Every pass includes the mapping network, batch 1, frontal or 0.3 rad yaw camera.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.build import build_generator  # noqa: E402
from core.commands.bench import DEFAULT_NETWORK, ffhq512_config  # noqa: E402
from core.commands.bench_student import build_students, student_pass  # noqa: E402
from core.files.checkpoint import load_snapshot  # noqa: E402
from core.layers import set_compute_dtype  # noqa: E402
from core.metrics.fidelity import psnr  # noqa: E402
from core.model import load_model  # noqa: E402
from core.tools.bench import Case, make_pass  # noqa: E402
from core.triplane import RenderOptions  # noqa: E402

CPU = torch.device("cpu")


def ab(name: str, fn: Callable[[], torch.Tensor], set_precision: Callable[[str], None], repeats: int) -> None:
    images = {}
    for p in ("fp32", "bf16"):
        set_precision(p)
        images[p] = fn()
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(repeats):
        for p in ("fp32", "bf16"):
            set_precision(p)
            t0 = time.perf_counter()
            fn()
            times[p].append((time.perf_counter() - t0) * 1000)
    set_precision("fp32")
    med = {p: statistics.median(v) for p, v in times.items()}
    q = float(psnr(images["fp32"], images["bf16"], clamp=False).min())
    print(f"{name}: fp32 {med['fp32']:.0f} ms, bf16 {med['bf16']:.0f} ms ({med['fp32'] / med['bf16']:.2f}x), "
          f"bf16 PSNR vs fp32 {q:.1f} dB", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {[round(v, 2) for v in os.getloadavg()]}")
    torch.manual_seed(0)
    G = build_generator(ffhq512_config(), None, CPU)
    ab("ffhq512 sr2d (nrr 64, 48+48, det)", make_pass(G, Case("ffhq512", 64, 48, 48, 1, "det"), CPU, False),
       G.set_precision, args.repeats)
    S = build_students(["ffhq512"], {"ffhq512": G}, None, CPU)["ffhq512"][0]
    ab("ffhq512 student (light SR, 512 px)", student_pass(G, S, 1, CPU),
       lambda prec: set_compute_dtype(S, torch.bfloat16 if prec == "bf16" else None), args.repeats)
    snap = load_snapshot(DEFAULT_NETWORK)
    Gf = build_generator(snap.generator, snap.G_ema)
    ab("EG3D fixture sr2d (nrr 64, 12+12, det)", make_pass(Gf, Case("fixture", 64, 12, 12, 1, "det"), CPU, False),
       Gf.set_precision, args.repeats)
    model = load_model(Path(__file__).resolve().parents[1] / "assets" / "default.pkl")
    ws, c = model.ws_from_seed(0), model.camera_label(0.3, 0.0)
    for branch in model.branches:
        def fn(branch: str = branch) -> torch.Tensor:
            with torch.no_grad():
                return model.render(branch, ws, c, RenderOptions(deterministic=True))["image"]
        ab(f"bundled model {branch} (64 px)", fn, model.set_precision, args.repeats)
    print(f"load average after: {[round(v, 2) for v in os.getloadavg()]}")


if __name__ == "__main__":
    main()
