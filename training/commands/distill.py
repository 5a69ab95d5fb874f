"""``python -m training distill``: distil a teacher NeRF-GAN into the convolutional ``student`` branch.

    python -m training distill --teacher PKL --config distill-ffhq512 --outdir runs [--kimg 5000]
        [--snap-kimg 100] [--resume auto|PKL] [--init-student PKL] [--data DATASET] [--set key=value ...]
        [--device auto|cpu|cuda]

The teacher is a Trident snapshot or an EG3D/Mimic3D network pickle. A run folder ``runs/NNNNN-<config>-<teacher>/``
receives the resolved ``config.yaml``, ``stats.jsonl`` (one line per tick, and one ``eval/*`` line per snapshot
with PSNR etc. of the student against the teacher on held-out pairs), ``compareXXXXXX.png`` grids (teacher and
student rows over a yaw sweep) and ``network-snapshot-XXXXXX.pkl`` files: the teacher plus the student, which
``python -m core samples --branch student`` renders. ``--resume auto`` continues the newest run under ``--outdir``
(its teacher is the one inside the snapshot); ``--data`` gives the dataset whose camera labels are used with
``--set sampling.cameras=dataset``. ``--init-student`` starts a new run's student from another distillation
snapshot's student (same architecture; e.g. to follow a teacher that was fine-tuned further). Runs under ``torchrun`` like ``python -m training train``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from core.commands.common import UsageError, resolve_device
from core.errors import CheckpointError
from core.files.checkpoint import load_snapshot

from .. import runs
from ..distill import loop as distill
from ..distill.config import load_distill_config
from ..distill.eval import evaluate, make_held_out, save_comparison_grid
from ..plumbing import append_jsonl
from .train import _init_distributed, _rank_device, add_max_minutes, deadline_from


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("distill", help="distil a teacher into the convolutional student branch", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default=None, help="teacher model file (Trident .pkl or EG3D/Mimic3D pickle)")
    p.add_argument("--config", required=True, help="preset name (training/configs/distill-*.yaml) or YAML path")
    p.add_argument("--outdir", required=True, type=Path)
    p.add_argument("--kimg", type=float, default=None, help="total length in thousands of distillation pairs")
    p.add_argument("--snap-kimg", type=float, default=None, help="snapshot interval in kimg")
    p.add_argument("--resume", default=None, help="'auto' (newest run in --outdir) or a distillation snapshot")
    p.add_argument("--init-student", default=None, type=Path,
                   help="start the student from this distillation snapshot's student (same architecture)")
    p.add_argument("--data", default=None, help="dataset whose camera labels to use (sets sampling.data)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=None)
    add_max_minutes(p)
    return p


def _distill_snapshot(path: Path):
    """A snapshot a distillation run can continue from: it loads and holds the distillation state."""
    snap = load_snapshot(path)
    if "distill" not in snap.extra:
        raise CheckpointError(f"{path.name} holds no distillation state")
    return snap


def _resume_target(args: argparse.Namespace) -> "runs.Resume | None":
    if args.resume == "auto":
        return runs.resume_auto(args.outdir, _distill_snapshot)
    if args.resume:
        return runs.resume_from(Path(args.resume), args.outdir, "resume-" + Path(args.resume).resolve().parent.name,
                                _distill_snapshot)
    return None


def _camera_labels(cfg) -> "object | None":
    if cfg.sampling.cameras != "dataset":
        return None
    if cfg.sampling.data is None:
        raise UsageError("sampling.cameras is 'dataset': pass --data DATASET (or set sampling.data)")
    from core.files.dataset import ImageDataset

    ds = ImageDataset(cfg.sampling.data)
    try:
        return ds.labels()
    finally:
        ds.close()


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    for flag, key in ((args.kimg, "run.kimg"), (args.snap_kimg, "run.snap_kimg"), (args.seed, "run.seed")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    if args.data is not None:
        overrides.append(f"sampling.data={json.dumps(str(args.data))}")
    if args.resume is None and args.teacher is None:
        raise UsageError("--teacher PKL is required (unless resuming a distillation run)")
    resume = _resume_target(args)
    if resume is None and args.teacher is None:
        raise UsageError(f"--resume auto: no distillation snapshot under {args.outdir}; pass --teacher PKL")
    run_dir = lock = None
    resume_path = resume.snapshot if resume is not None else None
    if resume is not None and resume.config is not None:
        cfg = load_distill_config(resume.config, overrides)  # the run's own config, plus new overrides
    else:
        cfg = load_distill_config(args.config, overrides)
    # the teacher travels inside distillation snapshots, so a resumed run keeps its own teacher
    snap = resume.snap if resume is not None else load_snapshot(args.teacher)
    labels = _camera_labels(cfg)

    rank, world = _init_distributed(args.device)
    deadline = deadline_from(args, world)
    device = resolve_device(args.device) if world == 1 else _rank_device(args.device)
    if cfg.optim.batch % (cfg.optim.batch_gpu * world):
        raise UsageError(f"optim.batch {cfg.optim.batch} must be a multiple of batch_gpu x processes "
                         f"({cfg.optim.batch_gpu} x {world})")
    student_init = None
    if args.init_student is not None:
        if resume_path is not None:
            raise UsageError("--init-student starts a new run; it cannot be combined with --resume")
        student_init = load_snapshot(args.init_student).extra.get("student")
        if student_init is None:
            raise UsageError(f"{args.init_student} holds no student (a distillation snapshot has one)")
    d = distill.build_distiller(cfg, snap, device, labels, seed=cfg.run.seed, student_init=student_init)
    d.rank, d.world_size = rank, world
    d.gen.manual_seed(cfg.run.seed * 1000 + rank)  # different latents and cameras per process
    if resume_path is not None:
        distill.restore_distill_snapshot(d, snap, resume_path.name)
        if world > 1:
            d.gen.manual_seed(cfg.run.seed * 1000 + rank + d.progress.batch_idx)
        run_dir, lock = resume.run_dir, resume.lock
        if rank == 0:
            runs.trim_stats(run_dir / "stats.jsonl", d.progress.cur_nimg)
            if args.teacher is not None:
                print(f"note: --teacher ignored, the teacher inside {resume_path.name} is used")
            print(f"resuming {run_dir.name} from {resume_path.name} at {d.progress.cur_nimg / 1000:.3f} kimg")
    elif rank == 0:
        run_dir, lock = runs.new_run_dir(args.outdir, f"{Path(str(args.config)).stem}-{Path(args.teacher).stem}")
        print(f"new run {run_dir}" + (f" ({world} processes)" if world > 1 else ""))
    if world > 1:
        holder = [str(run_dir) if rank == 0 else None]
        torch.distributed.broadcast_object_list(holder, src=0)
        run_dir = Path(holder[0])

    held = None
    if rank == 0:
        distill.write_config(run_dir, cfg)
        if cfg.run.eval_pairs > 0:
            held = make_held_out(d, cfg.run.eval_pairs, cfg.run.seed, cfg.optim.batch_gpu)
            if resume_path is None:  # the untrained student's scores: the baseline of the curve
                append_jsonl(run_dir / "stats.jsonl", {"kimg": 0.0, **evaluate(d.student_ema, held, d.lpips)})

    def on_snapshot(dd: distill.Distiller, rd: Path, tag: str) -> dict:
        save_comparison_grid(dd, rd / f"compare{tag}.png", cfg.run.grid, cfg.run.seed)
        return evaluate(dd.student_ema, held, dd.lpips) if held is not None else {}

    total = cfg.run.kimg
    bar = tqdm(total=round(total, 3), initial=round(d.progress.cur_nimg / 1000, 3), unit="kimg", disable=rank != 0,
               bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} kimg [{elapsed}<{remaining}{postfix}]")

    def on_tick(rec: dict) -> None:
        bar.n = round(rec["kimg"], 3)
        bar.set_postfix({"s/kimg": f"{rec['sec_per_kimg']:.0f}", "recon": f"{rec.get('loss/recon', float('nan')):.3f}",
                         "psnr": f"{rec.get('metric/psnr', float('nan')):.1f}", "stage": rec.get("schedule/stage")})
        bar.refresh()

    try:
        last = distill.distill_loop(d, run_dir, total, cfg.run.snap_kimg, cfg.run.tick_kimg, on_tick=on_tick,
                             on_snapshot=on_snapshot, deadline=deadline)
    finally:
        bar.close()
        if world > 1:
            torch.distributed.destroy_process_group()
        if lock is not None:
            lock.release()
    if rank == 0:
        if last is None:  # nothing left to distil: the run already reached --kimg
            print(f"nothing to distil: {run_dir.name} is at {d.progress.cur_nimg / 1000:.3f} kimg, run.kimg is "
                  f"{total:g}; its latest snapshot is {resume_path}")
        else:
            print(f"done: {run_dir / runs.snapshot_name(last)}")
    return 0
