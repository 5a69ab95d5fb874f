"""Model configuration: typed dataclasses that travel inside checkpoints as plain dicts.

``from_dict`` is strict: unknown keys and wrong types raise ``ConfigError`` with the offending key, so a typo
in a YAML preset or a damaged checkpoint never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from .conventions import DEFAULT_PIVOT, DEFAULT_RADIUS
from .errors import TridentError

T = TypeVar("T")


class ConfigError(TridentError):
    """A configuration dict does not match its dataclass."""


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _check_type(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} does not match {tp}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_check_type(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        out = [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp}")


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass ``cls`` from a plain dict, rejecting unknown keys and mistyped values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {', '.join(map(str, unknown))}")
    kwargs = {k: _check_type(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # missing required fields
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict/list/scalars (tuples become lists), safe for YAML, JSON and weights_only loads."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


@dataclass
class RenderingConfig:
    """Volume rendering and camera defaults of a model (EG3D ``rendering_kwargs``)."""

    ray_start: float | str = 2.25            # near bound, or "auto"
    ray_end: float | str = 3.3               # far bound, or "auto"
    depth_resolution: int = 48               # coarse samples per ray
    depth_resolution_importance: int = 48    # importance samples per ray
    box_warp: float = 1.0                    # side of the tri-plane cube
    white_back: bool = False
    disparity_space_sampling: bool = False
    clamp_mode: str = "softplus"
    density_noise: float = 0.0
    plane_convention: str = "eg3d"           # "eg3d": (x,y),(x,z),(z,x); "mimic3d": (x,y),(y,z),(z,x)
    avg_camera_radius: float = DEFAULT_RADIUS
    avg_camera_pivot: tuple[float, float, float] = DEFAULT_PIVOT
    c_gen_conditioning_zero: bool = False    # zero the mapping network's camera label
    c_scale: float = 1.0                     # multiplier on the conditioning label
    superresolution_noise_mode: str = "none"
    sr_antialias: bool = True
    # Training-time regularisers, kept with the model like EG3D does.
    gpc_reg_prob: float | None = 0.5
    density_reg: float = 0.25
    density_reg_p_dist: float = 0.004
    reg_type: str = "l1"
    decoder_lr_mul: float = 1.0

    def __post_init__(self) -> None:
        for name in ("ray_start", "ray_end"):
            v = getattr(self, name)
            if isinstance(v, str) and v != "auto":
                raise ConfigError(f"rendering.{name}: {v!r} is neither a number nor 'auto'")
        if (self.ray_start == "auto") != (self.ray_end == "auto"):
            raise ConfigError("rendering: ray_start and ray_end must both be 'auto' or both numbers")
        if self.plane_convention not in ("eg3d", "mimic3d"):
            raise ConfigError(f"rendering.plane_convention: {self.plane_convention!r} (expected 'eg3d' or 'mimic3d')")
        if self.clamp_mode != "softplus":
            raise ConfigError(f"rendering.clamp_mode: only 'softplus' is supported, got {self.clamp_mode!r}")
        if self.depth_resolution < 2:
            raise ConfigError("rendering.depth_resolution must be at least 2")
        self.avg_camera_pivot = tuple(float(v) for v in self.avg_camera_pivot)


@dataclass
class GeneratorConfig:
    """Architecture of a tri-plane generator (EG3D ``TriPlaneGenerator`` constructor settings)."""

    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 25
    img_resolution: int = 512                # final (super-resolved) image side
    img_channels: int = 3
    mapping_layers: int = 2
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0                    # backbone blocks that EG3D runs in fp16
    conv_clamp: float | None = None          # backbone activation clamp (EG3D: 256 when fp16 is on)
    triplane_resolution: int = 256
    triplane_channels: int = 32              # channels per plane
    neural_rendering_resolution: int = 64
    sr_kind: str | None = "8XDC"             # see core.superres.SR_PLANS; None: no super-resolution
    sr_num_fp16_res: int = 4
    decoder_hidden: int = 64
    decoder_output_dim: int = 32             # features composited per ray (first 3 = raw RGB)
    const_batch_dim: bool = False            # Mimic3D stores b4.const as [1, C, 4, 4]
    eg3d_raw_alias: bool = False             # reproduce EG3D's image_raw aliasing (see SuperResolution.forward_with_alias)
    # Mimic3D (core.aware3d / core.mimic3d). Defaults give EG3D's generator, so older snapshots load unchanged.
    aware3d_res: tuple[int, ...] = ()        # resolutions of the 3D-aware b3d{R} blocks, e.g. (4, 8, ..., 256)
    detail_blocks: int = 0                   # per-plane blocks of the detail tri-plane upsampler (Mimic3D: 2)
    aware3d_gain: float = 1.0                # scale of the b3d chain's tri-planes (1: Mimic3D; see core.aware3d)
    rendering: RenderingConfig = field(default_factory=RenderingConfig)

    def __post_init__(self) -> None:
        from .superres import SR_PLANS  # local import: superres depends on layers, not on config

        if self.sr_kind is not None:
            if self.sr_kind not in SR_PLANS:
                raise ConfigError(f"sr_kind: {self.sr_kind!r} is not one of {sorted(SR_PLANS)}")
            out = SR_PLANS[self.sr_kind].output_resolution
            if out != self.img_resolution:
                raise ConfigError(f"sr_kind {self.sr_kind} outputs {out} px but img_resolution is {self.img_resolution}")
        self.aware3d_res = tuple(int(r) for r in self.aware3d_res)
        if self.aware3d_res:
            from .aware3d import check_aware3d_res  # local import: aware3d depends on layers, not on config

            try:
                check_aware3d_res(self.aware3d_res, self.triplane_resolution)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        if self.detail_blocks < 0:
            raise ConfigError(f"detail_blocks must be >= 0, got {self.detail_blocks}")
        if not self.aware3d_gain > 0:
            raise ConfigError(f"aware3d_gain must be positive, got {self.aware3d_gain}")
        if self.detail_blocks and not self.aware3d_res:
            raise ConfigError("detail_blocks needs the 3D-aware backbone (a non-empty aware3d_res)")


@dataclass
class DiscriminatorConfig:
    """EG3D ``DualDiscriminator`` (camera-conditioned ResNet discriminator on [image | upsampled raw])."""

    c_dim: int = 25
    img_resolution: int = 512
    img_channels: int = 3                    # per image; the network sees 2x (image + raw)
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    cmap_dim: int | None = None
    mapping_layers: int = 8
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    disc_c_noise: float = 0.0
    dual: bool = True                        # False: single-image discriminator (Mimic3D D_patch)
