"""Measure the viewer: UI frame rate while renders are in flight, ms per branch, and CPU time per UI frame.

``python -m app.measure --pkl MODEL [--seconds 20] [--size 1280x800] [--resolution R]`` opens the real viewer (a
private Xvfb when there is no display), turns on auto-orbit so that every frame asks for a new render (the slowest
case: every frame changes, so every frame is drawn), runs the normal paced frame loop (60 FPS limit) and prints
frame-interval and render-time statistics. On a shared machine the frame rate depends on the other load, so it
also prints the CPU time one UI frame costs (this process minus the render thread, plus the Xvfb server we run):
the frame rate a free core would sustain is about 1000 / that.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process (or one of its threads) from /proc (Linux)."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * TICK_S
    except (OSError, IndexError, ValueError):
        return float("nan")


def _loop(v, seconds: float) -> dict:
    busy, t_end, drawn0 = [], time.perf_counter() + seconds, v.drawn_frames
    while time.perf_counter() < t_end:
        in_flight = not v.renderer.idle
        t0 = time.perf_counter()
        v.step()
        v.pace()
        if in_flight:
            busy.append(time.perf_counter() - t0)
    ft = np.asarray(busy) * 1000
    return {"frames_with_render_in_flight": len(ft), "ui_fps_mean": float(1000 / ft.mean()),
            "frame_interval_ms_median": float(np.median(ft)), "frame_interval_ms_p95": float(np.percentile(ft, 95)),
            "frame_interval_ms_max": float(ft.max()), "frames_drawn": v.drawn_frames - drawn0}


def measure(pkl: str, seconds: float, size: tuple[int, int], resolution: int, device: str,
            background: bool = True) -> dict:
    from .headless import start_xvfb, stop_xvfb
    xvfb = None
    if not os.environ.get("DISPLAY"):
        xvfb, os.environ["DISPLAY"] = start_xvfb(*size)
    from .viewer import Viewer
    v = Viewer(width=size[0], height=size[1], device=device, background_renders=background)
    try:
        v.open_model(pkl)
        while v.info is None:
            if v.load_error:
                raise SystemExit(f"error: {v.load_error}")
            v.step()
            v.pace()
        v.state.render.resolution = resolution
        v.state.camera.auto_orbit = True
        pid, tid = os.getpid(), v.renderer._thread.native_id
        cpu0 = (cpu_seconds(pid), cpu_seconds(pid, tid), cpu_seconds(xvfb.pid) if xvfb else 0.0)
        out = _loop(v, seconds)
        cpu1 = (cpu_seconds(pid), cpu_seconds(pid, tid), cpu_seconds(xvfb.pid) if xvfb else 0.0)
        ui_cpu = (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1]) + (cpu1[2] - cpu0[2])
        out.update({
            "ui_cpu_ms_per_drawn_frame": 1000 * ui_cpu / max(out["frames_drawn"], 1),
            "render_thread_cpu_s": cpu1[1] - cpu0[1],
            "branch_ms_median": {b: round(float(np.median(h)), 1) for b, h in v.branch_ms.items() if h},
            "renders": {b: len(h) for b, h in v.branch_ms.items()},
            "device": v.info.device, "gl": v.window.gl_renderer, "window": f"{size[0]}x{size[1]}",
            "torch_threads": __import__("torch").get_num_threads(), "cpus": os.cpu_count(),
            "render_thread_nice": background, "load_average_1min": os.getloadavg()[0],
        })
        return out
    finally:
        v.close()
        if xvfb is not None:
            stop_xvfb(xvfb)
            os.environ.pop("DISPLAY", None)


def branch_timings(pkl: str, device: str, repeats: int = 3, resolution: int = 0) -> dict:
    """ms per branch as the viewer renders: a new latent (mapping + backbone + render) and a camera move with the
    tri-planes cached; medians of ``repeats`` (different seeds / yaws), no UI running."""
    from .model_backend import ModelBackend
    from .requests import CameraSpec, LatentSpec, RenderRequest
    b = ModelBackend.open(pkl, device)
    out = {}
    for branch in b.info.branches:
        new, moved = [], []
        for i in range(repeats + 1):   # the first round warms up
            req = RenderRequest(latent=LatentSpec(seed=100 + i), resolution=resolution or None,
                                branches=b.info.branches)
            t_new = b.render(req, branch).render_ms
            req = RenderRequest(latent=req.latent, camera=CameraSpec(yaw=0.2), resolution=resolution or None)
            t_moved = b.render(req, branch).render_ms
            if i:
                new.append(t_new)
                moved.append(t_moved)
        out[branch] = {"new_latent_ms": round(float(np.median(new)), 1),
                       "camera_move_ms": round(float(np.median(moved)), 1)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m app.measure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pkl", required=True)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--size", default="1280x800")
    p.add_argument("--resolution", type=int, default=0, help="neural rendering resolution (0: the model's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-nice", action="store_true", help="keep the render thread at the UI's CPU priority")
    p.add_argument("--branches-only", action="store_true", help="only time each branch's renders (no window)")
    a = p.parse_args()
    import torch
    torch.set_num_threads(a.threads or max(1, (os.cpu_count() or 2) - 1))
    if a.branches_only:
        for branch, t in branch_timings(a.pkl, a.device, resolution=a.resolution).items():
            print(f"{branch}: {t}")
        print(f"load_average_1min: {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}")
        return
    w, h = (int(x) for x in a.size.split("x"))
    for k, val in measure(a.pkl, a.seconds, (w, h), a.resolution, a.device, not a.no_nice).items():
        print(f"{k}: {val:.1f}" if isinstance(val, float) else f"{k}: {val}")


if __name__ == "__main__":
    main()
