"""Sane bounds on a model file's settings and the memory its model will need, checked before anything is built.

A model file is a few kilobytes of settings plus its weights; the settings decide how big a network Trident builds
and how much memory a render takes. :func:`check_snapshot` is the one place where every size in a model file's
configs (generator, rendering, discriminators, student) is checked against the bounds below, and where the memory
of the model is estimated and refused above a limit:

    needed = 4 bytes x (parameters + buffers of every network that will be built)   (counted exactly, on torch's
             "meta" device: no memory is allocated)
           + the working set of one render at batch 1 (:func:`render_working_set_bytes`)

The limit is :data:`DEFAULT_MAX_MODEL_MB` MB, or ``$TRIDENT_MAX_MODEL_MB`` (docs/safety.md). Every refusal is a
:class:`ModelLimitError` (a one-line :class:`~core.errors.CheckpointError`) naming the setting and its bounds, or the
estimate and the limit in MB.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from .config import DiscriminatorConfig, GeneratorConfig, RenderingConfig
from .errors import CheckpointError

__all__ = ["ModelLimitError", "MAX_MODEL_MB_ENV", "DEFAULT_MAX_MODEL_MB", "max_model_bytes", "check_generator_config",
           "check_rendering_config", "check_discriminator_config", "check_student_config", "check_snapshot",
           "estimate_bytes", "render_working_set_bytes"]

MAX_MODEL_MB_ENV = "TRIDENT_MAX_MODEL_MB"
DEFAULT_MAX_MODEL_MB = 8192   # EG3D/Mimic3D at 512 px need about 2 GB (parameters + one render at batch 1)
_MB = 1 << 20


class ModelLimitError(CheckpointError):
    """A model file's settings are outside Trident's bounds, or its model would need more memory than allowed."""


# Integer settings: (lowest, highest). Generous: every shipped EG3D / Mimic3D / Trident config is far inside.
GENERATOR_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "z_dim": (1, 4096), "w_dim": (1, 4096), "c_dim": (0, 1024), "img_resolution": (8, 4096), "img_channels": (1, 16),
    "mapping_layers": (0, 64), "channel_base": (1, 1 << 20), "channel_max": (1, 4096), "num_fp16_res": (0, 16),
    "triplane_resolution": (4, 2048), "triplane_channels": (1, 512), "neural_rendering_resolution": (8, 1024),
    "sr_num_fp16_res": (0, 16), "decoder_hidden": (1, 4096), "decoder_output_dim": (3, 1024),
    "detail_blocks": (0, 16),
}
RENDERING_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "depth_resolution": (2, 1024), "depth_resolution_importance": (0, 1024),
}
DISCRIMINATOR_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "c_dim": (0, 1024), "img_resolution": (8, 4096), "img_channels": (1, 16), "channel_base": (1, 1 << 20),
    "channel_max": (1, 4096), "num_fp16_res": (0, 16), "mapping_layers": (0, 64), "mbstd_group_size": (1, 1024),
    "mbstd_num_channels": (1, 64),
}
STUDENT_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "w_dim": (1, 4096), "num_ws": (1, 64), "c_dim": (1, 1024), "style_dim": (1, 4096), "mapping_layers": (0, 64),
    "feature_resolution": (4, 1024), "feature_channels": (3, 1024), "channel_base": (1, 1 << 20),
    "channel_max": (1, 4096), "img_resolution": (4, 4096),
}
MAX_AWARE3D_BLOCKS = 16
MAX_SR_CHANNELS = 4096


def max_model_bytes() -> int:
    """The memory limit of a model: ``$TRIDENT_MAX_MODEL_MB`` MB, by default :data:`DEFAULT_MAX_MODEL_MB`."""
    text = os.environ.get(MAX_MODEL_MB_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_MODEL_MB * _MB
    try:
        mb = float(text)
    except ValueError:
        mb = float("nan")
    if not (math.isfinite(mb) and mb > 0):
        raise CheckpointError(f"{MAX_MODEL_MB_ENV}={text!r} is not a positive number of megabytes")
    return int(mb * _MB)


def _check_int(where: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelLimitError(f"model setting {where}={value!r} is not an integer")
    if not lo <= value <= hi:
        raise ModelLimitError(f"model setting {where}={value} is outside the supported range {lo}..{hi}")


def _check_float(where: str, value: Any, lo: float = -math.inf, hi: float = math.inf, *, positive: bool = False,
                 optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelLimitError(f"model setting {where}={value!r} is not a number")
    if not math.isfinite(value):
        raise ModelLimitError(f"model setting {where}={value} is not a finite number")
    if positive and not value > 0:
        raise ModelLimitError(f"model setting {where}={value} must be positive")
    if not lo <= value <= hi:
        raise ModelLimitError(f"model setting {where}={value} is outside the supported range {lo:g}..{hi:g}")


def _check_ints(obj: Any, bounds: dict[str, tuple[int, int]], prefix: str) -> None:
    for name, (lo, hi) in bounds.items():
        _check_int(prefix + name, getattr(obj, name), lo, hi)


def check_rendering_config(r: RenderingConfig, prefix: str = "rendering.") -> None:
    """Ray sampling and camera settings that every render uses: finite, in range, a non-empty ray interval."""
    _check_ints(r, RENDERING_INT_BOUNDS, prefix)
    _check_float(prefix + "box_warp", r.box_warp, 1e-6, 1e6, positive=True)
    if r.ray_start != "auto":
        _check_float(prefix + "ray_start", r.ray_start, 0.0, 1e6)
        _check_float(prefix + "ray_end", r.ray_end, 0.0, 1e6)
        if not r.ray_end > r.ray_start:
            raise ModelLimitError(f"model setting {prefix}ray_end={r.ray_end} must be beyond "
                                  f"ray_start={r.ray_start}")
    _check_float(prefix + "avg_camera_radius", r.avg_camera_radius, 1e-6, 1e6, positive=True)
    for i, v in enumerate(r.avg_camera_pivot):
        _check_float(f"{prefix}avg_camera_pivot[{i}]", v, -1e6, 1e6)
    _check_float(prefix + "density_noise", r.density_noise, 0.0, 1e6)
    _check_float(prefix + "c_scale", r.c_scale, -1e6, 1e6)
    _check_float(prefix + "gpc_reg_prob", r.gpc_reg_prob, 0.0, 1.0, optional=True)
    for name in ("density_reg", "density_reg_p_dist", "decoder_lr_mul"):
        _check_float(prefix + name, getattr(r, name), 0.0, 1e6)


def check_generator_config(cfg: GeneratorConfig, prefix: str = "") -> None:
    """Every size of a generator config within its bounds (and its rendering settings usable)."""
    _check_ints(cfg, GENERATOR_INT_BOUNDS, prefix)
    if len(cfg.aware3d_res) > MAX_AWARE3D_BLOCKS:
        raise ModelLimitError(f"model setting {prefix}aware3d_res has {len(cfg.aware3d_res)} blocks "
                              f"(at most {MAX_AWARE3D_BLOCKS})")
    for i, r in enumerate(cfg.aware3d_res):
        _check_int(f"{prefix}aware3d_res[{i}]", r, 4, 2048)
    _check_float(prefix + "conv_clamp", cfg.conv_clamp, 0.0, 1e9, optional=True)
    _check_float(prefix + "aware3d_gain", cfg.aware3d_gain, 1e-6, 1e6, positive=True)
    check_rendering_config(cfg.rendering, prefix + "rendering.")


def check_discriminator_config(cfg: DiscriminatorConfig, prefix: str = "discriminator.") -> None:
    _check_ints(cfg, DISCRIMINATOR_INT_BOUNDS, prefix)
    if cfg.cmap_dim is not None:
        _check_int(prefix + "cmap_dim", cfg.cmap_dim, 1, 4096)
    _check_float(prefix + "conv_clamp", cfg.conv_clamp, 0.0, 1e9, optional=True)
    _check_float(prefix + "disc_c_noise", cfg.disc_c_noise, 0.0, 1e6)


def check_student_config(cfg: Any, prefix: str = "student.") -> None:
    """A :class:`core.student.StudentConfig`."""
    _check_ints(cfg, STUDENT_INT_BOUNDS, prefix)
    if len(cfg.sr_channels) > 16:
        raise ModelLimitError(f"model setting {prefix}sr_channels has {len(cfg.sr_channels)} entries (at most 16)")
    for i, ch in enumerate(cfg.sr_channels):
        _check_int(f"{prefix}sr_channels[{i}]", ch, 1, MAX_SR_CHANNELS)
    _check_float(prefix + "mapping_lr_mul", cfg.mapping_lr_mul, 0.0, 1e6)


# ----------------------------------------------------------------------------------------------------------
# memory


def _tensor_elements(make) -> int:
    """Parameters + buffers of the module ``make()`` builds, on the meta device (no memory allocated)."""
    import torch

    with torch.device("meta"):
        module = make()
    return sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())


def render_working_set_bytes(cfg: GeneratorConfig, batch: int = 1) -> int:
    """About the memory of one render at batch ``batch`` (float32): the backbone's largest activation, the tri-planes,
    the samples along every ray of one ray chunk (features of 3 planes + decoder hidden + output, per sample) and the
    super-resolution activations. An estimate (within about x2 of torch's peak on the fixtures), not a bound."""
    f = 4 * batch
    res = cfg.triplane_resolution
    backbone = max(min(cfg.channel_base // r, cfg.channel_max) * r * r for r in (4, res)) * 4
    planes = 3 * cfg.triplane_channels * res * res * (5 if cfg.detail_blocks else 1)
    nrr = cfg.neural_rendering_resolution
    rays = min(nrr * nrr, 8192) if cfg.aware3d_res else nrr * nrr  # direct3d renders in chunks of 8192 rays
    samples = cfg.rendering.depth_resolution + cfg.rendering.depth_resolution_importance
    per_sample = 3 * cfg.triplane_channels + cfg.decoder_hidden + cfg.decoder_output_dim + 8
    rays_bytes = rays * samples * per_sample * 2  # values + their gradients-free temporaries
    sr = cfg.img_resolution ** 2 * 128 * 2 if cfg.sr_kind is not None else 0
    return f * (backbone + planes + rays_bytes + sr)


def estimate_bytes(snap: Any) -> tuple[int, int]:
    """(parameter bytes, render working-set bytes) of what loading ``snap`` builds: the generator (G_ema) and, when
    the file has one, the student."""
    from .mimic3d import Mimic3DGenerator
    from .triplane import TriPlaneGenerator

    cfg = snap.generator
    n = _tensor_elements(lambda: Mimic3DGenerator(cfg) if cfg.aware3d_res else TriPlaneGenerator(cfg))
    student_cfg = _student_config(snap)
    if student_cfg is not None:
        from .student import StudentGenerator
        n += _tensor_elements(lambda: StudentGenerator(student_cfg))
    return 4 * n, render_working_set_bytes(cfg)


def _student_config(snap: Any):
    entry = (snap.extra or {}).get("student") if isinstance(snap.extra, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        return None
    from .config import ConfigError, from_dict
    from .student import StudentConfig

    try:
        return from_dict(StudentConfig, entry["config"], "student")
    except ConfigError as e:
        raise CheckpointError(f"bad student config in file: {e}") from None


def check_snapshot(snap: Any) -> None:
    """The model-file gate: every config in ``snap`` within bounds, then the estimated memory of the model within
    :func:`max_model_bytes`. Called by :func:`core.files.checkpoint.load_snapshot` before any network is built."""
    check_generator_config(snap.generator)
    for name in ("discriminator", "patch_discriminator"):
        d = getattr(snap, name, None)
        if d is not None:
            check_discriminator_config(d, name + ".")
    student_cfg = _student_config(snap)
    if student_cfg is not None:
        check_student_config(student_cfg)
    limit = max_model_bytes()
    try:
        params, work = estimate_bytes(snap)
    except (ValueError, AssertionError, RuntimeError) as e:  # inconsistent settings the constructors refuse
        raise CheckpointError(f"unsupported model settings: {' '.join(str(e).split())[:200]}") from None
    if params + work > limit:
        raise ModelLimitError(
            f"the model would need about {(params + work) / _MB:.0f} MB (parameters {params / _MB:.0f} MB + one render "
            f"{work / _MB:.0f} MB), above the limit of {limit / _MB:.0f} MB (set {MAX_MODEL_MB_ENV} to raise it)")


def dataclass_ints(obj: Any) -> dict[str, int]:
    """Integer fields of a dataclass (used by the tests to see that every size has a bound)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
            if isinstance(getattr(obj, f.name), int) and not isinstance(getattr(obj, f.name), bool)}
