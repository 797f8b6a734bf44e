"""The summaries of ``models.csv`` and ``cost.csv`` that the report writes (``models_summary.csv``) and
shows (the cost table): pure functions of the tidy tables, apart from ``writer.py`` to keep it small."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["COUNT_COLUMNS", "MODEL_SCORES", "cost_summary", "integer_counts", "models_file", "models_summary",
           "with_exact_p_columns"]

MODEL_SCORES = ["accuracy", "f1", "auc", "loss"]
# the counts of models.csv; ``ovr_n_<class>`` and ``auc_ci_min_class_n_<class>`` by their prefix
COUNT_COLUMNS = ("seed", "f1_classes", "predicted_classes", "parameters", "auc_ci_min_class_n")


def with_exact_p_columns(models: pd.DataFrame) -> pd.DataFrame:
    """``models`` (``models.csv``) with an ``auc_exact_p[_<class>]`` column beside each
    ``auc_ci_min_class_n[_<class>]``, empty where no checkpoint had fewer than 5 test samples of a class, so no
    exact p was computed (a held-out review: the documented empty column was absent, and a script reading it
    failed with a KeyError, on every run whose test splits were of normal size)."""
    if models is None or models.empty:
        return models
    out = models.copy()
    for column in [c for c in models.columns if str(c).startswith("auc_ci_min_class_n")]:
        exact = "auc_exact_p" + str(column)[len("auc_ci_min_class_n"):]
        if exact not in out.columns:
            out.insert(out.columns.get_loc(column) + 1, exact, np.nan)
    return out


def models_file(models: pd.DataFrame) -> pd.DataFrame:
    """``models`` as ``models.csv`` holds it, and ``RunResult.models`` (a held-out review: that frame lacked the
    ``auc_exact_p`` column of the file): :func:`with_exact_p_columns`, then :func:`integer_counts`."""
    return integer_counts(with_exact_p_columns(models))


def integer_counts(models: pd.DataFrame) -> pd.DataFrame:
    """``models`` (``models.csv``) with its count columns (:data:`COUNT_COLUMNS`) as nullable integers (Int64),
    where every value given is a whole number: a class absent from a checkpoint, or two multi-class datasets
    with different class names in one run, leave NaN cells that made pandas write every count as a float (a
    held-out review: ``ovr_n_c_a`` 6.0 in models.csv, 8.000 in the HTML per-checkpoint table)."""
    if models is None or models.empty:
        return models
    out = models.copy()
    for column in out.columns:
        if not (column in COUNT_COLUMNS or str(column).startswith(("ovr_n_", "auc_ci_min_class_n_"))):
            continue
        values = pd.to_numeric(out[column], errors="coerce")
        given = values.dropna()
        if values.isna().sum() == out[column].isna().sum() and (given == given.round()).all():
            out[column] = values.astype("Int64")
    return out


def models_summary(models: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model): ``seeds`` (rows of ``models.csv``), ``checkpoints`` (the distinct ``checkpoint``
    keys among them; a row without a key counts as its own) and mean and sd (ddof 1; NaN with one checkpoint)
    of each score over those checkpoints. A model that no seed retrains (a ``weights`` file, or pretrained
    without a recipe) loads one checkpoint under every seed: its copies gave "0.945 ± 0.000", read as a
    measured seed-to-seed spread (a held-out review); it has 1 checkpoint and no sd.

    Columns: dataset, model, seeds, checkpoints, then ``<score>_mean, <score>_sd`` for the scores of
    ``MODEL_SCORES`` present in ``models.csv``.
    """
    scores = [c for c in MODEL_SCORES if c in models.columns]
    keys = ["dataset", "model"]
    if models.empty or not set(keys) <= set(models.columns):
        return pd.DataFrame(columns=[*keys, "seeds", "checkpoints"])
    out = models.groupby(keys, sort=True).size().rename("seeds").to_frame()
    distinct = models
    if "checkpoint" in models.columns:
        keyed = models["checkpoint"].notna()
        distinct = pd.concat([models[keyed].drop_duplicates([*keys, "checkpoint"]), models[~keyed]])
    grouped = distinct.groupby(keys, sort=True)
    out["checkpoints"] = grouped.size()
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
