"""Training precision (``optim.precision``): which number type the networks compute in while they train.

``fp32``  everything in float32 (the reference).
``bf16``  mixed precision: every convolution stack computes in bfloat16 -- the generator's synthesis blocks (the
          Mimic3D 3D-aware blocks too), the tri-plane decoder MLP, the super-resolution blocks and the
          discriminators' blocks -- through the same per-block ``compute_dtype`` that inference's ``bf16`` uses
          (:func:`core.layers.set_compute_dtype`, ``core.precision``). What stays float32:

          * the master weights and the Adam state: parameters are float32 tensors, each layer casts its weight to
            the activations' type in ``forward``, so their gradients arrive in float32 through the cast;
          * the mapping networks, the modulation styles and demodulation coefficients, the skip images the tRGB
            layers accumulate, the discriminator epilogue (minibatch std, last conv, FC layers, logits);
          * the loss terms; the R1 phase, whose discriminator runs in float32 (:func:`full_precision`): through
            a bfloat16 D the penalty measured up to 9% off (its weight gradients still pointed the same way,
            cosine 0.9994), and the phase runs once every ``r1_interval`` steps, so float32 there costs little;
            the density regulariser, whose decoder runs in float32 (bfloat16's 8-bit mantissa would round the
            tiny density differences it measures); the volume-rendering weights and the compositing (the
            decoder returns float32);
          * the antialiased resizes (``upsample_bilinear2d_aa``, no bfloat16 CPU kernel) and the augmentation: they
            act on the float32 images before a discriminator block casts them.

          No loss scaling (GradScaler): bfloat16 has float32's 8-bit exponent, so gradients that float16 would
          flush to zero or overflow stay representable; only the mantissa is shorter.
``fp16``  EG3D's own mode: only the blocks EG3D flags for half precision (``num_fp16_res``, ``sr_num_fp16_res``,
          with conv_clamp 256) in float16 (CUDA only).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from core.layers import set_compute_dtype, set_half_dtype

PRECISIONS = ("fp32", "bf16", "fp16")


def set_training_precision(module: nn.Module, precision: str) -> None:
    """Make ``module`` (a generator or discriminator being trained) compute in ``precision`` (see the module doc)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    set_half_dtype(module, torch.float16 if precision == "fp16" else None)
    set_compute_dtype(module, torch.bfloat16 if precision == "bf16" else None)


@contextlib.contextmanager
def full_precision(module: nn.Module) -> Iterator[None]:
    """Within the block, ``module``'s blocks compute in float32 whatever their ``compute_dtype`` (then restored)."""
    saved = [(m, m.compute_dtype) for m in module.modules() if hasattr(m, "compute_dtype")]
    try:
        for m, _ in saved:
            m.compute_dtype = None
        yield
    finally:
        for m, dtype in saved:
            m.compute_dtype = dtype
