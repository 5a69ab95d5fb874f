"""``--precision auto|fp32|fp16|bf16``, shared by the commands that render (``samples``, ``video``); what each value
computes in is :mod:`core.precision`'s, and the default is :data:`core.defaults.PRECISION`."""
from __future__ import annotations

import argparse

import torch

from ..defaults import PRECISION
from ..model import Model
from ..precision import PRECISIONS, resolve
from .common import UsageError

HELP = ("fp32 (default: EG3D's outputs to 1e-5); bf16: every convolution stack and the decoder MLP in bfloat16 "
        "(about 2x faster for 512 px models on a CPU with AVX512-BF16 or AMX, >= 48 dB PSNR against fp32); fp16: "
        "EG3D's half-precision blocks (CUDA); auto: bf16 where the device computes it fast, else fp32 (printed)")


def add_precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=PRECISIONS, default=PRECISION, help=HELP)


def apply_precision(model: Model, requested: str, device: torch.device) -> str:
    """Set ``model``'s precision from ``--precision``; ``auto`` prints its choice. Returns the precision used;
    fp16 on the CPU is a one-line usage error."""
    try:
        choice = resolve(requested, device)
    except ValueError as e:
        raise UsageError(f"--{e}") from None
    if requested == "auto":
        print(f"precision: {choice.reason}")
    model.set_precision(choice.precision)
    return choice.precision
