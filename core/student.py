"""Distilled convolutional student (Shahbazi et al. 2023, "NeRF-GAN Distillation for Efficient 3D-Aware Generation
with Convolutions", Sec. 3): a pose-conditioned StyleGAN2 generator that renders a NeRF-GAN's latent space without ray
marching.

Notation as in :mod:`core.triplane`: ``ws`` the teacher's latents [B, num_ws, w_dim]; ``c`` a camera label [B, 25];
``s`` the student's own style vector [B, style_dim]; ``r`` the teacher's neural rendering resolution, ``R`` the
output resolution.

Pipeline (the student reuses the teacher's latent space, so the same ``ws`` and camera give the same image)::

    (ws, c) --StudentMapping--> s --StyleGAN2 skip synthesis 4 -> r--> feature image [B, 32, r, r]  (first 3 = raw RGB)
    feature image + ws[:, -1] --super-resolution--> image [B, 3, R, R]

* The mapping sees *all* of the teacher's ws layers (centred by the teacher's ``w_avg``), so style-mixed and
  truncated latents are distinct inputs, and the camera label through its own embedding (EG3D's conditioning
  embedding: FC + 2nd-moment normalisation) after standardising each label entry with the statistics of the
  distillation cameras: raw labels are dominated by constant entries (intrinsics, radius), which would drown the
  pose in the normalised embedding.
* The low-resolution head predicts the teacher's 32-channel volume-rendered feature image, the exact input of
  EG3D's super-resolution module (EG3D Sec. 4.1: its first three channels are the raw RGB image).
* The super-resolution head is either the teacher's own module (``sr_kind: teacher`` or an EG3D kind: same
  architecture, initialised from the teacher's weights, so teacher features in give the teacher's image out) or
  Trident's *light* head (``sr_kind: light``): one up-sampling StyleGAN2 block per octave with few channels, whose
  skip image starts from the raw RGB and whose tRGB layers start at zero (a fresh light head outputs the
  upsampled raw image). Both are modulated by the teacher's last w only, as EG3D's super-resolution is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .build import load_state_strict
from .cameras import Camera
from .config import ConfigError, from_dict, to_dict
from .errors import CheckpointError
from .layers import FullyConnectedLayer, SynthesisBlock, SynthesisNetwork
from .ops import normalize_2nd_moment
from .superres import SR_PLANS, SuperResolution
from .triplane import TriPlaneGenerator

LIGHT = "light"


@dataclass
class StudentConfig:
    """Architecture of a student; travels inside the model file (``extra['student']['config']``)."""

    w_dim: int = 512                         # the teacher's w dimension
    num_ws: int = 14                         # the teacher's number of ws
    c_dim: int = 25                          # camera label (16 cam2world + 9 intrinsics)
    style_dim: int = 512                     # the student's own style vector
    mapping_layers: int = 4
    mapping_lr_mul: float = 1.0              # mapping learning-rate multiplier (StyleGAN: 0.01; a student needs 1)
    feature_resolution: int = 64             # the teacher's neural rendering resolution
    feature_channels: int = 32               # the teacher's composited features (first 3 = raw RGB)
    channel_base: int = 16384                # low-resolution head: channels = min(base / res, max)
    channel_max: int = 256
    img_resolution: int = 512
    sr_kind: str | None = LIGHT              # "light", an EG3D kind of core.superres (the teacher's), or None
    sr_channels: list[int] = field(default_factory=lambda: [96, 48, 16])  # light head: channels per octave
    sr_antialias: bool = True                # EG3D kinds: antialiased resize of the input

    def __post_init__(self) -> None:
        for name in ("w_dim", "num_ws", "c_dim", "style_dim", "feature_channels", "channel_base", "channel_max"):
            if getattr(self, name) < 1:
                raise ConfigError(f"student.{name} must be positive")
        if self.feature_channels < 3:
            raise ConfigError("student.feature_channels must be at least 3 (the raw RGB)")
        for name in ("feature_resolution", "img_resolution"):
            v = getattr(self, name)
            if v < 4 or v & (v - 1):
                raise ConfigError(f"student.{name} must be a power of two >= 4, got {v}")
        if self.sr_kind is None:
            if self.img_resolution != self.feature_resolution:
                raise ConfigError("student without super-resolution: img_resolution must equal feature_resolution")
        elif self.sr_kind == LIGHT:
            octaves = int(math.log2(self.img_resolution // self.feature_resolution)) \
                if self.img_resolution > self.feature_resolution else 0
            if octaves < 1:
                raise ConfigError("student.sr_kind light needs img_resolution above feature_resolution")
            if len(self.sr_channels) != octaves or min(self.sr_channels) < 1:
                raise ConfigError(f"student.sr_channels needs {octaves} positive channel counts "
                                  f"({self.feature_resolution} -> {self.img_resolution} px), got {self.sr_channels}")
        elif self.sr_kind not in SR_PLANS:
            raise ConfigError(f"student.sr_kind {self.sr_kind!r} is not light, null or one of {sorted(SR_PLANS)}")
        elif SR_PLANS[self.sr_kind].output_resolution != self.img_resolution:
            raise ConfigError(f"student.sr_kind {self.sr_kind} outputs {SR_PLANS[self.sr_kind].output_resolution} px "
                              f"but img_resolution is {self.img_resolution}")


class StudentMapping(nn.Module):
    """(ws, camera) -> style s [B, style_dim]: embed all teacher ws layers and the camera, then an MLP."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.num_layers = cfg.mapping_layers
        # Teacher statistics (set by init_from_teacher): ws are centred on w_avg and scaled to unit variance.
        self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))
        self.register_buffer("w_scale", torch.ones([]))
        # Camera statistics of the distillation cameras (set by set_camera_statistics): each label entry is
        # standardised, so the pose-dependent entries, not the constant intrinsics, dominate the embedding.
        self.register_buffer("c_mean", torch.zeros([cfg.c_dim]))
        self.register_buffer("c_scale", torch.ones([cfg.c_dim]))
        self.ws_embed = FullyConnectedLayer(cfg.num_ws * cfg.w_dim, cfg.style_dim)
        self.c_embed = FullyConnectedLayer(cfg.c_dim, cfg.style_dim)
        features = [2 * cfg.style_dim] + [cfg.style_dim] * cfg.mapping_layers
        for i in range(cfg.mapping_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                        lr_multiplier=cfg.mapping_lr_mul))
        self.out_dim = features[-1]

    def forward(self, ws: Tensor, c: Tensor) -> Tensor:
        x = self.ws_embed(((ws.float() - self.w_avg) * self.w_scale).flatten(1))  # [B, style_dim]
        y = normalize_2nd_moment(self.c_embed((c.float() - self.c_mean) * self.c_scale))  # [B, style_dim]
        h = torch.cat([x, y], dim=1)
        for i in range(self.num_layers):
            h = getattr(self, f"fc{i}")(h)
        return h


