"""Student rows of ``python -m core bench``: the distilled ``student`` branch (core.student) against its teacher's
``sr2d`` branch, ms per image and peak memory, at the teacher's output size.

Students, each paired with a teacher model of the main bench:

* ``fixture``: the student inside ``--network`` when the file holds one (``source: file``), else a random-weight
  student of the ``distill-tiny`` architecture (128 px, the teacher's 2X super-resolution);
* ``ffhq512``: random weights, the ``distill-ffhq512`` architecture (64 px feature head, light 96/48/16-channel
  super-resolution to 512 px), against the FFHQ-512 teacher at neural rendering 64, 48+48 samples;
* ``ffhq512-teachersr``: as ``ffhq512`` but with the teacher's own 8XDC super-resolution (``distill-ffhq512-teachersr``).

Both sides include the teacher's mapping network (the student consumes its ws); the teacher renders with
deterministic sampling (the distillation targets' and the viewer's mode). The speed-up is teacher / student ms;
on CPU the rows also hold process CPU ms per image and the CPU-time speed-up (robust on a shared machine).
"""
from __future__ import annotations

import statistics
import sys
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from ..cameras import Camera
from ..files.checkpoint import load_snapshot
from ..layers import set_compute_dtype
from ..metrics.fidelity import psnr
from ..student import StudentGenerator, build_student, init_from_teacher, student_config_for_teacher
from ..tools.bench import Case, measure, time_runs
from ..triplane import TriPlaneGenerator
from .common import choice_list, int_list

# Student architectures of the distillation presets (training/configs/distill-*.yaml; a test keeps them equal).
STUDENT_ARCHS: dict[str, dict] = {
    "fixture": {"style_dim": 64, "mapping_layers": 2, "mapping_lr_mul": 1.0, "channel_base": 1024,
                "channel_max": 64, "sr_kind": "teacher"},
    "ffhq512": {"style_dim": 512, "mapping_layers": 4, "mapping_lr_mul": 1.0, "channel_base": 16384,
                "channel_max": 256, "sr_kind": "light", "sr_channels": [96, 48, 16]},
    "ffhq512-teachersr": {"style_dim": 512, "mapping_layers": 4, "mapping_lr_mul": 1.0, "channel_base": 16384,
                          "channel_max": 256, "sr_kind": "teacher"},
}
PRESET_OF = {"fixture": "distill-tiny", "ffhq512": "distill-ffhq512", "ffhq512-teachersr": "distill-ffhq512-teachersr"}
TEACHER_OF = {"fixture": "fixture", "ffhq512": "ffhq512", "ffhq512-teachersr": "ffhq512"}
STUDENTS = tuple(STUDENT_ARCHS)


def build_students(names: list[str], models: dict[str, TriPlaneGenerator], network, device: torch.device,
                   seed: int = 0) -> dict[str, tuple[StudentGenerator, str]]:
    """name -> (student, source) for the students whose teacher model is loaded."""
    out = {}
    for name in names:
        G = models.get(TEACHER_OF[name])
        if G is None:
            continue
        if name == "fixture":
            extra = load_snapshot(network).extra
            if "student" in extra:
                out[name] = (build_student(extra["student"], device), "file")
                continue
        torch.manual_seed(seed)
        S = StudentGenerator(student_config_for_teacher(G, **STUDENT_ARCHS[name])).to(device)
        init_from_teacher(S, G, num_samples=64)
        out[name] = (S.eval().requires_grad_(False), f"random weights, {PRESET_OF[name]} architecture")
    return out


