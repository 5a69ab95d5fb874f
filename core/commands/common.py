"""Helpers shared by the ``python -m core`` commands: argument parsing, devices, image conversion."""
from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

import torch
from ..errors import TridentError


class UsageError(TridentError):
    """Bad command-line input; reported as one line, exit code 2."""


MAX_SEED = 2 ** 32 - 1  # numpy's RandomState (EG3D's z convention) takes 32-bit seeds
MAX_SEEDS = 100_000    # seeds in one list: 100k images is a long night already; a longer list is a typo


def parse_seeds(text: str, max_count: int = MAX_SEEDS) -> list[int]:
    """'0-3' -> [0, 1, 2, 3]; '1,5,7-8' -> [1, 5, 7, 8]. Seeds are 0..2**32-1; at most ``max_count`` of them
    (counted before the list is built, so '0-300000000' costs nothing)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        single = re.fullmatch(r"\d+", part)
        if not (m or single):
            raise UsageError(f"bad seed list {text[:80]!r} (use e.g. 0-3 or 1,5,7-9)")
        a, b = (int(m.group(1)), int(m.group(2))) if m else (int(part), int(part))
        for v in (a, b):
            if v > MAX_SEED:
                raise UsageError(f"seed {v} is above the largest seed {MAX_SEED} (seeds are 32-bit)")
        if b < a:
            raise UsageError(f"bad seed range {part!r}: end before start")
        if len(seeds) + (b - a + 1) > max_count:
            raise UsageError(f"too many seeds in {text[:80]!r}: {len(seeds) + b - a + 1}, at most {max_count} per run")
        seeds.extend(range(a, b + 1))
    if not seeds:
        raise UsageError("no seeds given")
    return seeds


def seeds_arg(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fmt(v: float | int) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"not within {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"not {'above' if lo_open else 'at least'} {_fmt(lo)}"
    return f"not {'below' if hi_open else 'at most'} {_fmt(hi)}"


def finite_float(name: str, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                 hi_open: bool = False):
    """argparse ``type=`` for option ``name``: a finite float (no nan/inf) within [lo, hi] (``lo_open`` /
    ``hi_open``: that end excluded), e.g. ``finite_float("--fov-deg", 0, 180, lo_open=True, hi_open=True)``.
    argparse puts the option's name in front of the message: ``argument --fov-deg: 0 is not within (0, 180)``."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if ((lo is not None and (v < lo or (lo_open and v == lo)))
                or (hi is not None and (v > hi or (hi_open and v == hi)))):
            raise argparse.ArgumentTypeError(f"{v:g} is {_range_text(lo, hi, lo_open, hi_open)}")
        return v
    parse.__name__ = f"{name} number"  # argparse's fallback message names the type
    return parse


def bounded_int(name: str, lo: int | None = None, hi: int | None = None):
    """argparse ``type=`` for option ``name``: an integer within [lo, hi] (see :func:`finite_float`)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is {_range_text(lo, hi, False, False)}")
        return v
    parse.__name__ = f"{name} integer"
    return parse


# Render-side option bounds shared by the commands and the viewer.
MAX_NRR = 1024          # neural rendering resolution (rays per side), as core.limits bounds a model's own
MAX_DEPTH_SAMPLES = 1024


def fixtures_dir() -> Path:
    """The reference fixtures (EG3D and Mimic3D network pickles with their expected outputs): ``$TRIDENT_FIXTURES``,
    by default ``../shared/fixtures`` beside the checkout. The tests and ``bench``'s default network read them."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
    return Path(os.environ.get("TRIDENT_FIXTURES") or default)


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was requested but no CUDA device is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UsageError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N)")
    return torch.device(name)


def int_list(text: str, what: str, minimum: int) -> list[int]:
    """``--what 1,8`` -> [1, 8]: distinct integers, each at least ``minimum``."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            v = int(part)
        except ValueError:
            raise UsageError(f"--{what}: {part!r} is not an integer (use e.g. 1,8)") from None
        if v < minimum:
            raise UsageError(f"--{what}: {v} is below the minimum {minimum}")
        if v not in out:
            out.append(v)
    return out


def choice_list(text: str, what: str, choices) -> list[str]:
    """``--what a,b`` -> ['a', 'b']: distinct values, each one of ``choices``."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if part not in choices:
            raise UsageError(f"--{what}: unknown value {part!r} (choose from {', '.join(choices)})")
        if part not in out:
            out.append(part)
    return out


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (``PROG: error: ...; see PROG --help``) and exit status 2,
    like every other refused input; the full usage stays in ``--help``. Subcommand parsers inherit the class."""

    def error(self, message: str):
        import sys

        line = " ".join(f"{self.prog}: error: {message}".split())
        sys.stderr.write(f"{line} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser(prog: str, description: str, commands) -> argparse.ArgumentParser:
    """One subcommand per module; each module has ``add_parser(sub) -> parser`` and ``run(args) -> int``."""
    parser = OneLineParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in commands:
        module.add_parser(sub).set_defaults(_run=module.run)
    return parser


def cli_main(prog: str, description: str, commands, argv: list[str] | None = None) -> int:
    args = build_parser(prog, description, commands).parse_args(argv)
    return run_cli(args._run, args)


def run_cli(fn, args) -> int:
    """Run a command; the project's own errors become one ``error: ...`` line on stderr and exit status 2."""
    import sys

    try:
        return int(fn(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except TridentError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
