"""Training configuration: YAML presets parsed strictly into dataclasses, with ``--set key=value`` overrides.

Presets live in ``training/configs/*.yaml``. Loading is ``yaml.safe_load`` followed by
:func:`core.config.from_dict`, which rejects unknown keys and mistyped values with the offending dotted key.
Overrides use dotted paths (``--set loss.r1_gamma=2 --set generator.rendering.depth_resolution=32``); values are
parsed as YAML scalars/lists and checked the same way. Defaults reproduce ``NVlabs/eg3d: eg3d/train.py``.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.config import ConfigError, DiscriminatorConfig, GeneratorConfig, RenderingConfig, from_dict, to_dict
from core.superres import sr_kind_for_resolution

PRESET_DIR = Path(__file__).resolve().parent / "configs"
MAX_CONFIG_BYTES = 1 << 20  # a YAML config is a few KB; anything above a MiB is not one


def require(ok: bool, field_name: str, rule: str, value: Any) -> None:
    """A config field's range check: a :class:`ConfigError` naming the field, the rule and the value."""
    if not ok:
        raise ConfigError(f"{field_name} must be {rule}, got {value!r}")


def _unit(x: float) -> bool:
    return 0.0 <= x <= 1.0


@dataclass
class DataConfig:
    path: str | None = None          # dataset zip or folder (EG3D format); --data overrides
    resolution: int | None = None    # the image size the preset is made for (training uses the dataset's own size)
    xflip: bool = False              # mirror images *and* cameras (flip_yaw), doubling the dataset
    max_size: int | None = None      # random subset of this many images
    workers: int = 2                 # data-loader worker processes

    def __post_init__(self) -> None:
        require(0 <= self.workers <= 256, "data.workers", "0..256 (0: load in the training process)", self.workers)
        require(self.max_size is None or self.max_size >= 1, "data.max_size", "null or at least 1", self.max_size)
        require(self.resolution is None or self.resolution >= 1, "data.resolution", "null or positive",
                self.resolution)


@dataclass
class GeneratorArch:
    """Generator architecture; the output resolution comes from the dataset, as in EG3D."""

    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    triplane_resolution: int = 256
    triplane_channels: int = 32
    sr_kind: str | None = "auto"          # "auto": EG3D's choice by resolution (128: 2X, 256: 4X, 512: 8XDC)
    sr_num_fp16_res: int = 4
    decoder_hidden: int = 64
    decoder_output_dim: int = 32
    aware3d_res: tuple[int, ...] = ()           # Mimic3D 3D-aware b3d{R} blocks (stage 1 and 2), e.g. [4, ..., 256]
    detail_blocks: int = 0                      # Mimic3D detail tri-plane upsampler blocks (stage 2: 2)
    aware3d_gain: float = 1.0                   # scale of the b3d chain's tri-planes (core.aware3d; 1: Mimic3D)
    rendering: RenderingConfig = field(default_factory=RenderingConfig)


@dataclass
class DiscriminatorArch:
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    mapping_layers: int = 8
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    disc_c_noise: float = 0.0

    def __post_init__(self) -> None:
        require(self.mbstd_group_size >= 1, "discriminator.mbstd_group_size", "at least 1", self.mbstd_group_size)
        require(self.mbstd_num_channels >= 1, "discriminator.mbstd_num_channels", "at least 1",
                self.mbstd_num_channels)
        require(self.disc_c_noise >= 0, "discriminator.disc_c_noise", "at least 0", self.disc_c_noise)

    def config(self, img_resolution: int, c_dim: int = 25, dual: bool = True) -> DiscriminatorConfig:
        """The discriminator of this architecture for ``img_resolution`` images (camera noise only with a camera)."""
        return DiscriminatorConfig(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=3, channel_base=self.channel_base,
            channel_max=self.channel_max, num_fp16_res=self.num_fp16_res, conv_clamp=self.conv_clamp,
            mapping_layers=self.mapping_layers, mbstd_group_size=self.mbstd_group_size,
            mbstd_num_channels=self.mbstd_num_channels, disc_c_noise=self.disc_c_noise if c_dim else 0.0, dual=dual)


