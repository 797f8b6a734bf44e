"""Models at chance and undefined values: what a leaderboard must not hide.

A saliency study of a model at chance is meaningless (SCIENCE.md, "Models"): a (dataset, model)
is *at chance* when the 95% bootstrap CI of the test AUC of any of its checkpoints (one per seed;
``auc_ci_low, auc_ci_high`` in ``models.csv``, :func:`faithbench.models.auc.auc_ci`)
does not lie above 0.5 (it contains 0.5, or lies below it: a model worse than chance is not
evidence of a learned task either), or when a checkpoint's test AUC itself is undefined (``auc`` NaN: a test split with
one class), so that whether it beats chance cannot be told. A checkpoint cached before the CI
columns existed has an ``auc`` but no CI, and is not marked. Its leaderboard rows get
``model_at_chance = True`` and the tables withhold the "better than random" marks. On multi-label
data each class's own CI (``auc_ci_low_<class>``) marks that class's rows too, as does a class's
undefined AUC (no positive, or no negative, test sample of it), or a CI left NaN because the class has fewer than
5 positive or negative test samples unless its exact p (``auc_exact_p_<class>``) is below 0.05, and is warned of
as ``model (class c)``. Each
warning gives each flagged checkpoint's own CI. A checkpoint that predicts one class for every
test sample is warned of too (:func:`single_class_models`), not marked. A metric value is
*undefined* (NaN) for a sample when the metric cannot be computed on it (e.g. an empty mask);
:func:`undefined_counts` counts them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["AT_CHANCE", "UNDEFINED_COLUMNS", "at_chance_message", "ci_text", "majority_messages",
           "mark_models_at_chance", "model_warnings", "models_at_chance", "shared_checkpoint_messages",
           "single_class_message", "single_class_models", "undefined_counts"]

AT_CHANCE = "model_at_chance"
AT_CHANCE_COLUMNS = ["dataset", "model", "seeds", "cis", "auc_undefined", "ci_too_few", "exact_p"]
MIN_CI_PER_CLASS = 5  # faithbench.models.auc.MIN_CI_PER_CLASS (stats reads models.csv only)
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
    it beats chance cannot be told), or a defined ``auc`` whose CI was left undefined because the smaller
    class had fewer than ``MIN_CI_PER_CLASS`` test samples (``auc_ci_min_class_n``: a fuzzing review's
    2-image test split printed the CI [1.0, 1.0]) and whose exact one-sided Mann–Whitney p (``auc_exact_p``)
    is not below 0.05 (a perfect ranking of 4 + 4 is, 1/70). A row with an ``auc`` but no CI (cached before the CI
    columns existed) is not. Columns: dataset, model, seeds (the seeds at chance,
    comma-separated), cis (a tuple of (seed, low, high), each such checkpoint's own CI, by seed;
    none for a seed whose AUC is undefined: a held-out review found one interval [min low, max high]
    over the seeds reported, which belonged to no checkpoint), auc_undefined (the seeds among them
    whose AUC is undefined, comma-separated; empty when none), ci_too_few (``seed 0: 1``, the smaller class's
    test samples of each checkpoint whose CI has too few; empty when none), exact_p (the models.csv column of
    the exact p: ``auc_exact_p``, ``auc_exact_p_<class>`` on a class's row).
    """
    if models is None or models.empty or not {"dataset", "model"} <= set(models.columns):
        return pd.DataFrame(columns=AT_CHANCE_COLUMNS)
    low, high, undefined, too_few, smaller = _macro_at_chance(models)
    hit = models.assign(auc_ci_low=low, auc_ci_high=high, _undefined=undefined, _too_few=too_few, _smaller=smaller)
    hit = hit[(low <= chance) | undefined | too_few]
    if "seed" not in hit.columns:
        hit = hit.assign(seed="")
    rows = [{"dataset": str(d), "model": str(m), "seeds": _seeds(g), "cis": _cis(g, "auc_ci_low", "auc_ci_high"),
             "auc_undefined": _seeds(g[g["_undefined"]]),
             "ci_too_few": _too_few_text(g[g["_too_few"]], "_smaller"), "exact_p": "auc_exact_p"}
            for (d, m), g in hit.groupby(["dataset", "model"], sort=True)]
    classes = _classes_at_chance(models, chance)
    if not classes.empty:  # a multi-label class at chance under a macro AUC that is not
        rows += [{"dataset": d, "model": f"{m} (class {c})", "seeds": _seeds(g), "cis": _cis(g, "low", "high"),
                  "auc_undefined": _seeds(g[g["undefined"]]),
                  "ci_too_few": _too_few_text(g[g["too_few"]], "smaller"), "exact_p": f"auc_exact_p_{c}"}
                 for (d, m, c), g in classes.groupby(["dataset", "model", "class"], sort=True)]
    return pd.DataFrame(rows, columns=AT_CHANCE_COLUMNS)


