"""``python -m core samples``: images (and arrays) for seeds, following EG3D's ``gen_samples.py`` conventions.

z = RandomState(seed).randn(z_dim); the mapping is conditioned on the frontal camera; the render camera is the
look-at orbit at yaw pi/2 + Y, pitch pi/2 + P around the model's ``avg_camera_pivot`` at ``avg_camera_radius``.
With ``--latent DIR/latent.npy`` (written by ``invert``) that latent is rendered instead, from ``--camera
DIR/camera.npy`` when given (else from --yaw/--pitch), to ``latent.png``. With ``--session F.json`` exactly what
the session shows (latent, edits, camera, render options) is rendered for each of its branches, to
``F_<branch>.png``; a session saved with another version of the model file is rendered with a warning.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..conventions import DEFAULT_FOV_DEG
from ..defaults import DETERMINISTIC
from ..files.image_io import to_uint8
from ..model import BRANCHES, BranchError, load_model
from ..triplane import RenderOptions
from .angle_args import add_angle_args, angles_from_args
from .common import MAX_DEPTH_SAMPLES, MAX_NRR, UsageError, bounded_int, finite_float, resolve_device
from .latent_args import add_latent_args, camera_from_args, latents_from_args
from .precision_args import add_precision_arg, apply_precision
from .session_render import render_session


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("samples", help="render images for seeds", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D network pickle")
    add_latent_args(p, multiple=False, session=True)  # --seeds | --latent FILE [--camera FILE] | --session FILE
    add_angle_args(p, "render camera")
    p.add_argument("--fov-deg", type=finite_float("--fov-deg", 0, 180, lo_open=True, hi_open=True), default=DEFAULT_FOV_DEG, help="field of view, EG3D convention")
    p.add_argument("--radius", type=finite_float("--radius", 0, 1000, lo_open=True), default=None,
                   help="camera distance from the world origin (default: the model's; the ray interval follows it)")
    p.add_argument("--branch", choices=BRANCHES, default="sr2d")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=DETERMINISTIC,
                   help="linspace depth samples; --no-deterministic: EG3D's jittered samples (default: on)")
    p.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    p.add_argument("--nrr", type=bounded_int("--nrr", 8, MAX_NRR), default=None, help="neural rendering resolution (default: the model's)")
    p.add_argument("--samples", type=bounded_int("--samples", 0, MAX_DEPTH_SAMPLES), nargs=2, metavar=("COARSE", "IMPORTANCE"), default=None,
                   help="depth samples per ray (default: the model's)")
    p.add_argument("--save-npz", action="store_true", help="also write seedNNNN.npz with float32 arrays")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    add_precision_arg(p)
    p.add_argument("--outdir", required=True, type=Path)
    return p


def run(args: argparse.Namespace) -> int:
    yaw, pitch = angles_from_args(args)
    device = resolve_device(args.device)
    model = load_model(args.network, device)
    try:
        model.check_branch(args.branch)
    except BranchError as e:
        raise UsageError(str(e)) from None
    apply_precision(model, args.precision, device)
    if args.samples and (args.samples[0] < 2 or args.samples[1] < 0 or (args.samples[1] > 0 and args.samples[0] < 4)):
        raise UsageError("--samples needs COARSE >= 2 (>= 4 when IMPORTANCE > 0) and IMPORTANCE >= 0")
    opts = RenderOptions(resolution=args.nrr, deterministic=args.deterministic, noise_mode=args.noise_mode,
                         depth_resolution=args.samples[0] if args.samples else None,
                         depth_resolution_importance=args.samples[1] if args.samples else None)
    if args.session is not None:
        return render_session(model, args.session, args.outdir)
    cond = model.camera_label(0.0, 0.0, fov_deg=args.fov_deg)
    if args.radius is not None and not 0.3 <= args.radius <= 30:
        raise UsageError(f"--radius must be in [0.3, 30], got {args.radius:g}")
    cam = model.camera_label(yaw, pitch, radius=args.radius, fov_deg=args.fov_deg)
    if args.latent is not None:  # an inversion's latent.npy, rendered from its camera.npy when given
        items = [(Path(args.latent).stem, 0, None)]
        latent_ws = latents_from_args(args, model)[0]
        file_cam = camera_from_args(args, model)
        cam = file_cam if file_cam is not None else cam
    else:
        camera_from_args(args, model)  # --camera without --latent is an error
        items = [(f"seed{seed:04d}", seed, seed) for seed in args.seeds]
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, gen_seed, seed in tqdm(items, desc="samples", unit="img", disable=len(items) < 2):
        gen = torch.Generator(device=device).manual_seed(gen_seed)
        ws = latent_ws if seed is None else model.mapping(model.z_from_seed(seed), cond, truncation_psi=args.trunc,
                                                           truncation_cutoff=args.trunc_cutoff)
        with torch.no_grad():
            out = model.render(args.branch, ws, cam, opts, generator=gen)
        Image.fromarray(to_uint8(out["image"][0])).save(args.outdir / f"{name}.png")
        if args.save_npz:
            arrays = {k: out[k][0].float().cpu().numpy() for k in ("image", "image_depth", "image_raw") if k in out}
            np.savez(args.outdir / f"{name}.npz", **arrays, ws=ws[0].float().cpu().numpy())
    print(f"wrote {len(items)} image(s) to {args.outdir}")
    return 0
