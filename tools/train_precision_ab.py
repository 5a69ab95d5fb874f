"""Training speed, fp32 against bf16 (``optim.precision``), interleaved: the training numbers of docs/speed.md.

    python tools/train_precision_ab.py [--configs synth-tiny,mimic3d-stage1-synth-tiny] [--repeats 3]
        [--threads 1] [--steps 16] [--trees .,../main] [--out FILE.json]
    python tools/train_precision_ab.py --profile [--configs ...] [--threads 1] [--steps 16]

Timing: runs ``python -m training bench --config C --threads T --steps S --set optim.precision=P`` (the real
training step, all phases at their lazy intervals, on a temporary synthetic dataset) as separate processes,
round-robin over repeats x configs x trees x precisions, so a loaded machine hits every variant alike. ``--trees``
names checkouts to compare (each one's own ``training`` package runs: e.g. ``main`` for "before", this worktree
for "after"). Prints per variant the median sec/kimg (wall clock) and CPU-sec/kimg (process CPU time, which other
processes on a shared machine disturb less), the bf16 / fp32 ratio and the load average before and after.

Profile (``--profile``, this checkout only): one trainer per precision, ``--steps`` steps under torch.profiler;
prints the shares of the step's CPU time by operator category (convolutions, grid sampling, matrix products,
compositing, the rest element-wise/other: ``core.tools.bench.profile_shares``' groups), by training phase (Gmain,
Greg, Dmain, Dreg, EMA; the optimiser steps separately), and the data loading time per step beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRECISIONS = ("fp32", "bf16")


def bench_once(tree: Path, config: str, precision: str, threads: int, steps: int) -> dict:
    """One ``python -m training bench`` process in ``tree``; its JSON report."""
    with tempfile.TemporaryDirectory(prefix="trident-ab-") as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "training", "bench", "--config", config, "--threads", str(threads),
               "--steps", str(steps), "--device", "cpu", "--set", f"optim.precision={precision}", "--out", str(out)]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} in {tree} failed:\n{proc.stdout}\n{proc.stderr}")
        return json.loads(out.read_text())


def timing(args: argparse.Namespace) -> None:
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    configs = args.configs.split(",")
    print(f"load average before: {[round(v, 2) for v in os.getloadavg()]}", flush=True)
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for r in range(args.repeats):
        for config in configs:
            for tree in trees:
                for precision in PRECISIONS:
                    rep = bench_once(tree, config, precision, args.threads, args.steps)
                    runs.setdefault((config, str(tree), precision), []).append(rep)
                    print(f"  repeat {r}: {config} {tree.name} {precision}: {rep['sec_per_kimg']:.1f} s/kimg, "
                          f"{rep['cpu_sec_per_kimg']:.1f} CPU-s/kimg (load {rep['load_average']})", flush=True)
    print(f"load average after: {[round(v, 2) for v in os.getloadavg()]}")
    rows = []
    for config in configs:
        for tree in trees:
            med = {}
            for precision in PRECISIONS:
                reps = runs[(config, str(tree), precision)]
                med[precision] = (statistics.median(r["sec_per_kimg"] for r in reps),
                                  statistics.median(r["cpu_sec_per_kimg"] for r in reps))
                rows.append({"config": config, "tree": str(tree), "precision": precision,
                             "sec_per_kimg": med[precision][0], "cpu_sec_per_kimg": med[precision][1],
                             "runs": [{k: r[k] for k in ("sec_per_kimg", "cpu_sec_per_kimg", "load_average",
                                                         "losses_finite", "peak_mb")} for r in reps]})
            print(f"{config} [{tree.name}]: fp32 {med['fp32'][0]:.1f} s/kimg ({med['fp32'][1]:.1f} CPU-s), "
                  f"bf16 {med['bf16'][0]:.1f} s/kimg ({med['bf16'][1]:.1f} CPU-s): "
                  f"fp32/bf16 {med['fp32'][0] / med['bf16'][0]:.2f}x wall, {med['fp32'][1] / med['bf16'][1]:.2f}x CPU")
    if args.out is not None:
        args.out.write_text(json.dumps({"threads": args.threads, "steps": args.steps, "repeats": args.repeats,
                                        "rows": rows}, indent=2) + "\n")


def profile(args: argparse.Namespace) -> None:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from core.files.dataset import ImageDataset
    from core.tools.bench import PROFILE_GROUPS
    from training import loop
    from training.config import load_config
    from training.loader import make_loader
    from training.synth.generate import SynthConfig, generate_dataset

    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory(prefix="trident-ab-") as tmp:
        for config in args.configs.split(","):
            for precision in PRECISIONS:
                cfg = load_config(config, ["data.workers=0", f"optim.precision={precision}"])
                data = Path(tmp) / f"synth{cfg.data.resolution}.zip"
                if not data.exists():
                    generate_dataset(data, SynthConfig(count=max(2 * cfg.optim.batch, 16),
                                                       resolution=cfg.data.resolution, seed=0))
                ds = ImageDataset(data)
                t = loop.build_trainer(cfg, ds.resolution, cpu, ds.label_std(), seed=cfg.run.seed)
                batches = iter(make_loader(ds, cfg.optim.batch, workers=0, seed=cfg.run.seed, device=cpu))
                labels = ds.labels()
                for _ in range(2):
                    loop.train_step(t, *next(batches), labels)
                load_s = 0.0
                with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        l0 = time.perf_counter()
                        reals, c = next(batches)
                        load_s += time.perf_counter() - l0
                        loop.train_step(t, reals, c, labels)
                    wall = time.perf_counter() - t0
                events = prof.key_averages()
                ops = {g: 0.0 for g, _ in PROFILE_GROUPS} | {"element-wise/other": 0.0}
                phases: dict[str, float] = {}
                for e in events:
                    if e.key.startswith("phase "):
                        phases[e.key[6:]] = e.cpu_time_total
                    elif e.key.startswith("Optimizer.step"):
                        phases["optimizer steps"] = phases.get("optimizer steps", 0.0) + e.cpu_time_total
                    elif e.key.startswith("aten::") or e.key.startswith("mkldnn"):
                        group = next((g for g, keys in PROFILE_GROUPS if any(k in e.key for k in keys)),
                                     "element-wise/other")
                        ops[group] += e.self_cpu_time_total
                whole = sum(ops.values()) or 1.0
                steps_s = sum(v for k, v in phases.items() if k != "optimizer steps") or 1.0
                print(f"{config} {precision}: {wall / args.steps * 1000:.0f} ms/step under the profiler "
                      f"({wall / args.steps / cfg.optim.batch * 1000:.0f} s/kimg), data loading "
                      f"{load_s / args.steps * 1000:.1f} ms/step, load {[round(v, 2) for v in os.getloadavg()]}")
                print("  operators: " + ", ".join(f"{g} {v / whole:.0%}" for g, v in ops.items()))
                print("  phases:    " + ", ".join(f"{k} {v / steps_s:.0%}" for k, v in phases.items())
                      + " (the optimiser steps are part of their phases)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="synth-tiny,mimic3d-stage1-synth-tiny")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--trees", default=".", help="comma list of checkouts to run the training bench of")
    p.add_argument("--profile", action="store_true", help="profile this checkout's step instead of timing")
    p.add_argument("--out", type=Path, default=None, help="also write the timings as JSON")
    args = p.parse_args()
    (profile if args.profile else timing)(args)


if __name__ == "__main__":
    main()