def _macro_at_chance(models: pd.DataFrame) -> tuple[pd.Series, ...]:
    """Per checkpoint: the macro CI (low, high), whether its AUC is undefined, whether its CI has too few
    test samples of a class and its exact p is not below 0.05 (too_few), and that smaller class's count."""
    low, high = _column(models, "auc_ci_low"), _column(models, "auc_ci_high")
    undefined = _column(models, "auc").isna() if "auc" in models.columns else pd.Series(False, index=models.index)
    smaller = _column(models, "auc_ci_min_class_n")
    exact = _column(models, "auc_exact_p")  # with too few for a CI, an exact test may still show the model above
    too_few = ~undefined & low.isna() & (smaller < MIN_CI_PER_CLASS) & ~(exact < 0.05)  # chance (4 + 4 perfect)
    return low, high, undefined, too_few, smaller


def _too_few_text(frame: pd.DataFrame, smaller: str) -> str:
    """``seed 0: 1, seed 1: 2``: each row's smaller class's test samples (column ``smaller``), by seed."""
    rows = frame.sort_values("seed", kind="stable")
    return ", ".join(f"seed {s}: {int(n)}" for s, n in zip(rows["seed"], rows[smaller]))


def _seeds(frame: pd.DataFrame) -> str:
    return ", ".join(str(s) for s in sorted(frame["seed"].unique()))


def _cis(frame: pd.DataFrame, low: str, high: str) -> tuple[tuple[str, float, float], ...]:
    """(seed, low, high) of each row of ``frame`` with a CI, by seed."""
    rows = frame.sort_values("seed", kind="stable")
    return tuple((str(s), float(lo), float(hi)) for s, lo, hi in zip(rows["seed"], rows[low], rows[high])
                 if not (np.isnan(lo) or np.isnan(hi)))


def _classes_at_chance(models: pd.DataFrame, chance: float) -> pd.DataFrame:
    """One row (dataset, model, class, seed, low, high, undefined) per checkpoint and multi-label
    class whose own test AUC CI (``auc_ci_low_<class>``, ``auc_ci_high_<class>`` in ``models.csv``)
    does not lie above ``chance``, or whose own AUC is undefined (``auc_<class>`` NaN, or the CI NaN
    without that column: no positive or no negative test sample of the class): the macro CI can lie
    above it while one class is at chance (a held-out review: nodule at AUC 0.596 under a macro
    0.80), and a class absent from the test split had no mark, its rows kept their significance
    stars (another review: p_vs_random 0.00024 on a class the model predicted for every image). As for two
    classes, a class whose CI was left NaN because its positive or negative test samples were fewer than
    ``MIN_CI_PER_CLASS`` (``auc_ci_min_class_n_<class>``, ``smaller``; a review: 1 positive ranked first gave
    the CI [1.0, 1.0] and no mark) is at chance unless its ``auc_exact_p_<class>`` is below 0.05 (``too_few``)."""
    rows = []
    prefix = "auc_ci_low_"
    for column in (c for c in models.columns if c.startswith(prefix)):
        cls = column[len(prefix):]
        low, high = _column(models, column), _column(models, f"auc_ci_high_{cls}")
        undefined = _column(models, f"auc_{cls}").isna() if f"auc_{cls}" in models.columns else low.isna()
        smaller, exact = _column(models, f"auc_ci_min_class_n_{cls}"), _column(models, f"auc_exact_p_{cls}")
        too_few = ~undefined & low.isna() & (smaller < MIN_CI_PER_CLASS) & ~(exact < 0.05)
        for i in models.index[(low <= chance) | undefined | too_few]:
            rows.append({"dataset": str(models.at[i, "dataset"]), "model": str(models.at[i, "model"]), "class": cls,
                         "seed": models.at[i, "seed"] if "seed" in models.columns else "",
                         "low": float(low[i]), "high": float(high[i]), "undefined": bool(undefined[i]),
                         "too_few": bool(too_few[i]), "smaller": smaller[i]})
    return pd.DataFrame(rows, columns=["dataset", "model", "class", "seed", "low", "high", "undefined", "too_few",
                                       "smaller"])


def ci_text(cis: tuple[tuple[str, float, float], ...]) -> str:
    """Each checkpoint's own CI: ``seed 0: [0.482, 0.645]; seed 1: [0.458, 0.619]``."""
    return "; ".join(f"seed {s}: [{lo:.3f}, {hi:.3f}]" for s, lo, hi in cis)


