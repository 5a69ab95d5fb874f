"""A private X display (Xvfb + Mesa llvmpipe) for headless screenshots and tests.

EG3D's visualizer needs a real display and fails on servers with "X11: The DISPLAY environment variable is missing".
Trident's ``--screenshot`` mode and the app tests start their own Xvfb instead.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class DisplayError(RuntimeError):
    """No X display could be found or started."""


def _free_display_number(first: int = 90) -> int:
    for n in range(first, first + 200):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise DisplayError("no free X display number in :90-:289")


def _serves(proc: subprocess.Popen, n: int) -> bool:
    """Our Xvfb (not another process that raced us to the same number) owns display :n and accepts clients."""
    try:
        owner = int(Path(f"/tmp/.X{n}-lock").read_text().strip())
    except (OSError, ValueError):
        return False
    return owner == proc.pid and Path(f"/tmp/.X11-unix/X{n}").exists()


def start_xvfb(width: int = 1280, height: int = 800, timeout_s: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Start ``Xvfb :N`` on a free display number; returns (process, ':N') once the server accepts clients."""
    exe = shutil.which("Xvfb")
    if exe is None:
        raise DisplayError("Xvfb not found (install it: apt-get install xvfb libgl1-mesa-dri libglx-mesa0)")
    for attempt in range(8):  # another process may take the same number between the check and the start
        n = _free_display_number(90 + attempt * 7 + os.getpid() % 7)
        # -noreset: without it the server resets whenever its last client disconnects, and a window opened
        # during that reset fails ("X11: Failed to open display").
        proc = subprocess.Popen([exe, f":{n}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp",
                                 "-noreset"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            if _serves(proc, n):
                time.sleep(0.05)  # the socket exists slightly before the server answers
                return proc, f":{n}"
            time.sleep(0.05)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
    raise DisplayError("Xvfb did not start")


def stop_xvfb(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def virtual_display(width: int = 1280, height: int = 800) -> Iterator[str]:
    """Use ``$DISPLAY`` when set, otherwise run a private Xvfb for the duration of the block."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    proc, display = start_xvfb(width, height)
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        os.environ.pop("DISPLAY", None)
        stop_xvfb(proc)
