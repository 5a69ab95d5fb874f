"""Inference precision: which number type the networks compute in, and the automatic choice.

``fp32``  everything in float32 (the reference);
``fp16``  the blocks that EG3D itself runs in half precision (``num_fp16_res`` / ``sr_num_fp16_res``) in float16,
          the rest in float32: EG3D's own numerics (CUDA only);
``bf16``  every convolution stack (backbone, tri-plane decoder MLP, super-resolution, the student) in bfloat16:
          weights are rounded to bfloat16 and the CPU (oneDNN) and CUDA kernels accumulate in float32. The
          mapping network, the camera, the ray sampling, the volume-rendering weights and the compositing stay in
          float32, and so does the skip image that the tRGB layers accumulate. Resizes that have no bfloat16
          kernel on the CPU (antialiased bilinear, ``upsample_bilinear2d_aa``) are run on float32 inputs
          explicitly (:func:`core.superres.SuperResolution.resize_input`).
``auto``  ``bf16`` where the device computes it fast, else ``fp32`` (:func:`resolve`).

Fast bfloat16 on the CPU means matrix instructions for it: AMX (``amx_bf16``) or AVX512-BF16 (``avx512_bf16``)
in the CPU flags. Without them PyTorch emulates bfloat16 with conversions, which is slower than float32, so
``auto`` stays in float32 there.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CPU_BF16_FLAGS = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"))  # best first


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (the ``flags`` line of /proc/cpuinfo; ``cpuinfo``: that file's text, for tests)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_bf16_unit(flags: set[str] | None = None) -> str | None:
    """'AMX-BF16' or 'AVX512-BF16' when the CPU has bfloat16 matrix instructions, else None."""
    flags = cpu_flags() if flags is None else flags
    for flag, name in CPU_BF16_FLAGS:
        if flag in flags:
            return name
    return None


@dataclass(frozen=True)
class Choice:
    """The precision to run in and why (one line for the user)."""

    precision: str
    reason: str


def resolve(requested: str, device: torch.device, flags: set[str] | None = None) -> Choice:
    """``requested`` (one of :data:`PRECISIONS`) on ``device`` -> the precision to use.

    ``auto``: bf16 on a CPU with AMX-BF16 / AVX512-BF16 and on a CUDA device that supports bfloat16, else fp32.
    ``fp16`` is CUDA-only (raises ValueError on the CPU, which has no fast float16 convolutions).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device (use bf16 on the CPU)")
    if device.type == "cuda":
        fast = torch.cuda.is_bf16_supported()
        unit = f"CUDA bfloat16 ({torch.cuda.get_device_name(device)})" if fast else None
    else:
        unit = cpu_bf16_unit(flags)
    if requested != "auto":
        note = ""
        if requested == "bf16":
            note = f": {unit}" if unit else ": no fast bfloat16 on this device, slower than fp32"
        return Choice(requested, f"{requested} (requested{note})")
    if unit:
        return Choice("bf16", f"bf16 (auto: {unit})")
    return Choice("fp32", "fp32 (auto: no AMX-BF16 / AVX512-BF16 on this CPU)" if device.type != "cuda"
                  else "fp32 (auto: the CUDA device has no bfloat16)")
