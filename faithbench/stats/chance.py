"""Models at chance and undefined values: what a leaderboard must not hide.

A saliency study of a model at chance is meaningless (SCIENCE.md, "Models"): a (dataset, model)
is *at chance* when the 95% bootstrap CI of the test AUC of any of its checkpoints (one per seed;
``auc_ci_low, auc_ci_high`` in ``models.csv``, :func:`faithbench.models.training.auc_ci`)
contains 0.5. Its leaderboard rows get ``model_at_chance = True`` and the tables withhold the
"better than random" marks. A metric value is *undefined* (NaN) for a sample when the metric
cannot be computed on it (e.g. an empty mask); :func:`undefined_counts` counts them.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["AT_CHANCE", "UNDEFINED_COLUMNS", "mark_models_at_chance", "models_at_chance", "undefined_counts"]

AT_CHANCE = "model_at_chance"
AT_CHANCE_COLUMNS = ["dataset", "model", "seeds", "auc_ci_low", "auc_ci_high"]
UNDEFINED_COLUMNS = ["dataset", "model", "explainer", "metric", "undefined", "total"]


def models_at_chance(models: pd.DataFrame, chance: float = 0.5) -> pd.DataFrame:
    """The (dataset, model) pairs with a checkpoint whose test AUC CI contains ``chance``.

    ``models``: ``models.csv`` (one row per checkpoint: dataset, model, seed, auc_ci_low,
    auc_ci_high). A checkpoint is at chance when ``auc_ci_low <= chance <= auc_ci_high``; rows
    without a CI (older runs, an undefined AUC) are not. Columns: dataset, model, seeds (the
    seeds at chance, comma-separated), auc_ci_low, auc_ci_high (the widest such interval).
    """
    needed = {"dataset", "model", "auc_ci_low", "auc_ci_high"}
    if models is None or models.empty or not needed <= set(models.columns):
        return pd.DataFrame(columns=AT_CHANCE_COLUMNS)
    low, high = models["auc_ci_low"].astype(float), models["auc_ci_high"].astype(float)
    hit = models[(low <= chance) & (chance <= high)]
    if "seed" not in hit.columns:
        hit = hit.assign(seed="")
    rows = [{"dataset": str(d), "model": str(m), "seeds": ", ".join(str(s) for s in sorted(g["seed"].unique())),
             "auc_ci_low": float(g["auc_ci_low"].min()), "auc_ci_high": float(g["auc_ci_high"].max())}
            for (d, m), g in hit.groupby(["dataset", "model"], sort=True)]
    return pd.DataFrame(rows, columns=AT_CHANCE_COLUMNS)


def mark_models_at_chance(board: pd.DataFrame, models: pd.DataFrame | None, chance: float = 0.5) -> pd.DataFrame:
    """``board`` (the leaderboard) with a boolean column ``model_at_chance`` (see
    :func:`models_at_chance`); ``beats_random`` and ``p_vs_random`` are kept as tested."""
    board = board.copy()
    at_chance = models_at_chance(models, chance) if models is not None else pd.DataFrame(columns=AT_CHANCE_COLUMNS)
    pairs = set(zip(at_chance["dataset"], at_chance["model"]))
    if board.empty:
        board[AT_CHANCE] = pd.Series(dtype=bool)
        return board
    board[AT_CHANCE] = [(str(d), str(m)) in pairs for d, m in zip(board["dataset"], board["model"])]
    return board


def undefined_counts(results: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model[, class], explainer, metric) with at least one NaN value: ``undefined``
    (the NaN rows) and ``total`` (all rows, every seed and sample). Sorted by the keys."""
    keys = ["dataset", "model"] + (["class"] if "class" in results.columns else []) + ["explainer", "metric"]
    columns = keys + ["undefined", "total"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    frame = results.assign(undefined=results["value"].isna())
    if "class" in frame.columns:
        frame["class"] = frame["class"].fillna("").astype(str)
    counts = frame.groupby(keys, sort=True, observed=True)["undefined"].agg(["sum", "size"]).reset_index()
    counts = counts.rename(columns={"sum": "undefined", "size": "total"})
    counts["undefined"] = counts["undefined"].astype(int)
    return counts[counts["undefined"] > 0][columns].reset_index(drop=True)
