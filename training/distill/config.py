"""Distillation configuration (``training/configs/distill-*.yaml``): strict dataclasses, ``--set key=value`` overrides.

Parsed like the training presets (``yaml.safe_load`` + :func:`core.config.from_dict`: unknown keys and wrong types
are errors naming the dotted key). Defaults follow what Shahbazi et al. 2023 report (Sec. 4): batch
16, adversarial weight 0.1 after a reconstruction-only first stage; everything else is Trident's choice and is
documented next to the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.config import ConfigError, from_dict, to_dict
from core.conventions import DEFAULT_FOV_DEG

from ..config import DiscriminatorArch, apply_overrides, read_preset

TARGETS = ("sr2d", "direct3d")
CAMERA_SOURCES = ("pose", "dataset")


@dataclass
class TeacherSettings:
    """How the teacher renders the targets (always deterministic sampling and constant noise)."""

    target: str = "sr2d"                      # branch whose final image the student imitates: sr2d | direct3d
    depth_resolution: int | None = None       # coarse samples per ray (None: the teacher's own)
    depth_resolution_importance: int | None = None
    chunk: int | None = 8192                  # rays per render call (bounds memory)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"teacher.target: {self.target!r} ({' or '.join(TARGETS)})")


@dataclass
class SamplingSettings:
    """Latents and cameras of the distillation pairs (drawn on the fly)."""

    cameras: str = "pose"                     # pose: look-at orbit distribution below; dataset: a dataset's labels
    data: str | None = None                   # dataset zip/folder for cameras: dataset (--data overrides)
    yaw_std: float = 0.3                      # radians, around frontal (FFHQ-like, as the synthetic dataset)
    yaw_limit_deg: float = 35.0               # clip
    pitch_std: float = 0.12
    pitch_limit_deg: float = 15.0
    fov_deg: float = DEFAULT_FOV_DEG          # EG3D FOV convention
    cond_frontal_prob: float = 0.5            # mapping conditioned on the frontal camera (samples/viewer) or a drawn one
    truncation_psi: tuple[float, float] = (0.5, 1.0)   # psi ~ U[lo, hi] per sample, so truncated latents are covered
    truncation_cutoff: int | None = 14

    def __post_init__(self) -> None:
        if self.cameras not in CAMERA_SOURCES:
            raise ConfigError(f"sampling.cameras: {self.cameras!r} ({' or '.join(CAMERA_SOURCES)})")
        lo, hi = self.truncation_psi
        if not 0 <= lo <= hi:
            raise ConfigError(f"sampling.truncation_psi: need 0 <= lo <= hi, got {list(self.truncation_psi)}")
        if not 0 <= self.cond_frontal_prob <= 1:
            raise ConfigError("sampling.cond_frontal_prob must be in [0, 1]")


@dataclass
class StudentArch:
    """The student's own architecture (its interfaces come from the teacher; see core.student.StudentConfig)."""

    style_dim: int = 512
    mapping_layers: int = 4
    mapping_lr_mul: float = 1.0               # no GAN-style slow mapping: it must learn identity and pose quickly
    channel_base: int = 16384
    channel_max: int = 256
    sr_kind: str | None = "light"             # light | teacher (the teacher's SR, initialised from it) | null
    sr_channels: list[int] = field(default_factory=lambda: [96, 48, 16])  # light: channels per octave


@dataclass
class DistillLoss:
    feature_weight: float = 1.0               # L1, student vs teacher 32-channel feature image
    raw_weight: float = 1.0                   # extra L1 on its first 3 channels (raw RGB)
    image_weight: float = 1.0                 # L1 on the final image
    lpips_weight: float = 1.0                 # LPIPS on the final image (needs VGG16 trunk weights; 0: off)
    lpips_net: str = "vgg"
    lpips_trunk: str | None = None            # trunk weights file (None: the torch-hub cache file)
    lpips_random_trunk: bool = False          # tests only: a seeded random trunk, NOT a perceptual loss
    lpips_resolution: int | None = 256        # LPIPS on images resized to this (None: full resolution)
    adv_weight: float = 0.1                   # non-saturating GAN term in stage 2 (paper: 0.1)
    adv_start_kimg: float = 1000.0            # stage 1 (reconstruction only) length
    discriminator: str = "teacher"            # teacher: the teacher file's D when it has one, else fresh; fresh
    r1_gamma: float = 1.0                     # R1 on the discriminator's reals (teacher renders), lazy
    r1_interval: int = 16

    def __post_init__(self) -> None:
        if self.lpips_net not in ("vgg", "alex"):
            raise ConfigError(f"loss.lpips_net: {self.lpips_net!r} (vgg or alex)")
        if self.discriminator not in ("teacher", "fresh"):
            raise ConfigError(f"loss.discriminator: {self.discriminator!r} (teacher or fresh)")
        for name in ("feature_weight", "raw_weight", "image_weight", "lpips_weight", "adv_weight", "r1_gamma"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name} must not be negative")


@dataclass
class DistillOptim:
    batch: int = 16                           # total over all processes (paper: 16)
    batch_gpu: int = 4                        # per-process micro-batch
    lr: float = 0.005                         # student Adam (a regression: higher than a GAN's 0.002)
    dlr: float = 0.002                        # discriminator Adam
    betas: tuple[float, float] = (0.9, 0.99)  # student: with momentum (~2 dB better PSNR early on, synth teacher)
    dbetas: tuple[float, float] = (0.0, 0.99) # discriminator: StyleGAN2's
    lr_rampdown: float = 0.25                 # the last fraction of run.kimg ramps the student's lr down to 0
    eps: float = 1e-8
    ema_kimg: float = 5.0                     # student EMA half-life (the snapshot's student is the EMA)
    ema_rampup: float | None = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.lr_rampdown <= 1:
            raise ConfigError("optim.lr_rampdown must be in [0, 1]")
        if self.batch < 1 or self.batch_gpu < 1 or self.batch % self.batch_gpu:
            raise ConfigError(f"optim.batch ({self.batch}) must be a positive multiple of optim.batch_gpu "
                              f"({self.batch_gpu})")


@dataclass
class DistillRun:
    kimg: float = 5000.0                      # length in thousands of distillation pairs
    tick_kimg: float = 4.0
    snap_kimg: float = 100.0
    seed: int = 0
    eval_pairs: int = 16                      # held-out (z, camera) pairs scored at every snapshot (0: off)
    grid: tuple[int, int] = (4, 2)            # (yaw columns, latent rows) of the teacher/student grid image


@dataclass
class DistillConfig:
    teacher: TeacherSettings = field(default_factory=TeacherSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    student: StudentArch = field(default_factory=StudentArch)
    loss: DistillLoss = field(default_factory=DistillLoss)
    optim: DistillOptim = field(default_factory=DistillOptim)
    run: DistillRun = field(default_factory=DistillRun)
    discriminator: DiscriminatorArch = field(default_factory=DiscriminatorArch)  # a fresh D's architecture


def load_distill_config(path: str | Path, overrides: list[str] | None = None) -> DistillConfig:
    """A distillation preset (path, or name in training/configs such as ``distill-tiny``) plus overrides."""
    data = read_preset(path, "distill-*.yaml", "distillation presets")
    return from_dict(DistillConfig, apply_overrides(data, overrides or [], to_dict(DistillConfig())), "")


def dump_distill_config(cfg: DistillConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
