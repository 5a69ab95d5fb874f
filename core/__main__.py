"""``python -m core <command>``: Trident's inference commands. Run with ``--help`` for the list."""
from __future__ import annotations

import argparse
import sys

from .commands import bench, metrics, samples


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Trident inference commands")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (samples, bench, metrics):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .commands.common import run_cli

    args = build_parser().parse_args(argv)
    return run_cli(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