class LightSuperResolution(nn.Module):
    """One up-sampling StyleGAN2 block per octave (feature image [B, F, r, r] -> image [B, 3, 2^k r, 2^k r])."""

    def __init__(self, in_channels: int, w_dim: int, input_resolution: int, channels: list[int], img_channels: int = 3):
        super().__init__()
        self.num_blocks = len(channels)
        ch, res = in_channels, input_resolution
        for i, out_ch in enumerate(channels):
            res *= 2
            block = SynthesisBlock(ch, out_ch, w_dim, res, img_channels, is_last=i == len(channels) - 1)
            with torch.no_grad():
                block.torgb.weight.zero_()  # residual start: image = upsampled raw RGB
            setattr(self, f"block{i}", block)
            ch = out_ch

    def forward(self, rgb: Tensor, x: Tensor, ws: Tensor, noise_mode: str = "none", fused: bool = False,
                plain: bool = False) -> Tensor:
        w = ws[:, -1:, :].repeat(1, 3, 1)  # [B, 3, w_dim]: the last w drives every layer (as EG3D's SR)
        for i in range(self.num_blocks):
            x, rgb = getattr(self, f"block{i}")(x, rgb, w, noise_mode=noise_mode, fused=fused, plain=plain)
        return rgb


def _per_sample(ws: Tensor) -> bool:
    """CPU inference runs the convolution stacks one sample at a time (see core.triplane: faster on CPU)."""
    return ws.shape[0] > 1 and ws.device.type == "cpu" and not torch.is_grad_enabled()


class StudentGenerator(nn.Module):
    """ws [B, num_ws, w_dim] + camera label [B, 25] -> {'image', 'image_raw', 'feature_image'}."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        self.has_direct3d = False    # the student is a branch of its own (core.model)
        self.mapping = StudentMapping(cfg)
        self.synthesis = SynthesisNetwork(cfg.style_dim, cfg.feature_resolution, cfg.feature_channels,
                                          channel_base=cfg.channel_base, channel_max=cfg.channel_max)
        self.num_styles = self.synthesis.num_ws
        self.superresolution: nn.Module | None = None
        if cfg.sr_kind == LIGHT:
            self.superresolution = LightSuperResolution(cfg.feature_channels, cfg.w_dim, cfg.feature_resolution,
                                                        cfg.sr_channels)
        elif cfg.sr_kind is not None:
            self.superresolution = SuperResolution(cfg.sr_kind, in_channels=cfg.feature_channels, w_dim=cfg.w_dim,
                                                   antialias=cfg.sr_antialias)

    def styles(self, ws: Tensor, c: Tensor) -> Tensor:
        """The student's style for each sample.  # [B, style_dim]"""
        return self.mapping(ws, c)

    def forward(self, ws: Tensor, c: Tensor, plain: bool = False) -> dict[str, Tensor]:
        if c.shape[0] != ws.shape[0]:
            c = c.expand(ws.shape[0], -1)
        if _per_sample(ws):
            parts = [self.forward(ws[i:i + 1], c[i:i + 1], plain) for i in range(ws.shape[0])]
            return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        s = self.styles(ws, c)
        feats = self.synthesis(s.unsqueeze(1).repeat(1, self.num_styles, 1), noise_mode="none", fused=plain,
                               plain=plain)  # [B, F, r, r]
        rgb = feats[:, :3]
        image = rgb if self.superresolution is None else \
            self.superresolution(rgb, feats, ws, noise_mode="none", fused=plain, plain=plain)  # [B, 3, R, R]
        return {"image": image, "image_raw": rgb, "feature_image": feats}


