"""``python -m core calibrate-pose``: fit a model's correction of the photo camera estimate.

Renders the model's faces (--seeds, truncation --trunc) at known look-at orbit cameras (every --yaws x --pitches
offset from frontal, degrees), runs the face detector and the landmark camera estimate of ``align`` on them, and
stores the mean (true - estimated) pitch and yaw as <network>.pose.json beside the model (or --out FILE). ``align
--calibration FILE`` applies it. Needs a model that renders recognisable faces (e.g. an FFHQ model); a model
whose renders hold no detectable face is refused.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from tqdm import tqdm

from ..defaults import TRUNCATION_PSI
from ..files.atomic import atomic_output, check_output_location
from ..model import BRANCHES, load_model
from ..tools.photo.calibrate import calibrate_pose, describe
from ..tools.photo.camera import PoseCalibration
from ..tools.photo.mtcnn import MTCNN
from .common import UsageError, finite_float, resolve_device, seeds_arg


def _degrees_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad angle list {text!r} (degrees, e.g. -20,0,20)") from None
    if not values or any(abs(v) > 60 for v in values):
        raise argparse.ArgumentTypeError(f"angles must be a non-empty list within +-60 degrees, got {text!r}")
    return values


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("calibrate-pose", help="fit a model's correction of the photo camera estimate",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D network pickle")
    p.add_argument("--seeds", type=seeds_arg, default=list(range(8)), help="faces to render (default 0-7)")
    p.add_argument("--yaws", type=_degrees_list, default=[-20.0, 0.0, 20.0], help="degrees (default -20,0,20)")
    p.add_argument("--pitches", type=_degrees_list, default=[-10.0, 0.0, 10.0], help="degrees (default -10,0,10)")
    p.add_argument("--trunc", type=finite_float("--trunc", -100, 100), default=TRUNCATION_PSI, help=f"truncation psi (default {TRUNCATION_PSI})")
    p.add_argument("--branch", choices=BRANCHES, default="sr2d")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--out", type=Path, default=None, help="calibration file (default: <network>.pose.json)")
    return p


def run(args: argparse.Namespace) -> int:
    out = args.out or PoseCalibration.path_for(args.network)
    check_output_location(out)
    model = load_model(args.network, resolve_device(args.device))
    model.check_branch(args.branch)
    if args.branch not in model.branches:
        raise UsageError(f"{args.network} has no {args.branch} branch (it has {', '.join(model.branches)})")
    total = len(args.seeds) * len(args.yaws) * len(args.pitches)
    with tqdm(total=total, desc="calibrate", unit="render") as bar:
        cal, samples = calibrate_pose(model, MTCNN(), args.seeds, [math.radians(v) for v in args.yaws],
                                      [math.radians(v) for v in args.pitches], branch=args.branch,
                                      truncation_psi=args.trunc, progress=lambda p: bar.update(p.done - bar.n))
    with atomic_output(out) as tmp:
        tmp.write_text(cal.to_json())
    print(f"{describe(cal, samples)}; wrote {out}")
    return 0
