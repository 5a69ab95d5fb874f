"""``python -m training <command>``: Trident's training-side commands. Run with ``--help`` for the list.

Commands are modules in ``training/commands`` that expose ``add_parser(sub)`` and ``run(args)``; add one to
``COMMANDS`` to register it (``train`` and ``distill`` join ``dataset`` there). Errors raised as the project's own
``ValueError`` subclasses (``DatasetError``, ``UsageError``, ``ConfigError``, ``CheckpointError``, ...) print one
``error: ...`` line and exit with status 2, like ``python -m core``.
"""
from __future__ import annotations

import sys
from types import ModuleType

from core.commands.common import cli_main

from .commands import bench, dataset, distill, train

COMMANDS: tuple[ModuleType, ...] = (dataset, train, distill, bench)


def main(argv: list[str] | None = None) -> int:
    return cli_main("python -m training", "Trident training commands", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
