"""Trident viewer: ``python run_viz.py [--pkl model.pkl] [--device cpu|cuda] [--size WxH]``.

Headless capture (for tests and documentation; starts its own Xvfb when there is no display):
``python run_viz.py [--pkl X] --screenshot out.png [--frames N] [--size WxH]``. See ``app/main.py``.
"""
from __future__ import annotations

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
