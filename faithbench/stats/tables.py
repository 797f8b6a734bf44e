"""Statistics tables from the tidy results table.

The tidy table has one row per (dataset, model, explainer, metric, seed, sample_id) and
the columns ``dataset, model, explainer, metric, seed, sample_id, value, higher_is_better,
category, chance``. Within a (dataset, model, metric) cell the samples are the blocks
(SCIENCE.md: "samples as blocks"): a sample's values under several seeds are averaged first
(their mean over all its seeds, undefined if one is: :func:`per_sample`), since every seed explains the same images
and a (seed, sample) is no independent observation (5 seeds of the same 12 images pooled as 60
blocks gave p_vs_random 0.0016, the 12 sample means 0.065). Explainers are compared on the same
samples, and a NaN value (metric not defined for that sample) removes the sample
only from the comparisons it takes part in. Every table is sorted by its keys, so the same
results always give the same table.

Multi-label results carry a ``class`` column (the explained class; empty for single-label rows of
a mixed table): the cell is then (dataset, model, class, metric), every table gains a ``class``
column after ``model``, and (dataset, model, class) is a group of
:func:`faithbench.stats.overall.overall_ranks`.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from faithbench.stats.bootstrap import bootstrap_ci
from faithbench.stats.paired import (
    PAIRWISE_COLUMNS,
    common_means,
    critical_difference,
    friedman,
    nemenyi,
    pairwise_wilcoxon,
    versus_control,
)
from faithbench.stats.pvalues import holm, kendall_tau

__all__ = [
    "agreement_table",
    "friedman_table",
    "leaderboard",
    "nemenyi_table",
    "pairwise_table",
]

CELL = ["dataset", "model", "metric"]
PAIR_KEY = ["seed", "sample_id"]  # a row of the tidy table, within a (cell, explainer)
SAMPLE = "sample_id"  # a block of the tests: the seeds of a sample averaged (per_sample)
REQUIRED = [
    "dataset", "model", "explainer", "metric", "seed", "sample_id",
    "value", "higher_is_better", "category", "chance",
]
LEADERBOARD_COLUMNS = CELL + [
    "explainer", "mean", "ci_low", "ci_high", "median", "n", "chance", "rank", "n_common",
    "higher_is_better", "category", "p_vs_random", "beats_random", "p_worse_than_random", "worse_than_random",
]
PAIRWISE_TABLE_COLUMNS = CELL + PAIRWISE_COLUMNS
FRIEDMAN_COLUMNS = CELL + ["statistic", "p", "n_blocks", "k", "cd", "reason"]
NEMENYI_COLUMNS = CELL + ["explainer_a", "explainer_b", "p"]
AGREEMENT_COLUMNS = ["dataset", "model", "metric_a", "metric_b", "tau", "p", "n_explainers"]

ALPHA = 0.05
CLASS = "class"


def with_class(columns: list[str]) -> list[str]:
    """``columns`` with ``class`` inserted after ``model`` (the multi-label tables)."""
    at = columns.index("model") + 1
    return columns[:at] + [CLASS] + columns[at:]


def _keys(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    return with_class(keys) if CLASS in frame.columns else keys


def _check(results: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"expected the tidy results DataFrame, got {type(results).__name__}")
    missing = [c for c in REQUIRED if c not in results.columns]
    if missing:
        raise ValueError(
            f"expected the tidy results columns {REQUIRED}, missing {missing}"
        )
    if CLASS in results.columns:
        results = results.assign(**{CLASS: results[CLASS].fillna("").astype(str)})
    bad = results["value"].notna() & ~np.isfinite(pd.to_numeric(results["value"], errors="coerce").astype(float))
    if bad.any():  # a review: one inf ranked its explainer first, mean inf
        raise ValueError(f"expected finite numbers (or NaN for undefined) in 'value', got {int(bad.sum())} row(s) "
                         f"like {results.loc[bad, 'value'].iloc[0]} (metric {results.loc[bad, 'metric'].iloc[0]!r})")
    for column in ("higher_is_better", "category"):
        counts = results.groupby("metric", observed=True, sort=True)[column].nunique(dropna=False)
        bad = counts[counts > 1]
        if len(bad):
            raise ValueError(
                f"expected {column!r} constant per metric, got several values for "
                f"metric(s) {list(bad.index)}"
            )
    unique = _keys(results, CELL) + ["explainer"] + PAIR_KEY
    duplicated = results.duplicated(unique)
    if duplicated.any():
        first = results.loc[duplicated, unique].iloc[0].to_dict()
        raise ValueError(
            f"expected one row per ({', '.join(unique)}), got "
            f"{int(duplicated.sum())} duplicate row(s), e.g. {first}"
        )
    return results


def per_sample(frame: pd.DataFrame, keys: list[str], strict: tuple[str, ...] = ("value",),
               lenient: tuple[str, ...] = ("chance",), units: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per ``keys`` (which hold ``explainer`` and ``sample_id``, not ``seed``), sorted by
    them. Each column of ``strict``: the mean over the seeds under which the sample was explained
    in its group (``keys`` without explainer and sample_id), NaN where any of those seeds' value is
    undefined (NaN, or no row: a failed cell), so that two explainers' values of a sample always
    average the same seeds (pairing seed 0 of one with seeds 0 and 1 of another would test the
    checkpoints, not the explainers). Each column of ``lenient``: the mean of its defined values
    over the same rows. Other columns are dropped. One seed: the values themselves. ``units``: the
    explained (group, seed, sample_id) rows, by default those of ``frame``; an undefined value has
    no row in the tidy table, so a sample undefined under one seed for every explainer of a metric
    needs the units of every metric (:func:`explained_units`) to stay undefined (a held-out review
    found it averaged over its other seeds)."""
    group = [k for k in keys if k not in ("explainer", SAMPLE)]
    columns = list(strict) + list(lenient)
    data = frame[group + ["explainer", "seed", SAMPLE] + columns].astype({c: float for c in columns})
    units = data[group + ["seed", SAMPLE]].drop_duplicates() if units is None else units[group + ["seed", SAMPLE]]
    names = data[group + ["explainer"]].drop_duplicates()
    grid = units.merge(names, on=group) if group else units.merge(names, how="cross")
    full = grid.merge(data, on=group + ["explainer", "seed", SAMPLE], how="left")
    rows = full.groupby(keys, sort=True, observed=True, dropna=False)
    out = rows[columns].mean()
    complete = rows[list(strict)].count().eq(rows.size(), axis=0)
    out[list(strict)] = out[list(strict)].where(complete)
    return out.reset_index()


