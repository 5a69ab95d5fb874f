"""``python -m core mesh``: a coloured mesh (PLY, OBJ, GLB) of a latent's density field, optionally the MRC volume.
The latent is a seed, an inversion's ``latent.npy``, or a viewer session's (``--session F``: its edits applied).

Density on an N^3 grid over the tri-plane box, EG3D's -1000 border, marching cubes at --level (EG3D: 10 on raw
sigma; try 2-20), vertex colours from the radiance field seen along the normal (see core.tools.mesh).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from ..defaults import MESH_GRID, MESH_LEVEL
from ..files.atomic import check_output_location
from ..model import load_model
from ..tools.edit.model_id import model_sha256
from ..tools.edit.session import session_ws
from ..tools.mesh import MESH_FORMATS, MeshError, mesh_from_volume, model_field, save_mesh, save_mrc
from .common import UsageError, bounded_int, finite_float, resolve_device
from .edit_args import session_for
from .latent_args import add_latent_args, latents_from_args


def _border(text: str) -> str | int:
    if text == "eg3d":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad border {text!r} (eg3d or a voxel count)") from None


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("mesh", help="coloured mesh / density volume of a latent", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D network pickle")
    add_latent_args(p, multiple=False, seeds_flag="--seed", session=True)
    p.add_argument("--res", type=bounded_int("--res", 16, 1024), default=MESH_GRID,
                   help=f"grid resolution N (N^3 density samples; default {MESH_GRID})")
    p.add_argument("--level", type=finite_float("--level"), default=MESH_LEVEL, help=f"iso level on raw density (default {MESH_LEVEL:g}, "
                   "EG3D's)")
    p.add_argument("--source", choices=("auto", "sr2d", "direct3d"), default="auto",
                   help="tri-planes: sr2d's coarse planes, direct3d's coarse + detail (auto: the finest present)")
    p.add_argument("--border", type=_border, default="eg3d",
                   help="voxels set to -1000 on every face: eg3d (int(30 N / 256)) or a count (0: none)")
    p.add_argument("--no-colors", action="store_true", help="geometry only")
    p.add_argument("--chunk", type=bounded_int("--chunk", 1024, 1 << 26), default=2 ** 18, help="density points per call (memory bound)")
    p.add_argument("--mrc", type=Path, default=None, help="also write the density volume as MRC (ChimeraX)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--out", type=Path, default=None, help="FILE.ply, FILE.obj or FILE.glb")
    return p


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.mrc is None:
        raise UsageError("give --out FILE.ply|.obj|.glb and/or --mrc FILE.mrc")
    if args.out is not None and args.out.suffix.lower() not in MESH_FORMATS:
        raise UsageError(f"--out must end in {', '.join(MESH_FORMATS)}, got {args.out.name!r}")
    if args.mrc is not None and args.mrc.suffix.lower() != ".mrc":
        raise UsageError(f"--mrc must end in .mrc, got {args.mrc.name!r}")
    if args.camera is not None:
        raise UsageError("mesh takes no --camera (the density field does not depend on the view)")
    for target in (args.out, args.mrc):
        if target is not None:
            check_output_location(target)   # before rendering
    device = resolve_device(args.device)
    model = load_model(args.network, device)
    if args.session is not None:   # the session's latent with its edits (the camera does not matter here)
        ws = session_ws(model, session_for(model, args.session).state, model_sha256(model))
    elif args.latent is not None:
        ws = latents_from_args(args, model)[0]
    else:
        ws = model.ws_from_seed(args.seed, args.trunc, args.trunc_cutoff)
    bars: dict[str, tqdm] = {}

    def progress(p) -> None:
        bar = bars.get(p.stage) or bars.setdefault(p.stage, tqdm(total=p.total, desc=p.stage, unit="step"))
        bar.update(p.done - bar.n)

    try:
        field = model_field(model, ws, args.source, args.chunk)
        volume = field.volume(args.res, args.chunk, progress)
        if args.mrc is not None:
            save_mrc(volume, args.mrc, border=args.border)
            print(f"wrote {args.mrc} ({args.res}^3 float32)")
        if args.out is not None:
            mesh = mesh_from_volume(volume, args.level, args.border, None if args.no_colors else field.color,
                                    max(1, args.chunk // 8), progress)
            save_mesh(mesh, args.out)
            print(f"wrote {args.out} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")
    except MeshError as e:
        raise UsageError(str(e)) from None
    finally:
        for bar in bars.values():
            bar.close()
    return 0
