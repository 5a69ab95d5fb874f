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

Peak memory is the increase above what was in use when the case started (weights and inputs excluded): CUDA
``max_memory_allocated``; on CPU the process's peak resident set size (Linux VmHWM after a reset through
/proc/self/clear_refs, else the lifetime ``getrusage`` high-water mark, which gives only a lower bound).
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from ..cameras import Camera
from ..checkpoint import build_generator, load_snapshot
from ..config import GeneratorConfig, RenderingConfig
from ..triplane import RenderOptions, TriPlaneGenerator
from . import bench_student
from .common import UsageError, resolve_device

MODELS = ("fixture", "ffhq512", "mimic3d512")
BRANCH = {"fixture": "sr2d", "ffhq512": "sr2d", "mimic3d512": "direct3d"}
SAMPLING = {"det": True, "std": False}
DEFAULT_NETWORK = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "eg3d_ffhq128" / "network.pkl"
TOLERANCE = 1e-3
HALF_TOLERANCE = 2e-2  # fast vs reference in fp16/bf16 blocks, or with TF32 convolutions (10-bit mantissas)
PRECISIONS = ("fp32", "fp16", "bf16")
SEED = 0
# Measurements of the original EG3D code on a 2-core CPU like this one (project issue): seconds per image,
# batch 1, standard sampling. Keys: (model, nrr, coarse samples, importance samples).
EG3D_KNOWN_S = {("fixture", 64, 12, 12): 1.0, ("ffhq512", 64, 48, 48): 10.0}
QUICK = {"models": "fixture", "batches": "1", "repeats": 1, "warmup": 0}
DEFAULTS = {"models": "fixture,ffhq512,mimic3d512", "batches": "1,8", "nrr": "64,128", "sampling": "det,std",
            "repeats": 3, "warmup": 1, "reference_batches": "1", "direct3d_res": "128,256,512",
            "direct3d_batches": "1", "precision": "fp32"}


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
                   help="comma list of fp32, fp16 (CUDA), bf16: the blocks EG3D runs in half precision (its "
                        "sr_num_fp16_res / num_fp16_res) compute in that type; default fp32")
    p.add_argument("--reference-batches", default=None,
                   help="batch sizes that also run the reference operators (default: 1)")
    bench_student.add_options(p)
    p.add_argument("--quick", action="store_true",
                   help="smallest settings (fixture only, batch 1, 1 repeat, no warm-up); explicit options win")
    p.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON output (default: ./bench.json)")
    return p


def _int_list(text: str, what: str, minimum: int) -> list[int]:
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            v = int(part)
        except ValueError:
            raise UsageError(f"--{what}: {part!r} is not an integer (use e.g. 1,8)") from None
        if v < minimum:
            raise UsageError(f"--{what}: {v} is below the minimum {minimum}")
        if v not in out:
            out.append(v)
    return out


def _choice_list(text: str, what: str, choices) -> list[str]:
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if part not in choices:
            raise UsageError(f"--{what}: unknown value {part!r} (choose from {', '.join(choices)})")
        if part not in out:
            out.append(part)
    return out


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

    s = Settings(models=_choice_list(pick("models"), "models", MODELS),
                 batches=_int_list(pick("batches"), "batches", 1),
                 nrrs=_int_list(pick("nrr"), "nrr", 8),
                 sampling=_choice_list(pick("sampling"), "sampling", tuple(SAMPLING)),
                 repeats=one_int("repeats", 1), warmup=one_int("warmup", 0), threads=one_int("threads", 1),
                 reference_batches=_int_list(pick("reference_batches"), "reference-batches", 1),
                 direct3d_res=_int_list(pick("direct3d_res"), "direct3d-res", 8),
                 direct3d_batches=_int_list(pick("direct3d_batches"), "direct3d-batches", 1),
                 precisions=_choice_list(pick("precision"), "precision", PRECISIONS))
    return s


# ----------------------------------------------------------------------------------------------------------
# memory


