"""The project's error base and the one-line form of an exception.

Every error whose message is meant for the user (a bad file, a bad option, a branch the model lacks) derives from
:class:`TridentError`; the command-line front ends print such errors as one line without a traceback.
"""
from __future__ import annotations

from typing import Any

__all__ = ["TridentError", "CheckpointError", "first_line"]


class TridentError(ValueError):
    """An error with a message for the user, on one line (a ``ValueError``, so callers may catch either)."""


class CheckpointError(TridentError):
    """A model file cannot be loaded (missing, corrupt, unsupported, or inconsistent).

    The message is always a single line (text taken from the file, such as dict keys or paths, may contain
    line breaks; the CLI prints ``error: <message>`` as exactly one line).
    """

    def __init__(self, *args: Any) -> None:
        if args and isinstance(args[0], str):
            args = (" ".join(part.strip() for part in args[0].splitlines() if part.strip()), *args[1:])
        super().__init__(*args)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``str(exc)``, stripped; ``""`` when the message is empty."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return ""
