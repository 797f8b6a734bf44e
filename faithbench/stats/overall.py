"""Ranks across datasets and models: ``overall_ranks.csv`` and ``overall_nemenyi.csv`` (Demšar 2006).

Demšar's Friedman test and Nemenyi post-hoc compare methods over *independent* data sets as blocks.
SCIENCE.md's blocks are the (dataset, model) pairs. Where a dataset has one model they are the same;
where it has several (or a multi-label model several classes), those groups are explained and scored
on the same test images, and model-independent maps (the `random` and `sobel` controls) on
model-independent metrics give them identical values: counted as blocks, they are not independent
and the test is anti-conservative (a held-out review listed one model three times under other names:
the overall Friedman p went from 0.145 to 0.001, the critical difference from 3.32 to 1.91, as for
seeds in :mod:`faithbench.stats.tables`). So:

1. in each (dataset, model[, class]) *group* the explainers are ranked (1 = best, ties averaged) on
   their means over the samples every one of them has (seeds averaged per sample,
   :func:`~faithbench.stats.tables.per_sample`; :func:`~faithbench.stats.paired.common_means`);
2. a group is left out, for every explainer, when its model is at chance (the leaderboard's †: its
   saliency says nothing about the task, and the review found it decided the overall winner) or
   when an explainer of the metric has no mean there (the ranks need every explainer; ``left_out``
   names the group and the explainer, since dropping it reorders the others; an explainer with no value
   in any group is named too, also one with no row of the metric that has rows of another metric (the
   run writes no row for a NaN value or a skipped cell) and one that failed everywhere and has no row, given
   ``failed``);
3. each *dataset* is one block: its groups' ranks are averaged, and ``mean_rank``, the Friedman test
   (``friedman_p``), the critical difference (``cd``) and the Nemenyi p-values are computed over the
   datasets on those averages (lower is better). With one group per dataset this is the test over
   the (dataset, model) blocks; a model listed twice no longer changes anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator

import pandas as pd
from scipy import stats

from faithbench.stats.paired import common_means, critical_difference, friedman, mean_ranks, nemenyi
from faithbench.stats.tables import ALPHA, SAMPLE, _check, _concat, _keys, explained_units, per_sample

__all__ = ["OVERALL_COLUMNS", "OVERALL_NEMENYI_COLUMNS", "failed_pairs", "overall_nemenyi", "overall_ranks"]

OVERALL_COLUMNS = ["metric", "explainer", "mean_rank", "n_blocks", "n_groups", "friedman_p", "cd", "left_out"]
OVERALL_NEMENYI_COLUMNS = ["metric", "explainer_a", "explainer_b", "p", "n_blocks"]


def failed_pairs(failures: pd.DataFrame | None) -> list[tuple[str, str]]:
    """(explainer, metric) of each row of ``failures.csv`` (metric "": the explanation failed, every metric)."""
    if failures is None or failures.empty or "explainer" not in failures:
        return []
    metric = failures["metric"] if "metric" in failures else pd.Series("", index=failures.index)
    return [(str(e), "" if pd.isna(m) else str(m)) for e, m in zip(failures["explainer"], metric) if pd.notna(e)]


def _label(key: tuple) -> str:
    return " / ".join(str(part) for part in key)


def dataset_ranks(results: pd.DataFrame, at_chance: Collection[tuple[str, ...]] = (),
                  failed: Collection[tuple[str, str]] = ()) -> Iterator[tuple[str, pd.DataFrame, int, str]]:
    """Per metric (sorted): (metric, the explainers' ranks (1 = best) averaged over the groups of each
    dataset (rows: datasets; columns: explainers, sorted; lower is better), the number of groups
    ranked, the groups left out with the reason, ``"; "``-joined). ``at_chance``: the (dataset, model)
    pairs of models at chance, or (dataset, model, class) triples of a multi-label class at chance.
    Explainers without a value for the metric on the groups kept are left out of it (named). ``failed``: the
    (explainer, metric) pairs of ``failures.csv`` (metric "": every metric, a failed explanation); such an
    explainer without a row of the metric is named too, as failed in every group (a review: it vanished)."""
    results = _check(results)
    groups = _keys(results, ["dataset", "model"])
    units = explained_units(results, groups)
    at_chance = {tuple(str(part) for part in key) for key in at_chance}
    for metric, frame in results.groupby("metric", observed=True, sort=True):
        higher_is_better = bool(frame["higher_is_better"].iloc[0])
        samples = per_sample(frame, groups + ["explainer", SAMPLE], units=units)
        means = {key: common_means(block.pivot(index=SAMPLE, columns="explainer", values="value"))
                 for key, block in samples.groupby(groups, observed=True, sort=True)}
        wide = pd.DataFrame(means).T.astype(float).sort_index(axis=1)
        never: list[str] = []
        if wide.notna().to_numpy().any():  # else no group has a shared sample: keep the names, rank none (a review)
            never = [str(name) for name in wide.columns[wide.isna().all()]]  # named (a diff review: dropped unsaid)
            wide = wide.dropna(axis=1, how="all")
        chance = [key for key in wide.index if tuple(map(str, key[:2])) in at_chance
                  or tuple(map(str, key)) in at_chance]
        left_out = [f"{_label(key)}: model at chance" for key in chance]
        failing = {str(e) for e, m in failed if not m or str(m) == str(metric)}  # a review: not pointed to
        for names, why in (([n for n in never if n not in failing], ""),
                           ([n for n in never if n in failing], ", a cell failed (failures.csv)")):
            shared = "no value on a sample shared with the others in any group"
            left_out += [f"{', '.join(names)}: {shared}{why}"] if names else []
        present = set(map(str, frame["explainer"]))
        lost = sorted(e for e in failing if e not in present)
        left_out += [f"{', '.join(lost)}: failed in every group, no row (failures.csv)"] if lost else []
        # a review: a metric NaN on every sample of an explainer leaves it no row (a run writes defined values), as
        # does a skipped cell (a 2D-only explainer on 3D data): "no row", not "no value" (a diff review)
        absent = sorted(set(map(str, results["explainer"])) - present - failing)
        left_out += [f"{', '.join(absent)}: no row in any group (undefined or skipped)"] if absent else []
        rest = wide.drop(index=chance)
        if rest.notna().to_numpy().any():  # an explainer with values only on groups at chance must not empty others'
            gone = [str(name) for name in rest.columns[rest.isna().all()]]
            rest = rest.dropna(axis=1, how="all")
            left_out += [f"{', '.join(gone)}: values only on groups left out"] if gone else []
        kept = []
        for key, row in rest.iterrows():
            missing = [str(name) for name in row.index[row.isna()]]
            if len(missing) == len(row):  # common_means: no sample with a value for every one
                left_out.append(f"{_label(key)}: no sample with a value for every explainer")
            elif missing:
                left_out.append(f"{_label(key)}: no value for {', '.join(missing)}")
            else:
                kept.append(key)
        complete = rest.loc[kept] if kept else rest.iloc[:0]
        oriented = -complete.to_numpy() if higher_is_better else complete.to_numpy()
        ranks = pd.DataFrame(stats.rankdata(oriented, method="average", axis=1) if len(complete) else oriented,
                             index=complete.index, columns=rest.columns)
        datasets = ranks.groupby(level=0, sort=True).mean()
        yield str(metric), datasets, len(complete), "; ".join(left_out)


def overall_ranks(results: pd.DataFrame, at_chance: Collection[tuple[str, ...]] = (),
                  failed: Collection[tuple[str, str]] = ()) -> pd.DataFrame:
    """Mean rank of each explainer across datasets, per metric (Demšar 2006; the module docstring
    gives the rule: each dataset one block, its (dataset, model[, class]) groups' ranks averaged;
    groups in ``at_chance`` (see :func:`dataset_ranks`) or without a value of some explainer left out; the
    explainers of ``failed`` with no row of a metric named in its ``left_out``). Columns:
    metric, explainer, mean_rank (1 = best), n_blocks (datasets), n_groups (groups ranked),
    friedman_p (NaN with fewer than 3 explainers or 2 datasets), cd (the Nemenyi critical difference
    at alpha = 0.05 for those k explainers and n_blocks; NaN for one), left_out; sorted by metric,
    then mean rank. A metric whose groups are all left out keeps its rows, mean_rank NaN."""
    tables = []
    for metric, datasets, n_groups, left_out in dataset_ranks(results, at_chance, failed):
        ranks = mean_ranks(datasets, higher_is_better=False)
        table = pd.DataFrame({"metric": metric, "explainer": list(ranks.index), "mean_rank": ranks.to_numpy(),
                              "n_blocks": len(datasets), "n_groups": n_groups, "friedman_p": friedman(datasets).p,
                              "cd": critical_difference(datasets.shape[1], len(datasets), alpha=ALPHA),
                              "left_out": left_out})
        tables.append(table.sort_values(["mean_rank", "explainer"], kind="stable", na_position="last"))
    return _concat(tables, OVERALL_COLUMNS).reset_index(drop=True)


def overall_nemenyi(results: pd.DataFrame, at_chance: Collection[tuple[str, ...]] = ()) -> pd.DataFrame:
    """Nemenyi post-hoc p-values across datasets, per metric (Demšar 2006): the test of
    :func:`faithbench.stats.paired.nemenyi` on the blocks of :func:`overall_ranks` (a dataset's
    averaged ranks). One row per unordered pair of explainers (a < b). Columns: metric,
    explainer_a, explainer_b, p (NaN with fewer than 2 datasets, as cd), n_blocks."""
    rows = []
    for metric, datasets, _, _ in dataset_ranks(results, at_chance):
        matrix = nemenyi(datasets)
        rows += [{"metric": metric, "explainer_a": a, "explainer_b": b, "p": float(matrix.loc[a, b]),
                  "n_blocks": len(datasets)} for a, b in itertools.combinations(matrix.columns, 2)]
    return pd.DataFrame(rows, columns=OVERALL_NEMENYI_COLUMNS)