class PeakMemory:
    """Peak memory increase over a section: CUDA allocator statistics or the process's resident set size."""

    def __init__(self, device: torch.device):
        self.device = device
        self._libc = None
        if device.type == "cuda":
            self.method = "cuda max_memory_allocated"
            return
        try:
            self._libc = ctypes.CDLL("libc.so.6")
        except OSError:
            self._libc = None
        if self._can_reset_hwm():
            self.method = "linux VmHWM reset via /proc/self/clear_refs"
        else:
            self.method = "getrusage ru_maxrss (lifetime peak, not resettable: lower bound)"
        if self._libc is not None:
            self.method += " + malloc_trim"

    @staticmethod
    def _status_kb(field: str) -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def _can_reset_hwm(self) -> bool:
        if self._status_kb("VmHWM") is None:
            return False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def _rss_kb(self) -> int:
        kb = self._status_kb("VmRSS")
        if kb is None:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # only the lifetime peak is known
        return kb

    def start(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return
        if self._libc is not None:
            self._libc.malloc_trim(0)  # hand freed heap pages back, so the baseline is what is really in use
        if "VmHWM" in self.method:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._base = self._status_kb("VmRSS") or 0
        else:
            self._base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def stop_mb(self) -> tuple[float, float]:
        """(peak increase, baseline) in MiB."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            return (peak - self._base) / 2 ** 20, self._base / 2 ** 20
        if "VmHWM" in self.method:
            peak = self._status_kb("VmHWM") or 0
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(peak - self._base, 0) / 1024, self._base / 1024


# ----------------------------------------------------------------------------------------------------------
# timing


def time_runs(fn: Callable[[], torch.Tensor], device: torch.device, warmup: int, repeats: int
              ) -> tuple[list[float], list[float] | None, torch.Tensor]:
    """``repeats`` timed calls after ``warmup`` untimed ones: (times in ms, process CPU ms or None, last output).

    CUDA work is timed with CUDA events; CPU work with the wall clock (the process CPU time, less sensitive to
    other processes on a shared machine, is recorded as well).
    """
    out = None
    for _ in range(warmup):
        out = fn()
        del out
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    times, cpu_times = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(float(start.elapsed_time(end)))
        else:
            c0, t0 = time.process_time(), time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - t0) * 1000.0)
            cpu_times.append((time.process_time() - c0) * 1000.0)
    return times, (cpu_times or None), out


@dataclass
class Case:
    model: str
    nrr: int          # sr2d: neural rendering resolution; direct3d: the output resolution (rays per side)
    coarse: int
    importance: int
    batch: int
    sampling: str
    branch: str = "sr2d"
    precision: str = "fp32"


def make_pass(G: TriPlaneGenerator, case: Case, device: torch.device, plain: bool) -> Callable[[], torch.Tensor]:
    """The measured work: mapping + synthesis of the branch's image (sr2d: super-resolved) for a batch, frontal
    camera."""
    r = G.cfg.rendering
    z = torch.from_numpy(np.random.RandomState(SEED).randn(case.batch, G.z_dim)).float().to(device)
    c = Camera.frontal_offset(0.0, 0.0, r.avg_camera_pivot, r.avg_camera_radius, device=device).to_label()
    c = c.expand(case.batch, -1).contiguous()
    opts = RenderOptions(resolution=case.nrr, depth_resolution=case.coarse, depth_resolution_importance=case.importance,
                         deterministic=SAMPLING[case.sampling], noise_mode="const", plain=plain)

    def fn() -> torch.Tensor:
        gen = torch.Generator(device=device).manual_seed(SEED)  # same jitter for every run and both paths
        with torch.no_grad():
            ws = G.mapping(z, c)
            if case.branch == "direct3d":
                return G.synthesis_direct3d(ws, c, opts, generator=gen)["image"]
            return G.synthesis(ws, c, opts, generator=gen)["image"]
    return fn


def measure(G: TriPlaneGenerator, case: Case, device: torch.device, plain: bool, warmup: int, repeats: int,
            mem: PeakMemory) -> dict:
    fn = make_pass(G, case, device, plain)
    G.set_precision(case.precision)
    try:
        mem.start()
        times, cpu_times, image = time_runs(fn, device, warmup, repeats)
        peak, base = mem.stop_mb()
    finally:
        G.set_precision("fp32")
    return {"times_ms": times, "ms_per_image": statistics.median(times) / case.batch,
            "ms_per_image_min": min(times) / case.batch, "cpu_times_ms": cpu_times, "peak_mb": peak,
            "baseline_mb": base, "image": image}


# ----------------------------------------------------------------------------------------------------------
# environment and output


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {name}"


def environment(device: torch.device) -> dict:
    env = {"device": str(device), "device_name": device_name(device), "torch": torch.__version__,
           "python": platform.python_version(), "platform": platform.platform(), "threads": torch.get_num_threads(),
           "cpu_count": os.cpu_count(),
           "tf32_convolutions": device.type == "cuda" and torch.backends.cudnn.allow_tf32}
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


COLUMNS = ("model", "branch", "nrr", "samples", "batch", "sampling", "precision", "ms/img fast", "ms/img ref",
           "ref/fast", "max diff", "peak MB")


def table_lines(rows: list[dict]) -> list[str]:
    cells = [[r["model"], r["branch"], str(r["nrr"]), f"{r['samples'][0]}+{r['samples'][1]}", str(r["batch"]), r["sampling"],
              r["precision"], _fmt(r["ms_per_image"], ".1f"), _fmt(r["ms_per_image_reference"], ".1f"), _fmt(r["speedup"], ".2f"),
              _fmt(r["max_abs_diff"], ".2e"), _fmt(r["peak_mb"], ".0f")] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(COLUMNS)]
    left = {0, 1, 5, 6}

    def line(vals):
        return "  ".join(v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths)))
    out = [line(COLUMNS), "  ".join("-" * w for w in widths)]
    out += [line(c) for c in cells]
    return out


def tolerance(row: dict) -> float:
    """Fast vs reference: 1e-3 in true fp32; 2e-2 when either rounds to a 10-bit mantissa (half-precision blocks,
    or CUDA convolutions in TF32, PyTorch's default for cuDNN, which the rows record as ``tf32``)."""
    return TOLERANCE if row["precision"] == "fp32" and not row.get("tf32") else HALF_TOLERANCE


def _faster(ratio: float) -> str:
    return f"{1 / ratio:.1f}x faster" if ratio <= 1 else f"{ratio:.1f}x slower"


def known_comparisons(rows: list[dict]) -> list[dict]:
    """Our fast time against the measured original EG3D times (batch 1, standard sampling, matching config)."""
    out = []
    for r in rows:
        key = (r["model"], r["nrr"], r["samples"][0], r["samples"][1])
        if key in EG3D_KNOWN_S and r["batch"] == 1 and r["sampling"] == "std" and r["precision"] == "fp32":
            eg3d_ms = EG3D_KNOWN_S[key] * 1000.0
            out.append({"model": r["model"], "nrr": r["nrr"], "samples": r["samples"], "eg3d_ms_per_image": eg3d_ms,
                        "ms_per_image": r["ms_per_image"], "fast_over_eg3d": r["ms_per_image"] / eg3d_ms})
    return out


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
            if getattr(G, "has_direct3d", False):
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
    student_plan = bench_student.parse(args)
    models = load_models(settings, args.network, device)
    cases = build_cases(settings, models)
    mem = PeakMemory(device)
    env = environment(device)
    load_before = load_average()
    print(f"device: {env['device_name']} ({device}), torch {env['torch']}, {env['threads']} thread(s), "
          f"{'/'.join(settings.precisions)}; "
          f"median of {settings.repeats} run(s) after {settings.warmup} warm-up; memory: {mem.method}", flush=True)

    rows = []
    for case in tqdm(cases, desc="bench", unit="case", file=sys.stderr):
        G = models[case.model]
        fast = measure(G, case, device, False, settings.warmup, settings.repeats, mem)
        row = {"model": case.model, "branch": case.branch, "nrr": case.nrr, "samples": [case.coarse, case.importance], "batch": case.batch,
               "sampling": case.sampling, "deterministic": SAMPLING[case.sampling], "precision": case.precision,
               "tf32": device.type == "cuda" and torch.backends.cudnn.allow_tf32,
               "image_resolution": int(fast["image"].shape[-1]),
               "ms_per_image": fast["ms_per_image"], "ms_per_image_min": fast["ms_per_image_min"],
               "times_ms": fast["times_ms"], "cpu_times_ms": fast["cpu_times_ms"],
               "peak_mb": fast["peak_mb"], "baseline_mb": fast["baseline_mb"],
               "ms_per_image_reference": None, "ms_per_image_min_reference": None, "times_ms_reference": None,
               "cpu_times_ms_reference": None, "peak_mb_reference": None, "speedup": None, "max_abs_diff": None}
        image = fast.pop("image").float().cpu()
        # direct3d rows skip the reference operators: they change only the backbone's convolutions, while the
        # full-resolution ray marching dominates (and would double the longest runs)
        if not args.no_reference and case.batch in settings.reference_batches and case.branch == "sr2d":
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
    comparisons = known_comparisons(rows)
    mismatched = [r for r in rows if r["max_abs_diff"] is not None and not r["max_abs_diff"] < tolerance(r)]
    print()
    for line in table_lines(rows):
        print(line)
    print(f"ms/img: median over {settings.repeats} run(s) / batch; ref = literal reference operators "
          f"(grouped modulated conv, zero-insertion upfirdn2d); ref/fast = speed-up; max diff = max |fast - ref| "
          f"of the image (tolerance {TOLERANCE:g}, {HALF_TOLERANCE:g} in half precision); peak MB = peak memory increase during the fast runs; "
          f"direct3d rows: nrr = output resolution, no reference run")
    if student_rows:
        print()
        for line in bench_student.student_table_lines(student_rows):
            print(line)
        print("student rows: the distilled student (teacher's mapping + student) vs its teacher's sr2d "
              "(deterministic sampling) at the same batch; speed-up = teacher ms / student ms")
    if comparisons:
        print("original EG3D measured on a 2-core CPU like this one (project issue), batch 1, standard sampling:")
        for k in comparisons:
            line = (f"  {k['model']} nrr {k['nrr']} {k['samples'][0]}+{k['samples'][1]}: EG3D "
                    f"{k['eg3d_ms_per_image'] / 1000:.1f} s/img, ours {k['ms_per_image'] / 1000:.2f} s/img = "
                    f"{k['fast_over_eg3d']:.2f}x its time ({_faster(k['fast_over_eg3d'])})")
            if device.type != "cpu":
                line += " [different device: not comparable]"
            print(line)
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
        "eg3d_known": comparisons,
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