def at_chance_message(row: object, chance: float = 0.5) -> str:
    """The warning for a row of :func:`models_at_chance` (a namedtuple or a Series): each checkpoint's
    own CI, grouped by whether it contains ``chance`` or lies below it, and the seeds whose test AUC
    is undefined."""
    parts = []
    cis = tuple(getattr(row, "cis", ()) or ())
    for where in ("contains", "lies below"):
        chosen = tuple(ci for ci in cis if (ci[2] >= chance) == (where == "contains"))
        if chosen:
            parts.append(f"has a test AUC 95% CI that {where} {chance:g} ({ci_text(chosen)})")
    undefined = str(getattr(row, "auc_undefined", "") or "")
    if undefined:
        parts.append(f"has an undefined test AUC for seed {undefined} (e.g. a test split with one class), so "
                     f"whether it beats chance cannot be told")
    too_few = str(getattr(row, "ci_too_few", "") or "")
    if too_few:
        column = str(getattr(row, "exact_p", "") or "auc_exact_p")  # a multi-label class: its own column
        smaller = ("the class's positive or negative ones, whichever are fewer" if column != "auc_exact_p" else
                   "the smallest class's samples")
        test = ("an exact Mann-Whitney test" if column != "auc_exact_p" else
                "an exact test (Mann-Whitney; more than two classes: label permutations of the macro AUC)")
        parts.append(f"has too few test samples of a class for a test AUC CI ({smaller}: "
                     f"{too_few}; at least {MIN_CI_PER_CLASS} of each are needed) and {test} "
                     f"does not show it above chance (one-sided p >= 0.05, `{column}`)")
    return (f"model at chance: {getattr(row, 'dataset')} / {getattr(row, 'model')} (seed {getattr(row, 'seeds')}) "
            f"{' and '.join(parts)}; its leaderboard rows are marked {AT_CHANCE} and get no significance marks")


def single_class_models(models: pd.DataFrame) -> pd.DataFrame:
    """The (dataset, model) pairs with a checkpoint that predicts one class for every test sample
    (``predicted_classes`` = 1 in ``models.csv``: the number of distinct predicted classes on the test
    split, single-label data): its maps explain that class whatever the image, and its AUC can still lie
    above chance (a held-out review: accuracy 0.514, AUC CI [0.557, 0.660]). Not a mark of its own: the
    leaderboard keeps its rows as they are. Columns: dataset, model, seeds (comma-separated), accuracy
    (the checkpoints' accuracies, comma-separated, 3 decimals). Empty without the column."""
    columns = ["dataset", "model", "seeds", "accuracy"]
    if models is None or models.empty or "predicted_classes" not in models.columns:
        return pd.DataFrame(columns=columns)
    hit = models[_column(models, "predicted_classes") == 1]
    hit = hit.assign(seed=hit["seed"] if "seed" in hit.columns else "",
                     accuracy=_column(hit, "accuracy"))
    rows = [{"dataset": str(d), "model": str(m), "seeds": _seeds(g),
             "accuracy": ", ".join(f"{a:.3f}" for a in g.sort_values("seed", kind="stable")["accuracy"])}
            for (d, m), g in hit.groupby(["dataset", "model"], sort=True)]
    return pd.DataFrame(rows, columns=columns)


def single_class_message(row: object) -> str:
    """The warning for a row of :func:`single_class_models`."""
    return (f"model predicts one class: {getattr(row, 'dataset')} / {getattr(row, 'model')} (seed "
            f"{getattr(row, 'seeds')}, test accuracy {getattr(row, 'accuracy')}) predicts the same class for every "
            "test sample, so its maps explain that class whatever the image; read its leaderboard rows with caution")


def model_warnings(models: pd.DataFrame | None, samples: pd.DataFrame | None = None) -> list[str]:
    """Every warning about the checkpoints of ``models.csv``: at chance (:func:`at_chance_message`), then
    predicting one class (:func:`single_class_message`), a class at chance (:func:`weak_class_messages`),
    no better than the majority class (:func:`majority_messages`). ``samples``: ``samples.csv``, for
    :func:`weak_class_messages`."""
    return ([at_chance_message(r) for r in models_at_chance(models).itertuples(index=False)]
            + [single_class_message(r) for r in single_class_models(models).itertuples(index=False)]
            + weak_class_messages(models, samples=samples) + majority_messages(models)
            + shared_checkpoint_messages(models))


