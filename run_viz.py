"""Trident viewer entry point: ``python run_viz.py [--pkl model.pkl] [--device cpu|cuda]``.

The desktop viewer (app/) is not part of this build yet. Until it lands, this entry point says so and points
to the command-line renderer instead of opening a window.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python run_viz.py", description=__doc__)
    parser.add_argument("--pkl", help="Trident .pkl or EG3D network pickle")
    parser.add_argument("--device", default="auto")
    parser.parse_args(argv)
    print("error: the viewer is not built yet; render with: python -m core samples --network PKL --seeds 0-3 "
          "--outdir out", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
