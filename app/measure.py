"""Measure the viewer: UI frame rate while renders are in flight, and ms per branch.

``python -m app.measure --pkl MODEL [--seconds 20] [--size 1280x800] [--resolution R]`` opens the real viewer (a
private Xvfb when there is no display), turns on auto-orbit so that every frame asks for a new render, runs the normal
paced frame loop (60 FPS limit) and prints frame-time and render-time statistics.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def measure(pkl: str, seconds: float, size: tuple[int, int], resolution: int, device: str,
            background: bool = True) -> dict:
    from .headless import virtual_display
    with virtual_display(*size):
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
            busy_frames, t_end, drawn0 = [], time.perf_counter() + seconds, v.drawn_frames
            while time.perf_counter() < t_end:
                in_flight = not v.renderer.idle
                t0 = time.perf_counter()
                v.step()
                v.pace()
                if in_flight:
                    busy_frames.append(time.perf_counter() - t0)
            ft = np.asarray(busy_frames) * 1000
            return {
                "frames_with_render_in_flight": len(ft),
                "ui_fps_mean": float(1000 / ft.mean()),
                "frame_ms_median": float(np.median(ft)), "frame_ms_p95": float(np.percentile(ft, 95)),
                "frame_ms_max": float(ft.max()), "frames_drawn": v.drawn_frames - drawn0,
                "branch_ms_median": {b: float(np.median(h)) for b, h in v.branch_ms.items() if h},
                "renders": {b: len(h) for b, h in v.branch_ms.items()},
                "device": v.info.device, "gl": v.window.gl_renderer, "window": f"{size[0]}x{size[1]}",
                "torch_threads": __import__("torch").get_num_threads(), "cpus": os.cpu_count(),
                "render_thread_nice": background, "load_average_1min": os.getloadavg()[0],
            }
        finally:
            v.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m app.measure", description=__doc__)
    p.add_argument("--pkl", required=True)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--size", default="1280x800")
    p.add_argument("--resolution", type=int, default=0, help="neural rendering resolution (0: the model's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-nice", action="store_true", help="keep the render thread at the UI's CPU priority")
    a = p.parse_args()
    import torch
    torch.set_num_threads(a.threads or max(1, (os.cpu_count() or 2) - 1))
    w, h = (int(x) for x in a.size.split("x"))
    for k, val in measure(a.pkl, a.seconds, (w, h), a.resolution, a.device, not a.no_nice).items():
        print(f"{k}: {val:.1f}" if isinstance(val, float) else f"{k}: {val}")


if __name__ == "__main__":
    main()
