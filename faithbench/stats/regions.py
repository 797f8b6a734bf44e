"""Region-level tests of region-based saliency (Sümer et al. 2023, "Region-based Saliency
Explanations on the Recognition of Facial Genetic Syndromes", MLHC).

The region-based saliency study's procedure, per region: compare the region's saliency score
between the classes; Shapiro–Wilk (normality, each class) and Levene (equal variances) decide
between Student's t-test and the Mann–Whitney U test; Bonferroni across the regions. Beside it,
paired two-sided Wilcoxon signed-rank tests between explainers per region.

Input is the tidy ``regions.csv`` table: one row per (dataset, model, explainer, seed,
sample_id, region) with the scores ``mean, sum, max, share`` and ``label``. The classes are
"negative" (label 0) and "positive" (any other label), as in ``subset: positive``. Each sample
is one observation, as in the leaderboard: a sample's scores under several seeds are averaged
first (the seeds explain the same images).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from faithbench.stats.paired import pairwise_wilcoxon
from faithbench.stats.pvalues import p_values
from faithbench.stats.tables import _failed, _planned_holm, per_sample

__all__ = ["CLASS_TEST_COLUMNS", "REGION_PAIRWISE_COLUMNS", "bonferroni", "class_test", "empty_class",
           "empty_region_messages", "failed_in_pairwise", "mann_whitney", "rank_sum_null", "region_class_tests",
           "region_pairwise"]

CLASS_TEST_COLUMNS = ["dataset", "model", "explainer", "score", "region", "test", "statistic", "p",
                      "p_bonferroni", "significant", "n_regions", "n_negative", "n_positive", "mean_negative",
                      "mean_positive", "shapiro_p_negative", "shapiro_p_positive", "levene_p", "note"]
REGION_PAIRWISE_COLUMNS = ["dataset", "model", "score", "region", "samples", "explainer_a", "explainer_b",
                           "statistic", "p", "p_holm", "effect_size", "n"]
_SAMPLE = ["dataset", "model", "explainer", "region", "sample_id", "label"]
REGIONS_METRIC = "regions"  # the label of the suite's regions: block as a metric (failures.csv's metric column)
EMPTY_REGION = "region empty on every"  # how the note of a region left untested for its empty mask starts


def bonferroni(p) -> np.ndarray:
    """Bonferroni-adjusted p-values, min(1, m p), with m the number of non-NaN p-values (NaN stays NaN;
    a value outside [0, 1] is a ValueError).

    Example: p = [0.01, 0.04, NaN] -> [0.02, 0.08, NaN].
    """
    p = p_values(p, "bonferroni")
    m = int(np.count_nonzero(~np.isnan(p)))
    return np.minimum(p * m, 1.0)


MW_EXACT_MAX = 50  # up to this many values in the two classes together the Mann–Whitney p is exact


def rank_sum_null(doubled_ranks: np.ndarray, n: int) -> np.ndarray:
    """The exact null distribution of 2 R, R the sum of the ranks of ``n`` of the values when each of the
    C(N, n) ways to choose them is equally likely (the permutation null of the Mann–Whitney test):
    ``pmf[t] = P(2 R = t)``. ``doubled_ranks``: twice the (average) ranks of the N values, whole
    numbers, so ties keep their midranks exactly. Counts the subsets of each size and sum, one value
    at a time; the counts (at most C(50, 25) ~ 1.3e14) are exact in float64."""
    total = int(doubled_ranks.sum())
    counts = np.zeros((n + 1, total + 1))
    counts[0, 0] = 1.0
    for w in doubled_ranks.astype(int):
        counts[1:, w:] += counts[:-1, :total + 1 - w].copy()
    return counts[n] / counts[n].sum()


def mann_whitney(x, y) -> tuple[float, float]:
    """Two-sided Mann–Whitney U test of x against y (Mann & Whitney 1947): (U of x, p).

    With at most ``MW_EXACT_MAX`` (50) values in all, p is exact: twice the smaller tail of the rank
    sum of x over all C(N, len(x)) splits of the (average) ranks, ties included, at most 1 (it equals
    scipy's exact null without ties and its exhaustive ``permutation_test`` with them). Above 50:
    scipy's normal approximation with the tie and continuity corrections. scipy's default method
    takes the normal approximation whenever there are ties, and region shares tie easily (a region
    without positive saliency has share 0): [1, 1, 1] vs [2, 2, 2] got p 0.047, below the smallest
    p that 3 vs 3 can give, 0.1 (a held-out review). NaN and ±inf values are dropped (a review: a raw numpy
    error); with none left on a side, (NaN, NaN)."""
    x, y = _finite(x), _finite(y)
    if x.size == 0 or y.size == 0:
        return float("nan"), float("nan")
    ranks = stats.rankdata(np.concatenate([x, y]))
    r_x = float(ranks[:x.size].sum())
    statistic = r_x - x.size * (x.size + 1) / 2.0
    if x.size + y.size > MW_EXACT_MAX:
        return statistic, float(stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").pvalue)
    pmf = rank_sum_null(np.rint(2 * ranks), x.size)
    observed = int(round(2 * r_x))
    upper, lower = float(pmf[observed:].sum()), float(pmf[:observed + 1].sum())
    return statistic, min(2 * min(upper, lower), 1.0)


def _finite(values) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    return a[np.isfinite(a)]


def class_test(negative, positive, alpha: float = 0.05) -> dict[str, float | str | int]:
    """Compare one region's score between two classes with the region-based study's procedure.

    1. Shapiro–Wilk on each class (``scipy.stats.shapiro``) and Levene's test on the two
       (``scipy.stats.levene``, centre = median, the Brown–Forsythe variant that scipy uses by
       default and that is robust to the skewed scores this check is there to catch).
    2. Both classes normal (Shapiro p > ``alpha``) and equal variances (Levene p > ``alpha``):
       Student's two-sample t-test (``ttest_ind``, ``equal_var=True``); otherwise the Mann–Whitney
       U test (:func:`mann_whitney`: exact up to 50 values, ties included). Both two-sided.

    NaN/Inf values are dropped. With fewer than 3 values in a class the test is ``none`` (p NaN):
    Shapiro–Wilk needs 3. A class whose values are all equal is not normal (its Shapiro p is
    taken as 0), so such data go to Mann–Whitney; every value equal in both classes gives p = 1.

    Returns ``test`` ("t" or "mannwhitney" or "none"), ``statistic`` (t or U), ``p``,
    ``n_negative``, ``n_positive``, ``mean_negative``, ``mean_positive``, ``shapiro_p_negative``,
    ``shapiro_p_positive``, ``levene_p``, ``note`` (why the test is ``none``; empty otherwise).
    """
    neg, pos = _finite(negative), _finite(positive)
    out: dict[str, float | str | int] = {
        "test": "none", "statistic": np.nan, "p": np.nan, "n_negative": neg.size, "n_positive": pos.size,
        "mean_negative": float(neg.mean()) if neg.size else np.nan,
        "mean_positive": float(pos.mean()) if pos.size else np.nan,
        "shapiro_p_negative": np.nan, "shapiro_p_positive": np.nan, "levene_p": np.nan, "note": "",
    }
    if neg.size < 3 or pos.size < 3:
        out["note"] = (f"fewer than 3 values in a class ({neg.size} negative, {pos.size} positive; Shapiro-Wilk "
                       f"needs 3)")
        return out

    def shapiro_p(a: np.ndarray) -> float:
        if np.ptp(a) == 0:
            return 0.0  # a constant is not a sample from a normal distribution
        return float(stats.shapiro(a).pvalue)

    out["shapiro_p_negative"], out["shapiro_p_positive"] = shapiro_p(neg), shapiro_p(pos)
    if np.ptp(np.concatenate([neg, pos])) == 0:
        out.update(test="mannwhitney", statistic=neg.size * pos.size / 2.0, p=1.0)
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # Levene of two constant groups: 0/0
        levene_p = float(stats.levene(neg, pos).pvalue)
    out["levene_p"] = levene_p
    normal = out["shapiro_p_negative"] > alpha and out["shapiro_p_positive"] > alpha
    if normal and levene_p > alpha:  # NaN compares False: Mann–Whitney
        result = stats.ttest_ind(neg, pos, equal_var=True)
        out.update(test="t", statistic=float(result.statistic), p=float(result.pvalue))
    else:
        statistic, p = mann_whitney(neg, pos)
        out.update(test="mannwhitney", statistic=statistic, p=p)
    return out


def _check(regions: pd.DataFrame, scores: list[str]) -> None:
    needed = {"dataset", "model", "explainer", "seed", "sample_id", "label", "region", *scores}
    missing = sorted(needed - set(regions.columns))
    if missing:
        raise ValueError(f"expected regions.csv columns {sorted(needed)}; missing {missing}")


def _per_sample(regions: pd.DataFrame, scores: list[str]) -> pd.DataFrame:
    """One row per (dataset, model, explainer, region, sample_id): each score's mean over the seeds
    of the sample, NaN where one of them is undefined (:func:`faithbench.stats.tables.per_sample`),
    and the region's ``area`` where regions.csv has it. A sample's label does not depend on the seed."""
    lenient = ("area",) if "area" in regions.columns and "area" not in scores else ()
    return per_sample(regions, _SAMPLE, strict=tuple(scores), lenient=lenient)


def empty_class(area_negative, area_positive) -> str:
    """Why a region gets no between-class test, or "": its mask is empty (``area`` 0) on every sample of
    a class (``lesion`` on normal images). There its scores are fixed by the mask, not the map (share 0,
    mean NaN), so any map, the random control's too, "differs" between the classes: docs/datasets.md,
    "Regions of phantom_cxr". Samples whose area is NaN are not counted."""
    empty = [name for name, area in (("negative", area_negative), ("positive", area_positive))
             if (a := _finite(area)).size and not np.any(a > 0)]
    if not empty:
        return ""
    return (f"{EMPTY_REGION} {' and every '.join(empty)} sample: its scores there come from the mask, "
            f"not the map, so no between-class test")


def region_class_tests(regions: pd.DataFrame, scores: list[str] | tuple[str, ...] = ("share",),
                       alpha: float = 0.05) -> pd.DataFrame:
    """:func:`class_test` for every (dataset, model, explainer, score, region) of ``regions``:
    label 0 against the other labels. ``p_bonferroni`` adjusts across the regions of each
    (dataset, model, explainer, score) that have a test (``n_regions`` of them: the named masks and
    the grid cells together); ``significant`` = p_bonferroni < ``alpha``, NA where there is no test (``none``: not
    tested is not "not significant", as the leaderboard's ``beats_random``). A region whose mask is empty
    on every sample of a class (:func:`empty_class`, from ``area``) gets test ``none`` with the reason in
    ``note``, and stays out of the Bonferroni family (a review: ``lesion``, empty on normal images, made
    every explainer and the random control "significant"). Columns: :data:`CLASS_TEST_COLUMNS`.
    """
    scores = list(scores)
    _check(regions, scores)
    regions = _per_sample(regions, scores)
    rows = []
    for (dataset, model, explainer), frame in regions.groupby(["dataset", "model", "explainer"], sort=True):
        for score in scores:
            family = []
            for region, in_region in frame.groupby("region", sort=True):
                pos = in_region["label"].astype(int) != 0
                row = class_test(in_region.loc[~pos, score], in_region.loc[pos, score], alpha)
                empty = empty_class(in_region.loc[~pos, "area"], in_region.loc[pos, "area"]) \
                    if "area" in in_region else ""
                if empty:
                    row.update(test="none", statistic=np.nan, p=np.nan, shapiro_p_negative=np.nan,
                               shapiro_p_positive=np.nan, levene_p=np.nan, note=empty)
                family.append({"dataset": dataset, "model": model, "explainer": explainer, "score": score,
                               "region": region, **row})
            adjusted = bonferroni([r["p"] for r in family])
            m = int(np.count_nonzero(~np.isnan([r["p"] for r in family])))
            for row, p_adj in zip(family, adjusted):  # no test: NA, not False ("tested, not significant")
                row.update(p_bonferroni=float(p_adj), significant=pd.NA if np.isnan(p_adj) else bool(p_adj < alpha),
                           n_regions=m)
            rows += family
    return pd.DataFrame(rows, columns=CLASS_TEST_COLUMNS).astype({"significant": "boolean"})


def empty_region_messages(tests: pd.DataFrame) -> list[str]:
    """One line per (dataset, model, region) of :func:`region_class_tests`' table left without a test because
    its mask is empty on every sample of a class (:func:`empty_class`), for the run's warnings."""
    if tests.empty or "note" not in tests:
        return []
    empty = tests[tests["note"].fillna("").astype(str).str.startswith(EMPTY_REGION)]
    return [f"region_tests.csv: region {region!r} of {dataset} / {model}: {note}" for (dataset, model, region), note
            in empty.groupby(["dataset", "model", "region"], sort=True)["note"].first().items()]


def failed_in_pairwise(failures: pd.DataFrame | None, dataset: str, model: str) -> list[str]:
    """The explainers of ``failures`` (``failures.csv``) whose pairs :func:`region_pairwise` counts in the Holm
    family of (``dataset``, ``model``) without a row: failed in explanation or in the metric ``regions``; sorted."""
    return sorted(_failed(failures, {"dataset": dataset, "model": model, "metric": REGIONS_METRIC}))


def region_pairwise(regions: pd.DataFrame, scores: list[str] | tuple[str, ...] = ("share",),
                    failures: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paired two-sided Wilcoxon signed-rank tests between explainers, per (dataset, model, score,
    region) and per class (``samples``: negative / positive): samples paired by sample_id (the
    seeds averaged), Holm-adjusted across the explainer pairs of each group, matched-pairs
    rank-biserial effect size of a vs b (see :func:`faithbench.stats.paired.pairwise_wilcoxon`).
    ``failures`` (``failures.csv``): the pairs of an explainer whose cell failed (its explanation, or the
    metric ``regions``) were planned and count in the Holm family m though they have no pair, as in
    ``pairwise.csv`` (:func:`faithbench.stats.tables.pairwise_table`; a held-out review: m 6 where pairwise.csv
    counted 10). Columns: :data:`REGION_PAIRWISE_COLUMNS`."""
    scores = list(scores)
    _check(regions, scores)
    regions = _per_sample(regions, scores)
    tables = []
    frame = regions.assign(samples=np.where(regions["label"].astype(int) != 0, "positive", "negative"))
    for (dataset, model, region, samples), group in frame.groupby(["dataset", "model", "region", "samples"],
                                                                 sort=True):
        for score in scores:
            wide = group.pivot(index="sample_id", columns="explainer", values=score)
            wide = wide.reindex(columns=sorted(wide.columns))
            wide.columns = list(wide.columns)
            table = pairwise_wilcoxon(wide)
            if table.empty:
                continue
            failed = set(failed_in_pairwise(failures, dataset, model))
            names, sides = list(map(str, wide.columns)), ["explainer_a", "explainer_b"]
            table["p_holm"] = _planned_holm(table, names, failed, sides)
            for position, (name, value) in enumerate(zip(["dataset", "model", "score", "region", "samples"],
                                                         [dataset, model, score, region, samples])):
                table.insert(position, name, value)
            tables.append(table)
    if not tables:
        return pd.DataFrame(columns=REGION_PAIRWISE_COLUMNS)
    out = pd.concat(tables, ignore_index=True)[REGION_PAIRWISE_COLUMNS]
    return out.sort_values(["dataset", "model", "score", "region", "samples", "explainer_a", "explainer_b"],
                           kind="stable").reset_index(drop=True)
