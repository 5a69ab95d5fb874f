"""Photo-to-latent inversion: W / W+ optimisation with the EG3D-projector recipe, optional camera optimisation, and
optional pivotal tuning of the generator (Roich et al. 2022, "Pivotal Tuning for Latent-based Editing of Real
Images", Sec. 3).

Recipe (oneThousand1000/EG3D-projector, after StyleGAN2's projector, Karras et al. 2020 Sec. 5):

* start from w_avg, the mean of ``w_avg_samples`` mapped random z conditioned on the (first) target camera; w_std
  is the RMS distance of those samples to w_avg;
* W optimises one w broadcast to all ``num_ws`` layers, W+ one w per layer (started at w_avg everywhere);
* Adam (0.9, 0.999); learning rate lr * ramp, ramp = min(1, t / rampup) * (0.5 - 0.5 cos(pi min(1, (1 - t) / 0.25)))
  with t = step / steps (linear ramp-up, cosine ramp-down over the last 25 %);
* Gaussian noise added to w with std w_std * noise * max(0, 1 - t / 0.75)^2 (explores early, gone at 75 %);
* loss: LPIPS (VGG16, :mod:`core.metrics.lpips`) + ``mse_weight`` * MSE on images area-downsampled to at most
  ``loss_resolution`` (the projector uses 256), or MSE alone (``loss="mse"``, no ImageNet weights needed).
  The projector's noise-buffer regulariser is not needed: Trident renders with constant noise.
* lr, ramp-up and noise follow the loss (:data:`RECIPES`): LPIPS the projector's 0.01 / 5 % / 0.05; MSE 0.05 / none
  / none (measured: the projector's noise and small step keep an MSE inversion 7-9 dB lower after 300 steps).

Fast stage (``fast_steps``): with a distilled student in the model (:mod:`core.student`, Shahbazi et al. 2023), the
latent is first optimised through the student, whose image costs one CNN pass instead of ray marching, then refined
for ``steps`` through ``branch`` (without exploration noise: it starts from the fast result).

Several photos of one person: ``target`` [N, 3, H, W] with ``camera`` [N, 25] finds one latent with one camera per
photo (each optimised when asked); the loss is the mean over the photos, and PTI tunes on all of them.

Camera: the 25-float label of the photo (e.g. from EG3D's preprocessing or :func:`aligned_start`), or a yaw/pitch
guess on the model's look-at orbit; with ``optimize_camera`` yaw and pitch are optimised jointly with the latent (Ko
et al. 2023, "3D GAN Inversion with Pose Optimization"), the camera staying on the look-at orbit at the label's
radius and focal.

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
from ..files.image_io import photo_to_tensor, to_uint8
from ..files.latent_files import save_camera, save_latent
from ..metrics.fidelity import psnr
from ..model import EXTRA_BRANCHES, Model
from ..triplane import RenderOptions
from .progress import CancelFlag, ProgressFn, check_cancel, report
from .video import label_panel

__all__ = ["InversionError", "InversionSpec", "InversionResult", "invert", "save_inversion", "orbit_from_label",
           "label_from_orbit", "aligned_start"]


OUTPUT_NAMES = ("latent.npy", "camera.npy", "cameras.npy", "compare.png", "orbit.mp4", "inversion.json",
                "network.pkl")


class InversionError(TridentError):
    """Inversion settings or inputs that cannot work (one line)."""


# (lr, lr_rampup, noise_factor) per loss. LPIPS: the EG3D-projector's values (for real photos). MSE: a larger step,
# no ramp-up and no latent noise: on the EG3D fixture (seed 5, psi 0.7, W+, 300 steps, tests/core/test_inversion.py)
# the projector's values reach 24.2 dB, without noise 26.5 dB, without noise at lr 0.05 30.9 dB, and without the
# ramp-up too 33.2 dB (docs/photos.md, "Inversion quality").
RECIPES = {"lpips": (0.01, 0.05, 0.05), "mse": (0.05, 0.0, 0.0)}


@dataclass(frozen=True)
class InversionSpec:
    space: str = "w+"                   # "w" or "w+"
    steps: int = INVERT_STEPS
    loss: str = INVERT_LOSS             # "lpips" (LPIPS + mse_weight * MSE) or "mse"
    lpips_net: str = "vgg"
    mse_weight: float = 1.0
    lr: float | None = None             # initial learning rate       } None: the loss's recipe
    lr_rampup: float | None = None      # fraction of steps ramping up } (:data:`RECIPES`), filled in on
    lr_rampdown: float = 0.25           #                                 construction
    noise_factor: float | None = None   # initial w noise, in units of w_std
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
    fast_steps: int = 0                 # steps through the student (no ray marching) before ``branch`` (0: off)

    def __post_init__(self) -> None:
        for name, value in zip(("lr", "lr_rampup", "noise_factor"), RECIPES.get(self.loss, RECIPES["lpips"])):
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)


@dataclass
class InversionResult:
    ws: Tensor                          # [1, num_ws, w_dim]
    camera: Tensor                      # [N, 25], the photos' final cameras (optimised when asked)
    target: Tensor                      # [N, 3, H, W] in [-1, 1], as compared
    image: Tensor                       # [N, 3, H, W], the latent rendered by the original generator
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
    history: list[dict] = field(default_factory=list)   # per step: {"step", "stage", "loss", "psnr", "seconds"}
    psnrs: list[float] = field(default_factory=list)    # per photo


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


def aligned_start(model: Model, crop: np.ndarray, label: np.ndarray, fov_deg: float) -> tuple[Tensor, Tensor]:
    """An aligned photo's inversion start: (the EG3D crop resized to the model's resolution [1, 3, R, R] in [-1, 1],
    the estimated camera [1, 25] as the model's look-at orbit camera at the estimate's yaw / pitch offsets and
    ``fov_deg``). The estimate's roll is dropped: EG3D's crop does not rotate and the orbit has no roll."""
    size = model.img_resolution
    img = Image.fromarray(np.asarray(crop, dtype=np.uint8))
    if img.size != (size, size):
        img = img.resize((size, size), Image.LANCZOS)
    yaw, pitch, _, _ = orbit_from_label(torch.as_tensor(np.asarray(label, dtype=np.float32)))
    return photo_to_tensor(np.asarray(img), model.device), model.camera_label(yaw, pitch, fov_deg=fov_deg)


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
    check(target.ndim == 4 and target.shape[0] >= 1 and target.shape[1] == 3,
          f"target must be [N, 3, H, W], got {tuple(target.shape)}")
    check(bool(torch.isfinite(target).all()), "target image contains NaN or infinite values")
    check(camera.shape[-1] == 25 and camera.numel() == 25 * target.shape[0],
          f"camera labels must have 25 floats per photo, got {camera.numel()} for {target.shape[0]} photo(s)")
    check(isinstance(spec.fast_steps, int) and 0 <= spec.fast_steps <= 100_000,
          f"fast steps must be 0..100000, got {spec.fast_steps}")
    if spec.fast_steps > 0:
        check(model.student is not None, "the fast stage optimises through the student, and this model has none "
                                         f"(branches: {', '.join(model.branches)})")
        check(spec.branch != "student", "the fast stage already is the student; refine with sr2d or direct3d")


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
        self.full_target = target
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


class _Cameras:
    """The photos' cameras [N, 25]: fixed labels, or (``optimize``) per-photo yaw / pitch on the look-at orbit at
    each label's radius and focal, optimised with the latent."""

    def __init__(self, model: Model, labels: Tensor, optimize: bool):
        self.labels, self.pivot = labels, model.pivot
        self.params: list[Tensor] = []
        self.orbits = [orbit_from_label(label) for label in labels] if optimize else []
        for yaw0, pitch0, _, _ in self.orbits:
            self.params += [torch.tensor(yaw0, device=labels.device, requires_grad=True),
                            torch.tensor(pitch0, device=labels.device, requires_grad=True)]

    def degrees(self) -> dict[str, float]:
        """The optimised cameras as orbit offsets in degrees (``yaw_deg0``, ``pitch_deg0``, ... per photo; empty when
        the cameras are fixed), for progress reports."""
        return {f"{k}_deg{i // 2}": math.degrees(float(p.detach())) for i, (k, p) in
                enumerate(zip(("yaw", "pitch") * len(self.orbits), self.params))}

    def __call__(self) -> Tensor:
        if not self.orbits:
            return self.labels
        return torch.cat([label_from_orbit(self.params[2 * i], self.params[2 * i + 1], self.pivot, r, f)
                          for i, (_, _, r, f) in enumerate(self.orbits)])


