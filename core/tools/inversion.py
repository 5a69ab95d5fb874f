"""Photo-to-latent inversion: W / W+ optimisation with the EG3D-projector recipe, optional camera optimisation, and
optional pivotal tuning of the generator (Roich et al. 2022, "Pivotal Tuning for Latent-based Editing of Real
Images", Sec. 3).

Recipe (oneThousand1000/EG3D-projector, after StyleGAN2's projector, Karras et al. 2020 Sec. 5):

* start from w_avg, the mean of ``w_avg_samples`` mapped random z conditioned on the target camera; w_std is the
  RMS distance of those samples to w_avg;
* W optimises one w broadcast to all ``num_ws`` layers, W+ one w per layer (started at w_avg everywhere);
* Adam (0.9, 0.999); learning rate lr * ramp, ramp = min(1, t / 0.05) * (0.5 - 0.5 cos(pi min(1, (1 - t) / 0.25)))
  with t = step / steps (linear ramp-up over the first 5 %, cosine ramp-down over the last 25 %);
* Gaussian noise added to w with std w_std * 0.05 * max(0, 1 - t / 0.75)^2 (explores early, gone at 75 %);
* loss: LPIPS (VGG16, :mod:`core.metrics.lpips`) + ``mse_weight`` * MSE on images area-downsampled to at most
  ``loss_resolution`` (the projector uses 256), or MSE alone (``loss="mse"``, no ImageNet weights needed).
  The projector's noise-buffer regulariser is not needed: Trident renders with constant noise.

Camera: the 25-float label of the photo (e.g. from EG3D's preprocessing), or a yaw/pitch guess on the model's
look-at orbit; with ``optimize_camera`` yaw and pitch are optimised jointly with the latent (Ko et al. 2023,
"3D GAN Inversion with Pose Optimization"), the camera staying on the look-at orbit at the label's radius and focal.

Pivotal tuning (PTI, Roich et al. 2022): afterwards the generator's weights are fine-tuned for ``pti_steps`` steps
at lr 3e-4 with the latent fixed (MSE + LPIPS, weights 1 and 1; stop early when LPIPS < 0.06), in a copy of the
generator: the model passed in is never modified.

Example::

    result = invert(model, photo_to_tensor(load_photo("me.jpg", model.img_resolution)), model.camera_label(),
                    InversionSpec(space="w+", steps=500, loss="lpips"), progress=print)
    save_inversion(result, model, "out/me")     # latent.npy, camera.npy, compare.png, orbit.mp4 (+ network.pkl)
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..cameras import Camera, focal_to_fov
from ..defaults import INVERT_LOSS, INVERT_STEPS
from ..errors import TridentError
from ..files.atomic import atomic_folder
from ..files.image_io import to_uint8
from ..files.latent_files import save_camera, save_latent
from ..metrics.fidelity import psnr
from ..model import EXTRA_BRANCHES, Model
from ..triplane import RenderOptions
from .progress import CancelFlag, ProgressFn, check_cancel, report
from .video import label_panel

__all__ = ["InversionError", "InversionSpec", "InversionResult", "invert", "save_inversion", "orbit_from_label",
           "label_from_orbit"]


OUTPUT_NAMES = ("latent.npy", "camera.npy", "compare.png", "orbit.mp4", "inversion.json", "network.pkl")


class InversionError(TridentError):
    """Inversion settings or inputs that cannot work (one line)."""


@dataclass(frozen=True)
class InversionSpec:
    space: str = "w+"                   # "w" or "w+"
    steps: int = INVERT_STEPS
    loss: str = INVERT_LOSS             # "lpips" (LPIPS + mse_weight * MSE) or "mse"
    lpips_net: str = "vgg"
    mse_weight: float = 1.0
    lr: float = 0.01                    # initial learning rate (EG3D-projector)
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    noise_factor: float = 0.05          # initial w noise, in units of w_std
    noise_ramp: float = 0.75
    w_avg_samples: int = 600
    optimize_camera: bool = False
    camera_lr: float = 0.002            # for yaw / pitch (radians)
    branch: str = "sr2d"
    nrr: int | None = None              # neural rendering resolution while optimising (default: the model's)
    samples: tuple[int, int] | None = None
    loss_resolution: int = 256
    pti_steps: int = 0                  # pivotal tuning steps after the latent optimisation (0: off)
    pti_lr: float = 3e-4
    pti_lpips_threshold: float = 0.06
    seed: int = 0                       # w_avg samples and w noise
    preview_every: int = 10             # progress reports carry a preview image every this many steps


@dataclass
class InversionResult:
    ws: Tensor                          # [1, num_ws, w_dim]
    camera: Tensor                      # [1, 25], the final camera (optimised when asked)
    target: Tensor                      # [1, 3, H, W] in [-1, 1], as compared
    image: Tensor                       # [1, 3, H, W], the latent rendered by the original generator
    psnr: float                         # of ``image`` against ``target`` (dB, images in [-1, 1] as [0, 1])
    spec: InversionSpec
    lpips: float | None = None
    tuned: Model | None = None          # PTI: the model with the tuned generator
    tuned_image: Tensor | None = None
    tuned_psnr: float | None = None
    tuned_lpips: float | None = None
    steps_done: int = 0
    pti_steps_done: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)   # per step: {"step", "loss", "psnr"}


def _psnr(a: Tensor, b: Tensor) -> float:
    """PSNR of the unclamped render against the photo (:func:`core.metrics.fidelity.psnr`), as a number."""
    return float(psnr(a.detach(), b.detach(), clamp=False).mean())


# ----------------------------------------------------------------------------------------------------------
# cameras on the look-at orbit


def orbit_from_label(label: Tensor) -> tuple[float, float, float, float]:
    """(yaw offset, pitch offset, radius, focal) of a camera label, read as a look-at orbit camera (offsets from
    the frontal view yaw = pitch = pi/2; inverse of ``cameras.orbit_origins``)."""
    c = label.detach().double().reshape(-1)
    o = c[:16].reshape(4, 4)[:3, 3]
    r = float(o.norm())
    cos_phi = float((o[1] / r).clamp(-1, 1))
    pitch = math.pi * (1 - cos_phi) / 2
    yaw = math.pi - math.atan2(float(o[2]), float(o[0])) - math.pi / 2
    yaw = math.pi - (math.pi - yaw) % (2 * math.pi)           # offset wrapped to (-pi, pi]
    return yaw, pitch - math.pi / 2, r, float(c[16])


def label_from_orbit(yaw: Tensor, pitch: Tensor, pivot: tuple[float, float, float], radius: float,
                     focal: float) -> Tensor:
    """Differentiable in yaw / pitch (offsets from frontal, 0-d tensors) -> camera label [1, 25]."""
    cam = Camera.orbit(yaw.reshape(1) + math.pi / 2, pitch.reshape(1) + math.pi / 2, pivot, radius, focal=focal,
                       device=yaw.device)
    return cam.to_label()


# ----------------------------------------------------------------------------------------------------------
# optimisation


def _validate(model: Model, target: Tensor, camera: Tensor, spec: InversionSpec) -> None:
    def check(cond: bool, msg: str) -> None:
        if not cond:
            raise InversionError(msg)

    check(spec.space in ("w", "w+"), f"space must be w or w+, got {spec.space!r}")
    check(spec.loss in ("lpips", "mse"), f"loss must be lpips or mse, got {spec.loss!r}")
    check(isinstance(spec.steps, int) and 0 <= spec.steps <= 100_000, f"steps must be 0..100000, got {spec.steps}")
    check(isinstance(spec.pti_steps, int) and 0 <= spec.pti_steps <= 100_000,
          f"PTI steps must be 0..100000, got {spec.pti_steps}")
    check(spec.lr > 0 and spec.pti_lr > 0 and spec.camera_lr > 0, "learning rates must be positive")
    check(spec.w_avg_samples >= 1, "w_avg_samples must be at least 1")
    check(spec.loss_resolution >= 16, "loss_resolution must be at least 16")
    check(spec.nrr is None or 8 <= spec.nrr <= 2048, f"neural rendering resolution must be 8..2048, got {spec.nrr}")
    if spec.samples is not None:
        s, i = spec.samples
        check(s >= 2 and i >= 0 and (i == 0 or s >= 4),
              "samples need COARSE >= 2 (>= 4 with IMPORTANCE > 0) and IMPORTANCE >= 0")
    try:
        model.check_branch(spec.branch)
    except ValueError as e:
        raise InversionError(str(e)) from None
    check(spec.pti_steps == 0 or spec.branch != "student",
          "pivotal tuning tunes the tri-plane generator; invert the student branch without PTI")
    check(target.ndim == 4 and target.shape[0] == 1 and target.shape[1] == 3,
          f"target must be [1, 3, H, W], got {tuple(target.shape)}")
    check(bool(torch.isfinite(target).all()), "target image contains NaN or infinite values")
    check(camera.shape[-1] == 25 and camera.numel() == 25, f"camera label must have 25 floats, got {camera.numel()}")


def _lr_ramp(t: float, spec: InversionSpec) -> float:
    ramp = min(1.0, (1.0 - t) / spec.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return ramp * min(1.0, t / spec.lr_rampup) if spec.lr_rampup > 0 else ramp


def _fit(x: Tensor, size: int) -> Tensor:
    """Area-downsample [B, 3, H, W] to at most ``size`` pixels per side."""
    return F.interpolate(x, size=(size, size), mode="area") if x.shape[-1] > size else x


class _Loss:
    def __init__(self, spec: InversionSpec, target: Tensor, lpips_module):
        self.spec = spec
        self.size = min(spec.loss_resolution, target.shape[-1])
        self.target = _fit(target, self.size)
        self.lpips = lpips_module

    def __call__(self, image: Tensor, mse_weight: float | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        img = _fit(image, self.size)
        mse = F.mse_loss(img, self.target)
        if self.lpips is None:
            return mse, mse, None
        dist = self.lpips(img, self.target).mean()
        return dist + (self.spec.mse_weight if mse_weight is None else mse_weight) * mse, mse, dist


def _render(model: Model, branch: str, ws: Tensor, c: Tensor, opts: RenderOptions) -> Tensor:
    """The branch's image (with autograd unless the caller disabled it)."""
    return model.render(branch, ws, c, opts)["image"]


