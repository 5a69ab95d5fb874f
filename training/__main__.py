"""``python -m training <command>``: Trident's training-side commands. Run with ``--help`` for the list.

Commands are modules in ``training/commands`` that expose ``add_parser(sub)`` and ``run(args)``; add one to
``COMMANDS`` to register it (``train`` and ``distill`` join ``dataset`` there). Errors raised as the project's own
``ValueError`` subclasses (``DatasetError``, ``UsageError``, ``ConfigError``, ``CheckpointError``, ...) print one
``error: ...`` line and exit with status 2, like ``python -m core``.
"""
from __future__ import annotations

import argparse
import sys
from types import ModuleType

from core.commands.common import run_cli

from .commands import dataset, train

COMMANDS: tuple[ModuleType, ...] = (dataset, train)


def build_parser(commands: tuple[ModuleType, ...] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description="Trident training commands")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in commands:
        module.add_parser(sub).set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(args._run, args)


if __name__ == "__main__":
    sys.exit(main())
