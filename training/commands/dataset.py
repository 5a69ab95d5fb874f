"""``python -m training dataset``: make, convert, mirror and inspect EG3D-format datasets.

  synth    render the procedural multi-view dataset (``training.synth``); ``--bench`` measures its speed
  convert  images + a camera JSON -> an EG3D dataset (centre crop, Lanczos resize to a power of two)
  mirror   EG3D's offline mirroring: every image plus ``<name>_mirror.png`` with the flip_yaw camera
  info     count, resolution, pixel modes, camera statistics and the first problems of a dataset

A dataset is a zip (uncompressed) or a folder of images plus ``dataset.json``; see ``core/files/dataset.py``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from core.commands.common import UsageError
from core.files.dataset import ALPHA_MODES

from ..dataset_tool import TRANSFORMS, convert_dataset, describe_dataset, mirror_dataset
from ..synth.generate import SynthConfig, benchmark, generate_dataset
from ..synth.objects import PART_GROUPS


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in PART_GROUPS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(bad) or text!r}; choose from "
                                         f"{', '.join(PART_GROUPS)}")
    return parts


def _add_write_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the commands that write a dataset from existing images."""
    p.add_argument("--alpha", choices=ALPHA_MODES, default="drop", help="RGBA -> RGB rule (default drop)")
    p.add_argument("--compress-level", type=int, default=0, choices=range(10), metavar="0-9")
    p.add_argument("--overwrite", action="store_true", help="replace an existing destination")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("dataset", help="make, convert, mirror and inspect datasets", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    s = verbs.add_parser("synth", help="render the procedural multi-view dataset",
                         description="Render COUNT images of procedural head-like objects from FFHQ-like cameras "
                                     "into an EG3D dataset (see README, 'Datasets').")
    s.add_argument("--dest", type=Path, help="output .zip or folder")
    s.add_argument("--count", type=_positive, default=None, help="number of images")
    s.add_argument("--resolution", type=_positive, default=64, help="image side, a power of two (default 64)")
    s.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    s.add_argument("--depth", action="store_true", help="also write <image>.depth.npy ground-truth depth")
    s.add_argument("--white-back", action="store_true", help="white background instead of colour gradients")
    s.add_argument("--ssaa", type=_positive, default=2, help="supersampling per axis (default 2; 1 = no AA)")
    s.add_argument("--parts", type=_parts, default=None,
                   help=f"comma list of object parts to keep (default all: {','.join(PART_GROUPS)})")
    s.add_argument("--workers", type=int, default=-1,
                   help="render processes (0: this process; default -1: one per CPU core, up to 8)")
    s.add_argument("--batch", type=_positive, default=32, help="images per render call (default 32)")
    s.add_argument("--threads", type=_positive, default=None, help="torch threads in this process")
    s.add_argument("--compress-level", type=int, default=0, choices=range(10), metavar="0-9",
                   help="PNG compression (default 0, as EG3D's dataset_tool)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    s.add_argument("--bench", action="store_true",
                   help="measure images/s instead (render only and full pipeline; --count defaults to 512)")
    s.set_defaults(verb_run=_run_synth)

    c = verbs.add_parser("convert", help="images + camera JSON -> EG3D dataset",
                         description="Convert a folder (or zip) of images and a camera file ({relpath: [25 floats]}"
                                     " or {\"labels\": [[relpath, [25 floats]], ...]}) into an EG3D dataset with "
                                     "names 00000/img00000000.png. Cameras must describe the square crop.")
    c.add_argument("--source", type=Path, required=True, help="folder or zip of images")
    c.add_argument("--cameras", type=Path, required=True, help="camera JSON file")
    c.add_argument("--dest", type=Path, required=True, help="output .zip or folder")
    c.add_argument("--resolution", type=_positive, default=None,
                   help="output side, a power of two (default: the input side, which must be one)")
    c.add_argument("--transform", choices=TRANSFORMS, default="center-crop",
                   help="center-crop (default): central square; none: inputs must be square")
    _add_write_options(c)
    c.set_defaults(verb_run=_run_convert)

    m = verbs.add_parser("mirror", help="add left-right mirrored copies with flipped cameras",
                         description="EG3D's offline mirroring: writes every image unchanged plus "
                                     "<name>_mirror.png, flipped left-right, with label flip_yaw(label).")
    m.add_argument("--source", type=Path, required=True, help="input .zip or folder")
    m.add_argument("--dest", type=Path, required=True, help="output .zip or folder")
    _add_write_options(m)
    m.set_defaults(verb_run=_run_mirror)

    i = verbs.add_parser("info", help="summarise a dataset and list its first problems",
                         description="Print the image count, resolution, pixel modes, camera statistics (radius, "
                                     "yaw/pitch offsets from frontal, focal, principal point, look-at pivot) and "
                                     "the first problems found. Exit status 1 when there are problems.")
    i.add_argument("path", type=Path, help=".zip or folder")
    i.add_argument("--decode", action="store_true", help="also decode every image (finds truncated files)")
    i.add_argument("--max-errors", type=_positive, default=10, help="problems to list (default 10)")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(verb_run=_run_info)
    return p


def run(args: argparse.Namespace) -> int:
    return int(args.verb_run(args) or 0)


def _workers(n: int) -> int:
    return min(os.cpu_count() or 1, 8) if n < 0 else n


def _run_synth(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.bench:
        r = benchmark(resolution=args.resolution, count=args.count or 512, threads=args.threads or 2,
                      workers=_workers(args.workers), batch=args.batch, ssaa=args.ssaa, depth=args.depth)
        print(f"synth {r['resolution']}px ssaa {r['ssaa']}: render {r['render_images_per_s']:.0f} img/s "
              f"({r['threads']} threads); pipeline to zip {r['pipeline_images_per_s']:.0f} img/s "
              f"({r['workers']} worker processes, batch {r['batch']})")
        return 0
    if args.dest is None or args.count is None:
        raise UsageError("synth needs --dest and --count (or --bench)")
    cfg = SynthConfig(count=args.count, resolution=args.resolution, seed=args.seed, ssaa=args.ssaa,
                      white_back=args.white_back, depth=args.depth, parts=args.parts)
    n = generate_dataset(args.dest, cfg, batch=args.batch, workers=_workers(args.workers) if args.count > args.batch
                         else 0, compress_level=args.compress_level, overwrite=args.overwrite, progress=True)
    print(f"wrote {n} images ({args.resolution}x{args.resolution}) to {args.dest}")
    return 0


def _run_convert(args: argparse.Namespace) -> int:
    n = convert_dataset(args.source, args.cameras, args.dest, args.resolution, args.transform, alpha=args.alpha,
                        overwrite=args.overwrite, compress_level=args.compress_level, progress=True)
    print(f"wrote {n} images to {args.dest}")
    return 0


def _run_mirror(args: argparse.Namespace) -> int:
    n = mirror_dataset(args.source, args.dest, alpha=args.alpha, overwrite=args.overwrite,
                       compress_level=args.compress_level, progress=True)
    print(f"wrote {n} images (originals + mirrors) to {args.dest}")
    return 0


def _num(v: float) -> str:
    text = f"{v:.4f}"
    return "0.0000" if text == "-0.0000" else text


def _fmt(r: dict) -> str:
    return f"{_num(r['mean'])} (min {_num(r['min'])}, max {_num(r['max'])}, std {_num(r['std'])})"


def _run_info(args: argparse.Namespace) -> int:
    info = describe_dataset(args.path, decode=args.decode, max_errors=args.max_errors, progress=args.decode)
    if args.json:
        print(json.dumps(info, indent=2))
        return 1 if info["errors"] else 0
    res = info["resolution"]
    print(f"dataset     {info['path']} ({info['kind']})")
    print(f"images      {info['images']}")
    print(f"labels      {info['labels']}")
    print(f"resolution  {f'{res}x{res}' if res else 'unknown'}")
    print(f"pixel modes {', '.join(f'{k}: {v}' for k, v in sorted(info['modes'].items())) or '-'}")
    if info["depth"] or info["centers"]:
        print(f"extras      depth: {info['depth']}, centers: {info['centers']}")
    if info["meta_keys"]:
        print(f"metadata    {', '.join(info['meta_keys'])}")
    cams = info.get("cameras")
    if cams:
        print(f"radius      {_fmt(cams['radius'])}")
        print(f"yaw (deg)   {_fmt(cams['yaw_deg'])}   offset from frontal")
        print(f"pitch (deg) {_fmt(cams['pitch_deg'])}")
        print(f"focal       {_fmt(cams['focal'])}")
        print(f"principal   cx {_num(cams['cx']['mean'])}, cy {_num(cams['cy']['mean'])}")
        print(f"pivot       ({', '.join(_num(v) for v in cams['pivot'])})   where the optical axes meet")
        print(f"label std   {' '.join(f'{v:.3g}' for v in info['label_std'])}")
    if info["errors"]:
        print(f"problems    {len(info['errors'])} shown (first {args.max_errors} at most):")
        for e in info["errors"]:
            print(f"  {e}")
        return 1
    print("problems    none found" + ("" if args.decode else " (headers only; --decode checks every pixel)"))
    return 0

