"""Stratified analysis: localisation and faithfulness scores by lesion size, model confidence and
correctness of the prediction.

An explainer can look good on large lesions and confident, correct predictions and fail where it
matters (small findings, uncertain or wrong predictions; cf. Saporta et al. 2022, who found
saliency localisation worst on small, complex pathologies). The runner adds three per-row
columns to the tidy results:

- ``lesion_area``: the fraction of the spatial volume inside the dataset's ground-truth mask
  (NaN when the sample has none);
- ``confidence``: the softmax (sigmoid for multi-label) probability of the explained target;
- ``correct``: whether the prediction equals the label.

:func:`stratify` breaks every score of the ``localization`` and ``faithfulness`` categories down by

- ``lesion_size`` tertiles: ``small`` (area <= q1), ``medium`` (q1 < area <= q2), ``large``
  (area > q2), q1 and q2 the 1/3 and 2/3 quantiles (numpy's linear interpolation) of the distinct
  area values of the samples of the dataset (per class on multi-label results) with a lesion
  (area > 0; samples without one are left out of this breakdown);
- ``confidence`` tertiles: ``low`` / ``medium`` / ``high`` likewise, from the confidences of the
  distinct (seed, sample) of each (dataset, model) (per class on multi-label results);
- ``correctness``: ``correct`` / ``wrong``;
- ``explained_class``: ``class 0``, ``class 1``, ... (the ``target`` column: the class each map
  explains), on single-label results whose maps explain more than one class (``target: predicted``
  or ``label`` with ``subset: all``): a pooled score can hide opposite verdicts per class (a review:
  Grad-CAM best on deletion over all maps, worse than random on the maps explaining "pneumonia",
  where deleting evidence moves the probability, while for "normal" it barely does for any map);
- ``finding``: ``present`` / ``absent`` (the ``label`` column: whether the image has the class a row
  explains), on multi-label results that explain a class on images with and without it
  (``target: {classes: [...]}``): a review measured saliency's insertion AUC for a class at 0.522
  where present, 0.264 where absent, 0.393 pooled.

The edges come from the distinct values, so that tied values cannot mislabel a stratum: without
ties they are the samples' own tertiles (three strata of equal size, up to one); with ties the
strata may be unequal, but the smallest value is always in the first stratum and the largest in
the last. (Quantiles of the samples themselves put a phantom's 5 lesions of one area and 8 of a
larger one into ``small`` and ``medium``, with ``large`` empty, and 24 lesions of two areas, most
of the larger, all into ``small``.) Two distinct values give the first and the last stratum, one
value only the middle one (``medium``: there is nothing to compare). A stratum may be empty (it
then has no row). Rows whose value is NaN are dropped first: they set no edge and fill no stratum (a
stratum of undefined values only is empty). Per stratum: ``n`` values, ``mean`` and its 95% percentile
bootstrap CI (:func:`faithbench.stats.bootstrap.bootstrap_ci`, 1000 resamples, seed 0). The
values are maps, not samples: a sample's confidence and correctness are its checkpoint's, so
under several seeds it counts once per seed and may sit in several strata; the CI then treats
those maps as independent and is narrower than the samples warrant (the leaderboard's tests
average the seeds of a sample first);
``lower``/``upper`` the smallest and largest value of the stratifying variable in the stratum
(NaN for correctness, the explained class and the finding).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from faithbench.stats.bootstrap import bootstrap_ci

__all__ = ["STRATA_COLUMNS", "STRATA_LABELS", "STRATIFIED_CATEGORIES", "as_bool", "stratify", "tertiles"]

STRATA_COLUMNS = ["dataset", "model", "metric", "explainer", "stratum_kind", "stratum", "n", "mean", "ci_low",
                  "ci_high", "lower", "upper"]
STRATIFIED_CATEGORIES = ("localization", "faithfulness")
# stratum kind -> (source column, stratum labels in order)
STRATA_LABELS = {
    "lesion_size": ("lesion_area", ("small", "medium", "large")),
    "confidence": ("confidence", ("low", "medium", "high")),
    "correctness": ("correct", ("correct", "wrong")),
}
_NEEDED = ["dataset", "model", "metric", "explainer", "value", "category"]


def tertiles(values, labels: tuple[str, str, str]) -> pd.Series:
    """Tertile label of each value: ``labels[0]`` if v <= q1, ``labels[1]`` if q1 < v <= q2,
    ``labels[2]`` if v > q2, q1/q2 the 1/3 and 2/3 quantiles of the distinct finite values (one
    distinct value: ``labels[1]``); NaN stays NaN.

    Example: 1..9 -> q1 = 3.67, q2 = 6.33 -> three of each; [1] * 5 + [2] * 8 -> q1 = 1.33,
    q2 = 1.67 -> five ``labels[0]``, eight ``labels[2]``."""
    series = pd.Series(values, dtype=float)
    return _assign(series, series.dropna().to_numpy(), labels)


def _assign(values: pd.Series, reference: np.ndarray, labels: tuple[str, ...]) -> pd.Series:
    """Tertile labels of ``values`` with the edges from the distinct ``reference`` values."""
    out = pd.Series(np.nan, index=values.index, dtype=object)
    distinct = np.unique(reference)
    if distinct.size == 0:
        return out
    if distinct.size == 1:
        out[values.notna()] = labels[1]
        return out
    q1, q2 = np.quantile(distinct, [1 / 3, 2 / 3])
    out[values <= q1] = labels[0]
    out[(values > q1) & (values <= q2)] = labels[1]
    out[values > q2] = labels[2]
    return out


def as_bool(column: pd.Series) -> pd.Series:
    """``correct`` as True/False/NaN, whether it came as bool, 0/1 or the strings of a CSV."""
    mapping = {True: True, False: False, 1: True, 0: False, 1.0: True, 0.0: False, "True": True, "False": False,
               "true": True, "false": False, "1": True, "0": False}
    return column.map(lambda v: mapping.get(v, np.nan) if not (isinstance(v, float) and np.isnan(v)) else np.nan)


def _label_column(frame: pd.DataFrame, kind: str, blocks: list[str]) -> pd.Series:
    """The stratum of every row for ``kind``, from the distinct samples of each block."""
    source, labels = STRATA_LABELS[kind]
    if kind == "correctness":
        flags = as_bool(frame[source])
        return flags.map({True: labels[0], False: labels[1]})
    values = pd.to_numeric(frame[source], errors="coerce")
    if kind == "lesion_size":
        values = values.where(values > 0)
    out = pd.Series(np.nan, index=frame.index, dtype=object)
    sample = ["sample_id"] + (["seed"] if kind == "confidence" and "seed" in frame.columns else [])
    sample = [c for c in sample if c in frame.columns]
    for _, block in frame.assign(_v=values).groupby(blocks, observed=True, sort=True, dropna=False):
        distinct = block.dropna(subset=["_v"])
        distinct = distinct.drop_duplicates(sample) if sample else distinct
        out.loc[block.index] = _assign(block["_v"], distinct["_v"].to_numpy(dtype=float), labels)
    return out


def stratify(results: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (dataset, model[, class], metric, explainer, stratum_kind, stratum): n, mean, bootstrap
    CI of the localisation and faithfulness scores (see the module docstring). Only the stratum
    kinds whose source column exists are computed; no such column (or no row of those categories)
    -> an empty frame with the columns of ``STRATA_COLUMNS``. Sorted by the keys, strata in their
    natural order (small, medium, large; low, medium, high; correct, wrong; present, absent)."""
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"expected the tidy results DataFrame, got {type(results).__name__}")
    missing = [c for c in _NEEDED if c not in results.columns]
    if missing:
        raise ValueError(f"expected the tidy results columns {_NEEDED}, missing {missing}")
    has_class = "class" in results.columns
    columns = STRATA_COLUMNS[:2] + ["class"] + STRATA_COLUMNS[2:] if has_class else STRATA_COLUMNS
    # a fresh index: labels are written back by index, and a concatenated table may repeat it
    frame = results[results["category"].astype(str).isin(STRATIFIED_CATEGORIES)]
    # an undefined value is no map of the stratum: it neither sets the tertile edges nor makes an n = 0 row (a review:
    # two all-NaN samples took the "low" third and wrote it with n 0)
    frame = frame[pd.to_numeric(frame["value"], errors="coerce").notna()]
    # the bootstrap resamples positions: a canonical row order, so a re-sorted table gives the same CIs (a review:
    # shuffled rows moved ci_low on 20 of 174 rows, by up to 0.075)
    order = [c for c in ("seed", "sample_id", "target") if c in frame.columns]
    frame = frame.sort_values(order, kind="stable", key=lambda c: c.astype(str)).reset_index(drop=True)
    if has_class:
        frame = frame.assign(**{"class": frame["class"].fillna("").astype(str)})
    kinds = [k for k, (source, _) in STRATA_LABELS.items() if source in frame.columns]
    if not has_class and "target" in frame.columns and frame["target"].dropna().nunique() > 1:
        kinds.append("explained_class")
    if has_class and "label" in frame.columns and frame["label"].dropna().nunique() > 1:
        kinds.append("finding")
    if frame.empty or not kinds:
        return pd.DataFrame(columns=columns)
    klass = ["class"] if has_class else []
    blocks = {"lesion_size": ["dataset"] + klass, "confidence": ["dataset", "model"] + klass,
              "correctness": ["dataset"]}
    keys = ["dataset", "model"] + klass + ["metric", "explainer"]
    rows = []
    for kind in kinds:
        if kind == "explained_class":
            targets = sorted({int(t) for t in frame["target"].dropna()})
            source, labels = "target", tuple(f"class {t}" for t in targets)
            stratum = frame["target"].map(lambda t: np.nan if pd.isna(t) else f"class {int(t)}")
            kind_index = len(STRATA_LABELS)
        elif kind == "finding":
            source, labels, kind_index = "label", ("present", "absent"), len(STRATA_LABELS) + 1
            stratum = pd.to_numeric(frame["label"], errors="coerce").map(
                lambda v: np.nan if pd.isna(v) else ("present" if v else "absent"))
        else:
            source, labels = STRATA_LABELS[kind]
            kind_index = list(STRATA_LABELS).index(kind)
            # each sample counts once per block, whatever the number of metrics and explainers
            stratum = _label_column(frame, kind, blocks[kind])
        labelled = frame.assign(_stratum=stratum).dropna(subset=["_stratum"])
        order = {label: i for i, label in enumerate(labels)}
        for key, group in labelled.groupby(keys + ["_stratum"], observed=True, sort=True):
            values = pd.to_numeric(group["value"], errors="coerce").to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
            numeric = kind not in ("correctness", "explained_class", "finding")
            source_values = pd.to_numeric(group[source], errors="coerce") if numeric else None
            rows.append({**dict(zip(keys, key[:-1])), "stratum_kind": kind, "stratum": key[-1],
                         "_order": (kind_index, order[key[-1]]), "n": int(values.size),
                         "mean": float(values.mean()) if values.size else np.nan, "ci_low": low, "ci_high": high,
                         "lower": float(source_values.min()) if source_values is not None else np.nan,
                         "upper": float(source_values.max()) if source_values is not None else np.nan})
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows).sort_values(keys + ["_order"], kind="stable")
    return table[columns].reset_index(drop=True)
