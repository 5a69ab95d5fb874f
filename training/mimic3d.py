"""Mimic3D's second training stage on top of the EG3D loop (Chen et al. 2023, Sec. 3.2-3.4; ``SeanChenxy/Mimic3D:
training/loss.py``).

Stage 1 is the EG3D recipe with the 3D-aware backbone (``generator.aware3d_res``); :mod:`training.loop` trains it
unchanged. Stage 2 (``loss.patch_scale < 1``) starts from a stage-1 model (``--init``), adds the detail tri-planes
(``generator.detail_blocks``, initialised fresh) and, per step:

* Gmain: the full coarse-only render + 2D super-resolution is judged by D exactly as in EG3D; in the same
  generator pass the 3D branch (coarse + detail) renders one ``r x r`` patch per sample at the final image's pixel
  density, which imitates the *detached* super-resolved crop at the same window (``loss.imitation``, weight
  ``loss.imitation_weight``) and fools the patch discriminator (softplus(-D_patch), weight ``loss.patch_gan``);
* D_patchmain: D_patch sees 3D-branch patches (no super-resolution run) and crops of real images at independent
  random windows (logistic loss);
* D_patchreg (every ``loss.r1_interval`` steps): R1 on real patches with ``loss.gamma_patch``;
* Greg: the density regulariser acts on the summed coarse + detail features.

This module holds the stage-2 parts; the loop calls them at a few marked places.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from core import rendering
from core.build import build_discriminator, build_generator, load_state_strict
from core.config import ConfigError, GeneratorConfig
from core.files.snapshot import Snapshot
from core.triplane import RenderOptions, TriPlaneGenerator

from . import losses, schedules
from .config import TrainConfig
from .imitation import make_imitation_loss
from .plumbing import adam
from .precision import set_training_precision
from .patch_gan import patch_discriminator_config, patch_r1, real_patches, run_patch_D


# ----------------------------------------------------------------------------------------------------------
# construction


def init_generator_config(cfg: TrainConfig, init: GeneratorConfig) -> GeneratorConfig:
    """The architecture to train when starting from a model file: the file's own, plus the detail tri-plane blocks
    when a stage-2 config starts from a stage-1 model (Mimic3D copies tensors by name; new blocks start fresh)."""
    if cfg.generator.aware3d_res and not init.aware3d_res and not cfg.loss.mimic3d_stage2:
        return warm_start_config(cfg.generator, init)
    if not cfg.loss.mimic3d_stage2 or init.detail_blocks > 0:
        return init
    if not init.aware3d_res:
        raise ConfigError("Mimic3D stage 2 starts from a stage-1 model with the 3D-aware backbone "
                          "(generator.aware3d_res); this model file has none")
    if cfg.generator.detail_blocks < 1:
        raise ConfigError("Mimic3D stage 2 (loss.patch_scale < 1) needs generator.detail_blocks >= 1")
    rendering_cfg = dataclasses.replace(init.rendering, density_reg_p_dist=cfg.loss.density_reg_p_dist)
    return dataclasses.replace(init, detail_blocks=cfg.generator.detail_blocks, rendering=rendering_cfg)


def warm_start_config(stage1: GeneratorConfig, eg3d: GeneratorConfig) -> GeneratorConfig:
    """Mimic3D stage 1 started from an EG3D model (``--init eg3d.pkl`` with a stage-1 config): the EG3D file's
    architecture plus the config's 3D-aware ``b3d{R}`` chain and plane projection. The main synthesis branch,
    mapping, decoder and super-resolution are EG3D's own modules in Mimic3D (``SeanChenxy/Mimic3D:
    training/networks_stylegan2.py``: only ``b4.const`` gains a
    leading 1, a layout detail), so their trained tensors carry over by name and only the b3d blocks start fresh;
    the decoder then reads the b3d chain's tri-planes instead of the main branch's, which fine-tuning adapts."""
    if stage1.triplane_resolution != eg3d.triplane_resolution or stage1.triplane_channels != eg3d.triplane_channels:
        raise ConfigError(f"the stage-1 config's {stage1.triplane_channels}x{stage1.triplane_resolution}^2 tri-planes "
                          f"do not match the model file's {eg3d.triplane_channels}x{eg3d.triplane_resolution}^2")
    rendering_cfg = dataclasses.replace(eg3d.rendering, plane_convention=stage1.rendering.plane_convention)
    return dataclasses.replace(eg3d, aware3d_res=stage1.aware3d_res, aware3d_gain=stage1.aware3d_gain,
                               rendering=rendering_cfg)


def load_generator_state(G: TriPlaneGenerator, state: dict[str, Tensor], file_cfg: GeneratorConfig, what: str) -> None:
    """Strict copy of a file's tensors into G; only the modules G has beyond the file's architecture (the detail
    tri-plane blocks of a stage-1 file, the b3d chain of an EG3D file) keep their fresh initialisation."""
    if file_cfg == G.cfg:
        load_state_strict(G, state, what)
        return
    own = G.state_dict()
    fresh = set(own) - set(build_generator(file_cfg).state_dict())
    load_state_strict(G, {**{k: own[k] for k in fresh}, **state}, what)


@dataclasses.dataclass
class PatchGAN:
    """Stage-2 modules of a trainer: the patch discriminator, its optimiser and the imitation distance."""

    D: torch.nn.Module
    opt: torch.optim.Optimizer
    imitation: object   # training.imitation.ImitationLoss
    size: int           # patch side r (the neural rendering resolution)


def build_patch_gan(cfg: TrainConfig, G: TriPlaneGenerator, resolution: int, device: torch.device,
                    init: Snapshot | None = None) -> PatchGAN:
    """D_patch (fresh, or the model file's), Adam with the lazy-R1 correction, and the imitation loss."""
    L = cfg.loss
    if not G.has_direct3d:
        raise ConfigError("Mimic3D stage 2 (loss.patch_scale < 1) needs a generator with detail tri-planes "
                          "(generator.detail_blocks >= 1 and aware3d_res)")
    if L.neural_rendering_resolution_final is not None:
        raise ConfigError("Mimic3D stage 2 renders patches at a fixed neural rendering resolution "
                          "(set loss.neural_rendering_resolution_final: null)")
    size = L.neural_rendering_resolution_initial
    if int(size / L.patch_scale) != resolution:
        raise ConfigError(f"loss.patch_scale {L.patch_scale}: {size} px patches must tile the {resolution} px image "
                          f"at its pixel density (patch_scale = {size} / {resolution})")
    have = init is not None and init.D_patch is not None and init.patch_discriminator is not None
    dcfg = init.patch_discriminator if have else patch_discriminator_config(cfg.patch_discriminator, size)
    if dcfg.img_resolution != size:
        raise ConfigError(f"the model file's D_patch sees {dcfg.img_resolution} px patches, the config {size} px")
    D = build_discriminator(dcfg, init.D_patch if have else None, device=device).train().requires_grad_(False)
    set_training_precision(D, cfg.optim.precision)
    o = cfg.optim
    lr, betas = schedules.lazy_regularization(o.dlr, o.betas, L.r1_interval if L.gamma_patch > 0 else 0)
    opt = adam(D.parameters(), lr, betas, o.eps)
    imitation = make_imitation_loss(L.imitation, D, L.lpips_trunk, device)
    return PatchGAN(D=D, opt=opt, imitation=imitation, size=size)


# ----------------------------------------------------------------------------------------------------------
# generator side


def sample_windows(t, batch: int) -> rendering.PatchWindows:
    """One random patch window per sample of the final image's pixel grid (``SeanChenxy/Mimic3D:
    training/volumetric_rendering/ray_sampler.py``)."""
    return rendering.sample_patch_windows(batch, t.patch.size, t.cfg.loss.patch_scale, t.gen, device=t.device)


def synthesis_with_patch(G: TriPlaneGenerator, ws: Tensor, c: Tensor, opts: RenderOptions,
                         windows: rendering.PatchWindows) -> dict[str, Tensor]:
    """One backbone pass: the sr2d outputs from the coarse tri-planes plus 'patch' [B, 3, r, r], the 3D branch
    (coarse + detail) rendered in ``windows`` (Mimic3D's Gmain generator call with run_full)."""
    planes = G.triplanes(ws, noise_mode=opts.noise_mode)
    out = G.synthesis(ws, c, opts, planes=planes[0])
    out["patch"] = G.synthesis_patch(ws, c, windows, opts, planes=planes)["image"]
    return out


def g_patch_terms(t, fake: dict[str, Tensor], windows: rendering.PatchWindows, blur_sigma: float,
                  note) -> Tensor:
    """Imitation of the detached SR crop plus the patch adversarial term, per sample.  # [B]"""
    L = t.cfg.loss
    patch = fake["patch"]
    target = rendering.crop_patches(fake["image"].detach(), windows)
    imitation = t.patch.imitation(patch, target)
    adv = losses.g_nonsaturating(run_patch_D(t.patch.D, patch, blur_sigma, t.augment, t.gen)).flatten()
    note("loss/G_imitation", imitation)
    note("loss/G_patch", adv)
    return imitation * L.imitation_weight + adv * L.patch_gan


def density_planes(G: TriPlaneGenerator, ws: Tensor) -> Tensor | list[Tensor]:
    """What the density regulariser samples: coarse + detail in stage 2 (``SeanChenxy/Mimic3D: training/loss.py``),
    the tri-planes
    otherwise."""
    if G.has_direct3d:
        return G.triplanes(ws, noise_mode="random")
    return G.planes(ws, noise_mode="random")


# ----------------------------------------------------------------------------------------------------------
# patch discriminator phases


def d_patch_main(t, ws: Tensor, c: Tensor, reals: Tensor, blur_sigma: float, note) -> Tensor:
    """Logistic loss of D_patch: 3D-branch patches (no SR pass) vs. real crops at independent windows.  # scalar"""
    windows = sample_windows(t, ws.shape[0])
    with torch.no_grad():
        opts = RenderOptions(deterministic=False, noise_mode="random", chunk=None)
        fake = t.G.synthesis_patch(ws, c, windows, opts)["image"]
    fake_logits = run_patch_D(t.patch.D, fake, blur_sigma, t.augment, t.gen)
    real = real_patches(reals, t.patch.size, t.cfg.loss.patch_scale, t.gen)
    real_logits = run_patch_D(t.patch.D, real, blur_sigma, t.augment, t.gen)
    note("loss/Dpatch_fake", F.softplus(fake_logits))
    note("loss/Dpatch_real", F.softplus(-real_logits))
    return losses.d_logistic(real_logits, fake_logits).mean()


def d_patch_reg(t, reals: Tensor, blur_sigma: float, note) -> Tensor:
    """Lazy R1 of D_patch on real crops, gamma_patch / 2 times the interval (``SeanChenxy/Mimic3D:
    training/loss.py``).  # scalar"""
    L = t.cfg.loss
    r1 = patch_r1(t.patch.D, real_patches(reals, t.patch.size, L.patch_scale, t.gen), blur_sigma, t.augment, t.gen)
    note("loss/Dpatch_r1", r1)
    return (r1 * (L.gamma_patch / 2)).mean() * L.r1_interval
