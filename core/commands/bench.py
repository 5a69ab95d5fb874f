"""``python -m core bench``: generator speed and peak memory, against the literal reference operators.

Measures ms per image of the ``sr2d`` branch (mapping + backbone + volume rendering + 2D super-resolution, for
a frontal camera) for

* ``fixture``: the model in ``--network`` (default: the EG3D reference fixture) at its own neural rendering
  resolution and samples per ray; when it is a Mimic3D model with detail tri-planes, also its ``direct3d`` branch
  at its output resolution (at the ``--direct3d-batches``);
* ``ffhq512``: EG3D's official FFHQ-512 architecture with random weights (256^2 tri-planes, 8XDC
  super-resolution to 512), at each ``--nrr`` with 48+48 samples per ray;

for each batch size and sampling mode (``det``: deterministic depths; ``std``: EG3D's stratified jitter and
random inverse-CDF draws); and the ``direct3d`` branch (mapping + 3D-aware backbone with detail tri-planes +
volume rendering of coarse + detail tri-planes at the output resolution, no super-resolution) for

* ``mimic3d512``: Mimic3D's FFHQ-512 3D-stage architecture with random weights (3D-aware blocks at 4..256,
  256^2 coarse and 512^2 detail tri-planes), at each ``--direct3d-res`` (default 128, 256, 512) with 48+48
  samples per ray, batch sizes ``--direct3d-batches`` (default 1), in ray chunks of 8192 (bounded memory).
The student rows time the distilled ``student`` branch against its teacher's ``sr2d`` at batch sizes
``--student-batches`` (default 1, 16; see core.commands.bench_student).
 Times are the median of ``--repeats`` runs after ``--warmup`` runs, divided by the
batch size; CUDA work is timed with CUDA events.

The reference column runs the same work through the literal reference operators (``RenderOptions(plain=True)``:
grouped "fused" modulated convolution and zero-insertion + depthwise-FIR upfirdn2d, the algorithm of EG3D's
reference implementation) and reports the ratio reference / fast and the largest absolute difference between the
two output images (they must agree within 1e-3; the command exits 1 after writing the JSON when they do not).
Rows in ``bf16`` (``--precision``, default ``fp32,auto``: see core.precision) skip the reference and give the PSNR
of their image against the same case's fp32 image instead. Every row gives the convolution + matrix-product
GFLOP/s it reached, against a probe of the machine's peak printed first; ``--profile`` adds the share of time in
convolutions, sampling, matrix products, compositing and the rest.

Peak memory is the increase above what was in use when the case started (weights and inputs excluded): CUDA
``max_memory_allocated``; on CPU the process's peak resident set size (Linux VmHWM after a reset through
/proc/self/clear_refs, else the lifetime ``getrusage`` high-water mark, which gives only a lower bound).
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..build import build_generator
from ..config import GeneratorConfig, RenderingConfig
from ..files.checkpoint import load_snapshot
from ..model import Model
from ..metrics.fidelity import psnr
from ..precision import resolve as resolve_precision
from ..tools.bench import (SAMPLING, SEED, Case, PeakMemory, count_flops, environment, floor_ms, load_average,
                           machine_peak, make_pass, measure, profile_shares, tf32)
from ..triplane import TriPlaneGenerator
from . import bench_student
from .common import UsageError, choice_list, fixtures_dir, int_list, resolve_device

MODELS = ("fixture", "ffhq512", "mimic3d512")
BRANCH = {"fixture": "sr2d", "ffhq512": "sr2d", "mimic3d512": "direct3d"}
DEFAULT_NETWORK = fixtures_dir() / "eg3d_ffhq128" / "network.pkl"
TOLERANCE = 1e-3
HALF_TOLERANCE = 2e-2  # fast vs reference in fp16/bf16 blocks, or with TF32 convolutions (10-bit mantissas)
PRECISIONS = ("fp32", "fp16", "bf16", "auto")
QUICK = {"models": "fixture", "batches": "1", "repeats": 1, "warmup": 0, "precision": "fp32"}
DEFAULTS = {"models": "fixture,ffhq512,mimic3d512", "batches": "1,8", "nrr": "64,128", "sampling": "det,std",
            "repeats": 3, "warmup": 1, "reference_batches": "1", "direct3d_res": "128,256,512",
            "direct3d_batches": "1", "precision": "fp32,auto"}


def ffhq512_config() -> GeneratorConfig:
    """EG3D's official FFHQ-512 generator (the GeneratorConfig defaults) with 48+48 samples per ray."""
    return GeneratorConfig(rendering=RenderingConfig(depth_resolution=48, depth_resolution_importance=48,
                                                     ray_start=2.25, ray_end=3.3))


