"""What a run folder's tidy tables must hold for ``faithbench report``, beyond being there and
readable (:func:`faithbench.reports.writer.read_inputs`): the row counts the run recorded in
``manifest.json`` (``rows``; a folder written before that record is not checked) and the key
columns of the tables the report joins on or reads. A table truncated to its header, emptied or
given other columns would otherwise drop the model-at-chance marks, the strata, the reliability
marks (‡), the curves or the skipped cells and undefined samples (a held-out review: a
``skipped.csv`` cut to its header rebuilt a report saying "Skipped cells and metrics (0) none"
where the run had 32) without a word, and delete their files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from faithbench.stats.tables import REQUIRED

__all__ = ["COUNTED", "KEY_COLUMNS", "NOT_A_RUN", "NUMBER_COLUMNS", "REPORT_DOCUMENTS", "is_run_folder",
           "manifest_problem", "mark_report", "remove_unbuilt_documents", "row_counts", "table_problem"]

log = logging.getLogger(__name__)

COUNTED = ("results.parquet", "curves.parquet", "models.csv", "samples.csv", "skipped.csv")  # rows the run recorded
KEY_COLUMNS = {"results.parquet": tuple(REQUIRED),  # also those an older layout lacks (a review: exit 1 on 'chance')
               "models.csv": ("dataset", "model", "seed", "auc"),  # auc: the at-chance marks (a review)
               "cost.csv": ("dataset", "model", "explainer", "stage", "seconds"),  # the cost table and plot
               "samples.csv": ("dataset", "model", "seed", "sample_id", "target", "lesion_area", "confidence",
                               "correct"),
               "curves.parquet": ("dataset", "model", "explainer", "metric", "seed", "sample_id"),
               "reliability.csv": ("metric", "nr", "ar", "passed", "agreement_tau"),
               "skipped.csv": ("cell", "reason")}

# the columns the report computes with, by file: (exact names, name prefixes). A cell that is neither empty nor a
# number failed the report half-way (a review: models.csv auc "abc", exit 1 after rewriting 9 tables)
NUMBER_COLUMNS = {"results.parquet": (("value", "chance"), ()),
                  "models.csv": (("accuracy", "f1", "auc", "loss", "majority", "f1_classes", "predicted_classes",
                                  "permuted_fit", "permuted_accuracy"), ("accuracy_", "f1_", "auc_", "loss_", "ovr_")),
                  "cost.csv": (("seconds", "passes", "samples"), ())}
_SUITE_LISTS = ("datasets", "models", "explainers", "metrics")  # entries: a name or a {name: ...} mapping
_MANIFEST_TYPES = {"suite": dict, "rows": dict, "reliability": dict, "versions": dict, "seeds": list,
                   "data_warnings": list, "outputs": list}

# what build_report and `faithbench report` say of a folder that is_run_folder refuses (docs/outputs.md quotes it)
NOT_A_RUN = "not a faithbench run folder (no results.parquet, nor the manifest.json of a run)"


def is_run_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding a run's ``results.parquet``, or a run's
    ``manifest.json`` without it (a run stopped before it wrote its tables:
    :func:`faithbench.reports.writer.read_inputs` says so). A manifest another tool wrote (a JSON
    object without ``suite`` and ``status``) is not a run's; one that cannot be parsed counts, and
    the report names the problem."""
    path = Path(path)
    if (path / "results.parquet").is_file():
        return True
    if not (path / "manifest.json").is_file():
        return False
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not isinstance(manifest, dict) or {"suite", "status"} <= set(manifest)


def row_counts(tables: dict[str, pd.DataFrame | None]) -> dict[str, int]:
    """``{file: rows}`` of the :data:`COUNTED` tables written (None: not written), for the manifest."""
    return {name: len(tables[name]) for name in COUNTED if tables.get(name) is not None}


