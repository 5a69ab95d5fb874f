"""``python -m core video``: turntable / 360-degree orbit / latent-interpolation / edit-sweep / before-after videos
(MP4 or GIF) of any branch, or of all branches side by side.

``--session F`` renders a viewer session: its latent with its edits, its camera as the centre of the path, its
render options (unless given here). ``--mode sweep`` moves one direction from -S to +S sigma and back
(``--strength S``; ``--orbit`` turns the camera meanwhile, else it stays at the centre): the direction is
``--direction FILE.json:INDEX``, or the session's edit ``--sweep-edit K`` (default 0), whose strength the sweep
replaces. ``--mode before_after`` shows the latent without and with the edits side by side: the session's edits, or
``--direction`` at ``--strength``. EG3D ``gen_videos.py`` conventions (see core.tools.video): yaw = pi/2 + 0.35 sin,
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
from ..tools.edit.apply import Edit, apply_edits
from ..tools.edit.session import latent_ws, session_camera
from ..tools.inversion import orbit_from_label
from ..tools.video import FORMATS, MODES, OUTPUTS, VideoError, VideoSpec, render_video
from .common import MAX_DEPTH_SAMPLES, MAX_NRR, UsageError, bounded_int, finite_float, resolve_device
from .edit_args import direction_for, session_for
from .latent_args import add_latent_args, camera_from_args, latents_from_args
from .precision_args import add_precision_arg, apply_precision


def _grid(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad grid {text!r} (use COLSxROWS, e.g. 2x2)")
    return int(m.group(1)), int(m.group(2))


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("video", help="turntable, orbit and interpolation videos", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="Trident .pkl or EG3D network pickle")
    add_latent_args(p, multiple=True, session=True)
    p.add_argument("--mode", choices=MODES, default="turntable")
    p.add_argument("--direction", metavar="FILE.json:INDEX", default=None,
                   help="sweep / before_after: the direction (default: the session's edits)")
    p.add_argument("--strength", type=finite_float("--strength", -100, 100), default=3.0, help="sweep: the largest strength S in sigma; "
                   "before_after with --direction: the edit's strength (default 3)")
    p.add_argument("--sweep-edit", type=bounded_int("--sweep-edit", 0), default=0, metavar="K", help="sweep with --session and no --direction: "
                   "which of the session's edits to sweep (default 0)")
    p.add_argument("--orbit", action=argparse.BooleanOptionalAction, default=False,
                   help="sweep: turntable camera while sweeping (default: fixed centre camera)")
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
    add_precision_arg(p)
    p.add_argument("--out", required=True, type=Path, help="FILE.mp4 or FILE.gif")
    return p


def run(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() not in FORMATS:
        raise UsageError(f"--out must end in {' or '.join(FORMATS)}, got {args.out.name!r}")
    check_output_location(args.out)   # before rendering
    if args.mode in ("sweep", "before_after") and args.direction is None and args.session is None:
        raise UsageError(f"--mode {args.mode} needs --direction FILE.json:INDEX (or a --session with edits)")
    if args.strength <= 0 and args.mode == "sweep":
        raise UsageError("--strength must be positive for a sweep")
    device = resolve_device(args.device)
    model = load_model(args.network, device)
    apply_precision(model, args.precision, device)
    latents = tuple(latents_from_args(args, model)) if args.latent else None
    center_yaw, center_pitch, fov = 0.0, -0.05, DEFAULT_FOV_DEG
    camera = camera_from_args(args, model)
    nrr, samples, deterministic = args.nrr, tuple(args.samples) if args.samples else None, not args.stochastic
    edits: tuple[Edit, ...] = ()
    if args.session is not None:
        state = session_for(model, args.session).state
        base, edits = latent_ws(model, state.latent), state.edits
        latents = (base,)
        if state.camera.label is not None:
            camera = session_camera(model, state.camera)
        else:
            center_yaw, center_pitch, fov = state.camera.yaw, state.camera.pitch, state.camera.fov_deg
        r = state.render
        nrr = nrr or r.resolution
        if samples is None and (r.depth_samples or r.importance_samples):
            samples = (r.depth_samples or model.G.cfg.rendering.depth_resolution,
                       r.importance_samples or model.G.cfg.rendering.depth_resolution_importance)
        deterministic = deterministic and r.deterministic
    if camera is not None:  # orbit around the inverted photo's (or the session's) view, with its focal length
        center_yaw, center_pitch, _, focal = orbit_from_label(camera)
        fov = focal_to_fov(focal)
    if latents is None and args.mode in ("sweep", "before_after"):
        latents = tuple(model.ws_from_seed(s, args.trunc, args.trunc_cutoff) for s in args.seeds)
    sweep = None
    if args.mode == "sweep":
        if args.direction is not None:
            sweep = Edit(direction_for(model, args.direction), args.strength)
        elif not 0 <= args.sweep_edit < len(edits):
            raise UsageError(f"the session has {len(edits)} edit(s); no edit {args.sweep_edit} to sweep (or give "
                             "--direction FILE.json:INDEX)")
        else:
            sweep = Edit(edits[args.sweep_edit].direction, args.strength)
        others = tuple(e for e in edits if e.direction != sweep.direction)
        latents = tuple(apply_edits(ws, others) for ws in latents)
    elif args.mode == "before_after":
        after = (Edit(direction_for(model, args.direction), args.strength),) if args.direction else edits
        if not after:
            raise UsageError("--mode before_after: the session has no edits (or give --direction FILE.json:INDEX)")
        if len(latents) != 1:
            raise UsageError("--mode before_after takes one latent (one seed, --latent or --session)")
        latents = (latents[0], apply_edits(latents[0], after))
    elif edits:
        latents = tuple(apply_edits(ws, edits) for ws in latents)
    spec = VideoSpec(seeds=tuple(args.seeds or ()), latents=latents, mode=args.mode, branch=args.branch,
                     output=args.output, frames=args.frames, fps=args.fps, grid=args.grid,
                     truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff, nrr=nrr,
                     samples=samples, deterministic=deterministic, sweep=sweep, sweep_orbit=args.orbit,
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
