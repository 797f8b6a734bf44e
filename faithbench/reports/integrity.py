"""What a run folder's tidy tables must hold for ``faithbench report``, beyond being there and
readable (:func:`faithbench.reports.writer.read_inputs`): the row counts the run recorded in
``manifest.json`` (``rows``; a folder written before that record is not checked) and the key
columns of the tables the report joins on or reads. A table truncated to its header, emptied or
given other columns would otherwise drop the model-at-chance marks, the strata, the reliability
marks (‡) or the curves without a word, and delete their files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["COUNTED", "KEY_COLUMNS", "row_counts", "table_problem"]

COUNTED = ("results.parquet", "curves.parquet", "models.csv", "samples.csv")  # rows recorded by the run
KEY_COLUMNS = {"results.parquet": ("dataset", "model", "explainer", "metric", "seed", "sample_id", "value"),
               "models.csv": ("dataset", "model", "seed"),
               "samples.csv": ("dataset", "model", "seed", "sample_id", "lesion_area", "confidence", "correct"),
               "curves.parquet": ("dataset", "model", "explainer", "metric", "seed", "sample_id"),
               "reliability.csv": ("metric", "nr", "ar", "passed", "agreement_tau")}


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
    for name, columns in KEY_COLUMNS.items():
        table = inputs.get(name)
        missing = [c for c in columns if table is not None and len(table) and c not in table.columns]
        if missing:
            return (f"{out_dir}: {name} lacks the columns {', '.join(missing)} the report reads; rerun `faithbench "
                    f"run` into this folder to rebuild it")
    return None
