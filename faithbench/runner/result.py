"""What :func:`faithbench.run` returns: the run's tidy tables, its status and what it computed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from faithbench.runner.cell import FAILURE_COLUMNS, REGION_COLUMNS

__all__ = ["RunResult", "run_status"]


@dataclass
class RunResult:
    """A finished run: the tables it wrote to ``out_dir``, as DataFrames ([Outputs](outputs.md) gives
    their columns), and what it computed.

    out_dir: the output folder. results: ``results.parquet``, one row per (cell, sample, metric).
    curves: ``curves.parquet`` (deletion/insertion curves). models: ``models.csv`` (each checkpoint's
    test scores; its columns, ``auc_exact_p`` too). cost: ``cost.csv`` (time and forward passes per cell).
    skipped: ``skipped.csv`` (cells
    and metrics skipped as unsupported, with the reason). failures: ``failures.csv`` (failed cells; empty
    when none). regions: ``regions.csv`` (the suite's ``regions:`` block; empty without one).
    computed: checkpoints trained, saliency and score batches computed, ``reliability``: groups whose metric
    reliability check was re-scored. cached: saliency and score batches (and reliability groups) read from
    the cache. device: where the run computed (``auto`` resolved: a review missed a
    silent CPU fallback; on Ray, where its groups computed: ``cuda`` for tasks given a GPU, ``mixed: ...``
    when groups computed on different devices). :attr:`status`: ``ok``, ``partial`` or ``failed``.
    """

    out_dir: Path
    results: pd.DataFrame
    curves: pd.DataFrame
    models: pd.DataFrame
    cost: pd.DataFrame
    skipped: pd.DataFrame
    computed: dict[str, int] = field(default_factory=dict)
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))
    regions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REGION_COLUMNS))
    cached: dict[str, int] = field(default_factory=dict)
    device: str = ""

    @property
    def status(self) -> str:
        """``"ok"`` (every cell ran or was skipped as unsupported), ``"partial"`` (some failed) or
        ``"failed"`` (cells failed and no result row: ``faithbench run`` exits 1, not 3)."""
        return run_status(self.failures, self.results)


def run_status(failures: pd.DataFrame, results: pd.DataFrame) -> str:
    """``"failed"`` when some cell failed (rows in ``failures``) and no result row was computed (a review:
    every cell failed and the API said ``"partial"``), ``"partial"`` when some failed, else ``"ok"``."""
    if failures.empty:
        return "ok"
    return "failed" if results.empty else "partial"
