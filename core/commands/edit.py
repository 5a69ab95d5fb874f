"""``python -m core edit``: a preview grid of one direction: rows are the latents (seeds or ``--latent`` files),
columns the strengths (in units of the direction's sigma), one block per branch, labelled.

The direction is ``FILE.json:INDEX`` from ``python -m core directions``; a direction computed for another model
(its content hash differs) is refused. The mapping is conditioned on the frontal camera (as ``samples``); the
render camera is ``--yaw/--pitch`` from frontal, or ``--camera`` with ``--latent``.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import first_line
from ..files.atomic import atomic_output, check_output_location
from ..files.image_io import to_uint8
from ..model import BRANCHES, BranchError, load_model
from ..tools.edit.apply import Edit, apply_edits
from ..tools.edit.directions import check_model
from ..tools.edit.model_id import model_sha256
from ..tools.edit.session import render_branches
from ..tools.video import label_panel
from ..triplane import RenderOptions
from .angle_args import add_angle_args, angles_from_args
from .common import MAX_NRR, UsageError, bounded_int, resolve_device
from .edit_args import direction_ref
from .latent_args import add_latent_args, camera_from_args, latents_from_args

# "-3,0,3" starts with "-": let this command's parser read it as a value, as argparse does for "-3".
_NUMBER_LIST = re.compile(r"^-\d*\.?\d+(\s*,\s*-?\d*\.?\d+)*$")


def strengths_arg(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad strengths {text!r} (use e.g. -3,0,3)") from None
    if not values or not all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"bad strengths {text!r} (use e.g. -3,0,3)")
    return values


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("edit", help="preview grid of an editing direction (seeds x strengths, every branch)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p._negative_number_matcher = _NUMBER_LIST
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D/Mimic3D network pickle")
    add_latent_args(p, multiple=True)   # --seeds | --latent FILE..., --camera, --trunc, --trunc-cutoff
    p.add_argument("--direction", required=True, metavar="FILE.json:INDEX", help="e.g. sefa.json:0")
    p.add_argument("--strengths", type=strengths_arg, default=[-3.0, 0.0, 3.0],
                   help="comma-separated strengths in sigma (default -3,0,3)")
    p.add_argument("--branch", choices=BRANCHES + ("all",), default="all", help="one branch or all (default)")
    add_angle_args(p, "render camera")
    p.add_argument("--nrr", type=bounded_int("--nrr", 8, MAX_NRR), default=None, help="neural rendering resolution (default: the model's)")
    p.add_argument("--size", type=bounded_int("--size", 16, 4096), default=None, help="panel side in pixels (default: the output's)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--out", required=True, type=Path, help="grid image, .png")
    return p


def _strip(height: int, width: int, text: str) -> np.ndarray:
    return label_panel(np.zeros((height, width, 3), np.uint8), text)


def run(args: argparse.Namespace) -> int:
    angles_from_args(args)   # range check before loading anything
    if args.out.suffix.lower() != ".png":
        raise UsageError(f"--out must end in .png, got {args.out.name!r}")
    check_output_location(args.out)
    path, index, direction, dset = direction_ref(args.direction)
    device = resolve_device(args.device)
    model = load_model(args.network, device)
    check_model(dset, model_sha256(model), what=f"the directions in {path.name}")
    branches = model.branches if args.branch == "all" else (args.branch,)
    try:
        for b in branches:
            model.check_branch(b)
    except BranchError as e:
        raise UsageError(first_line(e)) from None
    if args.latent:
        rows = [(Path(f).parent.name or Path(f).stem, ws) for f, ws in zip(args.latent, latents_from_args(args, model))]
        cam = camera_from_args(args, model)
    else:
        camera_from_args(args, model)  # --camera without --latent is an error
        cond = model.camera_label()
        rows = [(f"seed {s}", model.mapping(model.z_from_seed(s), cond, args.trunc, args.trunc_cutoff))
                for s in args.seeds]
        cam = None
    if cam is None:
        cam = model.camera_label(*angles_from_args(args))
    opts = RenderOptions(resolution=args.nrr)
    sha = model_sha256(model)
    panels: dict[tuple[str, int, int], np.ndarray] = {}
    bar = tqdm(total=len(branches) * len(rows) * len(args.strengths), desc="edit", unit="img")
    try:
        for r, (_, ws) in enumerate(rows):
            for c, x in enumerate(args.strengths):
                edited = apply_edits(ws, [Edit(direction, x)], sha)
                for b, out in render_branches(model, edited, cam, opts, branches).items():
                    panels[(b, r, c)] = to_uint8(out["image"][0])
                    bar.update(1)
    finally:
        bar.close()
    side = args.size or max(p.shape[0] for p in panels.values())   # branches may differ (sr2d without SR)
    for key, img in panels.items():
        if img.shape[0] != side:
            panels[key] = np.asarray(Image.fromarray(img).resize((side, side), Image.LANCZOS))
    title_h, label_w, gap = max(14, side // 6), max(40, side // 2), max(4, side // 16)
    blocks = []
    for b in branches:
        head = [_strip(title_h, label_w, "")]
        head += [_strip(title_h, side, f"{x:+g} sigma") for x in args.strengths]
        lines = [np.concatenate(head, axis=1)]
        for r, (name, _) in enumerate(rows):
            cells = [_strip(side, label_w, name)]
            cells += [label_panel(panels[(b, r, c)], b) if c == 0 else panels[(b, r, c)]
                      for c in range(len(args.strengths))]
            lines.append(np.concatenate(cells, axis=1))
        blocks.append(np.concatenate(lines, axis=0))
        blocks.append(np.zeros((blocks[-1].shape[0], gap, 3), np.uint8))
    title = f"{direction.name or direction.method}  layers {direction.layers[0]}:{direction.layers[1]}  " \
            f"sigma {direction.sigma:.3g}  ({path.name}:{index})"
    body = np.concatenate(blocks[:-1], axis=1)
    grid = np.concatenate([_strip(title_h, body.shape[1], title), body], axis=0)
    with atomic_output(args.out) as tmp:
        Image.fromarray(grid).save(tmp)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]}: {len(rows)} latents x {len(args.strengths)} "
          f"strengths x {len(branches)} branch(es))")
    return 0
