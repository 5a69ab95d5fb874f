"""Options shared by ``samples``, ``video`` and ``mesh``: seeds, or an inversion's ``latent.npy`` (+ ``camera.npy``)."""
from __future__ import annotations

import argparse

import torch

from ..defaults import TRUNCATION_CUTOFF, TRUNCATION_PSI
from ..files.latent_files import LatentFileError, load_camera, load_latent
from ..model import Model
from .common import MAX_SEED, UsageError, bounded_int, finite_float, seeds_arg


def add_latent_args(p: argparse.ArgumentParser, multiple: bool, seeds_flag: str = "--seeds",
                    session: bool = False) -> None:
    """--seeds (or --seed) | --latent FILE (repeatable when ``multiple``) [| --session FILE when ``session``],
    --camera FILE, --trunc, --trunc-cutoff."""
    g = p.add_mutually_exclusive_group(required=True)
    if seeds_flag == "--seeds":
        g.add_argument("--seeds", type=seeds_arg, help="e.g. 0-3 or 1,5,7-9")
    else:
        g.add_argument("--seed", type=bounded_int("--seed", 0, MAX_SEED), help="the latent's seed")
    g.add_argument("--latent", action="append" if multiple else "store", metavar="FILE",
                   help="latent.npy written by `invert` ([num_ws, w_dim]) instead of seeds"
                        + (" (repeat for several)" if multiple else ""))
    if session:
        g.add_argument("--session", metavar="FILE", help="a session file (viewer, core.tools.edit.session): its "
                       "latent, edits, camera, render options and branches")
    p.add_argument("--camera", default=None, metavar="FILE",
                   help="camera.npy written by `invert` (25 floats), used with --latent")
    p.add_argument("--trunc", type=finite_float("--trunc", -100, 100), default=TRUNCATION_PSI,
                   help=f"truncation psi for seeds (default {TRUNCATION_PSI}; 1: none)")
    p.add_argument("--trunc-cutoff", type=bounded_int("--trunc-cutoff", 0, 1024), default=TRUNCATION_CUTOFF,
                   help=f"number of ws to truncate (default {TRUNCATION_CUTOFF})")


def latents_from_args(args: argparse.Namespace, model: Model) -> list[torch.Tensor]:
    """The --latent files as ws [1, num_ws, w_dim] each (errors are one line)."""
    files = args.latent if isinstance(args.latent, list) else [args.latent]
    try:
        return [load_latent(f, model.num_ws, model.w_dim, model.device) for f in files]
    except LatentFileError as e:
        raise UsageError(str(e)) from None


def camera_from_args(args: argparse.Namespace, model: Model) -> torch.Tensor | None:
    """--camera as a label [1, 25] on the model's device, or None."""
    if args.camera is None:
        return None
    if getattr(args, "latent", None) is None:
        raise UsageError("--camera goes with --latent (seeds use --yaw/--pitch)")
    try:
        return load_camera(args.camera).to(model.device)
    except LatentFileError as e:
        raise UsageError(str(e)) from None