@dataclass
class LossConfig:
    r1_gamma: float = 1.0                       # R1 weight on both the image and the raw image
    r1_interval: int = 16                       # lazy R1 every N steps (0: off)
    density_reg: float = 0.25                   # L1 density smoothness weight (0: off)
    density_reg_every: int = 4
    density_reg_p_dist: float = 0.004           # std of the point perturbation
    gen_pose_cond: bool = True                  # generator pose conditioning (GPC)
    gpc_reg_prob: float = 0.5                   # final probability of conditioning on a swapped camera
    gpc_reg_fade_kimg: float = 1000.0
    style_mixing_prob: float = 0.0
    blur_init_sigma: float = 10.0               # discriminator blur, fading out
    blur_fade_kimg: float | None = None         # None: 200 * batch / 32 (EG3D)
    neural_rendering_resolution_initial: int = 64
    neural_rendering_resolution_final: int | None = None
    neural_rendering_resolution_fade_kimg: float = 1000.0
    # Mimic3D stage 2 (Chen et al. 2023, Sec. 3.2-3.3; SeanChenxy/Mimic3D: training/loss.py): 3D-branch patches,
    # imitation, patch GAN.
    # All off at patch_scale 1 (EG3D and Mimic3D stage 1).
    patch_scale: float = 1.0                    # patch pixel spacing / rendering's: r / R, e.g. 64 / 512 = 0.125
    imitation: str = "lpips"                    # lpips (LPIPS-VGG, needs weights) | dpatch_features (weights-free)
    imitation_weight: float = 1.0               # weight of the 3D-to-2D imitation term in Gmain
    lpips_trunk: str | None = None              # vgg16-397923af.pth path (None: the torch hub cache)
    patch_gan: float = 0.1                      # weight of the patch adversarial term in Gmain
    gamma_patch: float = 1.0                    # R1 weight of D_patch (lazy, every r1_interval steps)

    def __post_init__(self) -> None:
        for name in ("r1_gamma", "density_reg", "density_reg_p_dist", "gpc_reg_fade_kimg", "blur_init_sigma",
                     "neural_rendering_resolution_fade_kimg", "imitation_weight", "patch_gan", "gamma_patch"):
            require(getattr(self, name) >= 0, f"loss.{name}", "at least 0", getattr(self, name))
        require(self.r1_interval >= 0, "loss.r1_interval", "at least 0 (0: no R1)", self.r1_interval)
        require(self.density_reg_every >= 0, "loss.density_reg_every", "at least 0 (0: off)", self.density_reg_every)
        require(_unit(self.gpc_reg_prob), "loss.gpc_reg_prob", "in [0, 1]", self.gpc_reg_prob)
        require(_unit(self.style_mixing_prob), "loss.style_mixing_prob", "in [0, 1]", self.style_mixing_prob)
        require(self.blur_fade_kimg is None or self.blur_fade_kimg >= 0, "loss.blur_fade_kimg", "null or at least 0",
                self.blur_fade_kimg)
        for name in ("neural_rendering_resolution_initial", "neural_rendering_resolution_final"):
            v = getattr(self, name)
            require(v is None or 4 <= v <= 4096, f"loss.{name}", "4..4096 pixels", v)
        if not 0 < self.patch_scale <= 1:
            raise ConfigError(f"loss.patch_scale must be in (0, 1], got {self.patch_scale}")
        if self.imitation not in ("lpips", "dpatch_features"):
            raise ConfigError(f"loss.imitation: {self.imitation!r} (lpips or dpatch_features)")

    @property
    def mimic3d_stage2(self) -> bool:
        """Patch rendering, imitation and the patch discriminator are on."""
        return self.patch_scale < 1


