"""File names from config labels (one mapping for the runner, the reports and the suite checks, which refuse
labels that collide: :func:`check_file_names`; :func:`check_label`: what a label may hold), and counted
nouns and did-you-mean hints for messages."""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
from typing import Any


def safe_name(text: str) -> str:
    """A file-name-safe version of a config label (never a path: no separators, no dots first).

    Every run of characters outside ``[A-Za-z0-9_.-]`` becomes one ``_``: ``"x/y"`` and ``"x_y"``
    both give ``"x_y"``, which :func:`check_file_names` refuses."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip(".") or "_"


def check_label(text: str | None) -> str | None:
    """A pydantic validator of a suite's name or an entry's ``name``/``alias``, the label its rows, plots and
    report show: refused (``ValueError``) when it holds a control character (a review: a NUL went raw into every
    table, the HTML page and the LaTeX file; a newline split a LaTeX cell), is whitespace only (a blank row), or
    starts or ends with whitespace (``"g "`` and ``"g"`` were two explainers that print alike)."""
    if text is None:
        return text
    # and invisible format characters (a diff review: a zero-width space or a right-to-left override made labels
    # that print alike); not the zero-width joiner of emoji sequences
    bad = next((ch for ch in text if unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cf") and ch != "\u200d"), None)
    if bad is not None:
        what = {"\0": "a NUL", "\n": "a newline", "\t": "a tab", "\r": "a carriage return"}.get(
            bad, f"U+{ord(bad):04X}")
        raise ValueError(f"expected no control character in a name or alias, got {text!r} ({what} at position "
                         f"{text.index(bad) + 1}); it would break the tables and the report")
    if not text.strip():
        raise ValueError(f"expected a name or alias with a visible character, got {text!r}")
    if text != text.strip():
        raise ValueError(f"expected no whitespace at the start or end of a name or alias (it would print like "
                         f"{text.strip()!r}), got {text!r}")
    return text


MAX_FILE_NAME = 255  # bytes of one file or folder name on the usual file systems (ext4, APFS, NTFS: 255 units)


def check_folder_name(name: str) -> str:
    """A pydantic validator of a suite's name, which names the run's default folder ``reports/<safe_name(name)>``:
    refused (``ValueError``, the name cut short) when that folder name is over :data:`MAX_FILE_NAME` bytes (a
    fuzzing review: a 5000-character name passed validate, then run failed with "File name too long")."""
    folder = safe_name(name)
    if len(folder.encode()) > MAX_FILE_NAME:
        raise ValueError(f"expected a name of at most {MAX_FILE_NAME} characters (it names the run's folder, "
                         f"reports/<name>), got a folder name of {len(folder)}: {name[:24]!r}...")
    return name


def check_text(text: str) -> str:
    """A pydantic validator of a suite's ``description``: line breaks and tabs are fine, other control characters
    are refused (a fuzzing review: a NUL went raw into index.html); format characters of ordinary text (a right-to-left
    mark, a soft hyphen) are not (a diff review)."""
    bad = next((ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t"), None)
    if bad is not None:
        raise ValueError(f"expected no control character (U+{ord(bad):04X} at position {text.index(bad) + 1}); it "
                         "would go raw into the report")
    return text


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 channel"``, ``"3 channels"``: a count and its noun for messages (``plural`` defaults to the
    noun + "s": ``counted(2, "class", "classes")``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def did_you_mean(name: str, names: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``names`` to a misspelled ``name``, or ``""``."""
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


MAX_STEM = 180


def check_file_names(suite: Any, source: str, error: type[Exception]) -> None:
    """Refuse labels whose file names collide, also by case alone (one file on macOS and Windows: a review's
    ``Ph`` and ``ph``): within datasets, models or metrics, and across the joined stems ``<dataset>_<model>``
    and ``<dataset>_<model>_<metric>`` of the plots; and stems too long for a file name (more than
    :data:`MAX_STEM` bytes, leaving room for a plot's prefix, a class and the suffix within the usual 255: a
    fuzzing review's 300-character alias failed the run)."""
    def same(name: str, other: str) -> str:
        return (f"map to one file name {name!r}" if name == other else
                f"map to file names {name!r} and {other!r} that differ only by case, one file on macOS and Windows")

    kinds = {"datasets": suite.datasets, "models": suite.models, "metrics": suite.metrics}
    for kind, specs in kinds.items():
        seen: dict[str, int] = {}
        for i, spec in enumerate(specs):
            name = safe_name(spec.label)
            j = seen.setdefault(name.lower(), i)
            if specs[j].label != spec.label:
                raise error(f"{source}: {kind}[{i}]: label {spec.label!r} and {kind}[{j}] {specs[j].label!r} "
                            f"{same(name, safe_name(specs[j].label))} (their plots would overwrite each other); "
                            "give one an alias")
    for combo in (("datasets", "models"), ("datasets", "models", "metrics")):
        stems: dict[str, tuple[tuple[str, ...], str]] = {}
        for picks in itertools.product(*(enumerate(kinds[k]) for k in combo)):
            labels = tuple(spec.label for _, spec in picks)
            stem = "_".join(safe_name(label) for label in labels)
            if len(stem.encode()) > MAX_STEM:
                raise error(f"{source}: {' x '.join(combo)}: labels {' / '.join(labels)} make a plot file name of "
                            f"{len(stem.encode())} bytes before its prefix and suffix (at most {MAX_STEM}); give "
                            "shorter aliases")
            first, other = stems.setdefault(stem.lower(), (labels, stem))
            if first != labels:
                raise error(f"{source}: {' x '.join(combo)}: labels {' / '.join(labels)} and {' / '.join(first)} "
                            f"{same(stem, other).replace('file name', 'plot file name')}; give one an alias")