def table_problem(out_dir: Path, manifest: dict[str, Any], inputs: dict[str, Any]) -> str | None:
    """Why the tables of ``inputs`` (by file name) are not what the run wrote, or None."""
    for name, rows in (manifest.get("rows") or {}).items():
        table = inputs.get(name)
        got = 0 if table is None else len(table)
        if got != rows:
            return (f"{out_dir}: {name} has {got} rows where the run wrote {rows} (manifest.json rows); rerun "
                    f"`faithbench run` into this folder to rebuild it")
    reliability = inputs.get("reliability.csv")
    if (manifest.get("reliability") or {}).get("status") == "computed" and reliability is not None \
            and not len(reliability):
        return (f"{out_dir}: reliability.csv has no rows where the run computed the check (manifest.json "
                f"reliability); rerun `faithbench run` into this folder to rebuild it")
    for name, columns in KEY_COLUMNS.items():
        table = inputs.get(name)
        missing = [c for c in columns if table is not None and len(table) and c not in table.columns]
        if missing:
            return (f"{out_dir}: {name} lacks the columns {', '.join(missing)} the report reads; rerun `faithbench "
                    f"run` into this folder to rebuild it")
    for name, (exact, prefixes) in NUMBER_COLUMNS.items():
        table = inputs.get(name)
        columns = [] if table is None else [c for c in table.columns
                                            if c in exact or str(c).startswith(prefixes)]
        for column in columns:
            bad = _not_numbers(table[column])
            if bad:
                return (f"cannot read {Path(out_dir) / name}: column {column} holds {bad}; rerun `faithbench run` "
                        f"into this folder to rebuild it")
    unreadable = _unreadable_strata_sources(inputs.get("samples.csv"))
    if unreadable:
        return (f"cannot read {Path(out_dir) / 'samples.csv'}: {unreadable}; rerun `faithbench run` into this folder "
                f"to rebuild it")
    results = inputs.get("results.parquet")
    if results is not None and "value" in results.columns:  # a review: an inf ranked 1st, tied with the best mean
        values = pd.to_numeric(results["value"], errors="coerce")
        infinite = results[values.abs() == float("inf")]
        if len(infinite):
            row = infinite.iloc[0]
            where = ", ".join(f"{c} {row[c]}" for c in ("explainer", "metric", "sample_id") if c in row)
            return (f"{out_dir}: results.parquet holds {len(infinite)} infinite value(s) ({where}), which a run "
                    f"never writes; rerun `faithbench run` into this folder to rebuild it")
    return None


def manifest_problem(out_dir: Path, manifest: dict[str, Any]) -> str:
    """Why ``manifest`` (``out_dir``'s ``manifest.json``) does not have the shape a run writes, or "": each entry of
    :data:`_MANIFEST_TYPES` given is of its type (null counts as absent), ``rows`` counts whole numbers, and
    the suite's lists hold names or mappings. A review: ``suite.explainers: 5`` failed the report (exit 1)
    after it had rewritten the tables."""
    problem = _manifest_shape(manifest)
    return (f"cannot read {Path(out_dir) / 'manifest.json'}: {problem}; rerun `faithbench run` into this folder to "
            f"rebuild it") if problem else ""


def _manifest_shape(manifest: dict[str, Any]) -> str:
    for key, kind in _MANIFEST_TYPES.items():
        value = manifest.get(key)
        if value is not None and not isinstance(value, kind):
            return f"{key} is {value!r}, expected a {'mapping' if kind is dict else 'list'}"
    for name, rows in (manifest.get("rows") or {}).items():
        if isinstance(rows, bool) or not isinstance(rows, int):
            return f"rows.{name} is {rows!r}, expected a whole number of rows"
    suite = manifest.get("suite") or {}
    for key in (*_SUITE_LISTS, "seeds"):
        value = suite.get(key)
        if value is not None and not isinstance(value, list):
            return f"suite.{key} is {value!r}, expected a list"
    if suite.get("regions") is not None and not isinstance(suite["regions"], dict):
        return f"suite.regions is {suite['regions']!r}, expected a mapping"
    for key in _SUITE_LISTS:
        for i, entry in enumerate(suite.get(key) or []):
            if not isinstance(entry, (str, dict)):
                return f"suite.{key}[{i}] is {entry!r}, expected a name or a mapping"
    return ""