# ----------------------------------------------------------------------------------------------------------
# construction from a teacher, and the model-file form


def student_config_for_teacher(G: TriPlaneGenerator, **arch) -> StudentConfig:
    """A student config whose interfaces match teacher ``G``; ``arch`` sets the student's own architecture.

    ``sr_kind="teacher"`` (the default) selects the teacher's super-resolution architecture (or none if it has none);
    ``feature_resolution`` defaults to the teacher's neural rendering resolution.
    """
    g = G.cfg
    arch = dict(arch)
    if arch.get("sr_kind", "teacher") == "teacher":
        arch["sr_kind"] = g.sr_kind
    if arch.get("sr_kind") is None:
        arch.pop("sr_channels", None)
    feature_resolution = arch.pop("feature_resolution", None) or g.neural_rendering_resolution
    return StudentConfig(w_dim=g.w_dim, num_ws=G.num_ws, c_dim=g.c_dim, feature_resolution=feature_resolution,
                         feature_channels=g.decoder_output_dim, img_resolution=g.img_resolution,
                         sr_antialias=g.rendering.sr_antialias, **arch)


@torch.no_grad()
def init_from_teacher(student: StudentGenerator, G: TriPlaneGenerator, num_samples: int = 1000, seed: int = 0) -> None:
    """Copy the teacher's super-resolution weights (same architecture) and its ws statistics into the student."""
    if student.cfg.sr_kind not in (None, LIGHT):
        if G.superresolution is None or G.cfg.sr_kind != student.cfg.sr_kind:
            raise ConfigError(f"student.sr_kind {student.cfg.sr_kind} differs from the teacher's ({G.cfg.sr_kind}): "
                              f"use 'teacher' or 'light'")
        load_state_strict(student.superresolution, G.superresolution.state_dict(), "teacher super-resolution")
    device = G.dataset_label_std.device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(num_samples, G.z_dim, generator=gen).to(device)
    r = G.cfg.rendering
    c = Camera.frontal_offset(0.0, 0.0, r.avg_camera_pivot, r.avg_camera_radius, device=device).to_label()
    ws = G.mapping(z, c.expand(num_samples, -1))  # [N, num_ws, w_dim]
    w_avg = G.backbone.mapping.w_avg
    student.mapping.w_avg.copy_(w_avg)
    std = float((ws - w_avg).square().mean().sqrt())
    student.mapping.w_scale.fill_(1.0 / max(std, 1e-8))


@torch.no_grad()
def set_camera_statistics(student: StudentGenerator, cameras: Tensor, min_std: float = 0.05) -> None:
    """Standardise the camera input with the statistics of the cameras it will see (labels [N, 25]): entries are
    centred on their mean and divided by their std (at least ``min_std``); constant entries are only centred."""
    mean, std = cameras.float().mean(0), cameras.float().std(0)
    student.mapping.c_mean.copy_(mean)
    student.mapping.c_scale.copy_(torch.where(std < 1e-6, torch.ones_like(std), 1.0 / std.clamp_min(min_std)))


def student_payload(student: StudentGenerator) -> dict:
    """The plain-data form stored in a Trident snapshot's ``extra['student']``."""
    return {"config": to_dict(student.cfg),
            "state": {k: v.detach().to("cpu").clone() for k, v in student.state_dict().items()}}


def build_student(data: object, device: str | torch.device = "cpu") -> StudentGenerator:
    """Rebuild a student from ``extra['student']`` (config dict + state dict), in eval mode on ``device``."""
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) or not isinstance(data.get("state"), dict):
        raise CheckpointError("the model file's student entry is not {'config': {...}, 'state': {...}}")
    try:
        cfg = from_dict(StudentConfig, data["config"], "student")
    except ConfigError as e:
        raise CheckpointError(f"bad student config in file: {e}") from None
    from .limits import check_student_config  # local import: limits builds students on the meta device
    check_student_config(cfg)
    student = StudentGenerator(cfg)
    load_state_strict(student, data["state"], "student")
    return student.eval().requires_grad_(False).to(device)
