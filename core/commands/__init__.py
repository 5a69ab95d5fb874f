"""Command-line entry points of ``python -m core`` (one module per verb)."""