def shared_checkpoint_messages(models: pd.DataFrame | None) -> list[str]:
    """A note per checkpoint that several seeds of a (dataset, model) load (the same ``checkpoint`` key in
    ``models.csv``: a ``weights`` file, or pretrained without a recipe, which no seed retrains): its scores
    are copies, so ``models_summary.csv`` counts it once and gives no sd (a held-out review: "0.945 ± 0.000"
    under "mean ± sd over seeds", read as measured reproducibility). Not a mark."""
    keys = ["dataset", "model", "checkpoint"]
    if models is None or models.empty or not {*keys, "seed"} <= set(models.columns):
        return []
    out = []
    for (dataset, model, checkpoint), rows in models[models["checkpoint"].notna()].groupby(keys, sort=True):
        if len(rows) > 1:
            seeds = ", ".join(_seed_text(s) for s in rows["seed"])
            out.append(f"one checkpoint for several seeds: {dataset} / {model} (seed {seeds}) loads the same "
                       f"checkpoint {checkpoint} under each seed (not trained per seed: a weights file, or pretrained "
                       "without a recipe), so its test scores are counted once, with no sd over seeds; the seeds "
                       "change only the explainers' and metrics' randomness")
    return out


SWAPPED_AUC = 0.25  # a test AUC at most this: classes likely swapped (majority_messages says so)


def majority_messages(models: pd.DataFrame | None) -> list[str]:
    """A warning per checkpoint whose test accuracy is at most ``majority``, the share of the test
    split's most frequent class, though it predicts more than one class (one that predicts one class
    has its own warning): its AUC can lie above chance while its decisions are no better than always
    answering the majority class (a review: accuracy 0.480, AUC CI [0.668, 0.761], no warning; 10 of its
    16 maps explained 'normal' on lesion images). Not a mark. A test AUC of at most ``SWAPPED_AUC`` ranks the
    classes the wrong way round, the signature of swapped classes rather than of chance: the line then says to
    check the dataset's class order (a held-out review: ``normal``/``lesion`` sorted to lesion = 0, AUC 0.0)."""
    if models is None or models.empty or not {"majority", "accuracy"} <= set(models.columns):
        return []
    accuracy, majority = _column(models, "accuracy"), _column(models, "majority")
    auc = _column(models, "auc")  # NaN where absent: no hint
    several = _column(models, "predicted_classes") != 1 if "predicted_classes" in models.columns else True
    out = []
    for i in models.index[(accuracy <= majority) & several]:
        seed = models.at[i, "seed"] if "seed" in models.columns else ""
        out.append(f"model no better than the majority class: {models.at[i, 'dataset']} / {models.at[i, 'model']} "
                   f"(seed {seed}) has a test accuracy of {accuracy[i]:.3f}, at most {majority[i]:.3f}, the share of "
                   "the test split's most frequent class; under target: predicted many of its maps explain a class "
                   "other than the label (strata.csv breaks the scores down by explained class)"
                   + (f"; its test AUC of {auc[i]:.3f}, far below 0.5, ranks the classes the wrong way round, as a "
                      "model whose classes are swapped does: check that the dataset's classes are in the order of "
                      "the model's outputs (classes:; without it, class names are sorted)"
                      if auc[i] <= SWAPPED_AUC else ""))
    return out