def explained_units(results: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """The (``group``, seed, sample_id) rows with a value for any metric and explainer: the samples
    explained under each seed (:func:`per_sample`'s ``units``)."""
    return results[group + ["seed", SAMPLE]].drop_duplicates()


def _cells(results: pd.DataFrame):
    """Yield ({key column: value} of (dataset, model[, class], metric), that cell's rows per
    (explainer, sample_id): ``value``, ``chance`` (means over the seeds, :func:`per_sample`),
    ``higher_is_better``, ``category``), sorted by key. The fixed row order makes the bootstrap
    resamples (and float sums) independent of the order in which results were collected."""
    results = _check(results)
    names = _keys(results, CELL)
    blocks = [k for k in names if k != "metric"]
    units = explained_units(results, blocks)
    for key, frame in results.groupby(names, observed=True, sort=True):
        first = frame.iloc[0]
        samples = per_sample(frame, blocks + ["explainer", SAMPLE], units=units)
        yield dict(zip(names, key)), samples.assign(higher_is_better=first["higher_is_better"],
                                                    category=first["category"])


def _wide(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows = samples (sample_id), columns = explainers (sorted), values = metric value."""
    wide = frame.pivot(index=SAMPLE, columns="explainer", values="value").astype(float)
    wide.columns = list(wide.columns)
    return wide.sort_index(axis=1)


def _block_explainers(results: pd.DataFrame) -> tuple[list[str], dict[tuple, set[str]]]:
    """The block columns (dataset, model[, class]) and each block's explainers with a row of any metric."""
    results = _check(results)
    blocks = [k for k in _keys(results, CELL) if k != "metric"]
    groups = results.groupby(blocks, observed=True, sort=False)["explainer"]
    return blocks, {tuple(k): {str(e) for e in g.unique()} for k, g in groups}


def _key_frame(key: dict, table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for position, (name, value) in enumerate(key.items()):
        table.insert(position, name, value)
    return table


def _failed(failures: pd.DataFrame | None, key: dict) -> set[str]:
    """The explainers with a row of ``failures.csv`` for the cell ``key``'s dataset and model and its metric
    (metric empty: the explanation failed, every metric). They were planned: their comparisons count in the
    Holm family without a pair (a held-out review: dropped, they gave another explainer a ``*``); an explainer
    that does not apply to the model (``skipped.csv``) was not, and does not. A whole group's failure (stage
    ``checkpoint`` or ``task``: one row per cell, the explainers that do not apply included) takes its seed from
    every explainer alike, so it leaves no comparison without a pair and is not counted (a diff review)."""
    if failures is None or failures.empty or not {"dataset", "model", "explainer"} <= set(failures.columns):
        return set()
    if "stage" in failures.columns:
        failures = failures[~failures["stage"].astype(str).isin(["checkpoint", "task"])]
    metric = failures["metric"] if "metric" in failures.columns else pd.Series(np.nan, index=failures.index)
    where = ((failures["dataset"].astype(str) == str(key["dataset"]))
             & (failures["model"].astype(str) == str(key["model"])))
    hit = where & (metric.isna() | metric.astype(str).isin(["", str(key["metric"])]))
    return set(failures.loc[hit, "explainer"].dropna().astype(str))


def _planned_holm(table: pd.DataFrame, names: list[str], failed: set[str], sides: list[str]) -> pd.Series:
    """``table``'s ``p`` Holm-adjusted over the planned comparisons: those with a p, and those without one
    (n = 0) that involve a ``failed`` explainer, with a column (``sides``: its explainer columns) or none
    (``names``: the explainers with rows; a failed one without is compared with each of them)."""
    untested = table["p"].isna() & table[sides].astype(str).isin(failed).any(axis=1)
    absent = len(failed - set(names))
    extra = (absent * len(names) + absent * (absent - 1) // 2) if len(sides) == 2 else absent
    return pd.Series(holm(table["p"].to_numpy(dtype=float), m=int(table["p"].notna().sum() + untested.sum())
                          + extra), index=table.index)


def _concat(tables: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame(columns=columns)
    if CLASS in tables[0].columns and CLASS not in columns:
        columns = with_class(columns)
    return pd.concat(tables, ignore_index=True)[columns]


def _common_count(wide: pd.DataFrame) -> int:
    """The samples on which every explainer (column) with a value is defined: the rows that
    :func:`~faithbench.stats.paired.common_means` averages, which ``rank`` comes from."""
    present = wide.astype(float).dropna(axis=1, how="all")
    return int(len(present.dropna(axis=0, how="any"))) if present.shape[1] else 0


def leaderboard(
    results: pd.DataFrame, control: str = "random", n_resamples: int = 1000, seed: int = 0,
    failures: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (dataset, model, metric, explainer) with summary and test against control.

    Columns: ``mean, median, n`` over the explainer's samples with a defined value (a sample's
    values under several seeds averaged first, :func:`per_sample`; one seed: the values); ``ci_low,
    ci_high`` the 95% percentile bootstrap CI of the mean over those samples (:func:`bootstrap_ci`,
    ``n_resamples`` resamples, ``seed``); ``chance`` the mean of the chance column over the same
    samples (NaN if not applicable);
    ``rank`` 1 = best, oriented by ``higher_is_better``, ties (up to float rounding) sharing the best ('min') rank, by
    the means over the samples on which every explainer of the cell with a value is defined
    (:func:`~faithbench.stats.paired.common_means`; the order of ``mean`` when the n are equal), NaN on every row
    where fewer than two explainers have a value while its (dataset, model[, class]) has several (with a row for
    any metric, or failed for this one in ``failures``): nothing is compared; ``n_common`` the number of those
    samples (:func:`_common_count`; 0 with no rank; the tables say it where it is below every n of the column);
    ``p_vs_random`` the one-sided Wilcoxon signed-rank p-value of the explainer against
    ``control`` on samples paired by sample_id, Holm-adjusted across the explainers of the cell
    (NaN for the control itself or where it is absent); ``beats_random`` = p_vs_random < 0.05, NA
    where p_vs_random is NaN (no test: "not tested" is not "not better"); ``p_worse_than_random`` and
    ``worse_than_random`` the same test on the other side (the explainer *worse* than the control; its
    own Holm family), which the one-sided ``p_vs_random`` cannot show (a review: integrated gradients
    below random on insertion, pairwise p_holm 1.8e-11, carried no mark). ``failures`` (``failures.csv``): an
    explainer whose cell failed stays in the Holm family m though it has no pair (:func:`_failed`). Sorted by
    cell, then rank.
    """
    tables = []
    blocks, explainers = _block_explainers(results)
    for key, frame in _cells(results):
        higher_is_better = bool(frame["higher_is_better"].iloc[0])
        category = frame["category"].iloc[0]
        defined = frame[frame["value"].notna()]
        by_explainer = defined.groupby("explainer", observed=True, sort=True)
        names = sorted(frame["explainer"].unique())
        table = pd.DataFrame(index=pd.Index(names, name="explainer"))
        table["mean"] = by_explainer["value"].mean()
        intervals = {
            name: bootstrap_ci(values.to_numpy(), n_resamples=n_resamples, seed=seed)
            for name, values in by_explainer["value"]
        }
        table["ci_low"] = pd.Series({k: v[0] for k, v in intervals.items()}, dtype=float)
        table["ci_high"] = pd.Series({k: v[1] for k, v in intervals.items()}, dtype=float)
        table["median"] = by_explainer["value"].median()
        table["n"] = by_explainer["value"].size()
        table["n"] = table["n"].fillna(0).astype(int)
        table["chance"] = by_explainer["chance"].mean()
        wide = _wide(frame)  # one pivot for the rank, its sample count and the tests against the control
        table["rank"] = common_means(wide).rank(method="min", ascending=not higher_is_better)
        table["n_common"] = _common_count(wide)
        failed_all = _failed(failures, key)
        planned = explainers[tuple(key[b] for b in blocks)] | failed_all
        if table["mean"].notna().sum() < 2 <= len(planned):  # one explainer alone has a value: nothing compared
            table["rank"], table["n_common"] = np.nan, 0  # (a review: rank 1 where the tables' bold had none)
        table["higher_is_better"] = higher_is_better
        table["category"] = category
        for column, flag, better in (("p_vs_random", "beats_random", True),
                                     ("p_worse_than_random", "worse_than_random", False)):
            table[column] = np.nan
            if control in names and len(names) > 1:
                versus = versus_control(wide, control, higher_is_better == better)
                failed = failed_all - {control}
                table[column] = _planned_holm(versus, names, failed, ["explainer"]).set_axis(versus["explainer"])
            table[flag] = (table[column] < ALPHA).astype("boolean").mask(table[column].isna())
        table = table.reset_index()
        table = table.sort_values(["rank", "explainer"], na_position="last", kind="stable")
        tables.append(_key_frame(key, table))
    return _concat(tables, LEADERBOARD_COLUMNS).reset_index(drop=True)


def pairwise_table(results: pd.DataFrame, failures: pd.DataFrame | None = None) -> pd.DataFrame:
    """Two-sided pairwise Wilcoxon signed-rank tests per (dataset, model, metric).

    See :func:`faithbench.stats.paired.pairwise_wilcoxon`: every unordered pair of
    explainers (sorted by name, a < b), samples paired by sample_id with NaN pairs
    dropped, Holm-adjusted across the pairs of the cell, rank-biserial effect size of a vs
    b (positive when a > b). Columns: dataset, model, metric, explainer_a, explainer_b,
    statistic, p, p_holm, effect_size, n. ``failures``: as :func:`leaderboard`'s, the pairs of a failed
    explainer count in the Holm family m.
    """
    tables = []
    for key, frame in _cells(results):
        table = pairwise_wilcoxon(_wide(frame))
        names = sorted(map(str, frame["explainer"].unique()))
        sides = ["explainer_a", "explainer_b"]
        table["p_holm"] = _planned_holm(table, names, _failed(failures, key), sides) if len(table) else table["p"]
        tables.append(_key_frame(key, table))
    return _concat(tables, PAIRWISE_TABLE_COLUMNS)


def friedman_table(results: pd.DataFrame) -> pd.DataFrame:
    """Friedman test across explainers with samples as blocks, per (dataset, model, metric).

    Explainers with no defined value in the cell are left out, then samples with any NaN
    (see :func:`faithbench.stats.paired.friedman`). ``cd`` is the Nemenyi critical
    difference of mean ranks at alpha = 0.05 for those k explainers and n_blocks blocks
    (Demšar 2006); ``reason`` says why statistic and p are NaN (k < 3, too few blocks),
    empty otherwise.
    """
    rows = []
    for key, frame in _cells(results):
        wide = _wide(frame).dropna(axis=1, how="all")
        result = friedman(wide)
        rows.append(
            dict(
                key,
                statistic=result.statistic,
                p=result.p,
                n_blocks=result.n_blocks,
                k=result.k,
                cd=critical_difference(result.k, result.n_blocks, alpha=ALPHA),
                reason=result.reason,
            )
        )
    columns = with_class(FRIEDMAN_COLUMNS) if rows and CLASS in rows[0] else FRIEDMAN_COLUMNS
    return pd.DataFrame(rows, columns=columns)


def nemenyi_table(results: pd.DataFrame) -> pd.DataFrame:
    """Nemenyi post-hoc p-values in long form, per (dataset, model, metric).

    One row per unordered pair of explainers (sorted by name, a < b) from
    :func:`faithbench.stats.paired.nemenyi` over the complete samples; explainers with no
    defined value in the cell are left out (p NaN with fewer than 2 complete samples, as cd).
    Columns: dataset, model, metric, explainer_a, explainer_b, p.
    """
    tables = []
    for key, frame in _cells(results):
        matrix = nemenyi(_wide(frame).dropna(axis=1, how="all"))
        rows = [
            {"explainer_a": a, "explainer_b": b, "p": float(matrix.loc[a, b])}
            for a, b in itertools.combinations(matrix.columns, 2)
        ]
        tables.append(_key_frame(key, pd.DataFrame(rows, columns=NEMENYI_COLUMNS[3:])))
    return _concat(tables, NEMENYI_COLUMNS)


def agreement_table(leaderboard_df: pd.DataFrame) -> pd.DataFrame:
    """Kendall tau-b between the explainer rankings that two metrics give (Kendall 1938).

    Per (dataset, model) and each unordered pair of metrics (sorted, a < b), over the
    explainers ranked by both (non-NaN ``rank`` in the :func:`leaderboard` table),
    τ_b of the two rank vectors and its two-sided p (:func:`faithbench.stats.pvalues.kendall_tau`: exact
    over the orderings up to 8 explainers, ties or not; scipy's above). Ranks are oriented (1 = best) so
    tau = 1 is full agreement and tau = -1 reversed orders. tau and p are NaN with fewer
    than 2 shared explainers or a metric that ties them all.
    Columns: dataset, model, metric_a, metric_b, tau, p, n_explainers.
    """
    needed = ["dataset", "model", "metric", "explainer", "rank"]
    missing = [c for c in needed if c not in leaderboard_df.columns]
    if missing:
        raise ValueError(f"expected leaderboard columns {needed}, missing {missing}")
    rows = []
    blocks = _keys(leaderboard_df, ["dataset", "model"])
    if CLASS in leaderboard_df.columns:
        leaderboard_df = leaderboard_df.assign(**{CLASS: leaderboard_df[CLASS].fillna("").astype(str)})
    for key, frame in leaderboard_df.groupby(blocks, observed=True, sort=True):
        ranks = frame.pivot(index="explainer", columns="metric", values="rank").astype(float)
        for metric_a, metric_b in itertools.combinations(sorted(ranks.columns), 2):
            pair = ranks[[metric_a, metric_b]].dropna()
            tau, p = np.nan, np.nan
            a, b = pair[metric_a].to_numpy(), pair[metric_b].to_numpy()
            if len(pair) >= 2 and np.unique(a).size > 1 and np.unique(b).size > 1:
                tau, p = kendall_tau(a, b)
            rows.append(
                {
                    **dict(zip(blocks, key)),
                    "metric_a": metric_a,
                    "metric_b": metric_b,
                    "tau": tau,
                    "p": p,
                    "n_explainers": int(len(pair)),
                }
            )
    return pd.DataFrame(rows, columns=_keys(leaderboard_df, AGREEMENT_COLUMNS))
