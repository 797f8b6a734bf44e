"""The summaries of ``models.csv`` and ``cost.csv`` that the report writes (``models_summary.csv``) and
shows (the cost table): pure functions of the tidy tables, apart from ``writer.py`` to keep it small."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["MODEL_SCORES", "cost_summary", "models_summary"]

MODEL_SCORES = ["accuracy", "f1", "auc", "loss"]


def models_summary(models: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model): ``seeds`` and mean and sd (ddof 1; NaN with one seed) of each score.

    Columns: dataset, model, seeds, then ``<score>_mean, <score>_sd`` for the scores of
    ``MODEL_SCORES`` present in ``models.csv``.
    """
    scores = [c for c in MODEL_SCORES if c in models.columns]
    if models.empty or not {"dataset", "model"} <= set(models.columns):
        return pd.DataFrame(columns=["dataset", "model", "seeds"])
    grouped = models.groupby(["dataset", "model"], sort=True)
    out = grouped.size().rename("seeds").to_frame()
    for score in scores:
        out[f"{score}_mean"], out[f"{score}_sd"] = grouped[score].mean(), grouped[score].std(ddof=1)
    return out.reset_index()


def cost_summary(cost: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, explainer), summed over seeds and metrics: seconds and passes.

    Columns: dataset, model, explainer, samples (summed over seeds), explain_seconds,
    metric_seconds, total_seconds, seconds_per_sample, explain_passes, metric_passes.
    """
    columns = ["dataset", "model", "explainer", "samples", "explain_seconds", "metric_seconds",
               "total_seconds", "seconds_per_sample", "explain_passes", "metric_passes"]
    needed = {"dataset", "model", "explainer", "stage", "seconds"}
    if cost.empty or not needed <= set(cost.columns):
        return pd.DataFrame(columns=columns)
    cost = cost.copy()
    if "passes" not in cost.columns:
        cost["passes"] = np.nan
    keys = ["dataset", "model", "explainer"]
    sums = cost.pivot_table(index=keys, columns="stage", values=["seconds", "passes"], aggfunc="sum",
                            fill_value=0.0)
    out = pd.DataFrame(index=sums.index)
    for stage in ("explain", "metric"):
        out[f"{stage}_seconds"] = sums["seconds"][stage] if stage in sums["seconds"] else 0.0
        out[f"{stage}_passes"] = sums["passes"][stage] if stage in sums["passes"] else 0.0
    if "samples" in cost.columns and "seed" in cost.columns:
        per_seed = cost[cost["stage"] == "explain"].groupby(keys + ["seed"])["samples"].max()
        out["samples"] = per_seed.groupby(level=keys).sum()
    else:
        out["samples"] = np.nan
    out["total_seconds"] = out["explain_seconds"] + out["metric_seconds"]
    out["seconds_per_sample"] = out["total_seconds"] / out["samples"]
    return out.reset_index()[columns].sort_values(keys, kind="stable").reset_index(drop=True)
