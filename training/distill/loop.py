"""NeRF-GAN distillation loop (Shahbazi et al. 2023, Sec. 3): train the convolutional student of :mod:`core.student` to
reproduce a frozen teacher's renders for the same latent and camera.

Each step draws fresh pairs (z, camera) on the fly, maps z with the teacher's mapping network (conditioned on the
frontal or a drawn camera, with per-sample truncation), renders the teacher's targets with deterministic sampling
and constant noise, and runs up to three phases:

* Smain: reconstruction, L1 on the 32-channel feature image (+ raw RGB) and L1 (+ LPIPS) on the final image;
  from ``loss.adv_start_kimg`` on (stage 2) also ``adv_weight`` x the non-saturating GAN loss of the student's
  images under a camera-conditioned dual discriminator;
* Dmain (stage 2): logistic loss, teacher renders as reals and student renders as fakes;
* Dreg (stage 2, every ``r1_interval`` steps): R1 on the reals.

Snapshots are Trident model files: the teacher exactly as loaded (generator config, G_ema, G, D, other branches),
``extra['student']`` (the student's EMA: config + state, what ``python -m core samples --branch student`` renders)
and ``extra['distill']`` (everything needed to resume: the trained student, the distillation discriminator,
optimisers, counters, RNG states, the config).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.cameras import Camera
from core.build import build_discriminator, load_state_strict
from core.files.checkpoint import save_snapshot
from core.config import ConfigError, DiscriminatorConfig, from_dict, to_dict
from core.discriminator import DualDiscriminator
from core.metrics.lpips import LPIPS, LPIPSWeightsError
from core.metrics.fidelity import psnr
from core.model import Model, model_from_snapshot
from core.errors import CheckpointError
from core.files.snapshot import Snapshot
from core.student import (StudentGenerator, build_student, init_from_teacher, set_camera_statistics,
                          student_config_for_teacher, student_payload)
from core.triplane import RenderOptions

from .. import losses, schedules
from .config import DistillConfig, dump_distill_config
from ..plumbing import (Progress, all_reduce_grads, append_jsonl, check_replicas, rng_state, run_ticks, sanitize_grads,
                        set_rng_state, update_ema)
from ..runs import snapshot_name, snapshot_tag

TEACHER_ONLY_EXTRA = ("train", "student", "distill")  # extras not carried from the teacher file into snapshots
EVAL_SEED_OFFSET = 1_000_003                         # held-out pairs never coincide with training draws


@dataclass
class Distiller:
    """Everything distillation changes or needs (what a snapshot saves, plus the frozen teacher)."""

    cfg: DistillConfig
    teacher: Model
    teacher_snapshot: Snapshot
    student: StudentGenerator
    student_ema: StudentGenerator
    S_opt: torch.optim.Optimizer
    D: DualDiscriminator | None = None
    D_opt: torch.optim.Optimizer | None = None
    lpips: LPIPS | None = None
    labels: np.ndarray | None = None              # dataset camera labels (sampling.cameras: dataset)
    progress: Progress = field(default_factory=Progress)
    gen: torch.Generator = field(default_factory=torch.Generator)
    device: torch.device = torch.device("cpu")
    rank: int = 0
    world_size: int = 1


# ----------------------------------------------------------------------------------------------------------
# construction


def teacher_part(snap: Snapshot) -> Snapshot:
    """The teacher as it travels in distillation snapshots (without training, student or distillation state)."""
    return dataclasses.replace(snap, extra={k: v for k, v in snap.extra.items() if k not in TEACHER_ONLY_EXTRA})


def load_lpips_for(cfg: DistillConfig, device: torch.device) -> LPIPS | None:
    L = cfg.loss
    if L.lpips_weight <= 0:
        return None
    try:
        return LPIPS(L.lpips_net, trunk_weights=L.lpips_trunk, random_trunk=L.lpips_random_trunk).to(device)
    except LPIPSWeightsError as e:
        raise LPIPSWeightsError(f"{e} (or distil without LPIPS: --set loss.lpips_weight=0)") from None


def build_discriminator_for(cfg: DistillConfig, snap: Snapshot, img_resolution: int,
                            device: torch.device) -> DualDiscriminator | None:
    """The teacher file's own D when it has one (and ``loss.discriminator`` is 'teacher'), else a fresh one."""
    if cfg.loss.adv_weight <= 0:
        return None
    if cfg.loss.discriminator == "teacher" and snap.D is not None and snap.discriminator is not None:
        if snap.discriminator.img_resolution != img_resolution:
            raise ConfigError(f"the teacher's discriminator takes {snap.discriminator.img_resolution} px images, "
                              f"the student makes {img_resolution} px")
        D = build_discriminator(snap.discriminator, snap.D, device)
    else:
        D = build_discriminator(cfg.discriminator.config(img_resolution), None, device)
    return D.train().requires_grad_(True)


