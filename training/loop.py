"""The EG3D training loop (Chan et al. 2022, Sec. 4.3 and Appendix B; StyleGAN2-ADA's loop structure).

One step = four phases, each accumulating gradients over ``batch / batch_gpu`` micro-batches:

* Gmain: non-saturating loss of D on fakes (GPC-swapped conditioning, current rendering resolution);
* Greg (every ``density_reg_every`` steps): L1 density smoothness, weighted by the interval (lazy);
* Dmain: logistic loss on fakes and reals (reals: image + blurred, resized raw image);
* Dreg (every ``r1_interval`` steps): R1 on both real inputs, weighted by the interval (lazy).

Mimic3D stage 2 (``loss.patch_scale < 1``, :mod:`training.mimic3d`) adds the 3D-branch patch terms (imitation and
patch GAN) to Gmain and two phases, D_patchmain and D_patchreg, for the patch discriminator.

The loop owns the plumbing (optimisers, EMA, schedules, logging, snapshots); losses and schedules are the pure
functions of :mod:`training.losses` and :mod:`training.schedules`. Snapshots are Trident files written atomically
and hold everything needed to resume: G, G_ema, D, both optimisers, counters and RNG states.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.cameras import Camera
from core.files.snapshot import Snapshot
from core.build import build_discriminator, build_generator, load_state_strict
from core.files.checkpoint import load_snapshot, save_snapshot
from core.files.image_io import save_png, to_uint8
from core.config import ConfigError, to_dict
from core.errors import CheckpointError
from core.model import VOLUME_BRANCHES, Model
from core.triplane import RenderOptions, TriPlaneGenerator

from . import losses, mimic3d, schedules
from .augment import AugmentPipe
from .config import TrainConfig, discriminator_config, generator_config
from .plumbing import (Progress, adam, all_reduce_grads, check_replicas, rng_state, run_ticks, sanitize_grads,
                       set_rng_state, update_ema)
from .precision import full_precision, set_training_precision
from .runs import snapshot_name, snapshot_tag



@dataclass
class Trainer:
    """Everything that changes during training (what a snapshot saves)."""

    cfg: TrainConfig
    G: TriPlaneGenerator
    G_ema: TriPlaneGenerator
    D: torch.nn.Module
    G_opt: torch.optim.Optimizer
    D_opt: torch.optim.Optimizer
    progress: Progress = field(default_factory=Progress)
    gen: torch.Generator = field(default_factory=torch.Generator)
    fade_gpc: bool = True      # False after resume/init from a trained model: swap and blur start at their final values
    fade_blur: bool = True
    ema_rampup: float | None = 0.05
    device: torch.device = torch.device("cpu")
    rank: int = 0
    world_size: int = 1
    augment: "AugmentPipe | None" = None
    ada_signs: list = field(default_factory=list)   # sign(D(real)) since the last p update
    patch: "mimic3d.PatchGAN | None" = None         # Mimic3D stage 2: D_patch, its optimiser, the imitation loss


# ----------------------------------------------------------------------------------------------------------
# construction


def build_trainer(cfg: TrainConfig, resolution: int, device: torch.device, label_std: np.ndarray | None = None,
                  seed: int = 0, init: Snapshot | None = None) -> Trainer:
    """Fresh modules from the config, or (``init``) the architecture *and* weights of a model file."""
    torch.manual_seed(seed)
    gcfg = mimic3d.init_generator_config(cfg, init.generator) if init is not None else generator_config(cfg, resolution)
    dcfg = init.discriminator if init is not None and init.discriminator is not None else \
        discriminator_config(cfg, resolution)
    if gcfg.img_resolution != resolution:
        raise ConfigError(f"the model makes {gcfg.img_resolution} px images but the dataset has {resolution} px")
    G = build_generator(gcfg, device=device).train().requires_grad_(True)
    D = build_discriminator(dcfg, device=device).train().requires_grad_(True)
    if init is not None:
        mimic3d.load_generator_state(G, init.G if init.G is not None else init.G_ema, init.generator, "G")
        if init.D is not None:
            load_state_strict(D, init.D, "D")
    if label_std is not None:
        G.dataset_label_std.copy_(torch.as_tensor(label_std, dtype=torch.float32))
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    o = cfg.optim
    g_lr, g_betas = schedules.lazy_regularization(o.glr, o.betas, cfg.loss.density_reg_every
                                                  if cfg.loss.density_reg > 0 else 0)
    d_lr, d_betas = schedules.lazy_regularization(o.dlr, o.betas, cfg.loss.r1_interval if cfg.loss.r1_gamma > 0 else 0)
    G_opt = adam(G.parameters(), g_lr, g_betas, o.eps)
    D_opt = adam(D.parameters(), d_lr, d_betas, o.eps)
    gen = torch.Generator().manual_seed(seed)
    t = Trainer(cfg=cfg, G=G, G_ema=G_ema, D=D, G_opt=G_opt, D_opt=D_opt, gen=gen, device=device)
    for m in (t.G, t.D):  # G_ema renders the grids and is saved: it stays fp32 (``training.precision``)
        set_training_precision(m, cfg.optim.precision)
    if cfg.augment.mode != "noaug":
        t.augment = AugmentPipe(cfg.augment.groups, p=cfg.augment.p if cfg.augment.mode == "fixed" else 0.0).to(device)
    if cfg.loss.mimic3d_stage2:
        t.patch = mimic3d.build_patch_gan(cfg, G, resolution, device, init)
    if init is not None:
        mimic3d.load_generator_state(t.G_ema, init.G_ema, init.generator, "G_ema")
        t.fade_gpc = t.fade_blur = False  # EG3D: no swap/blur fade and no EMA ramp-up when starting from a model
        t.ema_rampup = None
    return t


# ----------------------------------------------------------------------------------------------------------
# one step


def _render_opts(nrr: int) -> RenderOptions:
    return RenderOptions(resolution=nrr, deterministic=False, noise_mode="random", chunk=None)


def run_mapping(t: Trainer, z: Tensor, c: Tensor, swapping_prob: float, update_emas: bool = False) -> Tensor:
    """ws with pose-conditioning swap and optional style mixing (the mapping half of EG3D ``run_G``)."""
    c_cond = losses.swap_conditioning(c, swapping_prob, t.gen)
    ws = t.G.mapping(z, c_cond, update_emas=update_emas)
    mix = t.cfg.loss.style_mixing_prob
    if mix > 0 and float(torch.rand([], generator=t.gen)) < mix:
        cutoff = int(torch.randint(1, ws.shape[1], [], generator=t.gen))
        z2 = torch.randn(z.shape, generator=t.gen).to(z.device)
        ws = torch.cat([ws[:, :cutoff], t.G.mapping(z2, c_cond, update_emas=False)[:, cutoff:]], dim=1)
    return ws


def run_G(t: Trainer, z: Tensor, c: Tensor, swapping_prob: float, nrr: int, update_emas: bool = False,
          windows=None) -> dict:
    """Generator pass (EG3D ``run_G``); with Mimic3D patch ``windows`` also the 3D-branch patch ('patch')."""
    ws = run_mapping(t, z, c, swapping_prob, update_emas)
    if windows is not None:
        return mimic3d.synthesis_with_patch(t.G, ws, c, _render_opts(nrr), windows)
    return Model(t.G, t.device).render("sr2d", ws, c, _render_opts(nrr))


def run_D(t: Trainer, img: dict, c: Tensor, blur_sigma: float) -> Tensor:
    """Discriminator pass (EG3D ``run_D``): the super-resolved image is blurred while the blur fades out; with
    augmentation, image and upsampled raw image are augmented *jointly* and the raw half resized back."""
    img = dict(img)
    img["image"] = losses.blur(img["image"], blur_sigma)
    if t.augment is not None and float(t.augment.p) > 0:
        size, raw_size = img["image"].shape[-1], img["image_raw"].shape[-1]
        raw = F.interpolate(img["image_raw"], size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        both = t.augment(torch.cat([img["image"], raw], 1), t.gen)
        img["image"] = both[:, :3]
        img["image_raw"] = F.interpolate(both[:, 3:], size=(raw_size, raw_size), mode="bilinear",
                                         align_corners=False, antialias=True)
    return t.D(img, c)


def update_augment(t: Trainer) -> None:
    """Fixed p, or every ``interval`` steps the ADA rule on E[sign(D(real))] (averaged over processes)."""
    a = t.cfg.augment
    if t.augment is None:
        return
    if a.mode == "fixed":
        t.augment.p.fill_(a.p)
        return
    if t.progress.batch_idx % a.interval or not t.ada_signs:
        return
    stat = torch.tensor([sum(t.ada_signs), len(t.ada_signs)], dtype=torch.float64)
    if t.world_size > 1:
        torch.distributed.all_reduce(stat)
    t.ada_signs.clear()
    new_p = schedules.ada_adjust(float(t.augment.p), float(stat[0] / stat[1]), a.target,
                                 t.cfg.optim.batch, a.interval, a.kimg)
    t.augment.p.fill_(new_p)


def _random_labels(labels: np.ndarray, n: int, gen: torch.Generator, device) -> Tensor:
    idx = torch.randint(len(labels), (n,), generator=gen)
    return torch.from_numpy(labels[idx.numpy()]).to(device)


def train_step(t: Trainer, reals: Tensor, real_c: Tensor, all_labels: np.ndarray) -> dict[str, float]:
    """One optimisation step on a full batch (phases Gmain, Greg, Dmain, Dreg); returns mean terms for logging."""
    cfg, L, dev = t.cfg, t.cfg.loss, t.device
    p = t.progress
    nimg = p.cur_nimg
    swap = schedules.swapping_prob(nimg, L.gpc_reg_prob if L.gen_pose_cond else None,
                                   L.gpc_reg_fade_kimg if t.fade_gpc else 0)
    nrr = schedules.neural_rendering_resolution(nimg, L.neural_rendering_resolution_initial,
                                                L.neural_rendering_resolution_final,
                                                L.neural_rendering_resolution_fade_kimg)
    sigma = schedules.blur_sigma(nimg, L.blur_init_sigma, cfg.blur_fade_kimg) if t.fade_blur else 0.0
    batch, micro = reals.shape[0], cfg.optim.batch_gpu
    stats: dict[str, list[float]] = {}

    def note(name: str, value: Tensor) -> None:
        stats.setdefault(name, []).append(float(value.detach().mean()))

    real_chunks = list(zip(reals.split(micro), real_c.split(micro)))
    n_rounds = len(real_chunks)
    gen_z = torch.randn(batch, cfg.generator.z_dim, generator=t.gen).to(dev).split(micro)
    gen_c = _random_labels(all_labels, batch, t.gen, dev).split(micro)

    def phase(name: str, module: torch.nn.Module, opt: torch.optim.Optimizer, body: Callable[[int], Tensor]) -> None:
        """zero grads, accumulate body(round) / rounds over the micro-batches, sanitize, step (``name``: the
        phase's label in a torch.profiler trace, see tools/train_precision_ab.py)."""
        with torch.profiler.record_function(f"phase {name}"):
            _phase(module, opt, body)

    def _phase(module: torch.nn.Module, opt: torch.optim.Optimizer, body: Callable[[int], Tensor]) -> None:
        t.G.requires_grad_(module is t.G)
        t.D.requires_grad_(module is t.D)
        if t.patch is not None:
            t.patch.D.requires_grad_(module is t.patch.D)
        opt.zero_grad(set_to_none=True)
        for i in range(n_rounds):
            (body(i) / n_rounds).backward()
        all_reduce_grads(module, t.world_size)
        sanitize_grads(module)
        opt.step()
        module.requires_grad_(False)

    def g_main(i: int) -> Tensor:
        windows = mimic3d.sample_windows(t, gen_z[i].shape[0]) if t.patch is not None else None
        fake = run_G(t, gen_z[i], gen_c[i], swap, nrr, windows=windows)
        loss = losses.g_nonsaturating(run_D(t, fake, gen_c[i], sigma))
        note("loss/G", loss)
        if t.patch is not None:  # Mimic3D: imitation + patch GAN on the 3D branch's patch
            return loss.mean() + mimic3d.g_patch_terms(t, fake, windows, sigma, note).mean()
        return loss.mean()

    def g_reg(i: int) -> Tensor:  # density smoothness; one swap draw for the whole batch, as the reference
        z, c = gen_z[i], gen_c[i]
        c_cond = torch.roll(c, 1, 0) if float(torch.rand([], generator=t.gen)) < swap else c
        planes = mimic3d.density_planes(t.G, t.G.mapping(z, c_cond))
        with full_precision(t.G.decoder):  # the density differences it measures are below bfloat16's resolution
            reg = losses.density_smoothness(lambda x: t.G.sample_planes(planes, x)["sigma"], z.shape[0],
                                            L.density_reg_p_dist, generator=t.gen, device=dev)
        note("loss/G_density", reg)
        return reg * L.density_reg * L.density_reg_every

    def real_inputs(i: int, requires_grad: bool) -> tuple[dict, Tensor]:
        real, rc = real_chunks[i]
        raw = losses.blur(F.interpolate(real, size=(nrr, nrr), mode="bilinear", align_corners=False,
                                        antialias=True), sigma)
        return {"image": real.detach().requires_grad_(requires_grad),
                "image_raw": raw.detach().requires_grad_(requires_grad)}, rc

    def d_main(i: int) -> Tensor:
        with torch.no_grad():
            fake = run_G(t, gen_z[i], gen_c[i], swap, nrr, update_emas=True)
        fake_logits = run_D(t, fake, gen_c[i], sigma)
        img, rc = real_inputs(i, False)
        real_logits = run_D(t, img, rc, sigma)
        note("loss/D_fake", F.softplus(fake_logits))
        note("loss/D_real", F.softplus(-real_logits))
        note("D/real_sign", real_logits.sign())
        t.ada_signs.extend(real_logits.detach().sign().flatten().tolist())
        return losses.d_logistic(real_logits, fake_logits).mean()

    def d_reg(i: int) -> Tensor:  # R1 on both the image and the raw image (dual discrimination)
        img, rc = real_inputs(i, True)
        r1 = losses.r1_penalty(run_D(t, img, rc, sigma), [img["image"], img["image_raw"]])
        note("loss/D_r1", r1)
        return (r1 * (L.r1_gamma / 2)).mean() * L.r1_interval

    phase("Gmain", t.G, t.G_opt, g_main)
    if L.density_reg > 0 and L.density_reg_every > 0 and p.batch_idx % L.density_reg_every == 0:
        phase("Greg", t.G, t.G_opt, g_reg)
    phase("Dmain", t.D, t.D_opt, d_main)
    if L.r1_gamma > 0 and L.r1_interval > 0 and p.batch_idx % L.r1_interval == 0:
        with full_precision(t.D):  # R1 in fp32 (training.precision): lazy, so 1 step in r1_interval pays for it
            phase("Dreg", t.D, t.D_opt, d_reg)
    if t.patch is not None:  # Mimic3D D_patchmain / D_patchreg
        def d_patch_main(i: int) -> Tensor:
            with torch.no_grad():
                ws = run_mapping(t, gen_z[i], gen_c[i], swap)
            return mimic3d.d_patch_main(t, ws, gen_c[i], real_chunks[i][0], sigma, note)

        phase("D_patchmain", t.patch.D, t.patch.opt, d_patch_main)
        if L.gamma_patch > 0 and L.r1_interval > 0 and p.batch_idx % L.r1_interval == 0:
            with full_precision(t.patch.D):
                phase("D_patchreg", t.patch.D, t.patch.opt, lambda i: mimic3d.d_patch_reg(t, real_chunks[i][0], sigma, note))

    beta = schedules.ema_beta(batch, nimg, cfg.ema_kimg, t.ema_rampup)
    with torch.profiler.record_function("phase EMA"):
        update_ema(t.G_ema, t.G, beta)
    p.cur_nimg += batch * t.world_size
    p.batch_idx += 1
    update_augment(t)
    out = {k: float(np.mean(v)) for k, v in stats.items()}
    if t.augment is not None:
        out["augment/p"] = float(t.augment.p)
    out.update({"schedule/swap_prob": swap, "schedule/nrr": nrr, "schedule/blur_sigma": sigma, "schedule/ema_beta": beta})
    return out


# ----------------------------------------------------------------------------------------------------------
# snapshots


def trainer_modules(t: Trainer) -> tuple[torch.nn.Module, ...]:
    """The modules every process must hold identically: G, D and (Mimic3D stage 2) D_patch."""
    return (t.G, t.D) + ((t.patch.D,) if t.patch is not None else ())


def save_training_snapshot(t: Trainer, path: Path, extra_meta: dict | None = None) -> None:
    p = t.progress
    train_state = {
        "G_opt": t.G_opt.state_dict(), "D_opt": t.D_opt.state_dict(),
        "progress": {"cur_nimg": p.cur_nimg, "cur_tick": p.cur_tick, "batch_idx": p.batch_idx,
                     "tick_start_nimg": p.tick_start_nimg, "elapsed_sec": p.elapsed_sec},
        "flags": {"fade_gpc": t.fade_gpc, "fade_blur": t.fade_blur, "ema_rampup": t.ema_rampup},
        "augment_p": float(t.augment.p) if t.augment is not None else None,
        "D_patch_opt": t.patch.opt.state_dict() if t.patch is not None else None,
        "rng": rng_state(t.gen), "config": to_dict(t.cfg),
    }
    snap = Snapshot(generator=t.G_ema.cfg, G_ema=t.G_ema.state_dict(), G=t.G.state_dict(),
                    discriminator=t.D.cfg, D=t.D.state_dict(), extra={"train": train_state, **(extra_meta or {})})
    if t.patch is not None:
        snap.patch_discriminator, snap.D_patch = t.patch.D.cfg, t.patch.D.state_dict()
    save_snapshot(path, snap)


def restore_training_snapshot(t: Trainer, source: Path | Snapshot) -> None:
    """Continue from a snapshot (a path, or one already loaded): weights, optimisers, counters, RNG, augment p."""
    snap = source if isinstance(source, Snapshot) else load_snapshot(source)
    train = snap.extra.get("train")
    if train is None:
        name = getattr(source, "name", "the snapshot")
        raise CheckpointError(f"{name} holds no training state (use --init to fine-tune from it)")
    load_state_strict(t.G, snap.G, "G")
    load_state_strict(t.G_ema, snap.G_ema, "G_ema")
    load_state_strict(t.D, snap.D, "D")
    t.G_opt.load_state_dict(train["G_opt"])
    t.D_opt.load_state_dict(train["D_opt"])
    if t.patch is not None:
        if snap.D_patch is None or train.get("D_patch_opt") is None:
            raise CheckpointError("the snapshot holds no patch discriminator state to resume Mimic3D stage 2 from")
        load_state_strict(t.patch.D, snap.D_patch, "D_patch")
        t.patch.opt.load_state_dict(train["D_patch_opt"])
    t.progress = Progress(**train["progress"])
    flags = train["flags"]
    t.fade_gpc, t.fade_blur, t.ema_rampup = flags["fade_gpc"], flags["fade_blur"], flags["ema_rampup"]
    set_rng_state(t.gen, train["rng"])
    if t.augment is not None and train.get("augment_p") is not None:
        t.augment.p.fill_(train["augment_p"])


# ----------------------------------------------------------------------------------------------------------
# grids and logging


@torch.no_grad()
def save_grid(G: TriPlaneGenerator, path: Path, grid: tuple[int, int], seed: int = 0) -> None:
    """Fakes from fixed latents; each column is one latent seen from a sweep of yaw angles (3D consistency at a
    glance). One row per latent (sr2d); a Mimic3D stage-2 model adds the latent's direct3d render below it."""
    cols, rows = grid
    r = G.cfg.rendering
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, G.z_dim, generator=g)
    yaws = torch.linspace(-0.5, 0.5, cols)
    cond = Camera.frontal_offset(0.0, 0.0, r.avg_camera_pivot, r.avg_camera_radius).to_label().repeat(rows, 1)
    model = Model(G, G.dataset_label_std.device)
    ws = G.mapping(z.to(model.device), cond.to(model.device), truncation_psi=0.7)
    branches = [b for b in model.branches if b in VOLUME_BRANCHES]   # sr2d, and direct3d when the model has it
    planes = model.triplanes(ws)
    tiles = []
    for row in range(rows):
        lines = {b: [] for b in branches}
        mine = [pl[row:row + 1] for pl in planes]
        for yaw in yaws:
            cam = Camera.frontal_offset(float(yaw), 0.0, r.avg_camera_pivot, r.avg_camera_radius).to_label()
            for b in branches:
                out = model.render(b, ws[row:row + 1], cam, RenderOptions(), planes=mine)
                lines[b].append(out["image"][0].float().cpu())
        tiles += [torch.cat(lines[b], dim=2) for b in branches]
    save_png(path, to_uint8(torch.cat(tiles, dim=1)))


# ----------------------------------------------------------------------------------------------------------
# the loop


def training_loop(t: Trainer, batches, all_labels: np.ndarray, run_dir: Path, total_kimg: float, snap_kimg: float,
                  tick_kimg: float, on_tick: Callable[[dict], None] | None = None,
                  deadline: float | None = None) -> int | None:
    """Train until ``total_kimg``; log every tick, write a grid + snapshot every ``snap_kimg`` and at the end.
    Returns the last snapshot's nimg (see :func:`run_ticks`)."""
    it = iter(batches)

    def snapshot(nimg: int) -> None:
        save_grid(t.G_ema, run_dir / f"fakes{snapshot_tag(nimg)}.png", t.cfg.run.grid, t.cfg.run.seed)
        save_training_snapshot(t, run_dir / snapshot_name(nimg))

    return run_ticks(t.progress, lambda: train_step(t, *next(it), all_labels), run_dir / "stats.jsonl", total_kimg,
              snap_kimg, tick_kimg, t.rank == 0, snapshot, lambda: check_replicas(trainer_modules(t), t.rank, t.world_size),
              on_tick, deadline)