@dataclass
class OptimConfig:
    batch: int = 32                             # total batch over all processes
    batch_gpu: int = 4                          # per-process micro-batch (gradient accumulation)
    glr: float = 0.0025
    dlr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8
    ema_kimg: float | None = None               # None: 10 * batch / 32 (EG3D)
    ema_rampup: float | None = 0.05
    precision: str = "fp32"                     # fp32 | bf16 (mixed: every conv stack) | fp16 (EG3D's fp16 blocks)

    def __post_init__(self) -> None:
        if self.batch < 1 or self.batch_gpu < 1:
            raise ConfigError("optim.batch and optim.batch_gpu must be positive")
        require(0 < self.glr <= 1, "optim.glr", "in (0, 1]", self.glr)
        require(0 < self.dlr <= 1, "optim.dlr", "in (0, 1]", self.dlr)
        require(all(0 <= b < 1 for b in self.betas), "optim.betas", "two values in [0, 1)", list(self.betas))
        require(0 < self.eps < 1, "optim.eps", "in (0, 1)", self.eps)
        require(self.ema_kimg is None or self.ema_kimg >= 0, "optim.ema_kimg", "null or at least 0", self.ema_kimg)
        require(self.ema_rampup is None or self.ema_rampup >= 0, "optim.ema_rampup", "null or at least 0",
                self.ema_rampup)
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"optim.precision: {self.precision!r} (fp32, bf16 or fp16; see training.precision)")


@dataclass
class AugmentConfig:
    mode: str = "noaug"                         # noaug | ada | fixed
    p: float = 0.2                              # fixed probability (mode=fixed) or initial p (ada starts at 0)
    target: float = 0.6                         # ADA target for E[sign(D(real))]
    interval: int = 4                           # steps between p updates
    kimg: float = 500.0                         # images for p to go from 0 to 1
    groups: str = "bgc"                         # b: pixel blitting, g: geometric, c: colour

    def __post_init__(self) -> None:
        if self.mode not in ("noaug", "ada", "fixed"):
            raise ConfigError(f"augment.mode: {self.mode!r} (noaug, ada or fixed)")
        if set(self.groups) - set("bgc"):
            raise ConfigError(f"augment.groups: {self.groups!r} (letters of 'bgc')")
        require(_unit(self.p), "augment.p", "in [0, 1]", self.p)
        require(0 < self.target < 1, "augment.target", "in (0, 1)", self.target)
        require(self.interval >= 1, "augment.interval", "at least 1 (steps between updates of p)", self.interval)
        require(self.kimg > 0, "augment.kimg", "positive", self.kimg)


@dataclass
class RunConfig:
    kimg: float = 25000.0                       # training length in thousands of real images
    tick_kimg: float = 4.0                      # progress/log interval
    snap_kimg: float = 200.0                    # snapshot + image grid interval
    seed: int = 0
    grid: tuple[int, int] = (4, 2)              # fake-grid size (columns, rows)
    metrics: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("kimg", "tick_kimg", "snap_kimg"):
            require(getattr(self, name) > 0, f"run.{name}", "positive (thousands of images)", getattr(self, name))
        require(0 <= self.seed < 2**32, "run.seed", "in 0..2^32-1", self.seed)
        require(all(1 <= v <= 64 for v in self.grid), "run.grid", "[columns, rows], each 1..64", list(self.grid))


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorArch = field(default_factory=GeneratorArch)
    discriminator: DiscriminatorArch = field(default_factory=DiscriminatorArch)
    patch_discriminator: DiscriminatorArch = field(default_factory=DiscriminatorArch)  # Mimic3D D_patch (stage 2)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if self.optim.batch % self.optim.batch_gpu:
            raise ConfigError(f"optim.batch ({self.optim.batch}) must be a multiple of optim.batch_gpu "
                              f"({self.optim.batch_gpu})")

    @property
    def blur_fade_kimg(self) -> float:
        b = self.loss.blur_fade_kimg
        return b if b is not None else 200.0 * self.optim.batch / 32.0

    @property
    def ema_kimg(self) -> float:
        e = self.optim.ema_kimg
        return e if e is not None else 10.0 * self.optim.batch / 32.0


