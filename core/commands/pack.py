"""``python -m core pack``: a lean inference copy of a model file (what ``assets/default.pkl`` is made with).

    python -m core pack --network runs/.../network-snapshot-000030.pkl --out assets/default.pkl \\
        [--command "python -m training train ..." ...] [--note TEXT] [--keep-discriminators] [--half]

Keeps what the branches render from -- the generator config and ``G_ema`` (sr2d, direct3d) and the distilled
student (``extra['student']``) -- and drops the training state: the non-EMA generator ``G``, the discriminators
(unless ``--keep-discriminators``, e.g. for fine-tuning from the file), optimisers, RNG states and the
distillation state. ``extra['provenance']`` records the source file's name, the branches, the kimg it was
saved at (training and/or distillation) and, in order, the ``--command`` lines that reproduce it. The input may be a Trident snapshot or an
EG3D/Mimic3D pickle (read by the restricted loader); the output is a plain-data Trident file, written atomically.
``--half`` stores the floating-point weights as float16 (half the size; every loader casts them back to the
module's float32, so renders differ from the source only by the float16 rounding of the weights);
``extra['provenance']['storage']`` says which.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from ..files.atomic import check_not_inputs, check_output_location
from ..files.checkpoint import load_snapshot, save_snapshot
from ..files.snapshot import Snapshot
from ..model import EXTRA_BRANCHES, model_from_snapshot




def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("pack", help="lean inference copy of a model file", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D/Mimic3D network pickle")
    p.add_argument("--out", required=True, type=Path, help="output .pkl")
    p.add_argument("--command", dest="commands", action="append", default=[], metavar="CMD",
                   help="a command that produced the model (repeat, in order); stored in extra['provenance']")
    p.add_argument("--note", default=None, help="free text stored in extra['provenance']")
    p.add_argument("--keep-discriminators", action="store_true", help="keep D and D_patch (for fine-tuning)")
    p.add_argument("--half", action="store_true", help="store the floating-point weights as float16 (half the size)")
    return p


def _kimg(extra: dict) -> dict[str, float]:
    """The training / distillation progress stored in a snapshot, in kimg: {'train': ..., 'distill': ...}."""
    out = {}
    for key in ("train", "distill"):
        state = extra.get(key)
        progress = state.get("progress") if isinstance(state, dict) else None
        if isinstance(progress, dict) and isinstance(progress.get("cur_nimg"), int):
            out[key] = progress["cur_nimg"] / 1000
    return out


def to_half(obj: object) -> object:
    """``obj`` (nested dicts / lists of tensors and plain data) with every float32/float64 tensor as float16."""
    if isinstance(obj, torch.Tensor):
        return obj.half() if obj.dtype in (torch.float32, torch.float64) else obj
    if isinstance(obj, dict):
        return {k: to_half(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_half(v) for v in obj)
    return obj


def pack(snap: Snapshot, source: str, commands: list[str], note: str | None = None,
         keep_discriminators: bool = False, half: bool = False) -> Snapshot:
    """The inference part of ``snap`` plus its provenance (weights as float16 with ``half``)."""
    branches = list(model_from_snapshot(snap, "cpu").branches)
    provenance = {"source": source, "branches": branches, "kimg": _kimg(snap.extra), "commands": list(commands),
                  "storage": "float16" if half else "float32"}
    if note:
        provenance["note"] = note
    cast = to_half if half else (lambda x: x)
    extra = {k: cast(snap.extra[k]) for k in EXTRA_BRANCHES if k in snap.extra}  # the rest is training state
    extra["provenance"] = provenance
    keep = keep_discriminators
    return dataclasses.replace(snap, G=None, G_ema=cast(snap.G_ema), extra=extra,
                               discriminator=snap.discriminator if keep else None, D=cast(snap.D) if keep else None,
                               patch_discriminator=snap.patch_discriminator if keep else None,
                               D_patch=cast(snap.D_patch) if keep else None)


def run(args: argparse.Namespace) -> int:
    check_output_location(args.out)
    check_not_inputs([args.out], {"--network": args.network})
    snap = load_snapshot(args.network)
    lean = pack(snap, Path(args.network).name, args.commands, args.note, args.keep_discriminators, args.half)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_snapshot(args.out, lean)
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MB; branches {', '.join(lean.extra['provenance']['branches'])})")
    return 0
