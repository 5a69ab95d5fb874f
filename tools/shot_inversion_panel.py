"""Retake ``docs/inversion_panel.png``: the viewer's Inversion panel with two photos of one person (scikit-image's
astronaut and its mirror image, dropped on the window), each photo's faces, crop and head-pose gizmo, after a short
inversion (one latent, one camera per photo) and "Paste back" on the selected photo.

    python tools/shot_inversion_panel.py [--network assets/default.pkl] [--out docs/inversion_panel.png]
        [--steps 20] [--fast-steps 20] [--size 1100x1850]

Runs its own Xvfb when ``DISPLAY`` is not set. The drop goes through the window's GLFW drop callback.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_until(v, cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        v.step()
        time.sleep(0.02)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", default=str(ROOT / "assets" / "default.pkl"))
    p.add_argument("--out", default=str(ROOT / "docs" / "inversion_panel.png"))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--fast-steps", type=int, default=20)
    p.add_argument("--size", default="1100x1850")
    args = p.parse_args(argv)
    width, height = (int(x) for x in args.size.split("x"))
    proc = None
    if not os.environ.get("DISPLAY"):
        from app.headless import start_xvfb
        proc, os.environ["DISPLAY"] = start_xvfb(width, height)
    from skimage import data

    from app.model_backend import ModelBackend
    from app.viewer import Viewer
    tmp = Path(tempfile.mkdtemp())
    img = data.astronaut()
    photos = [tmp / "astronaut.png", tmp / "mirrored.png"]
    Image.fromarray(img).save(photos[0])
    Image.fromarray(np.ascontiguousarray(img[:, ::-1])).save(photos[1])
    v = Viewer(loader=lambda path: ModelBackend.open(path, "cpu", v.bank), width=width, height=height,
               fixed_dt=1 / 60)
    try:
        v.open_model(args.network)
        run_until(v, v.settled, 300)
        w = v.inversion_widget
        from imgui_bundle import imgui
        real_header = imgui.collapsing_header

        def only_inversion(label, *a):   # the other panels collapsed for the shot (the sidebar scrolls)
            imgui.set_next_item_open(label == "Inversion")
            return real_header(label, *a)
        imgui.collapsing_header = only_inversion
        v.step()
        imgui.collapsing_header = real_header
        v.window._on_drop(v.window.handle, [str(x) for x in photos])
        run_until(v, lambda: not w.loads and len(w.photos) == 2, 300)
        w.selected = 0
        w.steps, w.fast_steps, w.space, w.lpips = args.steps, args.fast_steps, 1, False
        task = w.start()
        run_until(v, lambda: task.done, 1200)
        if task.error:
            raise SystemExit(task.error)
        v.step()
        w.paste_back()
        run_until(v, v.settled, 300)
        for _ in range(3):
            v.step()
        shot = v.step(capture=True)
        Image.fromarray(shot).save(args.out)
        o = w.outcome
        print(f"wrote {args.out}; PSNR {o.psnr:.2f} dB; cameras (yaw, pitch deg): "
              + ", ".join(f"({np.degrees(c[0]):.1f}, {np.degrees(c[1]):.1f})" for c in o.cameras)
              + "; estimates: " + ", ".join(f"({np.degrees(e.yaw):.1f}, {np.degrees(e.pitch):.1f})" for e in w.photos))
    finally:
        v.close()
        if proc is not None:
            from app.headless import stop_xvfb
            stop_xvfb(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
