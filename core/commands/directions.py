"""``python -m core directions``: editing directions of a model, found from the model itself, to a directions file.

* ``sefa``: closed-form factorization of the synthesis affine (style) layers of ``--layers`` (Shen & Zhou 2021);
* ``ganspace``: principal components of ``--samples`` w sampled with the mapping conditioned on the frontal camera
  (or ``--cond-yaw/--cond-pitch``) (Harkonen et al. 2020).

Each direction records its layer range (the ws layers an edit moves), its sigma (standard deviation of sampled w
along it; strengths are in sigma) and the model file's SHA-256. ``--out NAME.json`` writes NAME.json + NAME.npy
(format: core/tools/edit/direction_files.py, docs/edit.md). Results are cached per model file (``--cache-dir``,
default ``$TRIDENT_CACHE/directions`` or ``~/.cache/trident/directions``), so asking again is immediate.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..files.atomic import check_output_location
from ..model import load_model
from ..tools.edit.direction_files import cached_directions, compute_directions, save_directions
from ..tools.edit.directions import Conditioning
from .common import MAX_SEED, UsageError, bounded_int, finite_float, resolve_device


def layer_range(text: str) -> tuple[int, int]:
    """'a:b' -> (a, b), the ws layers [a, b)."""
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad layer range {text!r} (use START:STOP, e.g. 0:4)")
    return int(m.group(1)), int(m.group(2))


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("directions", help="editing directions (SeFa, GANSpace) to a directions file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D/Mimic3D network pickle")
    p.add_argument("--method", required=True, choices=("sefa", "ganspace"))
    p.add_argument("--layers", type=layer_range, default=None, metavar="START:STOP",
                   help="ws layers [START, STOP) the directions come from and apply to (default: all)")
    p.add_argument("--num", type=bounded_int("--num", 1, 4096), default=5, help="number of directions (default 5)")
    p.add_argument("--samples", type=bounded_int("--samples", 2, 10_000_000), default=10000,
                   help="w samples for GANSpace and for every direction's sigma (default 10000)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, MAX_SEED), default=0, help="seed of the z samples (default 0)")
    p.add_argument("--cond-yaw", type=finite_float("--cond-yaw"), default=0.0, help="conditioning camera yaw from frontal, radians")
    p.add_argument("--cond-pitch", type=finite_float("--cond-pitch"), default=0.0, help="conditioning camera pitch from frontal, radians")
    p.add_argument("--cache-dir", type=Path, default=None, help="cache folder (default: ~/.cache/trident)")
    p.add_argument("--no-cache", action="store_true", help="compute even when cached, and do not cache")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--out", required=True, type=Path, help="NAME.json (the vectors go to NAME.npy)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() != ".json":
        raise UsageError(f"--out must end in .json (the vectors are written beside it as .npy), got {args.out.name!r}")
    if args.num < 1 or args.samples < 2:
        raise UsageError("--num must be at least 1 and --samples at least 2")
    check_output_location(args.out)
    model = load_model(args.network, resolve_device(args.device))
    cond = Conditioning(args.cond_yaw, args.cond_pitch)
    kw = dict(layers=args.layers, num=args.num, samples=args.samples, seed=args.seed, cond=cond)
    if args.no_cache:
        dset = compute_directions(model, args.method, **kw)
    else:
        dset = cached_directions(model, args.method, folder=args.cache_dir, **kw)
    save_directions(args.out, dset)
    for i, d in enumerate(dset.directions):
        print(f"{i}: {d.name}  layers {d.layers[0]}:{d.layers[1]}  sigma {d.sigma:.4g}  score {d.score:.4g}")
    print(f"wrote {args.out} and {args.out.with_suffix('.npy').name} ({len(dset.directions)} directions, model "
          f"sha256 {dset.model_sha256[:12]})")
    return 0
