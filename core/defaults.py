"""The defaults that the viewer (``run_viz.py``) and the command line (``python -m core ...``) share, in one place.

Every option that exists on both sides reads its default here, so a headless command and the app show the same
thing for the same inputs. docs/defaults.md is the table of these values and their units; a test
(``tests/core/test_defaults.py``) keeps the table, the CLI help and the app's state in step with this module.

Units: angles on the command line are radians (``--yaw/--pitch``, EG3D's ``gen_samples.py`` convention; the
``--yaw-deg/--pitch-deg`` forms take degrees); the app shows degrees and stores radians.
"""
from __future__ import annotations

import math

# -- latents --------------------------------------------------------------------------------------------------
TRUNCATION_PSI = 0.7          # EG3D's README examples (--trunc=0.7); metrics keep psi = 1 (their protocol)
TRUNCATION_CUTOFF = 14        # number of ws that truncation applies to (EG3D gen_samples.py)

# -- rendering ------------------------------------------------------------------------------------------------
DETERMINISTIC = True          # linspace depth samples: no per-frame speckle (EG3D jitters; --no-deterministic)
PRECISION = "fp32"            # exact (EG3D's outputs to ~1e-5), so a saved session re-renders the viewer's pixels;
                              # "auto" / "bf16" (core.precision) are ~2x faster on 512 px models on AVX512-BF16/AMX

# -- cameras --------------------------------------------------------------------------------------------------
CAMERA_RANGE_DEG = (35.0, 15.0)  # training camera range, +- yaw and pitch from frontal, when a model does not
#                                 record its own: EG3D's FFHQ poses, and Trident's synthetic dataset (clipped to it)
MAX_YAW_RAD = 2 * math.pi     # a larger --yaw is almost surely degrees given as radians: an error, not a back view
MAX_PITCH_RAD = math.pi / 2   # pitch offsets beyond +-90 degrees flip the look-at frame

# -- inversion ------------------------------------------------------------------------------------------------
INVERT_STEPS = 500            # latent optimisation steps
INVERT_LOSS = "mse"           # "mse" needs no ImageNet weights; "lpips" needs VGG16 (core/metrics/lpips.py)
PTI_STEPS = 350               # pivotal tuning steps (Roich et al. 2022, Sec. 4: 350)

# -- mesh -----------------------------------------------------------------------------------------------------
MESH_GRID = 256               # N: density samples on an N^3 grid over the tri-plane box
MESH_LEVEL = 10.0             # iso level on raw density (EG3D's extract_shapes)

# -- video ----------------------------------------------------------------------------------------------------
VIDEO_FRAMES = 120
VIDEO_FPS = 30
VIDEO_MIN_SIDE = 512          # panels are upscaled (Lanczos) until the video's long side is at least this
TURNTABLE_YAW = 0.35          # turntable swing, radians (EG3D gen_videos.py: yaw = pi/2 + 0.35 sin)
TURNTABLE_PITCH = 0.25        # radians (pitch = pi/2 - 0.05 + 0.25 cos)


def checked_yaw_pitch(yaw: float, pitch: float, yaw_deg: float | None = None,
                      pitch_deg: float | None = None) -> tuple[float, float]:
    """The render camera's (yaw, pitch) offsets in radians from ``--yaw/--pitch`` (radians) or
    ``--yaw-deg/--pitch-deg`` (degrees, which win when given). Raises ValueError with a one-line message when
    a value is out of range (|yaw| > 2 pi rad, |pitch| > pi/2 rad): 30 given as radians is not a back view."""
    if yaw_deg is not None:
        yaw = math.radians(yaw_deg)
    elif abs(yaw) > MAX_YAW_RAD:
        raise ValueError(f"--yaw {yaw:g} is in radians and above 2*pi; for degrees use --yaw-deg {yaw:g}")
    if pitch_deg is not None:
        pitch = math.radians(pitch_deg)
    elif abs(pitch) > MAX_PITCH_RAD:
        raise ValueError(f"--pitch {pitch:g} is in radians and beyond pi/2; for degrees use --pitch-deg {pitch:g}")
    if abs(yaw) > MAX_YAW_RAD:
        raise ValueError(f"yaw {math.degrees(yaw):g} degrees is beyond +-360")
    if abs(pitch) > MAX_PITCH_RAD:
        raise ValueError(f"pitch {math.degrees(pitch):g} degrees is beyond +-90")
    return yaw, pitch
