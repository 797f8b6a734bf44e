"""File names from config labels (one mapping for the runner, the reports and the suite checks), and
counted nouns and did-you-mean hints for messages."""

from __future__ import annotations

import difflib
import re


def safe_name(text: str) -> str:
    """A file-name-safe version of a config label (never a path: no separators, no dots first).

    Every run of characters outside ``[A-Za-z0-9_.-]`` becomes one ``_``: ``"x/y"`` and ``"x_y"``
    both give ``"x_y"``, which :func:`faithbench.config_checks.check_file_names` refuses."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip(".") or "_"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 channel"``, ``"3 channels"``: a count and its noun for messages (``plural`` defaults to the
    noun + "s": ``counted(2, "class", "classes")``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def did_you_mean(name: str, names: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``names`` to a misspelled ``name``, or ``""``."""
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
