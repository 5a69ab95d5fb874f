"""``python -m training train``: train a tri-plane GAN from a YAML preset on an EG3D-format dataset.

    python -m training train --config synth-tiny --data data/synth64.zip --outdir runs [--kimg 200]
        [--snap-kimg 20] [--resume auto|PKL] [--init PKL] [--set key=value ...] [--device auto|cpu|cuda]

A run folder ``runs/NNNNN-<config>-<data>/`` receives the resolved ``config.yaml``, ``stats.jsonl`` (one line per
tick), ``fakesXXXXXX.png`` grids and ``network-snapshot-XXXXXX.pkl`` Trident snapshots (written atomically) that
``python -m core samples --network`` renders. ``--resume auto`` continues the newest run under ``--outdir`` from
its last complete snapshot; ``--resume PKL`` continues from a given snapshot; ``--init PKL`` fine-tunes from a
Trident or official EG3D model file.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from core.checkpoint import load_snapshot
from core.commands.common import UsageError, resolve_device

from .. import loop
from ..config import dump_config, load_config
from ..dataset import ImageDataset, make_loader


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
    p.set_defaults(func=run)
    return p


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

    run_dir = resume_path = None
    if args.resume == "auto":
        run_dir = loop.find_resume_run(args.outdir) if args.outdir.exists() else None
        if run_dir is not None:
            resume_path = loop.latest_snapshot(run_dir)
    elif args.resume:
        resume_path = Path(args.resume)
        if not resume_path.is_file():
            raise UsageError(f"no such snapshot: {resume_path}")
        run_dir = resume_path.parent
    if resume_path is not None and (run_dir / "config.yaml").exists():
        cfg = load_config(run_dir / "config.yaml", overrides)  # the run's own config, plus any new overrides
    else:
        cfg = load_config(args.config, overrides)
    if cfg.data.path is None:
        raise UsageError("no dataset: pass --data PATH (or set data.path)")
    if cfg.augment.mode != "noaug":
        raise UsageError(f"augment.mode {cfg.augment.mode!r} is not available in this version (use --set augment.mode=noaug)")
    if cfg.optim.precision != "fp32":
        raise UsageError(f"optim.precision {cfg.optim.precision!r} is not available for training in this version (fp32 only)")

    device = resolve_device(args.device)
    dataset = ImageDataset(cfg.data.path, max_size=cfg.data.max_size, xflip=cfg.data.xflip, random_seed=cfg.run.seed)
    group = min(cfg.discriminator.mbstd_group_size, cfg.optim.batch_gpu)
    if cfg.optim.batch_gpu % group:
        raise UsageError("optim.batch_gpu must be a multiple of discriminator.mbstd_group_size")
    # the architecture comes from the model file when fine-tuning or resuming, from the preset otherwise
    init = load_snapshot(args.init) if args.init else (load_snapshot(resume_path) if resume_path else None)
    t = loop.build_trainer(cfg, dataset.resolution, device, dataset.label_std(), seed=cfg.run.seed, init=init)
    if resume_path is not None:
        loop.restore_training_snapshot(t, resume_path)
        for stale in run_dir.glob("*.tmp"):  # half-written snapshots of a killed process (never renamed into place)
            stale.unlink()
        print(f"resuming {run_dir.name} from {resume_path.name} at {t.progress.cur_nimg / 1000:.3f} kimg")
    else:
        desc = f"{Path(str(args.config)).stem}-{Path(cfg.data.path).stem}"
        run_dir = loop.new_run_dir(args.outdir, desc)
        print(f"new run {run_dir}")
    (run_dir / "config.yaml").write_text(dump_config(cfg))

    batches = make_loader(dataset, cfg.optim.batch, workers=cfg.data.workers,
                          seed=cfg.run.seed + t.progress.batch_idx, device=device)
    total = cfg.run.kimg
    bar = tqdm(total=round(total, 3), initial=round(t.progress.cur_nimg / 1000, 3), unit="kimg",
               bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} kimg [{elapsed}<{remaining}{postfix}]")

    def on_tick(rec: dict) -> None:
        bar.n = round(rec["kimg"], 3)
        bar.set_postfix({"s/kimg": f"{rec['sec_per_kimg']:.0f}", "G": f"{rec.get('loss/G', float('nan')):.3f}",
                         "D": f"{rec.get('loss/D_real', float('nan')) + rec.get('loss/D_fake', float('nan')):.3f}"})
        bar.refresh()

    try:
        loop.training_loop(t, batches, dataset.labels(), run_dir, total, cfg.run.snap_kimg, cfg.run.tick_kimg,
                           on_tick=on_tick)
    finally:
        bar.close()
    print(f"done: {run_dir / loop.snapshot_name(t.progress.cur_nimg)}")
    return 0
