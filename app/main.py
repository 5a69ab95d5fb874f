"""Command line of the viewer: ``python run_viz.py [--pkl X | --session F] [--device D] [--mesh GRID]
[--screenshot out.png [--frames N] [--size WxH]]``.
Bad input -> one ``error: ...`` line and a non-zero exit status, never a traceback."""
from __future__ import annotations

import argparse
import os
import sys
import time
import math
from pathlib import Path

from core.commands.angle_args import add_angle_args
from core.commands.common import OneLineParser, bounded_int, finite_float
from core.defaults import MESH_LEVEL, PRECISION, checked_yaw_pitch
from core.errors import TridentError

from .orbit import PITCH_LIMIT, RADIUS_RANGE
from .state import VIEWER_PRECISIONS, VIEWS
from .widgets.latent import MAX_SEED  # the seed field is a 32-bit signed int

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXIT_USAGE, EXIT_FAILED = 2, 1


class UsageError(TridentError):
    """Bad command-line input."""


def default_model() -> Path:
    """The bundled model: ``assets/default.pkl``, else the only ``.pkl`` in ``assets/``."""
    preferred = ASSETS / "default.pkl"
    if preferred.is_file():
        return preferred
    found = sorted(ASSETS.glob("*.pkl"))
    if not found:
        raise UsageError(f"no bundled model in {ASSETS}/ yet; pass one with --pkl PATH")
    return found[0]


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 1280x800, got {text!r}") from None
    if not (320 <= w <= 8192 and 240 <= h <= 8192):
        raise UsageError(f"--size {w}x{h} is out of range (320x240 to 8192x8192)")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python run_viz.py", description="Trident viewer: every branch of a 3D-aware "
                                "GAN side by side, live.")
    p.add_argument("--pkl", help="Trident .pkl, EG3D or Mimic3D network pickle (default: the bundled model)")
    p.add_argument("--session", metavar="JSON", help="reopen a session saved by the viewer (its model, latent, "
                   "camera, edits and render options; --pkl overrides its model file)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--precision", choices=VIEWER_PRECISIONS, default=PRECISION,
                   help=f"number type of the renders (default {PRECISION}: exact); bf16 is about 2x faster for 512 px "
                        "models on a CPU with AVX512-BF16 or AMX; auto picks bf16 where the device has it (Render panel)")
    p.add_argument("--size", default="1280x800", help="window size WxH (default 1280x800)")
    p.add_argument("--screenshot", metavar="PNG", help="headless capture: render, save the window as PNG, exit")
    p.add_argument("--frames", type=bounded_int("--frames", 1, 100_000), default=3,
                   help="with --screenshot: frames to run at least; the app also waits until every pane shows a "
                        "finished render (default 3)")
    p.add_argument("--timeout", type=finite_float("--timeout", 0, lo_open=True), default=600.0, help="with --screenshot: give up after this many seconds")
    p.add_argument("--threads", type=bounded_int("--threads", 0, 1024), default=0, help="torch CPU threads (default: all cores but one)")
    p.add_argument("--view", default="rgb", choices=VIEWS, help="what the panes show at start (default rgb)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, MAX_SEED), default=0, help="latent seed at start (default 0)")
    add_angle_args(p, "start camera")   # radians like python -m core samples; --yaw-deg/--pitch-deg in degrees
    p.add_argument("--mesh", type=int, default=0, metavar="GRID",
                   help="once the model is loaded, extract the start latent's mesh on a GRID^3 grid and open the mesh "
                        "pane (with --screenshot the capture waits for it)")
    p.add_argument("--radius", type=finite_float("--radius"), default=None,
                   help="start camera distance (default: the model's; the wheel zooms; the ray interval follows it)")
    p.add_argument("--outdir", default=None, metavar="DIR",
                   help="where screenshots, videos, meshes and inversions go (default: $TRIDENT_OUTDIR, else "
                        "~/.local/share/trident)")
    p.add_argument("--mesh-level", type=finite_float("--mesh-level"), default=MESH_LEVEL,
                   help=f"iso level of --mesh (raw density; default {MESH_LEVEL:g})")
    return p


def check_model_path(path: str) -> str:
    """An existing regular file (directories, FIFOs, devices are refused; :func:`core.files.checkpoint.check_model_file`)."""
    from core.errors import CheckpointError
    from core.files.checkpoint import check_model_file
    try:
        check_model_file(path)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    return path


def mesh_widget(viewer):
    from .widgets.mesh import MeshWidget
    return next(w for w in viewer.widgets if isinstance(w, MeshWidget))


def request_start_mesh(viewer, grid: int, level: float) -> None:
    """Extract the start latent's mesh as soon as the model is loaded (``--mesh``); the mesh pane opens with it."""
    w = mesh_widget(viewer)
    w.resolution, w.level = grid, level
    before = viewer.pending_after_load   # e.g. --session: show it first, then extract its mesh

    def after_load() -> None:
        if before is not None:
            before()
        w.extract()
    viewer.pending_after_load = after_load


def start_mesh_status(viewer) -> tuple[bool, str | None]:
    """(shown, error) of the ``--mesh`` extraction: shown once its result is in the mesh pane."""
    task = mesh_widget(viewer).task
    if task is None or not task.done:
        return False, None
    if task.error:
        return False, task.error
    return viewer.mesh_view is not None and viewer.mesh_view.n_faces > 0, None


def reopen_session(viewer, path: str) -> None:
    """Show the session once its model is loaded (warnings, e.g. a changed model file, go to stderr too)."""
    def after_load() -> None:
        w = viewer.session_widget
        w.apply(path)
        for line in ([w.error] if w.error else []) + [f"warning: {x}" for x in w.warnings]:
            print(line if line.startswith("warning") else f"error: {line}", file=sys.stderr)
    viewer.pending_after_load = after_load


def screenshot(viewer, out: str, frames: int, timeout: float, mesh: bool = False) -> int:
    """Run frames until every pane (and the ``mesh`` pane when one was asked for) shows a finished render, and at
    least ``frames``, then save the window."""
    from core.files.image_io import save_png
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        if viewer.info is None and viewer.load_error is not None and viewer.renderer.idle:
            print(f"error: {viewer.load_error}", file=sys.stderr)
            return EXIT_FAILED
        mesh_shown, mesh_error = start_mesh_status(viewer) if mesh else (True, None)
        if mesh_error:
            print(f"error: mesh: {mesh_error}", file=sys.stderr)
            return EXIT_FAILED
        ready = n + 1 >= frames and viewer.settled() and mesh_shown
        shot = viewer.step(capture=ready)
        n += 1
        if ready:
            save_png(out, shot)
            print(f"saved {out} ({shot.shape[1]}x{shot.shape[0]}, {n} frames)")
            return 0
        if time.monotonic() > deadline:
            print(f"error: renders did not finish within {timeout:.0f} s", file=sys.stderr)
            return EXIT_FAILED
        if not viewer.renderer.idle or not mesh_shown:
            time.sleep(0.01)  # leave the CPU to the render thread and the mesh task


def run(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    session = None
    if args.session:
        from core.tools.edit.session import SessionFileError, load_session
        try:
            session = load_session(args.session)
        except SessionFileError as e:
            raise UsageError(str(e)) from None
    if args.pkl:
        path = check_model_path(args.pkl)
    elif session is not None:
        if not os.path.isfile(session.model_path):
            raise UsageError(f"session {os.path.basename(args.session)}: its model {session.model_path} is not there; "
                             "give the model with --pkl")
        path = session.model_path
    else:
        path = str(default_model())
    if args.screenshot and not args.screenshot.lower().endswith(".png"):
        raise UsageError("--screenshot must name a .png file")
    if args.frames < 1:
        raise UsageError("--frames must be at least 1")
    if args.seed < 0:
        raise UsageError("--seed must be >= 0")
    try:
        yaw, pitch = checked_yaw_pitch(args.yaw, args.pitch, args.yaw_deg, args.pitch_deg)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if abs(pitch) > PITCH_LIMIT:
        raise UsageError(f"the start pitch must be within +-{math.degrees(PITCH_LIMIT):.0f} degrees")
    args.start_camera = (yaw, pitch)
    if args.radius is not None and not RADIUS_RANGE[0] <= args.radius <= RADIUS_RANGE[1]:
        raise UsageError(f"--radius must be in [{RADIUS_RANGE[0]:g}, {RADIUS_RANGE[1]:g}], got {args.radius:g}")
    if args.mesh and not 16 <= args.mesh <= 512:
        raise UsageError("--mesh must be a grid size from 16 to 512")
    import torch
    if args.device != "auto" and not (args.device == "cpu" or args.device.startswith("cuda")):
        raise UsageError(f"--device must be auto, cpu or cuda[:N], got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) - 1))  # one core stays with the UI
    from .headless import DisplayError, virtual_display
    from .window import WindowError
    try:
        if args.screenshot:
            with virtual_display(*size):
                return _run_viewer(args, size, path)
        return _run_viewer(args, size, path)
    except (DisplayError, WindowError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED


def _run_viewer(args: argparse.Namespace, size: tuple[int, int], path: str) -> int:
    from .viewer import Viewer
    viewer = Viewer(width=size[0], height=size[1], device=args.device,
                    fixed_dt=1 / 60 if args.screenshot else None)
    try:
        viewer.state.render.view = args.view
        viewer.state.render.precision = args.precision
        viewer.state.latent.seed = args.seed
        viewer.initial_camera = args.start_camera
        viewer.initial_radius = args.radius
        if args.outdir:
            viewer.outdir = os.path.abspath(os.path.expanduser(args.outdir))
        if args.session:
            reopen_session(viewer, args.session)
        if args.mesh:
            request_start_mesh(viewer, args.mesh, args.mesh_level)
        viewer.open_model(path)
        if args.screenshot:
            return screenshot(viewer, args.screenshot, args.frames, args.timeout, mesh=bool(args.mesh))
        return viewer.run(exit_on_load_error=True)
    finally:
        viewer.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
