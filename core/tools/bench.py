"""The benchmark harness: timed runs (CUDA events or the wall clock plus process CPU time), peak memory over a
section, the measured generator pass and the machine's description. ``python -m core bench`` and
``python -m training bench`` report with it."""
from __future__ import annotations

import ctypes
import gc
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..cameras import Camera
from ..model import Model
from ..triplane import RenderOptions, TriPlaneGenerator

SAMPLING = {"det": True, "std": False}   # sampling mode -> RenderOptions.deterministic
SEED = 0


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
    precision: str = "fp32"  # the fp16-flagged blocks in fp32, fp16 (CUDA) or bf16


def make_pass(G: TriPlaneGenerator, case: Case, device: torch.device, plain: bool) -> Callable[[], torch.Tensor]:
    """The measured work: mapping + synthesis of the branch's image (sr2d: super-resolved) for a batch, frontal
    camera."""
    r = G.cfg.rendering
    z = torch.from_numpy(np.random.RandomState(SEED).randn(case.batch, G.z_dim)).float().to(device)
    c = Camera.frontal_offset(0.0, 0.0, r.avg_camera_pivot, r.avg_camera_radius, device=device).to_label()
    c = c.expand(case.batch, -1).contiguous()
    opts = RenderOptions(resolution=case.nrr, depth_resolution=case.coarse, depth_resolution_importance=case.importance,
                         deterministic=SAMPLING[case.sampling], noise_mode="const", plain=plain)

    model = Model(G, device)

    def fn() -> torch.Tensor:
        gen = torch.Generator(device=device).manual_seed(SEED)  # same jitter for every run and both paths
        with torch.no_grad():
            ws = G.mapping(z, c)
            return model.render(case.branch, ws, c, opts, generator=gen)["image"]
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
           "cpu_count": os.cpu_count(), "tf32_convolutions": tf32(device)}
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def tf32(device: torch.device) -> bool:
    """Whether CUDA convolutions round to TF32 (PyTorch's cuDNN default): fast and reference then agree to ~1e-2."""
    return device.type == "cuda" and torch.backends.cudnn.allow_tf32


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# ----------------------------------------------------------------------------------------------------------
# arithmetic: the machine's measured peak, a pass's FLOPs, where its time goes


def _probe_rate(op: Callable[[], torch.Tensor], flops: float, device: torch.device, repeats: int = 3) -> float:
    """GFLOP/s of ``op`` (best of ``repeats`` after one warm-up)."""
    op()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        op()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def machine_peak(device: torch.device) -> dict[str, dict[str, float]]:
    """A quick probe of what this machine's kernels reach (GFLOP/s, best of 3): a 128-channel 3x3 convolution on a
    128 x 128 map (channels-last, as the inference convolutions run) and a 2048^2 matrix product, in float32 and
    bfloat16 (and float16 on CUDA)."""
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if device.type == "cuda":
        dtypes["fp16"] = torch.float16
    out: dict[str, dict[str, float]] = {}
    gen = torch.Generator().manual_seed(SEED)
    x0 = torch.randn(1, 128, 128, 128, generator=gen)
    w0 = torch.randn(128, 128, 3, 3, generator=gen) * 0.03
    a0 = torch.randn(2048, 2048, generator=gen) * 0.03
    for name, dt in dtypes.items():
        x = x0.to(device, dt).contiguous(memory_format=torch.channels_last)
        w, a = w0.to(device, dt), a0.to(device, dt)
        with torch.no_grad():
            out[name] = {
                "conv3x3": _probe_rate(lambda: torch.nn.functional.conv2d(x, w, padding=1),
                                       2.0 * 128 * 128 * 9 * 128 * 128, device),
                "matmul": _probe_rate(lambda: a @ a, 2.0 * 2048 ** 3, device),
            }
    return out


def floor_ms(flop: float, peak: dict[str, dict[str, float]], precision: str) -> float | None:
    """The arithmetic floor of a pass: its convolution + matrix-product FLOPs at the best rate the peak probe measured
    for ``precision`` (None when the probe did not measure that number type). No schedule of the same operations
    runs faster on this machine; element-wise work, sampling and memory traffic only add to it."""
    rates = peak.get(precision)
    if not rates:
        return None
    return flop / (max(rates.values()) * 1e9) * 1000.0


def count_flops(fn: Callable[[], torch.Tensor]) -> float:
    """Floating-point operations of one call of ``fn`` (convolutions and matrix products, counted by
    ``torch.utils.flop_counter``; element-wise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


# profiler operator name -> share category
PROFILE_GROUPS = (("conv", ("conv", "mkldnn_convolution")), ("sampling", ("grid_sampler",)),
                  ("matmul/MLP", ("addmm", "aten::mm", "aten::bmm", "matmul")),
                  ("compositing", ("cumprod", "sort", "searchsorted", "gather", "scatter", "softplus", "exp")))


def profile_shares(fn: Callable[[], torch.Tensor]) -> dict[str, float]:
    """Share of the self CPU time of one call of ``fn`` by category (:data:`PROFILE_GROUPS`, the rest is
    'element-wise/other'; torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    totals: dict[str, float] = {g: 0.0 for g, _ in PROFILE_GROUPS}
    totals["element-wise/other"] = 0.0
    for evt in prof.key_averages():
        name = evt.key
        group = next((g for g, keys in PROFILE_GROUPS if any(k in name for k in keys)), "element-wise/other")
        totals[group] += evt.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {g: t / whole for g, t in totals.items()}

