"""``python -m core metrics``: compare a model's images with a dataset's, per branch (SWD needs no pretrained
weights; FID/KID need the Inception file, see core.metrics.fid), measure each branch's 3D consistency
(``consistency``: warp nearby views into each other with depth, masked PSNR in dB, higher is more consistent; see
core.metrics.consistency; needs no dataset), and how closely a branch reproduces another (``fidelity``: the
distilled student against its teacher, or direct3d against the sr2d image it imitates; PSNR, raw PSNR and, when the
VGG16 trunk file exists, LPIPS on held-out latents and cameras; see core.metrics.fidelity; needs no dataset), and
how varied and faithful a branch's images are (``recall``: improved precision and recall in a part-sensitive
feature space, relative to the same measure between two halves of the data, 1.0 = as varied as the data; see
core.metrics.recall; reads ``2 x --num`` real images, or the whole dataset split in two when it is smaller).

Fakes follow EG3D's metric protocol: z ~ N(0, I); for each fake a camera label drawn from the dataset's labels,
used both to condition the mapping network and to render. Real images are the first ``--num`` of the dataset in
sorted order, resized (antialiased) to the model's output resolution if they differ.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..files.atomic import atomic_output
from ..files.dataset import DatasetError, iter_images, read_labels
from ..metrics.consistency import model_consistency
from ..metrics.fid import DetectorError, extract_features, fid, kid, load_detector
from ..metrics.fidelity import branch_fidelity
from ..metrics.recall import part_features, precision_recall
from ..metrics.lpips import LPIPSWeightsError, load_lpips
from ..metrics.swd import swd
from ..model import BRANCHES, BranchError, Model, load_model
from ..triplane import RenderOptions
from .common import UsageError, resolve_device

METRICS = ("swd", "fid", "kid", "recall", "consistency", "fidelity")
IMAGE_SET_METRICS = ("swd", "fid", "kid", "recall")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("metrics", help="image-set metrics against a dataset", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D network pickle")
    p.add_argument("--data", default=None,
                   help="dataset zip or folder (EG3D format, with dataset.json labels); needed by swd")
    p.add_argument("--metrics", default="swd", help=f"comma list of {', '.join(METRICS)}")
    p.add_argument("--num", type=int, default=1024, help="images per set (default 1024)")
    p.add_argument("--branch", choices=BRANCHES, default=None,
                   help="one branch to measure (default: every branch the model has)")
    p.add_argument("--inception", default=None,
                   help="fid/kid: path of inception-2015-12-05.pt (default: $TRIDENT_INCEPTION or the cache folders)")
    p.add_argument("--pairs", type=int, default=16, help="consistency: view pairs; fidelity: held-out draws (one latent each; default 16)")
    p.add_argument("--view-delta", type=float, default=0.1, help="consistency: yaw between the views, radians")
    p.add_argument("--depth-tol", type=float, default=0.02,
                   help="consistency: relative depth tolerance of the occlusion test (default 0.02)")
    p.add_argument("--teacher", choices=("sr2d", "direct3d"), default="sr2d",
                   help="fidelity: the branch that --branch is compared with (default sr2d)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (default 1: none)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    return p


def load_reals(data: str, num: int, resolution: int) -> tuple[torch.Tensor, list[str]]:
    names, imgs = [], []
    for name, arr in tqdm(iter_images(data, num), total=num, desc="reals", unit="img", leave=False):
        t = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float() / 127.5 - 1
        if t.shape[-1] != resolution or t.shape[-2] != resolution:
            t = F.interpolate(t[None], size=(resolution, resolution), mode="bilinear", align_corners=False,
                              antialias=True)[0]
        names.append(name)
        imgs.append(t)
    return torch.stack(imgs), names


@torch.no_grad()
def generate(model: Model, branch: str, labels: np.ndarray, num: int, batch: int, trunc: float, seed: int
             ) -> torch.Tensor:
    """Fakes of one branch; every branch gets the same latents, cameras and sampling noise for a given seed."""
    rng = np.random.RandomState(seed)
    out = []
    for start in tqdm(range(0, num, batch), desc=f"fakes {branch}", unit="batch", leave=False):
        n = min(batch, num - start)
        z = torch.from_numpy(rng.randn(n, model.z_dim)).float().to(model.device)
        c = torch.from_numpy(labels[rng.randint(len(labels), size=n)]).float().to(model.device)
        ws = model.mapping(z, c, truncation_psi=trunc, truncation_cutoff=None)
        gen = torch.Generator(model.device).manual_seed(seed + start)
        img = model.render(branch, ws, c, RenderOptions(deterministic=False), generator=gen)["image"]
        out.append(img.float().cpu().clamp(-1, 1))
    return torch.cat(out)


def run(args: argparse.Namespace) -> int:
    wanted = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in METRICS]
    if unknown or not wanted:
        raise UsageError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; available: {', '.join(METRICS)}")
    if args.num < 2 or args.batch < 1:
        raise UsageError("--num must be at least 2 and --batch at least 1")
    image_set = [m for m in wanted if m in IMAGE_SET_METRICS]
    if image_set and args.data is None:
        raise UsageError(f"{', '.join(image_set)} need(s) --data (a dataset to compare with)")
    if ("consistency" in wanted or "fidelity" in wanted) and (args.pairs < 1 or not args.view_delta or args.depth_tol <= 0):
        raise UsageError("--pairs must be at least 1, --view-delta non-zero and --depth-tol positive")
    device = resolve_device(args.device)
    results = {"network": str(args.network), "trunc": args.trunc, "seed": args.seed}
    if "consistency" in wanted:
        results["consistency"] = consistency(args, device)
    if "fidelity" in wanted:
        results["fidelity"] = fidelity(args, device)
    if image_set:
        results.update(run_image_set(args, device, image_set))
    if args.out is not None:
        with atomic_output(args.out) as tmp:
            tmp.write_text(json.dumps(results, indent=2))
    return 0


def consistency(args: argparse.Namespace, device: torch.device) -> dict:
    model = load_model(args.network, device)
    branches = list(model.branches)
    if args.branch is not None:
        try:
            model.check_branch(args.branch)
        except BranchError as e:
            raise UsageError(str(e)) from None
        branches = [args.branch]
    res = model_consistency(model, branches, args.pairs, seed=args.seed, truncation_psi=args.trunc,
                            delta=args.view_delta, rel_tol=args.depth_tol,
                            progress=lambda it: tqdm(it, desc="consistency", unit="pair", leave=False))
    for branch, r in res.items():
        print(f"consistency {branch:9s} {r.psnr:7.2f} dB  coverage {r.coverage:.2f}  ({r.pairs} pairs)")
    return {b: r.as_dict() for b, r in res.items()}


def fidelity(args: argparse.Namespace, device: torch.device) -> dict:
    """``--branch`` (default: the student, else direct3d) against ``--teacher`` on ``--pairs`` held-out draws;
    LPIPS only where its weights exist."""
    model = load_model(args.network, device)
    branch = args.branch or ("student" if "student" in model.branches else "direct3d")
    try:
        model.check_branch(branch)
        model.check_branch(args.teacher)
    except BranchError as e:
        raise UsageError(f"fidelity: {e}") from None
    if branch == args.teacher:
        raise UsageError(f"fidelity: --branch and --teacher are both {branch}")
    try:
        lpips, lpips_note = load_lpips("vgg", device), None
    except LPIPSWeightsError as e:
        lpips, lpips_note = None, f"not computed: {e}"
    r = branch_fidelity(model, args.pairs, branch=branch, teacher=args.teacher, seed=args.seed,
                        truncation_psi=args.trunc, lpips=lpips,
                        progress=lambda it: tqdm(it, desc="fidelity", unit="pair", leave=False))
    raw = f"{r.psnr_raw:.2f} dB" if r.psnr_raw is not None else "-"
    print(f"fidelity {r.branch} vs {r.teacher}: PSNR {r.psnr:.2f} dB, raw PSNR {raw}, LPIPS "
          + (f"{r.lpips:.4f}" if r.lpips is not None else f"- ({lpips_note})") + f"  ({r.pairs} pairs)")
    return {**r.as_dict(), **({"lpips_note": lpips_note} if lpips_note else {})}


def _branches(model: Model, branch: str | None) -> list[str]:
    if branch is None:
        return list(model.branches)
    try:
        model.check_branch(branch)
    except BranchError as e:
        raise UsageError(str(e)) from None
    return [branch]


def run_image_set(args: argparse.Namespace, device: torch.device, wanted: list[str]) -> dict:
    """SWD / FID / KID of each branch's fakes against the dataset's first ``--num`` images."""
    detector = None
    if "fid" in wanted or "kid" in wanted:
        try:
            detector = load_detector(args.inception, device)
        except DetectorError as e:
            raise UsageError(str(e)) from None
    model = load_model(args.network, device)
    branches = _branches(model, args.branch)
    try:
        labels = read_labels(args.data)
        if not labels:
            raise UsageError(f"{args.data} has no camera labels (dataset.json); metrics need its camera distribution")
        reals, _ = load_reals(args.data, 2 * args.num if "recall" in wanted else args.num, model.img_resolution)
    except DatasetError as e:
        raise UsageError(str(e)) from None
    second_half = None
    if "recall" in wanted:  # the data's second half is the reference "generator" of the relative numbers
        half = min(args.num, reals.shape[0] // 2)
        reals, second_half = reals[:half], reals[half:2 * half]
    n = reals.shape[0]
    label_array = np.asarray(list(labels.values()), dtype=np.float32)
    real_feats = extract_features(detector, reals, args.batch, device) if detector is not None else None
    part_a = part_features(reals) if second_half is not None else None
    part_b = part_features(second_half) if second_half is not None else None
    per_branch: dict[str, dict] = {}
    for branch in branches:
        fakes = generate(model, branch, label_array, n, args.batch, args.trunc, args.seed)
        res: dict = {}
        if "swd" in wanted:
            res["swd"] = swd(reals, fakes, seed=args.seed)
            for k, v in res["swd"].items():
                print(f"{branch:9s} {k:10s} {v:10.3f}")
        if part_a is not None:
            pr = precision_recall(part_a, part_b, part_features(fakes))
            res["recall"] = pr.as_dict()
            print(f"{branch:9s} {'recall':10s} {pr.recall:10.3f}  relative {pr.relative_recall:.3f} "
                  f"(data halves {pr.data_recall:.3f}); precision {pr.precision:.3f} relative "
                  f"{pr.relative_precision:.3f}  ({pr.num} images, k={pr.k})")
        if detector is not None:
            fake_feats = extract_features(detector, fakes, args.batch, device)
            if "fid" in wanted:
                res["fid"] = fid(real_feats, fake_feats)
                print(f"{branch:9s} {'fid':10s} {res['fid']:10.3f}")
            if "kid" in wanted:
                res["kid"] = kid(real_feats, fake_feats, seed=args.seed)
                print(f"{branch:9s} {'kid':10s} {res['kid']:10.5f}")
        per_branch[branch] = res
    out = {"data": str(args.data), "num": n, "branches": per_branch}
    if "swd" in wanted and "sr2d" in per_branch:
        out["swd"] = per_branch["sr2d"]["swd"]  # the headline value (the EG3D branch), as before
    return out
