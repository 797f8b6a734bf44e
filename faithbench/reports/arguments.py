"""The checks of :func:`~faithbench.reports.writer.build_report`'s arguments, apart from ``writer.py`` to keep it
small: a TypeError or ValueError naming the parameter, as :func:`faithbench.run` gives (a held-out review:
``control=3`` and a control absent from the run were taken silently, dropping every significance test,
``progress="no"`` drew the bars, ``formats="md"`` was read as ``['m', 'd']`` and ``build_report(42)`` said
"expected str, bytes or os.PathLike object, not int")."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["FORMATS", "check_control", "check_formats", "check_report_arguments", "is_true_or_false",
           "run_control"]

FORMATS = ("html", "md", "latex")


def is_true_or_false(value: Any) -> bool:
    """True or False, NumPy's ``np.True_`` too: ``progress`` here, ``progress`` and ``report`` of :func:`faithbench.run`
    (a diff review: np.True_ was "expects True or False, got bool")."""
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool"))


def check_formats(formats: Any) -> tuple[str, ...]:
    """``formats`` as a tuple of :data:`FORMATS`: an iterable of them, or one of them as a str (``"md"``)."""
    if isinstance(formats, str):
        formats = (formats,)  # one format, not its letters
    elif not isinstance(formats, Iterable):
        raise TypeError(f"build_report: formats expects one of {', '.join(map(repr, FORMATS))} or a list of them, "
                        f"got {type(formats).__name__}")
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"build_report: formats: expected report formats among {list(FORMATS)}, got {unknown}")
    return formats


def check_report_arguments(out_dir: Any, control: Any, formats: Any, progress: Any) -> tuple[Path, tuple[str, ...]]:
    """``(out_dir as a Path, formats as a tuple)``, or a TypeError (or ValueError) naming the parameter:
    ``out_dir`` a str or a path, ``control`` a non-blank str or None, ``formats`` as :func:`check_formats`
    takes it, ``progress`` True or False."""
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"build_report: out_dir expects a run's folder (a str or a path), got {type(out_dir).__name__}")
    if control is not None and not isinstance(control, str):
        raise TypeError(f"build_report: control expects the label of one of the run's explainers (a str such as "
                        f"'random') or None for the run's own, got {type(control).__name__}")
    if isinstance(control, str) and not control.strip():
        raise ValueError("build_report: control: expected the label of one of the run's explainers, got an empty "
                         "string (omit it for the run's own)")
    if not is_true_or_false(progress):
        raise TypeError(f"build_report: progress expects True or False, got {type(progress).__name__}")
    return Path(out_dir), check_formats(formats)


def check_control(control: str | None, results: pd.DataFrame) -> None:
    """A ValueError when ``control`` (given, not the run's own) names no explainer with rows in ``results``: every
    significance test would be dropped; it names the explainers present and the closest ones."""
    if control is None or results.empty or "explainer" not in results.columns:
        return
    present = sorted(str(e) for e in results["explainer"].dropna().unique())
    if control in present:
        return
    close = difflib.get_close_matches(control, present, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    raise ValueError(f"build_report: control {control!r} is no explainer of this run, so no explainer could be "
                     f"tested against it; {hint}its explainers: {', '.join(present)}")


def run_control(manifest: dict) -> str:
    """The run's control explainer, as recorded in its manifest (the suite's ``control:``);
    ``random`` for a manifest without one (written before ``control:`` existed)."""
    return str(manifest.get("control") or (manifest.get("suite") or {}).get("control") or "random")