def mimic3d512_config() -> GeneratorConfig:
    """Mimic3D's FFHQ-512 3D-stage generator (ffhq512_3d.yaml: aware3d_res 4..256, retidx [-3, -1]), 48+48 samples."""
    return GeneratorConfig(aware3d_res=(4, 8, 16, 32, 64, 128, 256), detail_blocks=2, const_batch_dim=True,
                           rendering=RenderingConfig(depth_resolution=48, depth_resolution_importance=48,
                                                     ray_start=2.25, ray_end=3.3, plane_convention="mimic3d",
                                                     density_reg_p_dist=0.002))


# ----------------------------------------------------------------------------------------------------------
# options


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="measure generator speed and memory (fast vs reference operators)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", type=Path, default=DEFAULT_NETWORK,
                   help="model for the 'fixture' rows (default: ../shared/fixtures/eg3d_ffhq128/network.pkl)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--models", default=None, help=f"comma list of {', '.join(MODELS)} (default: both)")
    p.add_argument("--batches", default=None, help="comma list of batch sizes (default: 1,8)")
    p.add_argument("--nrr", default=None,
                   help="neural rendering resolutions for ffhq512 (default: 64,128; the fixture uses its own)")
    p.add_argument("--sampling", default=None, help="comma list of det, std (default: det,std)")
    p.add_argument("--direct3d-res", default=None,
                   help="direct3d output resolutions for mimic3d512 (default: 128,256,512)")
    p.add_argument("--direct3d-batches", default=None, help="batch sizes of the direct3d rows (default: 1)")
    p.add_argument("--repeats", default=None, help="timed runs per case; the median is reported (default 3)")
    p.add_argument("--warmup", default=None, help="untimed runs before timing (default 1)")
    p.add_argument("--threads", default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-reference", action="store_true", help="skip the (slow) reference-operator runs")
    p.add_argument("--precision", default=None,
                   help="comma list of fp32, fp16 (CUDA: the blocks EG3D runs in half precision), bf16 (every "
                        "convolution stack and the decoder MLP, see core.precision), auto (bf16 where the device "
                        "computes it fast, else fp32); default fp32,auto")
    p.add_argument("--profile", action="store_true",
                   help="also profile one run per row (torch.profiler): share of time in convolutions, sampling, "
                        "matrix products, compositing and the rest")
    p.add_argument("--reference-batches", default=None,
                   help="batch sizes that also run the reference operators (default: 1)")
    bench_student.add_options(p)
    p.add_argument("--quick", action="store_true",
                   help="smallest settings (fixture only, batch 1, 1 repeat, no warm-up); explicit options win")
    p.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON output (default: ./bench.json)")
    return p


@dataclass
class Settings:
    models: list[str]
    batches: list[int]
    nrrs: list[int]
    sampling: list[str]
    repeats: int
    warmup: int
    threads: int | None
    reference_batches: list[int]
    direct3d_res: list[int]
    direct3d_batches: list[int]
    precisions: list[str]


def parse_settings(args: argparse.Namespace) -> Settings:
    def pick(name: str):
        given = getattr(args, name)
        if given is not None:
            return given
        return QUICK.get(name, DEFAULTS.get(name)) if args.quick else DEFAULTS[name]

    def one_int(name: str, minimum: int) -> int | None:
        value = pick(name) if name != "threads" else args.threads
        if value is None:
            return None
        try:
            v = int(str(value).strip())
        except ValueError:
            raise UsageError(f"--{name}: {value!r} is not an integer") from None
        if v < minimum:
            raise UsageError(f"--{name} must be at least {minimum}")
        return v

    s = Settings(models=choice_list(pick("models"), "models", MODELS),
                 batches=int_list(pick("batches"), "batches", 1),
                 nrrs=int_list(pick("nrr"), "nrr", 8),
                 sampling=choice_list(pick("sampling"), "sampling", tuple(SAMPLING)),
                 repeats=one_int("repeats", 1), warmup=one_int("warmup", 0), threads=one_int("threads", 1),
                 reference_batches=int_list(pick("reference_batches"), "reference-batches", 1),
                 direct3d_res=int_list(pick("direct3d_res"), "direct3d-res", 8),
                 direct3d_batches=int_list(pick("direct3d_batches"), "direct3d-batches", 1),
                 precisions=choice_list(pick("precision"), "precision", PRECISIONS))
    return s


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


COLUMNS = ("model", "branch", "nrr", "samples", "batch", "sampling", "precision", "ms/img fast", "ms/img ref",
           "ref/fast", "max diff", "PSNR vs fp32", "GFLOP/s", "floor ms", "peak MB")


def table_lines(rows: list[dict]) -> list[str]:
    cells = [[r["model"], r["branch"], str(r["nrr"]), f"{r['samples'][0]}+{r['samples'][1]}", str(r["batch"]), r["sampling"],
              r["precision"], _fmt(r["ms_per_image"], ".1f"), _fmt(r["ms_per_image_reference"], ".1f"), _fmt(r["speedup"], ".2f"),
              _fmt(r["max_abs_diff"], ".2e"), _fmt(r.get("psnr_vs_fp32"), ".1f"), _fmt(r.get("gflop_per_s"), ".0f"),
              _fmt(r.get("floor_ms_per_image"), ".0f"), _fmt(r["peak_mb"], ".0f")] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(COLUMNS)]
    left = {0, 1, 5, 6}

    def line(vals):
        return "  ".join(v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths)))
    out = [line(COLUMNS), "  ".join("-" * w for w in widths)]
    out += [line(c) for c in cells]
    return out