STATISTICS = ("mapping.w_avg", "mapping.w_scale", "mapping.c_mean", "mapping.c_scale")  # recomputed per teacher


def warm_start_student(student: StudentGenerator, payload: object) -> None:
    """Start ``student`` from another distillation's student (``extra['student']`` of its snapshot), e.g. after the
    teacher was fine-tuned: every weight is copied, while the ws and camera statistics stay those of the current
    teacher and cameras. The architectures must agree."""
    other = build_student(payload)
    if other.cfg != student.cfg:
        raise ConfigError("the --init-student model's student has another architecture than this config gives for "
                          "this teacher")
    state = {k: v for k, v in other.state_dict().items() if k not in STATISTICS}
    load_state_strict(student, {**{k: student.state_dict()[k] for k in STATISTICS}, **state}, "student")


def build_distiller(cfg: DistillConfig, teacher_snap: Snapshot, device: torch.device, labels: np.ndarray | None = None,
                    seed: int = 0, student_init: object | None = None) -> Distiller:
    """A fresh student (and discriminator) for ``teacher_snap``; its super-resolution head starts from the teacher's,
    or every weight from ``student_init`` (an ``extra['student']`` payload, see :func:`warm_start_student`)."""
    torch.manual_seed(seed)
    teacher = model_from_snapshot(teacher_part(teacher_snap), device)
    teacher.check_branch(cfg.teacher.target)
    if cfg.sampling.cameras == "dataset" and labels is None:
        raise ConfigError("sampling.cameras is 'dataset' but no dataset was given (--data or sampling.data)")
    arch = to_dict(cfg.student)
    scfg = student_config_for_teacher(teacher.G, **arch)
    student = StudentGenerator(scfg).to(device)
    init_from_teacher(student, teacher.G, seed=seed)
    if student_init is not None:
        warm_start_student(student, student_init)
    student.train().requires_grad_(True)
    o = cfg.optim
    S_opt = torch.optim.Adam(student.parameters(), lr=o.lr, betas=o.betas, eps=o.eps)
    D = build_discriminator_for(cfg, teacher_snap, scfg.img_resolution, device)
    D_opt = None
    if D is not None:
        d_lr, d_betas = schedules.lazy_regularization(o.dlr, o.dbetas, cfg.loss.r1_interval if cfg.loss.r1_gamma else 0)
        D_opt = torch.optim.Adam(D.parameters(), lr=d_lr, betas=d_betas, eps=o.eps)
        group = min(D.cfg.mbstd_group_size, o.batch_gpu)
        if o.batch_gpu % group:
            raise ConfigError(f"optim.batch_gpu {o.batch_gpu} must be a multiple of the discriminator's minibatch-std "
                              f"group size {D.cfg.mbstd_group_size}")
    d = Distiller(cfg=cfg, teacher=teacher, teacher_snapshot=teacher_part(teacher_snap), student=student,
                  student_ema=student, S_opt=S_opt, D=D, D_opt=D_opt, lpips=load_lpips_for(cfg, device),
                  labels=labels, gen=torch.Generator().manual_seed(seed), device=device)
    # the camera input is standardised with the statistics of the cameras distillation will show
    set_camera_statistics(student, sample_cameras(d, 4096, torch.Generator().manual_seed(seed + 1)))
    d.student_ema = copy.deepcopy(student).eval().requires_grad_(False)
    return d


# ----------------------------------------------------------------------------------------------------------
# pairs and targets


