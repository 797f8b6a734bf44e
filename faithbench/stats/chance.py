"""Models at chance and undefined values: what a leaderboard must not hide.

A saliency study of a model at chance is meaningless (SCIENCE.md, "Models"): a (dataset, model)
is *at chance* when the 95% bootstrap CI of the test AUC of any of its checkpoints (one per seed;
``auc_ci_low, auc_ci_high`` in ``models.csv``, :func:`faithbench.models.training.auc_ci`)
does not lie above 0.5 (it contains 0.5, or lies below it: a model worse than chance is not
evidence of a learned task either), or when a checkpoint's test AUC itself is undefined (``auc`` NaN: a test split with
one class), so that whether it beats chance cannot be told. A checkpoint cached before the CI
columns existed has an ``auc`` but no CI, and is not marked. Its leaderboard rows get
``model_at_chance = True`` and the tables withhold the "better than random" marks. On multi-label
data each class's own CI (``auc_ci_low_<class>``) marks that class's rows too, and is warned of
as ``model (class c)``. A metric value
is *undefined* (NaN) for a sample when the metric cannot be computed on it (e.g. an empty mask);
:func:`undefined_counts` counts them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["AT_CHANCE", "UNDEFINED_COLUMNS", "at_chance_message", "mark_models_at_chance", "models_at_chance",
           "undefined_counts"]

AT_CHANCE = "model_at_chance"
AT_CHANCE_COLUMNS = ["dataset", "model", "seeds", "auc_ci_low", "auc_ci_high", "auc_undefined"]
UNDEFINED_COLUMNS = ["dataset", "model", "explainer", "metric", "undefined", "total"]


def _column(models: pd.DataFrame, name: str) -> pd.Series:
    if name not in models.columns:
        return pd.Series(np.nan, index=models.index)
    return pd.to_numeric(models[name], errors="coerce").astype(float)


def models_at_chance(models: pd.DataFrame, chance: float = 0.5) -> pd.DataFrame:
    """The (dataset, model) pairs with a checkpoint whose test AUC CI does not lie above ``chance``,
    or whose test AUC is undefined.

    ``models``: ``models.csv`` (one row per checkpoint: dataset, model, seed, auc, auc_ci_low,
    auc_ci_high). A checkpoint is at chance when ``auc_ci_low <= chance`` (the CI contains
    ``chance`` or lies below it), or when
    it has an ``auc`` column whose value is NaN (evaluated on a test split with one class: whether
    it beats chance cannot be told). A row with an ``auc`` but no CI (cached before the CI
    columns existed) is not. Columns: dataset, model, seeds (the seeds at chance,
    comma-separated), auc_ci_low, auc_ci_high (the widest such interval; NaN when every such seed's
    AUC is undefined), auc_undefined (the seeds among them whose AUC is undefined, comma-separated;
    empty when none).
    """
    if models is None or models.empty or not {"dataset", "model"} <= set(models.columns):
        return pd.DataFrame(columns=AT_CHANCE_COLUMNS)
    low, high = _column(models, "auc_ci_low"), _column(models, "auc_ci_high")
    undefined = _column(models, "auc").isna() if "auc" in models.columns else pd.Series(False, index=models.index)
    hit = models.assign(auc_ci_low=low, auc_ci_high=high, _undefined=undefined)
    hit = hit[(low <= chance) | undefined]
    if "seed" not in hit.columns:
        hit = hit.assign(seed="")

    def seeds(frame: pd.DataFrame) -> str:
        return ", ".join(str(s) for s in sorted(frame["seed"].unique()))

    rows = [{"dataset": str(d), "model": str(m), "seeds": seeds(g),
             "auc_ci_low": float(g["auc_ci_low"].min()), "auc_ci_high": float(g["auc_ci_high"].max()),
             "auc_undefined": seeds(g[g["_undefined"]])}
            for (d, m), g in hit.groupby(["dataset", "model"], sort=True)]
    classes = _classes_at_chance(models, chance)
    if not classes.empty:  # a multi-label class at chance under a macro AUC that is not
        rows += [{"dataset": d, "model": f"{m} (class {c})", "seeds": seeds(g), "auc_ci_low": float(g["low"].min()),
                  "auc_ci_high": float(g["high"].max()), "auc_undefined": ""}
                 for (d, m, c), g in classes.groupby(["dataset", "model", "class"], sort=True)]
    return pd.DataFrame(rows, columns=AT_CHANCE_COLUMNS)


def _classes_at_chance(models: pd.DataFrame, chance: float) -> pd.DataFrame:
    """One row (dataset, model, class, seed, low, high) per checkpoint and multi-label class whose
    own test AUC CI (``auc_ci_low_<class>``, ``auc_ci_high_<class>`` in ``models.csv``) does not lie
    above ``chance``: the macro CI can lie above it while one class is at chance (a held-out review:
    nodule at AUC 0.596 under a macro 0.80)."""
    rows = []
    prefix = "auc_ci_low_"
    for column in (c for c in models.columns if c.startswith(prefix)):
        cls = column[len(prefix):]
        low, high = _column(models, column), _column(models, f"auc_ci_high_{cls}")
        for i in models.index[low <= chance]:
            rows.append({"dataset": str(models.at[i, "dataset"]), "model": str(models.at[i, "model"]), "class": cls,
                         "seed": models.at[i, "seed"] if "seed" in models.columns else "",
                         "low": float(low[i]), "high": float(high[i])})
    return pd.DataFrame(rows, columns=["dataset", "model", "class", "seed", "low", "high"])


def at_chance_message(row: object) -> str:
    """The warning for a row of :func:`models_at_chance` (a namedtuple or a Series): the CI that
    does not lie above 0.5, and the seeds whose test AUC is undefined."""
    parts = []
    low, high = float(getattr(row, "auc_ci_low")), float(getattr(row, "auc_ci_high"))
    if not (np.isnan(low) or np.isnan(high)):
        where = "contains" if high >= 0.5 else "lies below"
        parts.append(f"has a test AUC 95% CI [{low:.3f}, {high:.3f}] that {where} 0.5")
    undefined = str(getattr(row, "auc_undefined", "") or "")
    if undefined:
        parts.append(f"has an undefined test AUC for seed {undefined} (e.g. a test split with one class), so "
                     f"whether it beats chance cannot be told")
    return (f"model at chance: {getattr(row, 'dataset')} / {getattr(row, 'model')} (seed {getattr(row, 'seeds')}) "
            f"{' and '.join(parts)}; its leaderboard rows are marked {AT_CHANCE} and get no significance marks")


def mark_models_at_chance(board: pd.DataFrame, models: pd.DataFrame | None, chance: float = 0.5) -> pd.DataFrame:
    """``board`` (the leaderboard) with a boolean column ``model_at_chance`` (see
    :func:`models_at_chance`; on a multi-label board with a ``class`` column, also the rows of a
    class whose own AUC CI does not lie above ``chance``); ``beats_random`` and ``p_vs_random`` are
    kept as tested."""
    board = board.copy()
    at_chance = models_at_chance(models, chance) if models is not None else pd.DataFrame(columns=AT_CHANCE_COLUMNS)
    pairs = set(zip(at_chance["dataset"], at_chance["model"]))
    if board.empty:
        board[AT_CHANCE] = pd.Series(dtype=bool)
        return board
    board[AT_CHANCE] = [(str(d), str(m)) in pairs for d, m in zip(board["dataset"], board["model"])]
    if "class" in board.columns and models is not None and not models.empty:  # multi-label: per class too
        classes = _classes_at_chance(models, chance)
        triples = set(zip(classes["dataset"], classes["model"], classes["class"]))
        board[AT_CHANCE] |= np.array([(str(d), str(m), str(c)) in triples
                                      for d, m, c in zip(board["dataset"], board["model"], board["class"])], bool)
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
