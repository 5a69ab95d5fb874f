"""``python -m core invert``: put a photo into the model (W / W+ optimisation, optional camera optimisation and
pivotal tuning), writing what ``samples``, ``video``, ``mesh`` and the viewer load:

  DIR/latent.npy    ws [num_ws, w_dim] float32     (--latent DIR/latent.npy)
  DIR/camera.npy    the photo's camera, 25 floats  (--camera DIR/camera.npy)
  DIR/compare.png   photo | inversion | (PTI)
  DIR/orbit.mp4     a short turntable around the photo's view (--video-frames 0: none)
  DIR/inversion.json settings and PSNR / LPIPS
  DIR/network.pkl   with --pti: the tuned model (Trident format; use it as --network with the latent)

A rerun into the same folder replaces these files (and removes ones this run does not write).

The photo is aligned first, as `python -m core align` does (docs/photos.md): MTCNN finds the face (--face K picks
another), the EG3D/FFHQ crop frames it and the camera estimated from its landmarks (with the model's
calibration from calibrate-pose when <network>.pose.json exists) is the start, optimised with the latent
(--no-optimize-camera keeps it). --no-align keeps the manual framing: a centred square crop (or --crop
LEFT,TOP,SIZE) and the camera from --camera FILE or --yaw/--pitch (not optimised unless --optimize-camera).
--camera FILE also replaces an aligned photo's estimate.

Several photos of one person (--image A --image B ...) give one latent with one camera per photo (each aligned
and estimated); camera.npy is the first photo's, cameras.npy all of them; --pti tunes on all photos.

--fast (a model with a student branch) first optimises the latent through the distilled student for
--fast-steps steps (no ray marching), then refines it for --steps through --branch (and PTI if asked).

The default loss is MSE (needs no weights); --loss lpips is LPIPS (VGG16; needs ImageNet weights, see
docs/photos.md) + MSE. Defaults: docs/defaults.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

from ..conventions import DEFAULT_FOV_DEG
from ..defaults import INVERT_LOSS, INVERT_STEPS, PTI_STEPS
from ..files.atomic import check_not_inputs, check_output_location
from ..files.image_io import PhotoError, load_photo, parse_crop_box, photo_to_tensor
from ..files.latent_files import LatentFileError, load_camera
from ..metrics.lpips import LPIPS, LPIPSTrunkMissingError, LPIPSWeightsError
from ..model import BRANCHES, load_model
from ..tools.inversion import OUTPUT_NAMES, InversionError, InversionSpec, aligned_start, invert, save_inversion
from ..tools.photo.camera import CalibrationError
from .align import face_choice
from .angle_args import add_angle_args, angles_from_args
from .common import MAX_DEPTH_SAMPLES, MAX_NRR, MAX_SEED, UsageError, bounded_int, finite_float, resolve_device


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("invert", help="find the latent (and camera) of a photo", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D network pickle")
    p.add_argument("--image", required=True, type=Path, action="append",
                   help="the photo (PNG, JPEG, TIFF, ...); repeat for several photos of one person")
    p.add_argument("--no-align", dest="align", action="store_false",
                   help="no face detection: a centred (or --crop) square and the --yaw/--pitch/--camera camera")
    p.add_argument("--face", type=face_choice, default=None, metavar="K",
                   help="aligning: which face (0 = largest, as align's landmarks.png numbers them) or 'largest'")
    p.add_argument("--crop", default=None, metavar="LEFT,TOP,SIZE",
                   help="with --no-align: crop box in pixels (default: centre)")
    p.add_argument("--camera", default=None, metavar="FILE", help="camera label file (.npy or text, 25 floats)")
    add_angle_args(p, "camera guess:")
    p.add_argument("--fov-deg", type=finite_float("--fov-deg", 0, 180, lo_open=True, hi_open=True), default=DEFAULT_FOV_DEG, help="camera guess: field of view")
    p.add_argument("--optimize-camera", action=argparse.BooleanOptionalAction, default=None,
                   help="optimise yaw/pitch jointly with the latent (default: on for aligned photos)")
    p.add_argument("--space", choices=("w", "w+"), default="w+")
    p.add_argument("--steps", type=bounded_int("--steps", 0, 1_000_000), default=INVERT_STEPS, help=f"optimisation steps (default {INVERT_STEPS})")
    p.add_argument("--loss", choices=("lpips", "mse"), default=INVERT_LOSS,
                   help=f"mse: no ImageNet weights needed; lpips: LPIPS (VGG16 weights) + MSE (default {INVERT_LOSS})")
    p.add_argument("--lpips-net", choices=("vgg", "alex"), default="vgg")
    p.add_argument("--lpips-weights", default=None, metavar="PTH",
                   help="ImageNet trunk file (default: $TORCH_HOME/hub/checkpoints/<torchvision name>)")
    p.add_argument("--mse-weight", type=finite_float("--mse-weight", 0), default=1.0, help="weight of MSE next to LPIPS (default 1)")
    p.add_argument("--lr", type=finite_float("--lr", 0, lo_open=True), default=None,
                   help="initial learning rate (default: 0.01 with lpips, 0.05 with mse)")
    p.add_argument("--noise", type=finite_float("--noise", 0), default=None,
                   help="initial latent noise, x w_std (default: 0.05 with lpips, 0 with mse)")
    p.add_argument("--fast", action="store_true",
                   help="first optimise through the model's student (no ray marching), then refine with --branch")
    p.add_argument("--fast-steps", type=bounded_int("--fast-steps", 0, 1_000_000), default=200, help="--fast: steps through the student (default 200)")
    p.add_argument("--pti", action="store_true", help="then tune the generator (pivotal tuning) and save it")
    p.add_argument("--pti-steps", type=bounded_int("--pti-steps", 0, 1_000_000), default=PTI_STEPS,
                   help=f"PTI steps (default {PTI_STEPS}; with --loss lpips stops early at LPIPS<0.06)")
    p.add_argument("--branch", choices=BRANCHES, default="sr2d", help="the branch whose image is matched")
    p.add_argument("--nrr", type=bounded_int("--nrr", 8, MAX_NRR), default=None, help="neural rendering resolution (default: the model's)")
    p.add_argument("--samples", type=bounded_int("--samples", 0, MAX_DEPTH_SAMPLES), nargs=2, metavar=("COARSE", "IMPORTANCE"), default=None)
    p.add_argument("--video-frames", type=bounded_int("--video-frames", 0, 100_000), default=60, help="frames of orbit.mp4 (0: no video)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, MAX_SEED), default=0, help="seed of w_avg samples and latent noise")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--outdir", required=True, type=Path)
    return p


def run(args: argparse.Namespace) -> int:
    if args.video_frames < 0:
        raise UsageError("--video-frames must be >= 0")
    if args.fov_deg <= 0 or args.fov_deg >= 180:
        raise UsageError(f"--fov-deg must be in (0, 180), got {args.fov_deg}")
    if args.outdir.exists() and not args.outdir.is_dir():
        raise UsageError(f"--outdir {args.outdir} exists and is not a folder")
    check_output_location(args.outdir / "latent.npy")   # before minutes of optimisation
    check_not_inputs([args.outdir / n for n in OUTPUT_NAMES],   # written or (stale ones) removed there
                     {"--network": args.network, "--image": args.image, "--camera": args.camera,
                      "--lpips-weights": args.lpips_weights})
    yaw, pitch = angles_from_args(args)
    device = resolve_device(args.device)
    lpips = None
    if args.loss == "lpips":   # before loading the model: missing ImageNet weights fail at once
        try:
            lpips = LPIPS(args.lpips_net, trunk_weights=args.lpips_weights).to(device)
        except LPIPSTrunkMissingError as e:
            raise UsageError(f"{e}; or run with --loss mse (MSE only, no ImageNet weights)") from None
        except LPIPSWeightsError as e:
            raise UsageError(str(e)) from None
    if not args.align and args.face is not None:
        raise UsageError("--face picks a detected face; it does not apply with --no-align")
    if args.align and args.crop is not None:
        raise UsageError("--crop frames the photo by hand; add --no-align (aligning frames the face itself)")
    try:
        box = parse_crop_box(args.crop)
        model = load_model(args.network, device)
        targets, cameras = _photos(args, model, box)
    except (PhotoError, LatentFileError, CalibrationError) as e:
        raise UsageError(str(e)) from None
    optimize_camera = args.align if args.optimize_camera is None else args.optimize_camera
    spec = InversionSpec(space=args.space, steps=args.steps, loss=args.loss, lpips_net=args.lpips_net,
                         mse_weight=args.mse_weight, lr=args.lr, noise_factor=args.noise,
                         optimize_camera=optimize_camera, branch=args.branch, nrr=args.nrr,
                         samples=tuple(args.samples) if args.samples else None,
                         pti_steps=args.pti_steps if args.pti else 0, seed=args.seed,
                         fast_steps=args.fast_steps if args.fast else 0)
    bars: dict[str, tqdm] = {}

    def progress(p) -> None:
        bar = bars.get(p.stage) or bars.setdefault(p.stage, tqdm(total=p.total, desc=p.stage, unit="step"))
        bar.set_postfix({k: f"{v:.3f}" for k, v in p.values.items() if k in ("loss", "psnr")}, refresh=False)
        bar.update(p.done - bar.n)

    try:
        result = invert(model, torch.cat(targets), torch.cat(cameras), spec, progress=progress, lpips=lpips)
        files = save_inversion(result, model, args.outdir, video_frames=args.video_frames, video_nrr=args.nrr,
                               progress=progress)
    except InversionError as e:
        raise UsageError(str(e)) from None
    finally:
        for bar in bars.values():
            bar.close()
    extra = f", after PTI {result.tuned_psnr:.2f} dB" if result.tuned_psnr is not None else ""
    if len(result.psnrs) > 1:
        extra += " (per photo: " + ", ".join(f"{p:.2f}" for p in result.psnrs) + ")"
    print(f"PSNR {result.psnr:.2f} dB{extra}; wrote {', '.join(f.name for f in files)} to {args.outdir}")
    return 0


def _photos(args: argparse.Namespace, model, box) -> tuple[list, list]:
    """Each photo's target [1, 3, R, R] and starting camera [1, 25]: aligned (detect, EG3D crop, estimated camera)
    or, with --no-align, framed by hand with the --camera / --yaw / --pitch camera."""
    given = load_camera(args.camera).to(model.device) if args.camera is not None else None
    targets, cameras = [], []
    if not args.align:
        for path in args.image:
            targets.append(photo_to_tensor(load_photo(path, model.img_resolution, box), model.device))
            cameras.append(given if given is not None
                           else model.camera_label(args.yaw, args.pitch, fov_deg=args.fov_deg))
        return targets, cameras
    from ..tools.photo.align import align_photo
    from ..tools.photo.camera import PoseCalibration
    from ..tools.photo.mtcnn import MTCNN
    calibration = PoseCalibration.for_network(args.network) if Path(args.network).is_file() else None
    detector = MTCNN()
    for path in args.image:
        _, al = align_photo(path, args.face, detector, calibration)
        target, camera = aligned_start(model, al.crop, al.label, args.fov_deg)
        targets.append(target)
        cameras.append(given if given is not None else camera)
        deg = al.pose.degrees
        print(f"{Path(path).name}: face {al.index} of {len(al.faces)}, estimated head yaw {deg['yaw']:.1f} deg, "
              f"pitch {deg['pitch']:.1f} deg" + (" (calibrated)" if calibration is not None else ""))
    return targets, cameras
