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

from .commands import dataset, train

COMMANDS: tuple[ModuleType, ...] = (dataset, train)
PROJECT_PACKAGES = ("core", "training", "app")


def build_parser(commands: tuple[ModuleType, ...] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description="Trident training commands")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in commands:
        module.add_parser(sub).set_defaults(_run=module.run)
    return parser


def is_project_error(e: BaseException) -> bool:
    """A ValueError subclass defined by this project: its message is meant for the user, on one line."""
    return isinstance(e, ValueError) and type(e).__module__.split(".")[0] in PROJECT_PACKAGES


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except ValueError as e:
        if not is_project_error(e):
            raise
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
