"""``python -m core <command>``: Trident's inference commands. Run with ``--help`` for the list."""
from __future__ import annotations

import sys

from .commands import align, bench, calibrate_pose, directions, edit, invert, mesh, metrics, pack, samples, video
from .commands.common import cli_main

COMMANDS = (samples, bench, metrics, video, mesh, invert, pack, align, calibrate_pose, directions, edit)


def main(argv: list[str] | None = None) -> int:
    return cli_main("python -m core", "Trident inference commands", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