def sample_cameras(d: Distiller, n: int, gen: torch.Generator) -> Tensor:
    """Render cameras: the look-at orbit distribution around the teacher's pivot, or a dataset's labels.  # [n, 25]"""
    s = d.cfg.sampling
    if s.cameras == "dataset":
        idx = torch.randint(len(d.labels), (n,), generator=gen)
        return torch.from_numpy(np.asarray(d.labels)[idx.numpy()]).float().to(d.device)
    yaw_lim, pitch_lim = math.radians(s.yaw_limit_deg), math.radians(s.pitch_limit_deg)
    yaw = (torch.randn(n, generator=gen) * s.yaw_std).clamp(-yaw_lim, yaw_lim)
    pitch = (torch.randn(n, generator=gen) * s.pitch_std).clamp(-pitch_lim, pitch_lim)
    return Camera.frontal_offset(yaw, pitch, d.teacher.pivot, d.teacher.radius, s.fov_deg).to_label().to(d.device)


def sample_pairs(d: Distiller, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Fresh (ws [n, num_ws, w_dim], render camera [n, 25]) from the teacher's latent space."""
    s = d.cfg.sampling
    z = torch.randn(n, d.teacher.z_dim, generator=gen).to(d.device)
    c = sample_cameras(d, n, gen)
    frontal = d.teacher.camera_label(fov_deg=s.fov_deg).expand(n, -1)
    use_frontal = (torch.rand(n, 1, generator=gen) < s.cond_frontal_prob).to(d.device)
    c_cond = torch.where(use_frontal, frontal, sample_cameras(d, n, gen))
    ws = d.teacher.mapping(z, c_cond, truncation_psi=1.0)
    lo, hi = s.truncation_psi
    psi = (lo + (hi - lo) * torch.rand(n, 1, 1, generator=gen)).to(d.device)
    cut = ws.shape[1] if s.truncation_cutoff is None else s.truncation_cutoff
    w_avg = d.teacher.G.backbone.mapping.w_avg
    ws = torch.cat([w_avg.lerp(ws[:, :cut], psi), ws[:, cut:]], dim=1)  # per-sample truncation
    return ws, c


def teacher_options(d: Distiller) -> RenderOptions:
    t = d.cfg.teacher
    return RenderOptions(resolution=d.student.cfg.feature_resolution, depth_resolution=t.depth_resolution,
                         depth_resolution_importance=t.depth_resolution_importance, deterministic=True,
                         noise_mode="const", chunk=t.chunk)


@torch.no_grad()
def teacher_targets(d: Distiller, ws: Tensor, c: Tensor) -> dict[str, Tensor]:
    """{'feature_image' [B, 32, r, r], 'image_raw' [B, 3, r, r], 'image' [B, 3, R, R]} from the frozen teacher."""
    opts = teacher_options(d)
    out = d.teacher.render("sr2d", ws, c, opts)
    feats = out["feature_image"]
    image = out["image"]
    if d.cfg.teacher.target != "sr2d":
        image = d.teacher.render(d.cfg.teacher.target, ws, c, dataclasses.replace(opts, resolution=None))["image"]
    if image.shape[-1] != d.student.cfg.img_resolution:
        raise ConfigError(f"the teacher's {d.cfg.teacher.target} image is {image.shape[-1]} px, the student makes "
                          f"{d.student.cfg.img_resolution} px")
    return {"feature_image": feats, "image_raw": feats[:, :3], "image": image}


# ----------------------------------------------------------------------------------------------------------
# losses


def _lpips_input(x: Tensor, size: int | None) -> Tensor:
    if size is None or x.shape[-1] <= size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def reconstruction_losses(d: Distiller, out: dict[str, Tensor], tgt: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-term reconstruction losses (scalars): low-resolution features and raw RGB, final image L1 and LPIPS."""
    L = d.cfg.loss
    terms = {"feature_l1": (out["feature_image"] - tgt["feature_image"]).abs().mean(),
             "raw_l1": (out["image_raw"] - tgt["image_raw"]).abs().mean(),
             "image_l1": (out["image"] - tgt["image"]).abs().mean()}
    if d.lpips is not None:
        terms["image_lpips"] = d.lpips(_lpips_input(out["image"], L.lpips_resolution),
                                       _lpips_input(tgt["image"], L.lpips_resolution)).mean()
    return terms


def weighted_reconstruction(d: Distiller, terms: dict[str, Tensor]) -> Tensor:
    L = d.cfg.loss
    total = L.feature_weight * terms["feature_l1"] + L.raw_weight * terms["raw_l1"] + L.image_weight * terms["image_l1"]
    if "image_lpips" in terms:
        total = total + L.lpips_weight * terms["image_lpips"]
    return total


def lr_factor(cur_nimg: int, total_kimg: float, rampdown: float) -> float:
    """1, then a linear ramp to 0 over the last ``rampdown`` fraction of the run."""
    if rampdown <= 0:
        return 1.0
    left = 1.0 - cur_nimg / max(total_kimg * 1000.0, 1.0)
    return float(min(max(left / rampdown, 0.0), 1.0))


def in_stage2(d: Distiller) -> bool:
    return d.D is not None and d.progress.cur_nimg >= d.cfg.loss.adv_start_kimg * 1000


# ----------------------------------------------------------------------------------------------------------
# one step


def distill_step(d: Distiller) -> dict[str, float]:
    """One optimisation step on a fresh batch (Smain, then in stage 2 Dmain and lazy Dreg); returns mean terms."""
    cfg, L, p = d.cfg, d.cfg.loss, d.progress
    n, micro = cfg.optim.batch // d.world_size, cfg.optim.batch_gpu
    stage2 = in_stage2(d)
    stats: dict[str, list[float]] = {}

    def note(name: str, value: Tensor) -> None:
        stats.setdefault(name, []).append(float(value.detach().mean()))

    ws, c = sample_pairs(d, n, d.gen)
    rounds = list(zip(ws.split(micro), c.split(micro)))
    targets = [teacher_targets(d, w, cc) for w, cc in rounds]

    def phase(module: torch.nn.Module, opt: torch.optim.Optimizer, body: Callable[[int], Tensor]) -> None:
        d.student.requires_grad_(module is d.student)
        if d.D is not None:
            d.D.requires_grad_(module is d.D)
        opt.zero_grad(set_to_none=True)
        for i in range(len(rounds)):
            (body(i) / len(rounds)).backward()
        all_reduce_grads(module, d.world_size)
        sanitize_grads(module)
        opt.step()
        module.requires_grad_(False)

    def s_main(i: int) -> Tensor:
        w, cc = rounds[i]
        out = d.student(w, cc)
        terms = reconstruction_losses(d, out, targets[i])
        for k, v in terms.items():
            note(f"loss/{k}", v)
        loss = weighted_reconstruction(d, terms)
        note("loss/recon", loss)
        note("metric/psnr", psnr(out["image"], targets[i]["image"]))
        if stage2:
            adv = losses.g_nonsaturating(d.D({"image": out["image"], "image_raw": out["image_raw"]}, cc)).mean()
            note("loss/S_adv", adv)
            loss = loss + L.adv_weight * adv
        return loss

    def d_main(i: int) -> Tensor:
        w, cc = rounds[i]
        with torch.no_grad():
            fake = d.student(w, cc)
        fake_logits = d.D({"image": fake["image"], "image_raw": fake["image_raw"]}, cc)
        real_logits = d.D({"image": targets[i]["image"], "image_raw": targets[i]["image_raw"]}, cc)
        note("loss/D_fake", F.softplus(fake_logits))
        note("loss/D_real", F.softplus(-real_logits))
        return losses.d_logistic(real_logits, fake_logits).mean()

    def d_reg(i: int) -> Tensor:
        tgt, cc = targets[i], rounds[i][1]
        img = {"image": tgt["image"].detach().requires_grad_(True),
               "image_raw": tgt["image_raw"].detach().requires_grad_(True)}
        r1 = losses.r1_penalty(d.D(img, cc), [img["image"], img["image_raw"]])
        note("loss/D_r1", r1)
        return (r1 * (L.r1_gamma / 2)).mean() * L.r1_interval

    lr = cfg.optim.lr * lr_factor(p.cur_nimg, cfg.run.kimg, cfg.optim.lr_rampdown)
    for group in d.S_opt.param_groups:
        group["lr"] = lr
    phase(d.student, d.S_opt, s_main)
    if stage2:
        phase(d.D, d.D_opt, d_main)
        if L.r1_gamma > 0 and L.r1_interval > 0 and p.batch_idx % L.r1_interval == 0:
            phase(d.D, d.D_opt, d_reg)

    beta = schedules.ema_beta(cfg.optim.batch, p.cur_nimg, cfg.optim.ema_kimg, cfg.optim.ema_rampup)
    update_ema(d.student_ema, d.student, beta)
    p.cur_nimg += n * d.world_size
    p.batch_idx += 1
    out = {k: float(np.mean(v)) for k, v in stats.items()}
    out.update({"schedule/stage": 2 if stage2 else 1, "schedule/ema_beta": beta, "schedule/lr": lr})
    return out


# ----------------------------------------------------------------------------------------------------------
# snapshots


def save_distill_snapshot(d: Distiller, path: Path) -> None:
    """The teacher file + ``extra['student']`` (EMA, for inference) + ``extra['distill']`` (resume state)."""
    p = d.progress
    state = {
        "student": {k: v.detach().cpu().clone() for k, v in d.student.state_dict().items()},
        "S_opt": d.S_opt.state_dict(),
        "D": {k: v.detach().cpu().clone() for k, v in d.D.state_dict().items()} if d.D is not None else None,
        "D_config": to_dict(d.D.cfg) if d.D is not None else None,
        "D_opt": d.D_opt.state_dict() if d.D_opt is not None else None,
        "progress": dataclasses.asdict(p),
        "rng": rng_state(d.gen),
        "config": to_dict(d.cfg),
    }
    extra = {**d.teacher_snapshot.extra, "student": student_payload(d.student_ema), "distill": state}
    save_snapshot(path, dataclasses.replace(d.teacher_snapshot, extra=extra))


def restore_distill_snapshot(d: Distiller, snap: Snapshot, name: str = "the snapshot") -> None:
    """Continue from a distillation snapshot: student (+ EMA), discriminator, optimisers, counters, RNG."""
    state = snap.extra.get("distill")
    if not isinstance(state, dict) or "student" not in snap.extra:
        raise CheckpointError(f"{name} holds no distillation state (distil from it with --teacher instead)")
    load_state_strict(d.student, state["student"], "student")
    load_state_strict(d.student_ema, snap.extra["student"]["state"], "student (EMA)")
    d.S_opt.load_state_dict(state["S_opt"])
    if d.D is not None:
        if state.get("D") is None:
            raise CheckpointError(f"{name} was distilled without a discriminator; keep loss.adv_weight=0 to resume")
        if from_dict(DiscriminatorConfig, state["D_config"], "D_config") != d.D.cfg:
            raise CheckpointError(f"{name}: its distillation discriminator differs from the configured one "
                                  f"(loss.discriminator changed?)")
        load_state_strict(d.D, state["D"], "distillation D")
        d.D_opt.load_state_dict(state["D_opt"])
    d.progress = Progress(**state["progress"])
    set_rng_state(d.gen, state["rng"])


# ----------------------------------------------------------------------------------------------------------
# the loop


def distill_loop(d: Distiller, run_dir: Path, total_kimg: float, snap_kimg: float, tick_kimg: float,
                 on_tick: Callable[[dict], None] | None = None,
                 on_snapshot: Callable[[Distiller, Path, str], dict] | None = None,
                 deadline: float | None = None) -> int | None:
    """Distil until ``total_kimg``; log every tick to stats.jsonl; every ``snap_kimg`` (and at the end) call
    ``on_snapshot`` (grid, held-out evaluation: returns a record to log) and write a snapshot."""
    stats_path = run_dir / "stats.jsonl"
    replicated = (d.student,) + ((d.D,) if d.D is not None else ())   # identical in every process

    def snapshot(nimg: int) -> None:
        if on_snapshot is not None:
            rec = on_snapshot(d, run_dir, snapshot_tag(nimg))
            if rec:
                append_jsonl(stats_path, {"kimg": d.progress.cur_nimg / 1000, **rec})
        save_distill_snapshot(d, run_dir / snapshot_name(nimg))

    return run_ticks(d.progress, lambda: distill_step(d), stats_path, total_kimg, snap_kimg, tick_kimg, d.rank == 0,
              snapshot, lambda: check_replicas(replicated, d.rank, d.world_size), on_tick, deadline)


def write_config(run_dir: Path, cfg: DistillConfig) -> None:
    (run_dir / "config.yaml").write_text(dump_distill_config(cfg))
