"""File names from config labels: one mapping for the runner, the reports and the suite checks."""

from __future__ import annotations

import re


def safe_name(text: str) -> str:
    """A file-name-safe version of a config label (never a path: no separators, no dots first).

    Every run of characters outside ``[A-Za-z0-9_.-]`` becomes one ``_``: ``"x/y"`` and ``"x_y"``
    both give ``"x_y"``, which :func:`faithbench.config_checks.check_file_names` refuses."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip(".") or "_"