def tolerance(row: dict) -> float:
    """Fast vs reference: 1e-3 in true fp32; 2e-2 when either rounds to a 10-bit mantissa (EG3D's fp16 blocks,
    or CUDA convolutions in TF32, PyTorch's default for cuDNN, which the rows record as ``tf32``)."""
    return TOLERANCE if row["precision"] == "fp32" and not row.get("tf32") else HALF_TOLERANCE


def resolve_precisions(requested: list[str], device: torch.device) -> tuple[list[str], list[str]]:
    """``auto`` resolved for ``device`` (duplicates dropped) -> (precisions, one line per auto choice)."""
    out, notes = [], []
    for p in requested:
        if p == "auto":
            choice = resolve_precision("auto", device)
            notes.append(f"precision {choice.reason}")
            p = choice.precision
        if p not in out:
            out.append(p)
    return out, notes


def peak_lines(peak: dict[str, dict[str, float]]) -> list[str]:
    return [f"measured peak ({name}): conv 3x3 {v['conv3x3']:.0f} GFLOP/s, matmul {v['matmul']:.0f} GFLOP/s"
            for name, v in peak.items()]


def profile_line(shares: dict[str, float]) -> str:
    return ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items())


# ----------------------------------------------------------------------------------------------------------
# the command


def build_cases(settings: Settings, models: dict[str, TriPlaneGenerator]) -> list[Case]:
    cases = []
    for name in settings.models:
        G = models[name]
        r = G.cfg.rendering
        branch = BRANCH[name]
        if name == "fixture":  # its own resolution; a Mimic3D model's direct3d at its output resolution too
            variants = [(branch, G.cfg.neural_rendering_resolution)]
            if "direct3d" in Model(G, G.dataset_label_std.device).branches:
                variants.append(("direct3d", G.img_resolution))
        else:
            variants = [(branch, nrr) for nrr in (settings.direct3d_res if branch == "direct3d" else settings.nrrs)]
        for branch, nrr in variants:
            for batch in (settings.direct3d_batches if branch == "direct3d" else settings.batches):
                for sampling in settings.sampling:
                    for precision in settings.precisions:
                        cases.append(Case(name, nrr, r.depth_resolution, r.depth_resolution_importance, batch,
                                          sampling, branch, precision))
    return cases