def weak_class_messages(models: pd.DataFrame | None, chance: float = 0.5, samples: pd.DataFrame | None = None
                        ) -> list[str]:
    """A warning per class of a single-label checkpoint with more than two classes (``ovr_n_<class>`` in
    ``models.csv``) that has no test sample, or whose own one-vs-rest test AUC CI does not lie above
    ``chance``: the macro AUC can lie above chance while one class was never learned (a review: AUC 0.306,
    CI [0.077, 0.600], under a macro CI [0.870, 0.944]), and a class absent from the test split is left
    out of it; one with fewer than ``MIN_CI_PER_CLASS`` test samples has no CI and is warned of too.
    Not a mark: the leaderboard's cells mix the classes; ``strata.csv`` breaks them down. A checkpoint whose
    macro AUC is at chance itself (:func:`models_at_chance`, warned of already) gets no "class at chance" line
    (a held-out review: 4 classes × 2 seeds added 8 lines saying "though the macro AUC may"). ``samples``
    (``samples.csv``: the ``target`` each map explains, a class index): a class at chance that no map of the
    checkpoint explains (under ``target: predicted``, a class the model never predicts) is said to be explained
    by none (another review: the warning sent the reader to a ``strata.csv`` stratum that did not exist)."""
    out = []
    if models is not None:  # checkpoints at chance as a whole (models_at_chance's rule): no class lines for them
        macro_low, _, macro_undefined, macro_too_few, _ = _macro_at_chance(models)
        macro_at = (macro_low <= chance) | macro_undefined | macro_too_few
    indices, explained = _class_indices(models), _explained_targets(samples)
    for column in sorted(c for c in (models.columns if models is not None else ()) if c.startswith("ovr_n_")):
        cls = column[len("ovr_n_"):]
        n, low, high = (_column(models, f"ovr_{part}_{cls}") for part in ("n", "auc_ci_low", "auc_ci_high"))
        for i in models.index[n.notna()]:  # rows of another dataset have no such class
            seed = _seed_text(models.at[i, "seed"]) if "seed" in models.columns else ""
            dataset, model = str(models.at[i, "dataset"]), str(models.at[i, "model"])
            where = f"{dataset} / {model} (seed {seed}), class {cls}"
            if n[i] == 0:
                out.append(f"class without test samples: {where} has none, so the macro test AUC leaves it out")
            elif n[i] < MIN_CI_PER_CLASS:  # no CI (faithbench.models.auc): whether it was learned cannot be told
                out.append(f"class with too few test samples: {where} has {int(n[i])} (fewer than "
                           f"{MIN_CI_PER_CLASS}), too few for a one-vs-rest test AUC CI, so whether the model "
                           "learned it cannot be told")
            elif low[i] <= chance and not macro_at[i]:
                targets = explained.get((dataset, model, seed))
                unexplained = targets is not None and cls in indices.get(dataset, {}) and \
                    indices[dataset][cls] not in targets
                maps = ("no map explains it (its images are explained as other classes, under whose strata "
                        "strata.csv puts them)" if unexplained else
                        "the maps explaining it say little (strata.csv breaks the scores down by explained class)")
                out.append(f"class at chance: {where} has a one-vs-rest test AUC 95% CI [{low[i]:.3f}, {high[i]:.3f}]"
                           f" that does not lie above {chance:g} though the macro AUC may; {maps}")
    return out


def _class_indices(models: pd.DataFrame | None) -> dict[str, dict[str, int]]:
    """dataset -> {class name: its index}, from the order of the ``ovr_n_<class>`` columns its rows fill (the
    order of its classes, as :func:`faithbench.models.training.classification_metrics` writes them); none for
    a dataset sharing a class name with another that fills other names: the union of the rows' columns may
    put its classes in that other's order. (Two datasets with the same names in different orders, which only a
    ``classes:`` option gives, cannot be told apart here.)"""
    if models is None or models.empty or "dataset" not in models.columns:
        return {}
    columns = [c for c in models.columns if str(c).startswith("ovr_n_")]
    datasets = models["dataset"].astype(str)
    filled = {d: [c[len("ovr_n_"):] for c in columns if models.loc[datasets == d, c].notna().any()]
              for d in datasets.unique()}
    return {d: {name: i for i, name in enumerate(names)} for d, names in filled.items()
            if all(other == names for e, other in filled.items() if e != d and set(other) & set(names))}


def _seed_text(seed: object) -> str:
    """A seed as text, ``0`` also where a column with NaN cells made it 0.0."""
    return str(int(seed)) if isinstance(seed, (float, np.floating)) and float(seed).is_integer() else str(seed)


def _explained_targets(samples: pd.DataFrame | None) -> dict[tuple[str, str, str], set[int]]:
    """(dataset, model, seed) -> the class indices its maps explain (``samples.csv``'s ``target``)."""
    if samples is None or samples.empty or not {"dataset", "model", "seed", "target"} <= set(samples.columns):
        return {}
    targets = pd.to_numeric(samples["target"], errors="coerce")
    out: dict[tuple[str, str, str], set[int]] = {}
    for d, m, seed, t in zip(samples["dataset"], samples["model"], samples["seed"], targets):
        out.setdefault((str(d), str(m), _seed_text(seed)), set()).update([] if np.isnan(t) else [int(t)])
    return out


def mark_models_at_chance(board: pd.DataFrame, models: pd.DataFrame | None, chance: float = 0.5) -> pd.DataFrame:
    """``board`` (the leaderboard) with a boolean column ``model_at_chance`` (see
    :func:`models_at_chance`; on a multi-label board with a ``class`` column, also the rows of a
    class whose own AUC CI does not lie above ``chance``); ``beats_random`` and ``worse_than_random`` are False
    on those rows, as the tables withhold their marks (reviews: a CSV filtered on them kept the rows of a class
    the report disowned), and ``p_vs_random``/``p_worse_than_random`` keep the tests' p."""
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
    for flag in ("beats_random", "worse_than_random"):  # empty (no control) stays empty; the tables' * and °
        if flag in board.columns:
            board[flag] = board[flag].mask(board[AT_CHANCE] & board[flag].notna(), False)
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
