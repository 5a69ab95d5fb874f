"""``python -m core video``: turntable / 360-degree orbit / latent-interpolation videos (MP4 or GIF) of any branch,
or of all branches side by side. EG3D ``gen_videos.py`` conventions (see core.tools.video): yaw = pi/2 + 0.35 sin,
pitch = pi/2 - 0.05 + 0.25 cos over the loop; ws from the frontal conditioning camera; cubic wrapping interpolation.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from tqdm import tqdm

from ..cameras import focal_to_fov
from ..conventions import DEFAULT_FOV_DEG
from ..defaults import TURNTABLE_PITCH, TURNTABLE_YAW, VIDEO_FPS, VIDEO_FRAMES, VIDEO_MIN_SIDE
from ..files.atomic import check_output_location
from ..model import BRANCHES, load_model
from ..tools.inversion import orbit_from_label
from ..tools.video import FORMATS, MODES, OUTPUTS, VideoError, VideoSpec, render_video
from .common import MAX_DEPTH_SAMPLES, MAX_NRR, UsageError, bounded_int, finite_float, resolve_device
from .latent_args import add_latent_args, camera_from_args, latents_from_args


def _grid(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad grid {text!r} (use COLSxROWS, e.g. 2x2)")
    return int(m.group(1)), int(m.group(2))


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("video", help="turntable, orbit and interpolation videos", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D network pickle")
    add_latent_args(p, multiple=True)
    p.add_argument("--mode", choices=MODES, default="turntable")
    p.add_argument("--branch", choices=BRANCHES + ("all",), default="sr2d",
                   help="one branch, or all of the model's branches side by side (labelled)")
    p.add_argument("--output", choices=OUTPUTS, default="image", help="image, depth or raw (before super-resolution)")
    p.add_argument("--frames", type=bounded_int("--frames", 1, 100_000), default=VIDEO_FRAMES, help=f"frames in the loop (default {VIDEO_FRAMES})")
    p.add_argument("--fps", type=finite_float("--fps", 0, 1000, lo_open=True), default=float(VIDEO_FPS), help=f"frames per second (default {VIDEO_FPS})")
    p.add_argument("--grid", type=_grid, default=None, help="COLSxROWS cells (default: near-square; interp: 1x1)")
    p.add_argument("--nrr", type=bounded_int("--nrr", 8, MAX_NRR), default=None, help="neural rendering resolution (default: the model's)")
    p.add_argument("--samples", type=bounded_int("--samples", 0, MAX_DEPTH_SAMPLES), nargs=2, metavar=("COARSE", "IMPORTANCE"), default=None,
                   help="depth samples per ray (default: the model's)")
    p.add_argument("--size", type=bounded_int("--size", 16, 4096), default=None,
                   help=f"panel side in pixels (default: the output's, upscaled (Lanczos) until the video is at "
                        f"least {VIDEO_MIN_SIDE} px on its long side)")
    p.add_argument("--fov-deg", type=finite_float("--fov-deg", 0, 180, lo_open=True, hi_open=True), default=None, help=f"field of view (default {DEFAULT_FOV_DEG}, or "
                   "the --camera file's)")
    p.add_argument("--radius", type=finite_float("--radius", 0, 1000, lo_open=True), default=None,
                   help="camera distance from the world origin (default: the model's; the ray interval follows it)")
    p.add_argument("--yaw-range", type=finite_float("--yaw-range"), default=TURNTABLE_YAW,
                   help=f"turntable yaw amplitude, radians (default {TURNTABLE_YAW})")
    p.add_argument("--pitch-range", type=finite_float("--pitch-range"), default=TURNTABLE_PITCH,
                   help=f"turntable pitch amplitude, radians (default {TURNTABLE_PITCH})")
    p.add_argument("--labels", action=argparse.BooleanOptionalAction, default=None,
                   help="branch names on the panels (default: on with --branch all)")
    p.add_argument("--stochastic", action="store_true", help="EG3D's jittered depth samples (default: linspace)")
    p.add_argument("--quality", type=bounded_int("--quality", 0, 10), default=8, help="MP4 quality 0..10 (default 8)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--out", required=True, type=Path, help="FILE.mp4 or FILE.gif")
    return p


def run(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() not in FORMATS:
        raise UsageError(f"--out must end in {' or '.join(FORMATS)}, got {args.out.name!r}")
    check_output_location(args.out)   # before rendering
    device = resolve_device(args.device)
    model = load_model(args.network, device)
    latents = tuple(latents_from_args(args, model)) if args.latent else None
    center_yaw, center_pitch, fov = 0.0, -0.05, DEFAULT_FOV_DEG
    camera = camera_from_args(args, model)
    if camera is not None:  # orbit around the inverted photo's view, with its focal length
        center_yaw, center_pitch, _, focal = orbit_from_label(camera)
        fov = focal_to_fov(focal)
    spec = VideoSpec(seeds=tuple(args.seeds or ()), latents=latents, mode=args.mode, branch=args.branch,
                     output=args.output, frames=args.frames, fps=args.fps, grid=args.grid,
                     truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff, nrr=args.nrr,
                     samples=tuple(args.samples) if args.samples else None, deterministic=not args.stochastic,
                     panel_size=args.size, fov_deg=args.fov_deg or fov, yaw_range=args.yaw_range,
                     pitch_range=args.pitch_range, center_yaw=center_yaw, center_pitch=center_pitch,
                     labels=args.labels, quality=args.quality, radius=args.radius)
    bar = tqdm(total=args.frames, desc="video", unit="frame")

    def progress(p) -> None:
        bar.update(p.done - bar.n)

    try:
        info = render_video(model, spec, args.out, progress=progress)
    except VideoError as e:
        raise UsageError(str(e)) from None
    finally:
        bar.close()
    print(f"wrote {info.path} ({info.frames} frames, {info.width}x{info.height}, {info.fps:g} fps)")
    return 0