def load_models(settings: Settings, network: Path, device: torch.device) -> dict[str, TriPlaneGenerator]:
    models = {}
    if "fixture" in settings.models:
        snap = load_snapshot(network)
        if snap.generator.sr_kind is None:
            raise UsageError(f"{network} has no super-resolution module (the sr2d branch is benchmarked)")
        models["fixture"] = build_generator(snap.generator, snap.G_ema, device)
    if "ffhq512" in settings.models:
        torch.manual_seed(SEED)
        models["ffhq512"] = build_generator(ffhq512_config(), None, device)
    if "mimic3d512" in settings.models:
        torch.manual_seed(SEED)
        models["mimic3d512"] = build_generator(mimic3d512_config(), None, device)
    return models


def run(args: argparse.Namespace) -> int:
    settings = parse_settings(args)
    device = resolve_device(args.device)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    if args.out.exists() and args.out.is_dir():
        raise UsageError(f"--out {args.out} is a directory")
    if "fp16" in settings.precisions and device.type != "cuda":
        raise UsageError("--precision fp16 needs a CUDA device (use bf16 on the CPU)")
    settings.precisions, precision_notes = resolve_precisions(settings.precisions, device)
    student_plan = bench_student.parse(args)
    models = load_models(settings, args.network, device)
    cases = build_cases(settings, models)
    mem = PeakMemory(device)
    env = environment(device)
    load_before = load_average()
    print(f"device: {env['device_name']} ({device}), torch {env['torch']}, {env['threads']} thread(s), "
          f"{'/'.join(settings.precisions)}; "
          f"median of {settings.repeats} run(s) after {settings.warmup} warm-up; memory: {mem.method}", flush=True)
    for line in precision_notes:
        print(line)
    peak = machine_peak(device)
    for line in peak_lines(peak):
        print(line, flush=True)

    rows = []
    fp32_images: dict[tuple, torch.Tensor] = {}   # the fp32 image of each case: what bf16 / fp16 rows are scored against
    flops: dict[tuple, float] = {}                 # convolution + matmul FLOPs per image of each case
    for case in tqdm(cases, desc="bench", unit="case", file=sys.stderr):
        G = models[case.model]
        key = (case.model, case.branch, case.nrr, case.batch, case.sampling)
        if key not in flops:
            G.set_precision("fp32")
            flops[key] = count_flops(make_pass(G, case, device, False)) / case.batch
        fast = measure(G, case, device, False, settings.warmup, settings.repeats, mem)
        row = {"model": case.model, "branch": case.branch, "nrr": case.nrr, "samples": [case.coarse, case.importance], "batch": case.batch,
               "sampling": case.sampling, "deterministic": SAMPLING[case.sampling], "precision": case.precision,
               "tf32": tf32(device),
               "image_resolution": int(fast["image"].shape[-1]),
               "ms_per_image": fast["ms_per_image"], "ms_per_image_min": fast["ms_per_image_min"],
               "times_ms": fast["times_ms"], "cpu_times_ms": fast["cpu_times_ms"],
               "peak_mb": fast["peak_mb"], "baseline_mb": fast["baseline_mb"],
               "ms_per_image_reference": None, "ms_per_image_min_reference": None, "times_ms_reference": None,
               "cpu_times_ms_reference": None, "peak_mb_reference": None, "speedup": None, "max_abs_diff": None}
        image = fast.pop("image").float().cpu()
        if case.precision == "fp32":
            fp32_images[key] = image
        else:  # scored against fp32 (an untimed fp32 pass when fp32 is not among the precisions)
            if key not in fp32_images:
                G.set_precision("fp32")
                fp32_images[key] = make_pass(G, case, device, False)().float().cpu()
            row["psnr_vs_fp32"] = float(psnr(image, fp32_images[key], clamp=False).min())
        row["gflop_per_image"] = flops[key] / 1e9
        row["gflop_per_s"] = flops[key] / (fast["ms_per_image"] / 1000.0) / 1e9
        row["floor_ms_per_image"] = floor_ms(flops[key], peak, case.precision)
        if args.profile:
            G.set_precision(case.precision)
            try:
                row["profile"] = profile_shares(make_pass(G, case, device, False))
            finally:
                G.set_precision("fp32")
        # direct3d rows skip the reference operators: they change only the backbone's convolutions, while the
        # full-resolution ray marching dominates (and would double the longest runs); bf16 rows are scored
        # against fp32 (PSNR) instead: fast and reference in bf16 round differently at every layer
        if (not args.no_reference and case.batch in settings.reference_batches and case.branch == "sr2d"
                and case.precision != "bf16"):
            ref = measure(G, case, device, True, settings.warmup, settings.repeats, mem)
            diff = float((ref.pop("image").float().cpu() - image).abs().max())
            row.update(ms_per_image_reference=ref["ms_per_image"], ms_per_image_min_reference=ref["ms_per_image_min"],
                       times_ms_reference=ref["times_ms"], cpu_times_ms_reference=ref["cpu_times_ms"],
                       peak_mb_reference=ref["peak_mb"], speedup=ref["ms_per_image"] / fast["ms_per_image"],
                       max_abs_diff=diff)
        del image
        rows.append(row)

    student_rows = bench_student.section(student_plan, args, settings, models, rows, device, mem)
    load_after = load_average()
    mismatched = [r for r in rows if r["max_abs_diff"] is not None and not r["max_abs_diff"] < tolerance(r)]
    print()
    for line in table_lines(rows):
        print(line)
    print(f"ms/img: median over {settings.repeats} run(s) / batch; ref = literal reference operators "
          f"(grouped modulated conv, zero-insertion upfirdn2d); ref/fast = speed-up; max diff = max |fast - ref| "
          f"of the image (tolerance {TOLERANCE:g}, {HALF_TOLERANCE:g} in half precision or TF32); peak MB = peak memory increase during the fast runs; "
          f"direct3d rows: nrr = output resolution, no reference run")
    if student_rows:
        print()
        for line in bench_student.student_table_lines(student_rows):
            print(line)
        print("student rows: the distilled student (teacher's mapping + student) vs its teacher's sr2d "
              "(deterministic sampling) at the same batch; speed-up = teacher ms / student ms")
    for r in rows:
        if r.get("profile"):
            print(f"profile {r['model']} {r['branch']} {r['nrr']} b{r['batch']} {r['sampling']} {r['precision']}: "
                  f"{profile_line(r['profile'])}")
    print("GFLOP/s: convolution + matrix-product FLOPs per image (torch.utils.flop_counter) / ms per image; "
          "floor ms: those FLOPs at the measured peak of the row's precision (no faster schedule exists on this machine); "
          "PSNR vs fp32: the worst image of the batch against the fp32 render of the same case, unclamped (values outside [-1, 1] count)")
    if load_before is not None:
        print(f"load average (1/5/15 min): before {load_before}, after {load_after}")

    result = {
        "format": "trident-bench", "version": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")},
        "environment": env,
        "settings": {"models": settings.models, "batches": settings.batches,
                     "nrr": settings.nrrs if "ffhq512" in models else None,
                     "direct3d_res": settings.direct3d_res if "mimic3d512" in models else None,
                     "direct3d_batches": (settings.direct3d_batches if any(c.branch == "direct3d" for c in cases)
                                          else None),
                     "sampling": settings.sampling, "precision": settings.precisions, "repeats": settings.repeats, "warmup": settings.warmup,
                     "reference": not args.no_reference, "network": str(args.network) if "fixture" in models else None,
                     "seed": SEED, "noise_mode": "const", "camera": "frontal", "tolerance": TOLERANCE},
        "memory_method": mem.method,
        "load_average_before": load_before, "load_average_after": load_after,
        "rows": rows,
        "machine_peak_gflop_per_s": peak,
        "student_rows": student_rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if mismatched:
        worst = max(r["max_abs_diff"] for r in mismatched)
        print(f"error: fast and reference images differ by up to {worst:.3g} (over the tolerance) in "
              f"{len(mismatched)} case(s)", file=sys.stderr)
        return 1
    return 0