def _not_numbers(cells: pd.Series) -> str:
    """What ``cells`` hold that is neither empty nor a number (a count and an example), or ""."""
    if pd.api.types.is_bool_dtype(cells):  # True/False: no score, though pandas would sum them
        bad = cells[cells.notna()]
    elif pd.api.types.is_numeric_dtype(cells):
        return ""
    else:
        bad = cells[cells.notna() & pd.to_numeric(cells, errors="coerce").isna()]
    return f"{len(bad)} value(s) that are not numbers (e.g. {str(bad.iloc[0])!r})" if len(bad) else ""


def _unreadable_strata_sources(samples: pd.DataFrame | None) -> str:
    """Why ``samples.csv``'s ``lesion_area``, ``confidence`` or ``correct`` cannot be read (a cell that is
    neither empty nor a number, or True/False for ``correct``), or "". The strata would coerce such cells to
    NaN and drop those strata and plots without a word (a review: confidence "abc", exit 0, no confidence
    strata); an empty cell, as a run writes for a sample without a lesion, is fine."""
    from faithbench.stats.strata import as_bool

    if samples is None or samples.empty:
        return ""
    for column in ("lesion_area", "confidence", "correct"):
        if column not in samples.columns:
            continue
        cells = samples[column]
        parsed = as_bool(cells) if column == "correct" else pd.to_numeric(cells, errors="coerce")
        bad = cells[cells.notna() & parsed.isna()]
        if len(bad):
            what = "True/False" if column == "correct" else "numbers"
            return f"column {column} holds {len(bad)} value(s) that are not {what} (e.g. {str(bad.iloc[0])!r})"
    return ""


def mark_report(out_dir: Path, manifest: dict[str, Any], state: str) -> None:
    """``manifest.json`` with ``report`` set to ``state``: ``pending`` while the report files (Markdown,
    LaTeX, HTML, plots, strata) are written, ``complete`` after. A run killed then keeps ``status: ok``,
    its tables being whole, and says ``pending`` (a review: a pipeline gating on the status could not
    tell that ``index.html`` was missing); ``faithbench report`` completes it."""
    from faithbench.store import atomic_write_bytes

    atomic_write_bytes(Path(out_dir) / "manifest.json",
                       json.dumps({**manifest, "report": state}, indent=2, default=str).encode())


REPORT_DOCUMENTS = {"md": "leaderboard.md", "latex": "leaderboard.tex", "html": "index.html"}  # format -> file


def remove_unbuilt_documents(out_dir: Path, formats: Iterable[str]) -> list[Path]:
    """Remove the report documents of the formats not in ``formats`` (:data:`REPORT_DOCUMENTS`, files a run owns),
    logging one line that names them: their tables and the plots they embed were just rebuilt, so an earlier one
    no longer matched them (a held-out review: ``--format md`` left an ``index.html`` whose agreement section
    contradicted the rebuilt ``agreement.csv`` beside the redrawn plots). Returns the paths removed."""
    stale = [out_dir / name for fmt, name in REPORT_DOCUMENTS.items() if fmt not in formats
             and (out_dir / name).is_file()]
    for path in stale:
        path.unlink()
    if stale:
        names = ", ".join(path.name for path in stale)
        log.warning("removed %s of an earlier report: not rebuilt (formats: %s), %s no longer matched the rebuilt "
                    "tables and plots; faithbench report %s rebuilds every format", names, ", ".join(formats),
                    "it" if len(stale) == 1 else "they", out_dir)
    return stale
