"""``python -m training train``: train a tri-plane GAN from a YAML preset on an EG3D-format dataset.

    python -m training train --config synth-tiny --data data/synth64.zip --outdir runs [--kimg 200]
        [--snap-kimg 20] [--resume auto|PKL] [--init PKL] [--set key=value ...] [--device auto|cpu|cuda]
        [--max-minutes M]

A run folder ``runs/NNNNN-<config>-<data>/`` receives the resolved ``config.yaml``, ``stats.jsonl`` (one line per
tick), ``fakesXXXXXX.png`` grids and ``network-snapshot-XXXXXX.pkl`` Trident snapshots (written atomically) that
``python -m core samples --network`` renders. ``--resume auto`` continues the newest run under ``--outdir`` from
its last complete snapshot; ``--resume PKL`` continues from a given snapshot; ``--init PKL`` fine-tunes from a
Trident or official EG3D model file.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from tqdm import tqdm

from core.commands.common import UsageError, resolve_device
from core.errors import CheckpointError
from core.files.checkpoint import load_snapshot
from core.files.dataset import ImageDataset

from .. import loop, runs
from ..config import ConfigError, dump_config, generator_config, load_config
from ..loader import make_loader


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="preset name (training/configs) or YAML path")
    p.add_argument("--data", default=None, help="dataset zip or folder (overrides data.path)")
    p.add_argument("--outdir", required=True, type=Path)
    p.add_argument("--kimg", type=float, default=None, help="total length in thousands of images")
    p.add_argument("--snap-kimg", type=float, default=None, help="snapshot interval in kimg")
    p.add_argument("--resume", default=None, help="'auto' (newest run in --outdir) or a snapshot path")
    p.add_argument("--init", default=None, help="fine-tune from a Trident or EG3D model file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=None)
    add_max_minutes(p)
    return p


def add_max_minutes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop at the first tick after this many minutes of wall time, with a snapshot to continue "
                        "from (--resume auto); one process only")


def deadline_from(args: argparse.Namespace, world: int) -> float | None:
    """``--max-minutes`` as an absolute ``time.time()`` deadline for loop.run_ticks (None: no time limit)."""
    import time

    if args.max_minutes is None:
        return None
    if args.max_minutes <= 0:
        raise UsageError("--max-minutes must be positive")
    if world > 1:  # each process would stop at its own tick: they must agree, which this option does not do
        raise UsageError("--max-minutes works with one process only (not under torchrun)")
    return time.time() + 60.0 * args.max_minutes


def run(args: argparse.Namespace) -> int:
    if args.resume and args.init:
        raise UsageError("--resume and --init exclude each other")
    overrides = list(args.overrides)
    if args.kimg is not None:
        overrides.append(f"run.kimg={args.kimg}")
    if args.snap_kimg is not None:
        overrides.append(f"run.snap_kimg={args.snap_kimg}")
    if args.seed is not None:
        overrides.append(f"run.seed={args.seed}")
    if args.data is not None:
        overrides.append(f"data.path={json.dumps(str(args.data))}")

    if args.kimg is not None and not (args.kimg > 0 and math.isfinite(args.kimg)):
        raise UsageError(f"--kimg must be a positive number of thousands of images, got {args.kimg}")
    if args.snap_kimg is not None and not (args.snap_kimg > 0 and math.isfinite(args.snap_kimg)):
        raise UsageError(f"--snap-kimg must be a positive number, got {args.snap_kimg}")
    resume = None
    if args.resume == "auto":
        resume = runs.resume_auto(args.outdir, _training_snapshot)
    elif args.resume:
        resume = runs.resume_from(Path(args.resume), args.outdir, "resume-" + Path(args.resume).resolve().parent.name,
                                  _training_snapshot)
    resume_path = resume.snapshot if resume is not None else None
    if resume is not None and resume.config is not None:
        cfg = load_config(resume.config, overrides)  # the run's own config, plus any new overrides
    else:
        cfg = load_config(args.config, overrides)
    if cfg.data.path is None:
        raise UsageError("no dataset: pass --data PATH (or set data.path)")
    if cfg.optim.precision == "fp16" and not (args.device != "cpu" and torch.cuda.is_available()):
        raise UsageError("optim.precision fp16 needs a CUDA device (use bf16 on CPU)")

    rank, world = _init_distributed(args.device)
    deadline = deadline_from(args, world)
    device = resolve_device(args.device) if world == 1 else _rank_device(args.device)
    if cfg.optim.batch % (cfg.optim.batch_gpu * world):
        raise UsageError(f"optim.batch {cfg.optim.batch} must be a multiple of batch_gpu x processes "
                         f"({cfg.optim.batch_gpu} x {world})")
    dataset = ImageDataset(cfg.data.path, max_size=cfg.data.max_size, xflip=cfg.data.xflip, random_seed=cfg.run.seed)
    group = min(cfg.discriminator.mbstd_group_size, cfg.optim.batch_gpu)
    if cfg.optim.batch_gpu % group:
        raise UsageError("optim.batch_gpu must be a multiple of discriminator.mbstd_group_size")
    check_dataset(dataset, cfg)
    # the architecture comes from the model file when fine-tuning or resuming, from the preset otherwise
    init = load_snapshot(args.init) if args.init else (resume.snap if resume is not None else None)
    t = loop.build_trainer(cfg, dataset.resolution, device, dataset.label_std(), seed=cfg.run.seed, init=init)
    t.rank, t.world_size = rank, world
    t.gen.manual_seed(cfg.run.seed * 1000 + rank)  # different latents and cameras per process
    run_dir = lock = None
    if resume is not None:
        loop.restore_training_snapshot(t, init)  # the snapshot already loaded above
        run_dir, lock = resume.run_dir, resume.lock
        if rank == 0:
            runs.trim_stats(run_dir / "stats.jsonl", t.progress.cur_nimg)
            where = "" if run_dir == resume_path.parent else f" (from {resume_path}; this run writes to {run_dir})"
            print(f"resuming {run_dir.name} from {resume_path.name} at {t.progress.cur_nimg / 1000:.3f} kimg{where}")
        if world > 1:
            t.gen.manual_seed(cfg.run.seed * 1000 + rank + t.progress.batch_idx)
    elif rank == 0:
        desc = f"{Path(str(args.config)).stem}-{Path(cfg.data.path).stem}"
        run_dir, lock = runs.new_run_dir(args.outdir, desc)
        print(f"new run {run_dir}" + (f" ({world} processes)" if world > 1 else ""))
    if world > 1:
        holder = [str(run_dir) if rank == 0 else None]
        torch.distributed.broadcast_object_list(holder, src=0)
        run_dir = Path(holder[0])
    if rank == 0:
        (run_dir / "config.yaml").write_text(dump_config(cfg))

    batches = make_loader(dataset, cfg.optim.batch // world, workers=cfg.data.workers,
                          seed=cfg.run.seed + t.progress.batch_idx, rank=rank, world_size=world, device=device)
    total = cfg.run.kimg
    bar = tqdm(total=round(total, 3), initial=round(t.progress.cur_nimg / 1000, 3), unit="kimg", disable=rank != 0,
               bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} kimg [{elapsed}<{remaining}{postfix}]")

    def on_tick(rec: dict) -> None:
        bar.n = round(rec["kimg"], 3)
        bar.set_postfix({"s/kimg": f"{rec['sec_per_kimg']:.0f}", "G": f"{rec.get('loss/G', float('nan')):.3f}",
                         "D": f"{rec.get('loss/D_real', float('nan')) + rec.get('loss/D_fake', float('nan')):.3f}"})
        bar.refresh()

    try:
        last = loop.training_loop(t, batches, dataset.labels(), run_dir, total, cfg.run.snap_kimg, cfg.run.tick_kimg,
                           on_tick=on_tick, deadline=deadline)
    finally:
        bar.close()
        if world > 1:
            torch.distributed.destroy_process_group()
        if lock is not None:
            lock.release()
    if rank == 0:
        if last is None:  # nothing left to train: the run already reached --kimg
            print(f"nothing to train: {run_dir.name} is at {t.progress.cur_nimg / 1000:.3f} kimg, run.kimg is "
                  f"{total:g}; its latest snapshot is {resume_path}")
        else:
            print(f"done: {run_dir / runs.snapshot_name(last)}")
    return 0


def _training_snapshot(path: Path):
    """A snapshot a training run can continue from: it loads and holds the training state."""
    snap = load_snapshot(path)
    if "train" not in snap.extra:
        raise CheckpointError(f"{path.name} holds no training state (use --init to fine-tune from it)")
    return snap


def check_dataset(dataset: ImageDataset, cfg) -> None:
    """Refuse, before anything is built or written, a dataset whose image size the architecture cannot make."""
    res = dataset.resolution
    try:
        generator_config(cfg, res)
    except ConfigError as e:
        raise UsageError(f"{cfg.data.path}: cannot train on {res}x{res} images with this config ({e})") from None


def _init_distributed(device_arg: str) -> tuple[int, int]:
    """(rank, world size) under torchrun (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPU."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    use_cuda = device_arg != "cpu" and torch.cuda.is_available()
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def _rank_device(device_arg: str) -> torch.device:
    import os

    if device_arg != "cpu" and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")
