"""``python -m training bench``: training speed and memory of a preset (sec/kimg, ms/step, peak memory).

    python -m training bench [--config synth-tiny] [--set key=value ...] [--steps 16] [--warmup 2]
        [--resolution R | --data PATH] [--batch-gpu N] [--device auto|cpu|cuda] [--threads T] [--out FILE.json]

Runs the real training step of :mod:`training.loop` (phases Gmain, Greg, Dmain, Dreg at their lazy intervals,
augmentation, EMA) on a real dataset: ``--data``, or a small built-in synthetic dataset written to a temporary
folder at the preset's resolution (``--resolution``; default 64 for the synthetic presets, else the preset
name's number, e.g. 512 for ffhq512). The default 16 timed steps cover one full lazy-regularisation cycle
(R1 every 16, density every 4 steps), so sec/kimg includes the regularisers' amortised cost. The median step
is reported; CUDA steps are synchronised, and memory is CUDA's peak allocation or the CPU process's peak RSS
increase (the same meter as ``python -m core bench``).
"""
from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from core.commands.common import UsageError, resolve_device
from core.files.atomic import atomic_output
from core.files.dataset import ImageDataset
from core.tools.bench import PeakMemory, environment, load_average

from .. import loop
from ..config import ConfigError, TrainConfig, load_config
from ..loader import make_loader
from ..synth.generate import SynthConfig, generate_dataset


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="measure training speed and memory", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="synth-tiny", help="preset name or YAML path (default synth-tiny)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--data", type=Path, default=None, help="dataset to read (default: temporary synthetic data)")
    p.add_argument("--resolution", type=int, default=None, help="image size of the temporary synthetic data")
    p.add_argument("--batch-gpu", type=int, default=None, help="per-step batch (sets optim.batch = optim.batch_gpu)")
    p.add_argument("--steps", type=int, default=16, help="timed steps (default 16: one lazy-regularisation cycle)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=Path("bench-train.json"), help="JSON output (default ./bench-train.json)")
    return p


def default_resolution(cfg: TrainConfig, name: str) -> int:
    """The image size of the temporary synthetic data: the preset's ``data.resolution``."""
    if cfg.data.resolution is None:
        raise UsageError(f"preset {name!r} has no data.resolution: pass --resolution or --data")
    return cfg.data.resolution


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(cfg, data_path: Path, device: torch.device, steps: int, warmup: int) -> dict:
    """Median step time and peak memory of ``steps`` real training steps after ``warmup`` untimed ones."""
    dataset = ImageDataset(data_path)
    t = loop.build_trainer(cfg, dataset.resolution, device, dataset.label_std(), seed=cfg.run.seed)
    batches = iter(make_loader(dataset, cfg.optim.batch, workers=0, seed=cfg.run.seed, device=device))
    labels = dataset.labels()
    meter = PeakMemory(device)
    for _ in range(warmup):
        loop.train_step(t, *next(batches), labels)
    _sync(device)
    meter.start()
    times, cpu_times, terms = [], [], {}
    for _ in range(steps):
        reals, c = next(batches)  # data loading is not part of the step time
        _sync(device)
        c0, t0 = time.process_time(), time.perf_counter()
        for k, v in loop.train_step(t, reals, c, labels).items():
            terms.setdefault(k, []).append(v)
        _sync(device)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    peak_mb, base_mb = meter.stop_mb()
    step = float(np.median(times))
    mean_step = float(np.mean(times))
    finite = all(np.isfinite(v).all() for v in terms.values())
    return {
        "resolution": dataset.resolution, "batch": cfg.optim.batch, "batch_gpu": cfg.optim.batch_gpu,
        "nrr": cfg.loss.neural_rendering_resolution_initial,
        "samples": [cfg.generator.rendering.depth_resolution, cfg.generator.rendering.depth_resolution_importance],
        "steps": steps, "ms_per_step_median": step * 1000, "ms_per_step_mean": mean_step * 1000,
        "sec_per_kimg": mean_step * 1000 / cfg.optim.batch,  # mean: the lazy regularisers are part of the cost
        # process CPU seconds per kimg: on a shared machine, what the run costs regardless of other processes
        "cpu_sec_per_kimg": float(np.mean(cpu_times)) * 1000 / cfg.optim.batch,
        "peak_mb": peak_mb, "baseline_mb": base_mb, "memory_method": meter.method, "losses_finite": bool(finite),
    }


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.warmup < 0:
        raise UsageError("--steps must be >= 1 and --warmup >= 0")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    overrides = list(args.overrides)
    if args.batch_gpu is not None:
        if args.batch_gpu < 1:
            raise UsageError("--batch-gpu must be >= 1")
        overrides += [f"optim.batch={args.batch_gpu}", f"optim.batch_gpu={args.batch_gpu}"]
    overrides.append("data.workers=0")
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    device = resolve_device(args.device)
    if cfg.optim.precision == "fp16" and device.type != "cuda":
        raise UsageError("optim.precision fp16 needs a CUDA device (use bf16 on CPU)")
    with tempfile.TemporaryDirectory(prefix="trident-bench-") as tmp:
        if args.data is not None:
            if not args.data.exists():
                raise UsageError(f"no such dataset: {args.data}")
            data = args.data
        else:
            res = args.resolution or default_resolution(cfg, Path(str(args.config)).stem)
            data = Path(tmp) / "synth.zip"
            count = max(2 * cfg.optim.batch, 16)
            print(f"writing {count} synthetic images at {res} px to a temporary folder")
            generate_dataset(data, SynthConfig(count=count, resolution=res, seed=0))
        print(f"timing {args.warmup} + {args.steps} training steps of {Path(str(args.config)).stem} on {device}")
        result = measure(cfg, data, device, args.steps, args.warmup)
    report = {
        "format": "trident-train-bench", "version": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": str(args.config), "overrides": args.overrides, "environment": environment(device),
        "load_average": load_average(), **result,
    }
    report["environment"]["precision"] = cfg.optim.precision
    with atomic_output(args.out) as tmp_out:
        tmp_out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{Path(str(args.config)).stem}: {result['resolution']} px, batch {result['batch']}, "
          f"nrr {result['nrr']}, samples {result['samples'][0]}+{result['samples'][1]}")
    print(f"  {result['ms_per_step_median']:.0f} ms/step (median), {result['sec_per_kimg']:.1f} sec/kimg, "
          f"peak {result['peak_mb']:.0f} MB over a {result['baseline_mb']:.0f} MB baseline ({result['memory_method']})")
    print(f"wrote {args.out}")
    return 0 if result["losses_finite"] else 1