def _resize_to(target: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    mode = "area" if target.shape[-1] > size[-1] else "bicubic"
    return F.interpolate(target, size=size, mode=mode, align_corners=None).clamp(-1, 1)


def _start_latent(model: Model, camera: Tensor, spec: InversionSpec, gen: torch.Generator) -> tuple[Tensor, float]:
    """(w_avg [1, 1, w_dim], w_std): the mean of ``w_avg_samples`` random z mapped with the first photo's camera and
    the RMS distance of those samples to it (EG3D-projector)."""
    z = torch.randn(spec.w_avg_samples, model.z_dim, generator=gen).to(camera.device)
    w_samples = model.mapping(z, camera[:1].expand(spec.w_avg_samples, -1))[:, :1]          # [S, 1, w_dim]
    w_avg = w_samples.mean(0, keepdim=True)
    return w_avg, float(((w_samples - w_avg).square().sum() / spec.w_avg_samples).sqrt())


def _optimise(model: Model, branch: str, stage: str, steps: int, w_opt: Tensor, cameras: _Cameras,
              loss_fn: "_Loss", spec: InversionSpec, opts: RenderOptions, noise: tuple[float, torch.Generator],
              history: list[dict], t_start: float, progress: ProgressFn | None, cancel: CancelFlag) -> Tensor:
    """``steps`` Adam steps on ``w_opt`` (and the cameras) through ``branch``; returns the last image."""
    n = cameras.labels.shape[0]
    params: list[dict] = [{"params": [w_opt], "lr": spec.lr, "base_lr": spec.lr}]
    if cameras.params:
        params.append({"params": cameras.params, "lr": spec.camera_lr, "base_lr": spec.camera_lr})
    optimizer = torch.optim.Adam(params, betas=(0.9, 0.999))
    w_std, gen = noise
    image = None
    for step in range(steps):
        check_cancel(cancel)
        t = step / steps
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * _lr_ramp(t, spec)
        noise_scale = w_std * spec.noise_factor * max(0.0, 1.0 - t / spec.noise_ramp) ** 2
        w = w_opt + torch.randn(w_opt.shape, generator=gen).to(w_opt.device) * noise_scale if noise_scale else w_opt
        ws = w.expand(n, model.num_ws, -1)
        with torch.enable_grad():
            image = _render(model, branch, ws, cameras(), opts)
            loss, mse, dist = loss_fn(image)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        rec = {"step": len(history) + 1, "stage": stage, "loss": float(loss.detach()),
               "psnr": _psnr(image, loss_fn.full_target), "seconds": time.perf_counter() - t_start}
        if dist is not None:
            rec["lpips"] = float(dist.detach())
        history.append(rec)
        show = spec.preview_every > 0 and ((step + 1) % spec.preview_every == 0 or step + 1 == steps)
        report(progress, stage, step + 1, steps, _preview(image) if show else None,
               **{k: v for k, v in rec.items() if k in ("loss", "psnr", "lpips")}, **cameras.degrees())
    return image


def _preview(image: Tensor) -> np.ndarray:
    """uint8 [H, N*W, 3]: the photos' renders side by side."""
    return np.concatenate([to_uint8(im) for im in image], axis=1)


def invert(model: Model, target: Tensor, camera: Tensor, spec: InversionSpec = InversionSpec(),
           progress: ProgressFn | None = None, cancel: CancelFlag = None, lpips=None) -> InversionResult:
    """Find ws (and optionally the cameras, and with PTI the generator weights) that reproduce ``target``.

    Args:
        model: a loaded model (not modified).
        target: the photo(s), [N, 3, H, W] in [-1, 1]: N photos of one person share one latent, each with its own
            camera; resized (area / bicubic) to the branch's output size if needed.
        camera: the photos' camera labels [N, 25] (the starting points when ``spec.optimize_camera``).
        spec: settings (:class:`InversionSpec`). With ``fast_steps`` > 0 the latent is first optimised through the
            model's student (no ray marching), then refined through ``spec.branch``.
        progress: receives ``Progress(stage="fast"|"w"|"w+"|"pti", done, total, preview, values={"loss", "psnr"})``.
        cancel: ``threading.Event`` or callable; raises :class:`~core.tools.progress.Cancelled` at the next step.
        lpips: an LPIPS module to use (default: ``core.metrics.lpips.load_lpips(spec.lpips_net)``, which raises
            :class:`~core.metrics.lpips.LPIPSTrunkMissingError` without ImageNet weights; ``loss="mse"`` needs none).
    """
    t_start = time.perf_counter()
    device = model.device
    target = target.to(device).float()
    camera = camera.to(device).float()
    _validate(model, target, camera, spec)
    camera = camera.reshape(-1, 25)
    if spec.loss != "lpips":
        lpips = None
    elif lpips is None:
        from ..metrics.lpips import load_lpips
        lpips = load_lpips(spec.lpips_net, device)
    opts = RenderOptions(resolution=spec.nrr, deterministic=True,
                         depth_resolution=spec.samples[0] if spec.samples else None,
                         depth_resolution_importance=spec.samples[1] if spec.samples else None)
    gen = torch.Generator(device="cpu").manual_seed(spec.seed)
    w_avg, w_std = _start_latent(model, camera, spec, gen)
    w_opt = (w_avg if spec.space == "w" else w_avg.repeat(1, model.num_ws, 1)).clone().requires_grad_(True)
    cameras = _Cameras(model, camera, spec.optimize_camera)
    history: list[dict] = []

    def loss_for(branch: str) -> _Loss:
        with torch.no_grad():
            first = _render(model, branch, w_avg.expand(1, model.num_ws, -1), camera[:1], opts)
        return _Loss(spec, _resize_to(target, first.shape[-2:]), lpips)

    if spec.fast_steps > 0:
        _optimise(model, "student", "fast", spec.fast_steps, w_opt, cameras, loss_for("student"), spec, opts,
                  (w_std, gen), history, t_start, progress, cancel)
        w_std = 0.0                         # the refinement starts from the fast result: no exploration noise
    loss_fn = loss_for(spec.branch)
    _optimise(model, spec.branch, spec.space, spec.steps, w_opt, cameras, loss_fn, spec, opts, (w_std, gen),
              history, t_start, progress, cancel)

    ws_final = w_opt.detach().expand(1, model.num_ws, -1).clone()
    n = camera.shape[0]
    with torch.no_grad():
        cam_final = cameras().detach().clone()
        image = _render(model, spec.branch, ws_final.expand(n, -1, -1), cam_final, opts)
        final_lpips = float(lpips(_fit(image, loss_fn.size), loss_fn.target).mean()) if lpips is not None else None
    result = InversionResult(ws=ws_final, camera=cam_final, target=loss_fn.full_target, image=image,
                             psnr=_psnr(image, loss_fn.full_target), lpips=final_lpips, spec=spec,
                             steps_done=spec.steps, history=history,
                             psnrs=[_psnr(image[i:i + 1], loss_fn.full_target[i:i + 1]) for i in range(n)])
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
    cam = result.camera
    ws = result.ws.expand(cam.shape[0], -1, -1)
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
        report(progress, "pti", done, spec.pti_steps, _preview(image) if show else None, **rec)
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
    """photo | inversion | (PTI), labelled, one row per photo, uint8 [N*H, k*W, 3]."""
    rows = []
    for i in range(result.target.shape[0]):
        one = _psnr(result.image[i:i + 1], result.target[i:i + 1])
        panels = [label_panel(to_uint8(result.target[i]), "photo" if len(result.target) == 1 else f"photo {i + 1}"),
                  label_panel(to_uint8(result.image[i]), f"{result.spec.space} {one:.1f} dB")]
        if result.tuned_image is not None:
            tuned = _psnr(result.tuned_image[i:i + 1], result.target[i:i + 1])
            panels.append(label_panel(to_uint8(result.tuned_image[i]), f"PTI {tuned:.1f} dB"))
        rows.append(np.concatenate(panels, axis=1))
    return np.concatenate(rows, axis=0)


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
        save_camera(stage / "camera.npy", result.camera[:1])
        if result.camera.shape[0] > 1:                       # several photos: every photo's camera, [N, 25]
            np.save(stage / "cameras.npy", result.camera.detach().float().cpu().numpy())
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
            yaw, pitch, _, focal = orbit_from_label(result.camera[0])
            spec = VideoSpec(latents=(result.ws,), mode="turntable", branch=result.spec.branch, frames=video_frames,
                             fps=video_fps, nrr=video_nrr, center_yaw=yaw, center_pitch=pitch,
                             fov_deg=focal_to_fov(focal), samples=result.spec.samples)
            render_video(result.tuned or model, spec, stage / "orbit.mp4", progress, cancel)
        summary = {
            "space": result.spec.space, "steps": result.steps_done, "loss": result.spec.loss,
            "psnr": result.psnr, "lpips": result.lpips, "pti_steps": result.pti_steps_done,
            "pti_psnr": result.tuned_psnr, "pti_lpips": result.tuned_lpips, "seconds": result.seconds,
            "camera": result.camera[0].tolist(), "spec": dataclasses.asdict(result.spec),
            "photos": [{"psnr": p, "camera": c.tolist()} for p, c in zip(result.psnrs, result.camera)],
            "fast_steps": result.spec.fast_steps,
        }
        (stage / "inversion.json").write_text(json.dumps(summary, indent=2) + "\n")
        names = sorted(p.name for p in stage.iterdir())
        check_cancel(cancel)
    for stale in set(OUTPUT_NAMES) - set(names):
        (outdir / stale).unlink(missing_ok=True)
    return [outdir / n for n in names]
