"""Command-line entry points of ``python -m training`` (one module per verb).

Each command module exposes ``add_parser(sub) -> argparse.ArgumentParser`` (adds its sub-command to the
``argparse`` sub-parsers ``sub`` and returns it) and ``run(args) -> int`` (the exit status).
``training/__main__.py`` lists the modules in ``COMMANDS``.
"""
