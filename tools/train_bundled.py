"""The bundled model's training pipeline as one resumable, time-boxed script.

    python tools/train_bundled.py --workdir runs/bundled --minutes 480 [--device cuda] [--batch 32]
        [--stage1-kimg 200] [--stage2-kimg 60] [--distill-kimg 60] [--continue-stage2 PKL] [--init-student PKL]

Stages, each one of Trident's own commands (so the same run can be made by hand, and the packed file records them):

1. ``dataset``  ``python -m training dataset synth`` (the built-in synthetic heads, 2000 images at 64 px, seed 0)
2. ``stage1``   ``python -m training train --config mimic3d-stage1-synth-tiny`` (sr2d with the 3D-aware backbone)
3. ``stage2``   ``python -m training train --config mimic3d-stage2-synth-tiny --init <stage 1>`` (direct3d)
4. ``distill``  ``python -m training distill --config distill-synth --teacher <stage 2>`` (the student)
5. ``pack``     ``python -m core pack --half`` -> ``<workdir>/default.pkl`` (what ``assets/default.pkl`` is), and
   ``<workdir>/stage2-continue.pkl``: the stage-2 model with its discriminators (float16), enough to continue the
   GAN run on a new machine (``--continue-stage2``; optimiser state is rebuilt).

Every stage is cut by time: ``--minutes`` is the whole budget, shared out over the stages still open (stage 1 gets
the largest share) and passed to each command as ``--max-minutes``, which ends the run at a tick with a snapshot;
the next stage then starts from the snapshot its predecessor reached. A stage is closed once it reaches its target
kimg or once a later stage has started from it. Running the script again continues the open stages from their
newest snapshots (``--resume auto``), so a run split over several machines goes on from what the last one returned.
``pipeline.json`` in the work folder records the stages, their kimg and s/kimg, and the commands in order.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.runs import latest_snapshot, snapshot_nimg  # noqa: E402

SHARES = {"stage1": 0.55, "stage2": 0.25, "distill": 0.20}  # of the time left, for the stages still to run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path("runs/bundled"))
    p.add_argument("--data", type=Path, default=Path("data/synth64.zip"))
    p.add_argument("--minutes", type=float, required=True, help="wall-time budget for this invocation")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=None, help="GAN batch (default: the presets' 4; 32 on a GPU)")
    p.add_argument("--stage1-kimg", type=float, default=200.0)
    p.add_argument("--stage2-kimg", type=float, default=60.0)
    p.add_argument("--distill-kimg", type=float, default=60.0)
    p.add_argument("--distill-batch", type=int, default=None, help="distillation batch (default: the preset's)")
    p.add_argument("--workers", type=int, default=None, help="data-loading processes (default: the presets' 1)")
    p.add_argument("--tick-kimg", type=float, default=0.5, help="tick length: where a time-boxed stage may stop")
    p.add_argument("--continue-stage2", type=Path, default=None,
                   help="a stage2-continue.pkl from an earlier machine: stage 2 goes on from it (stage 1 is done)")
    p.add_argument("--init-student", type=Path, default=None, help="start the student from this file's student")
    p.add_argument("--set-stage1", dest="stage1_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --set for stage 1 (stage 2 and the student inherit the architecture from the file)")
    p.add_argument("--dry-run", action="store_true", help="print the commands of the next invocation only")
    return p.parse_args(argv)


def stage_state(outdir: Path, target_kimg: float) -> tuple[Path | None, float, bool]:
    """(newest snapshot, its kimg, finished) of the newest run under ``outdir``."""
    runs = sorted(d for d in outdir.glob("*") if d.is_dir()) if outdir.exists() else []
    snap = latest_snapshot(runs[-1]) if runs else None
    kimg = (snapshot_nimg(snap) or 0) / 1000 if snap is not None else 0.0
    return snap, kimg, snap is not None and kimg >= target_kimg - 1e-9


def sec_per_kimg(outdir: Path) -> float | None:
    runs = sorted(d for d in outdir.glob("*") if d.is_dir()) if outdir.exists() else []
    if not runs or not (runs[-1] / "stats.jsonl").exists():
        return None
    ticks = [json.loads(line) for line in (runs[-1] / "stats.jsonl").read_text().splitlines() if '"tick"' in line]
    return ticks[-1]["sec_per_kimg"] if ticks else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    w = args.workdir
    w.mkdir(parents=True, exist_ok=True)
    log_path = w / "pipeline.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {"commands": []}
    py = [sys.executable]
    batch = [] if args.batch is None else ["--set", f"optim.batch={args.batch}", "--set", f"optim.batch_gpu={args.batch}"]
    if args.workers is not None:
        batch += ["--set", f"data.workers={args.workers}"]
    dev = ["--device", args.device]

    def left() -> float:
        return args.minutes - (time.time() - start) / 60

    def run(cmd: list[str], record: bool = True) -> None:
        shown = " ".join(shlex.quote(c) for c in ["python", *cmd[1:]])
        print(f"[pipeline] {shown}", flush=True)
        if args.dry_run:
            return
        subprocess.run(cmd, cwd=ROOT, check=True)
        if record:
            log["commands"].append(shown)
            log_path.write_text(json.dumps(log, indent=2))

    if not args.data.exists():
        run(py + ["-m", "training", "dataset", "synth", "--dest", str(args.data), "--count", "2000",
                  "--resolution", "64", "--seed", "0"])

    stages = [("stage1", args.stage1_kimg), ("stage2", args.stage2_kimg), ("distill", args.distill_kimg)]

    def is_open(i: int) -> bool:
        name, target = stages[i]
        if name == "stage1" and args.continue_stage2 is not None:
            return False
        later_started = any(stage_state(w / n, t)[0] is not None for n, t in stages[i + 1:])
        return not later_started and not stage_state(w / name, target)[2]

    for i, (name, target) in enumerate(stages):
        snap, kimg, done = stage_state(w / name, target)
        if not is_open(i):
            if snap is not None:
                print(f"[pipeline] {name}: closed at {kimg:g} kimg")
            continue
        todo = [n for j, (n, _) in enumerate(stages) if j >= i and is_open(j)]
        minutes = left() * SHARES[name] / sum(SHARES[n] for n in todo)
        if minutes < 0.5:
            print(f"[pipeline] {name}: no time left ({left():.1f} min); run again to continue")
            break
        common = ["--outdir", str(w / name), "--kimg", str(target), "--max-minutes", f"{minutes:.2f}", *dev]
        if name in ("stage1", "stage2"):
            cmd = py + ["-m", "training", "train", "--config", f"mimic3d-{name}-synth-tiny", "--data", str(args.data),
                        *common, "--snap-kimg", "2", "--set", f"run.tick_kimg={args.tick_kimg}", *batch]
            if name == "stage1":
                cmd += [x for kv in args.stage1_overrides for x in ("--set", kv)]
            if snap is not None:
                cmd += ["--resume", "auto"]
            elif name == "stage2":
                prev = args.continue_stage2 or stage_state(w / "stage1", args.stage1_kimg)[0]
                if prev is None:
                    raise SystemExit("error: stage 2 needs a stage-1 snapshot (or --continue-stage2)")
                cmd += ["--init", str(prev)]
            run(cmd)
        else:
            teacher = stage_state(w / "stage2", args.stage2_kimg)[0]
            if teacher is None and snap is None:
                raise SystemExit("error: distillation needs a stage-2 snapshot")
            cmd = py + ["-m", "training", "distill", "--config", "distill-synth", *common, "--snap-kimg", "2",
                        "--set", f"run.tick_kimg={args.tick_kimg}"]
            if args.distill_batch is not None:
                cmd += ["--set", f"optim.batch={args.distill_batch}", "--set", f"optim.batch_gpu={args.distill_batch}"]
            if snap is not None:
                cmd += ["--resume", "auto"]
            else:
                cmd += ["--teacher", str(teacher)]
                if args.init_student is not None:
                    cmd += ["--init-student", str(args.init_student)]
            run(cmd)
        if args.dry_run:
            break
        snap, kimg, done = stage_state(w / name, target)
        log.setdefault("stages", {})[name] = {"kimg": kimg, "target_kimg": target, "finished": done,
                                             "sec_per_kimg": sec_per_kimg(w / name), "snapshot": str(snap)}
        log_path.write_text(json.dumps(log, indent=2))
        if not done:
            print(f"[pipeline] {name}: stopped by its time share at {kimg:g} of {target:g} kimg")

    if args.dry_run:
        return 0
    # pack whatever is newest: the three-branch file once a student exists, else the stage-2 or stage-1 model
    s2 = stage_state(w / "stage2", args.stage2_kimg)[0]
    newest = stage_state(w / "distill", args.distill_kimg)[0] or s2 or stage_state(w / "stage1", args.stage1_kimg)[0]
    if newest is not None:
        provenance = [c for cmd in log["commands"] for c in ("--command", cmd)]
        run(py + ["-m", "core", "pack", "--half", "--network", str(newest), "--out", str(w / "default.pkl"),
                  *provenance], record=False)
    if s2 is not None:
        run(py + ["-m", "core", "pack", "--half", "--keep-discriminators", "--network", str(s2),
                  "--out", str(w / "stage2-continue.pkl")], record=False)
    print(f"[pipeline] {json.dumps(log.get('stages', {}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
