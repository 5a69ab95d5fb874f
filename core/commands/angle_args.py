"""``--yaw/--pitch`` (radians, EG3D's convention) and ``--yaw-deg/--pitch-deg`` (degrees), shared by the commands
that place a render camera; the range rule lives in :func:`core.defaults.checked_yaw_pitch`."""
from __future__ import annotations

import argparse

from ..defaults import checked_yaw_pitch
from .common import UsageError, finite_float


def add_angle_args(p: argparse.ArgumentParser, what: str = "camera") -> None:
    p.add_argument("--yaw", type=finite_float("--yaw"), default=0.0,
                   help=f"{what} yaw offset from frontal, radians (|yaw| <= 2*pi; default 0)")
    p.add_argument("--pitch", type=finite_float("--pitch"), default=0.0,
                   help=f"{what} pitch offset from frontal, radians (|pitch| <= pi/2; default 0)")
    p.add_argument("--yaw-deg", type=finite_float("--yaw-deg"), default=None, metavar="DEG", help="the yaw in degrees (replaces --yaw)")
    p.add_argument("--pitch-deg", type=finite_float("--pitch-deg"), default=None, metavar="DEG",
                   help="the pitch in degrees (replaces --pitch)")


def angles_from_args(args: argparse.Namespace) -> tuple[float, float]:
    """(yaw, pitch) in radians; out-of-range values are a one-line usage error."""
    try:
        return checked_yaw_pitch(args.yaw, args.pitch, args.yaw_deg, args.pitch_deg)
    except ValueError as e:
        raise UsageError(str(e)) from None