def invert(model: Model, target: Tensor, camera: Tensor, spec: InversionSpec = InversionSpec(),
           progress: ProgressFn | None = None, cancel: CancelFlag = None, lpips=None) -> InversionResult:
    """Find ws (and optionally the camera, and with PTI the generator weights) that reproduce ``target``.

    Args:
        model: a loaded model (not modified).
        target: the photo, [1, 3, H, W] in [-1, 1]; resized (area / bicubic) to the branch's output size if needed.
        camera: the photo's camera label [1, 25] (the starting point when ``spec.optimize_camera``).
        spec: settings (:class:`InversionSpec`).
        progress: receives ``Progress(stage="w"|"w+"|"pti", done, total, preview, values={"loss", "psnr"})``.
        cancel: ``threading.Event`` or callable; raises :class:`~core.tools.progress.Cancelled` at the next step.
        lpips: an LPIPS module to use (default: ``core.metrics.lpips.load_lpips(spec.lpips_net)``, which raises
            :class:`~core.metrics.lpips.LPIPSTrunkMissingError` without ImageNet weights; ``loss="mse"`` needs none).
    """
    t_start = time.perf_counter()
    device = model.device
    target = target.to(device).float()
    camera = camera.to(device).float()
    _validate(model, target, camera, spec)
    camera = camera.reshape(1, 25)
    if spec.loss != "lpips":
        lpips = None
    elif lpips is None:
        from ..metrics.lpips import load_lpips
        lpips = load_lpips(spec.lpips_net, device)
    opts = RenderOptions(resolution=spec.nrr, deterministic=True,
                         depth_resolution=spec.samples[0] if spec.samples else None,
                         depth_resolution_importance=spec.samples[1] if spec.samples else None)
    gen = torch.Generator(device="cpu").manual_seed(spec.seed)

    # w_avg / w_std from random z mapped with the target camera (projector: 600 samples)
    z = torch.randn(spec.w_avg_samples, model.z_dim, generator=gen).to(device)
    w_samples = model.mapping(z, camera.expand(spec.w_avg_samples, -1))[:, :1]          # [N, 1, w_dim]
    w_avg = w_samples.mean(0, keepdim=True)                                              # [1, 1, w_dim]
    w_std = float(((w_samples - w_avg).square().sum() / spec.w_avg_samples).sqrt())
    w_opt = (w_avg if spec.space == "w" else w_avg.repeat(1, model.num_ws, 1)).clone().requires_grad_(True)

    with torch.no_grad():
        first = _render(model, spec.branch, w_avg.repeat(1, model.num_ws, 1), camera, opts)
    if first.shape[-2:] != target.shape[-2:]:
        target = F.interpolate(target, size=first.shape[-2:], mode="area" if target.shape[-1] > first.shape[-1]
                               else "bicubic", align_corners=None).clamp(-1, 1)
    loss_fn = _Loss(spec, target, lpips)

    params: list[dict] = [{"params": [w_opt], "lr": spec.lr, "base_lr": spec.lr}]
    if spec.optimize_camera:
        yaw0, pitch0, radius, focal = orbit_from_label(camera)
        yaw = torch.tensor(yaw0, device=device, requires_grad=True)
        pitch = torch.tensor(pitch0, device=device, requires_grad=True)
        params.append({"params": [yaw, pitch], "lr": spec.camera_lr, "base_lr": spec.camera_lr})

        def current_camera() -> Tensor:
            return label_from_orbit(yaw, pitch, model.pivot, radius, focal)
    else:
        def current_camera() -> Tensor:
            return camera
    optimizer = torch.optim.Adam(params, betas=(0.9, 0.999))
    history: list[dict] = []
    stage = spec.space
    for step in range(spec.steps):
        check_cancel(cancel)
        t = step / spec.steps
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * _lr_ramp(t, spec)
        noise_scale = w_std * spec.noise_factor * max(0.0, 1.0 - t / spec.noise_ramp) ** 2
        w = w_opt + torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
        ws = w.expand(1, model.num_ws, -1) if spec.space == "w" else w
        with torch.enable_grad():
            image = _render(model, spec.branch, ws, current_camera(), opts)
            loss, mse, dist = loss_fn(image)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        rec = {"step": step + 1, "loss": float(loss.detach()), "psnr": _psnr(image, target)}
        if dist is not None:
            rec["lpips"] = float(dist.detach())
        history.append(rec)
        show = spec.preview_every > 0 and ((step + 1) % spec.preview_every == 0 or step + 1 == spec.steps)
        report(progress, stage, step + 1, spec.steps, to_uint8(image[0]) if show else None,
               **{k: v for k, v in rec.items() if k != "step"})

    ws_final = (w_opt.expand(1, model.num_ws, -1) if spec.space == "w" else w_opt).detach().clone()
    with torch.no_grad():
        cam_final = current_camera().detach().clone()
        image = _render(model, spec.branch, ws_final, cam_final, opts)
        final_lpips = float(lpips(_fit(image, loss_fn.size), loss_fn.target).mean()) if lpips is not None else None
    result = InversionResult(ws=ws_final, camera=cam_final, target=target, image=image, psnr=_psnr(image, target),
                             lpips=final_lpips, spec=spec, steps_done=spec.steps, history=history)
    if spec.pti_steps > 0:
        _pivotal_tuning(model, result, opts, loss_fn, progress, cancel)
    result.seconds = time.perf_counter() - t_start
    return result