def parse_override(text: str) -> tuple[list[str], Any]:
    """'loss.r1_gamma=2' -> (['loss', 'r1_gamma'], 2). Values are YAML scalars or flow lists ('[1, 2]', 'null')."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError):
        raise ConfigError(f"--set {text!r}: value is not valid YAML") from None
    return path, value


def apply_overrides(data: dict, overrides: list[str], template: dict | None = None) -> dict:
    """Apply dotted overrides to a plain config dict, refusing keys that the config dataclasses do not define
    (``template``: the dict form of the config's defaults; default: :class:`TrainConfig`)."""
    data = copy.deepcopy(data)
    template = to_dict(TrainConfig()) if template is None else template
    for text in overrides:
        path, value = parse_override(text)
        node, tnode = data, template
        for i, part in enumerate(path):
            if not isinstance(tnode, dict) or part not in tnode:
                raise ConfigError(f"--set {text}: unknown key {'.'.join(path[:i + 1])}")
            if i == len(path) - 1:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"--set {text}: {'.'.join(path[:i + 1])} is not a section")
                tnode = tnode[part]
    return data


def read_preset(path: str | Path, pattern: str = "*.yaml", kind: str = "presets") -> dict:
    """The YAML mapping of a preset file (a path, or a name in training/configs), read with ``yaml.safe_load``."""
    p = Path(path)
    if not p.exists() and (PRESET_DIR / f"{path}.yaml").exists():
        p = PRESET_DIR / f"{path}.yaml"
    if not p.exists():
        names = ", ".join(sorted(q.stem for q in PRESET_DIR.glob(pattern)))
        raise ConfigError(f"no such config: {path} ({kind}: {names})")
    if not p.is_file():
        raise ConfigError(f"{p}: not a config file (a folder or a special file)")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p.name}: {p.stat().st_size} bytes is too large for a config file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p.name}: not UTF-8 text (byte {e.start}); save the YAML file as UTF-8") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{p.name}: invalid YAML{line}") from None
    except RecursionError:
        raise ConfigError(f"{p.name}: YAML nests too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p.name}: the top level must be a mapping")
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML preset (a path, or a preset name from training/configs) and apply overrides, strictly."""
    return from_dict(TrainConfig, apply_overrides(read_preset(path), overrides or []), "")


def dump_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML (plain types only; loads back with load_config)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def generator_config(cfg: TrainConfig, img_resolution: int, c_dim: int = 25) -> GeneratorConfig:
    """The model config for a dataset of ``img_resolution`` px (EG3D takes the output size from the data)."""
    g = cfg.generator
    try:
        sr_kind = sr_kind_for_resolution(img_resolution) if g.sr_kind == "auto" else g.sr_kind
    except ValueError as e:
        raise ConfigError(f"generator.sr_kind auto: {e}") from None
    rendering = dataclasses.replace(
        g.rendering, c_gen_conditioning_zero=not cfg.loss.gen_pose_cond,
        gpc_reg_prob=cfg.loss.gpc_reg_prob if cfg.loss.gen_pose_cond else None,
        density_reg=cfg.loss.density_reg, density_reg_p_dist=cfg.loss.density_reg_p_dist)
    try:
        return GeneratorConfig(
            z_dim=g.z_dim, w_dim=g.w_dim, c_dim=c_dim, img_resolution=img_resolution, mapping_layers=g.mapping_layers,
            channel_base=g.channel_base, channel_max=g.channel_max, num_fp16_res=g.num_fp16_res,
            conv_clamp=g.conv_clamp if g.conv_clamp is not None else (256.0 if g.num_fp16_res > 0 else None),
            triplane_resolution=g.triplane_resolution, triplane_channels=g.triplane_channels,
            neural_rendering_resolution=cfg.loss.neural_rendering_resolution_initial, sr_kind=sr_kind,
            sr_num_fp16_res=g.sr_num_fp16_res, decoder_hidden=g.decoder_hidden,
            decoder_output_dim=g.decoder_output_dim, aware3d_res=tuple(g.aware3d_res), detail_blocks=g.detail_blocks,
            aware3d_gain=g.aware3d_gain,
            rendering=rendering)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"generator: {e}") from None


def discriminator_config(cfg: TrainConfig, img_resolution: int, c_dim: int = 25) -> DiscriminatorConfig:
    return cfg.discriminator.config(img_resolution, c_dim)