def _inputs(G: TriPlaneGenerator, batch: int, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    r = G.cfg.rendering
    z = torch.from_numpy(np.random.RandomState(seed).randn(batch, G.z_dim)).float().to(device)
    c = Camera.frontal_offset(0.0, 0.0, r.avg_camera_pivot, r.avg_camera_radius, device=device).to_label()
    return z, c.expand(batch, -1).contiguous()


def student_pass(G: TriPlaneGenerator, S: StudentGenerator, batch: int, device: torch.device,
                 seed: int = 0) -> Callable[[], torch.Tensor]:
    """The measured work: the teacher's mapping + the student, for a batch at the frontal camera."""
    z, c = _inputs(G, batch, device, seed)

    def fn() -> torch.Tensor:
        with torch.no_grad():
            return S(G.mapping(z, c), c)["image"]
    return fn


def run_student_rows(names: list[str], batches: list[int], models: dict[str, TriPlaneGenerator],
                     students: dict[str, tuple[StudentGenerator, str]], teacher_rows: list[dict],
                     measure_teacher: Callable[[str, int, int], dict],
                     measure_fn: Callable[[Callable, int], dict], bf16: bool = False) -> list[dict]:
    """One row per (student, batch): student and teacher ms/img and peak MB, and the speed-up.

    ``measure_teacher(model, nrr, batch)`` times the teacher's deterministic sr2d pass (reused from
    ``teacher_rows`` when the main bench measured the same case); ``measure_fn(fn, batch)`` times a callable.
    ``bf16``: also time the student in bfloat16 (core.precision) and score its images against fp32 (PSNR).
    """
    rows = []
    todo = [(name, batch) for name in names if name in students for batch in batches]
    for name, batch in tqdm(todo, desc="bench students", unit="case", file=sys.stderr):
        S, source = students[name]
        teacher = TEACHER_OF[name]
        G = models[teacher]
        nrr = S.cfg.feature_resolution
        found = [r for r in teacher_rows if r["model"] == teacher and r.get("branch", "sr2d") == "sr2d"
                 and r["nrr"] == nrr and r["batch"] == batch and r["sampling"] == "det"]
        t = found[0] if found else measure_teacher(teacher, nrr, batch)
        fn = student_pass(G, S, batch, next(S.parameters()).device)
        s = measure_fn(fn, batch)
        extra = {"ms_per_image_student_bf16": None, "psnr_student_bf16_vs_fp32": None}
        if bf16:
            ref = fn()
            set_compute_dtype(S, torch.bfloat16)
            try:
                sb = measure_fn(fn, batch)
                extra = {"ms_per_image_student_bf16": sb["ms_per_image"], "times_ms_student_bf16": sb["times_ms"],
                         "psnr_student_bf16_vs_fp32": float(psnr(fn(), ref, clamp=False).min())}
            finally:
                set_compute_dtype(S, None)
        rows.append({**extra, "student": name, "source": source, "teacher": teacher, "nrr": nrr,
                     "samples": t["samples"], "image_resolution": S.cfg.img_resolution, "batch": batch,
                     "sr_kind": S.cfg.sr_kind,
                     "student_params_m": sum(p.numel() for p in S.parameters()) / 1e6,
                     "teacher_params_m": sum(p.numel() for p in G.parameters()) / 1e6,
                     "ms_per_image_student": s["ms_per_image"], "times_ms_student": s["times_ms"],
                     "peak_mb_student": s["peak_mb"],
                     "ms_per_image_teacher": t["ms_per_image"], "times_ms_teacher": t["times_ms"],
                     "peak_mb_teacher": t["peak_mb"],
                     "cpu_ms_per_image_student": _cpu_ms(s, batch), "cpu_ms_per_image_teacher": _cpu_ms(t, batch),
                     "speedup": t["ms_per_image"] / s["ms_per_image"],
                     "cpu_speedup": _cpu_ms(t, batch) / _cpu_ms(s, batch) if s.get("cpu_times_ms") else None})
    return rows


def _cpu_ms(m: dict, batch: int) -> float | None:
    """Median process CPU ms per image (CPU runs only): robust to other processes on a shared machine."""
    return statistics.median(m["cpu_times_ms"]) / batch if m.get("cpu_times_ms") else None


STUDENT_COLUMNS = ("student", "px", "batch", "sr", "teacher ms/img", "student ms/img", "speed-up", "CPU-time speed-up",
                   "teacher MB", "student MB", "student bf16 ms/img", "bf16 PSNR vs fp32")


def student_table_lines(rows: list[dict]) -> list[str]:
    cells = [[r["student"], str(r["image_resolution"]), str(r["batch"]), str(r["sr_kind"]),
              f"{r['ms_per_image_teacher']:.1f}", f"{r['ms_per_image_student']:.1f}", f"{r['speedup']:.1f}x",
              "-" if r["cpu_speedup"] is None else f"{r['cpu_speedup']:.1f}x", f"{r['peak_mb_teacher']:.0f}", f"{r['peak_mb_student']:.0f}",
              "-" if r.get("ms_per_image_student_bf16") is None else f"{r['ms_per_image_student_bf16']:.1f}",
              "-" if r.get("psnr_student_bf16_vs_fp32") is None else f"{r['psnr_student_bf16_vs_fp32']:.1f}"]
             for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(STUDENT_COLUMNS)]

    def line(vals):
        return "  ".join(v.ljust(w) if i in (0, 3) else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths)))
    return [line(STUDENT_COLUMNS), "  ".join("-" * w for w in widths)] + [line(c) for c in cells]


# ----------------------------------------------------------------------------------------------------------
# the bench command's student section


def add_options(p) -> None:
    p.add_argument("--students", default=None,
                   help=f"comma list of {', '.join(STUDENTS)} (default: those whose teacher is benchmarked)")
    p.add_argument("--student-batches", default=None, help="batch sizes of the student rows (default 1,16)")
    p.add_argument("--no-student", action="store_true", help="skip the student rows")


def parse(args) -> tuple[list[str], list[int]] | None:
    """(students, batch sizes) from the options, checked before any measuring; None with --no-student."""
    if args.no_student:
        return None
    names = choice_list(args.students or ",".join(STUDENTS), "students", STUDENTS)
    batches = int_list(args.student_batches or ("1" if args.quick else "1,16"), "student-batches", 1)
    return names, batches


def section(plan: tuple[list[str], list[int]] | None, args, settings, models: dict[str, TriPlaneGenerator],
            teacher_rows: list[dict], device: torch.device, mem) -> list[dict]:
    """Build the planned students and measure them against their teachers (no rows without a plan)."""
    if plan is None:
        return []
    names, batches = plan
    students = build_students(names, models, args.network, device)

    def measure_fn(fn: Callable[[], torch.Tensor], batch: int) -> dict:
        mem.start()
        times, cpu_times, _ = time_runs(fn, device, settings.warmup, settings.repeats)
        peak, _ = mem.stop_mb()
        return {"ms_per_image": statistics.median(times) / batch, "times_ms": times, "cpu_times_ms": cpu_times,
                "peak_mb": peak}

    def measure_teacher(model: str, nrr: int, batch: int) -> dict:
        r = models[model].cfg.rendering
        case = Case(model, nrr, r.depth_resolution, r.depth_resolution_importance, batch, "det")
        out = measure(models[model], case, device, False, settings.warmup, settings.repeats, mem)
        out["samples"] = [case.coarse, case.importance]
        return out

    return run_student_rows(names, batches, models, students, teacher_rows, measure_teacher, measure_fn,
                            bf16="bf16" in settings.precisions)