def _pivotal_tuning(model: Model, result: InversionResult, opts: RenderOptions, loss_fn: _Loss,
                    progress: ProgressFn | None, cancel: CancelFlag) -> None:
    """PTI: fine-tune a copy of the generator with the pivot ws fixed (MSE + LPIPS, weights 1 and 1)."""
    spec = result.spec
    G = copy.deepcopy(model.G)
    G.requires_grad_(True)
    tuned = dataclasses.replace(model, G=G)
    trainable = [p for n, p in G.named_parameters() if not n.startswith("backbone.mapping.")]
    optimizer = torch.optim.Adam(trainable, lr=spec.pti_lr, betas=(0.9, 0.999))
    ws, cam = result.ws, result.camera
    done = 0
    for step in range(spec.pti_steps):
        check_cancel(cancel)
        with torch.enable_grad():
            image = _render(tuned, spec.branch, ws, cam, opts)
            loss, mse, dist = loss_fn(image, mse_weight=1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        done = step + 1
        rec = {"loss": float(loss.detach()), "psnr": _psnr(image, result.target)}
        if dist is not None:
            rec["lpips"] = float(dist.detach())
        show = spec.preview_every > 0 and (done % spec.preview_every == 0 or done == spec.pti_steps)
        report(progress, "pti", done, spec.pti_steps, to_uint8(image[0]) if show else None, **rec)
        if dist is not None and rec["lpips"] < spec.pti_lpips_threshold:
            break
    G.requires_grad_(False).eval()
    with torch.no_grad():
        image = _render(tuned, spec.branch, ws, cam, opts)
        if loss_fn.lpips is not None:
            result.tuned_lpips = float(loss_fn.lpips(_fit(image, loss_fn.size), loss_fn.target).mean())
    result.tuned, result.tuned_image, result.tuned_psnr = tuned, image, _psnr(image, result.target)
    result.pti_steps_done = done


# ----------------------------------------------------------------------------------------------------------
# outputs


def compare_image(result: InversionResult) -> np.ndarray:
    """photo | inversion | (PTI), labelled, uint8 [H, k*W, 3]."""
    panels = [label_panel(to_uint8(result.target[0]), "photo"),
              label_panel(to_uint8(result.image[0]), f"{result.spec.space} {result.psnr:.1f} dB")]
    if result.tuned_image is not None:
        panels.append(label_panel(to_uint8(result.tuned_image[0]), f"PTI {result.tuned_psnr:.1f} dB"))
    return np.concatenate(panels, axis=1)


def save_inversion(result: InversionResult, model: Model, outdir: str | os.PathLike, video_frames: int = 60, video_fps: float = 30,
                   video_nrr: int | None = None, progress: ProgressFn | None = None,
                   cancel: CancelFlag = None) -> list[Path]:
    """Write ``latent.npy`` [num_ws, w_dim], ``camera.npy`` [25], ``compare.png``, ``inversion.json``, with PTI the
    tuned Trident model ``network.pkl``, and (``video_frames`` > 0) ``orbit.mp4``: a turntable around the photo's
    camera, rendered by the tuned model when there is one, else by ``model`` (the one inverted). All files appear
    together or not at all (staged, then moved into ``outdir``); outputs of an earlier run in the same folder that
    this run does not write (e.g. its ``network.pkl`` when this run has no PTI) are removed, so the folder never
    mixes two inversions."""
    from ..files.checkpoint import save_snapshot
    from .video import VideoSpec, render_video

    outdir = Path(outdir)
    names = []
    with atomic_folder(outdir) as stage:
        save_latent(stage / "latent.npy", result.ws)
        save_camera(stage / "camera.npy", result.camera)
        Image.fromarray(compare_image(result)).save(stage / "compare.png")
        if result.tuned is not None:
            snap = result.tuned.snapshot
            keep = {k: v for k, v in snap.extra.items() if k in EXTRA_BRANCHES}
            keep["inversion"] = {"psnr": result.tuned_psnr, "pti_steps": result.pti_steps_done}
            tuned_snap = dataclasses.replace(snap, G_ema={k: v.detach().cpu() for k, v in result.tuned.G.state_dict().items()},
                                             G=None, discriminator=None, D=None, patch_discriminator=None,
                                             D_patch=None, extra=keep)
            save_snapshot(stage / "network.pkl", tuned_snap)
        check_cancel(cancel)
        if video_frames > 0:
            yaw, pitch, _, focal = orbit_from_label(result.camera)
            spec = VideoSpec(latents=(result.ws,), mode="turntable", branch=result.spec.branch, frames=video_frames,
                             fps=video_fps, nrr=video_nrr, center_yaw=yaw, center_pitch=pitch,
                             fov_deg=focal_to_fov(focal), samples=result.spec.samples)
            render_video(result.tuned or model, spec, stage / "orbit.mp4", progress, cancel)
        summary = {
            "space": result.spec.space, "steps": result.steps_done, "loss": result.spec.loss,
            "psnr": result.psnr, "lpips": result.lpips, "pti_steps": result.pti_steps_done,
            "pti_psnr": result.tuned_psnr, "pti_lpips": result.tuned_lpips, "seconds": result.seconds,
            "camera": result.camera.reshape(-1).tolist(), "spec": dataclasses.asdict(result.spec),
        }
        (stage / "inversion.json").write_text(json.dumps(summary, indent=2) + "\n")
        names = sorted(p.name for p in stage.iterdir())
        check_cancel(cancel)
    for stale in set(OUTPUT_NAMES) - set(names):
        (outdir / stale).unlink(missing_ok=True)
    return [outdir / n for n in names]
