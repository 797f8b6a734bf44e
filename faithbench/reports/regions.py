"""The report's regions: ``region_tests.csv`` and ``region_pairwise.csv`` from a run's ``regions.csv``
(:func:`region_tables`), and the "Regions" section of ``index.html`` (:func:`regions_html`).

A run writes ``regions.csv`` only when its suite has a ``regions:`` block; the report reads it only then
(:func:`faithbench.reports.writer.read_inputs`), and removes the region tables of an earlier run in the folder
otherwise, as a run does."""

from __future__ import annotations

import html
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from faithbench.reports.markup import fixed_columns, table_html
from faithbench.reports.notes import WILCOXON_NOTE
from faithbench.reports.stats_html import STATS_CHANCE_NOTE, mark_at_chance
from faithbench.store import atomic_write_bytes

__all__ = ["REGION_TABLES", "REGION_TEST_SHOWN", "region_tables", "regions_html"]

log = logging.getLogger(__name__)
REGION_TABLES = ("region_tests.csv", "region_pairwise.csv")
REGION_TEST_SHOWN = ["dataset", "model", "explainer", "score", "region", "test", "mean_negative", "mean_positive",
                     "p", "p_bonferroni", "significant", "note"]


def region_tables(out_dir: Path, inputs: dict[str, Any],
                  written: list[Path]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``region_tests.csv`` and ``region_pairwise.csv`` from ``inputs["regions.csv"]`` (None: the run had no
    ``regions:`` block, and a table of an earlier run in this folder, which would be stale, is removed), with the
    scores and alpha of the suite recorded in the manifest and the failed cells of ``failures.csv`` (still in
    region_pairwise's Holm family); a region left without a class test because its mask is empty in a class is
    logged as a warning. Appends the paths written to ``written``."""
    from faithbench.stats.regions import (CLASS_TEST_COLUMNS, REGION_PAIRWISE_COLUMNS, empty_region_messages,
                                          region_class_tests, region_pairwise)

    regions = inputs["regions.csv"]
    if regions is None:
        for name in REGION_TABLES:
            (out_dir / name).unlink(missing_ok=True)
        return None, None
    spec = (inputs["manifest.json"].get("suite") or {}).get("regions") or {}
    scores, alpha = spec.get("scores", ["share"]), float(spec.get("alpha", 0.05))
    if regions.empty:
        tests, pairs = pd.DataFrame(columns=CLASS_TEST_COLUMNS), pd.DataFrame(columns=REGION_PAIRWISE_COLUMNS)
    else:
        tests = region_class_tests(regions, scores, alpha)
        pairs = region_pairwise(regions, scores, inputs.get("failures.csv"))  # failed: still in the Holm family
        for message in empty_region_messages(tests):  # a review: every explainer "significant" without a word
            log.warning("%s", message)
    for name, frame in zip(REGION_TABLES, (tests, pairs)):
        atomic_write_bytes(out_dir / name, frame.to_csv(index=False).encode())
        written.append(out_dir / name)
    return tests, pairs


def regions_html(board: pd.DataFrame, tests: pd.DataFrame, pairwise: pd.DataFrame | None,
                 chance_blocks: Collection[tuple[str, ...]] = (), failures: pd.DataFrame | None = None) -> str:
    """Region-based saliency: the between-class tests, region deletion correlation beside them (its numbers
    with the leaderboard's decimals, :func:`~faithbench.reports.markup.fixed_columns`), and the paired tests
    between explainers; the rows of a model at chance (``chance_blocks``,
    :func:`~faithbench.reports.figure.blocks_at_chance`) carry † after the model in each table, as in the
    leaderboard and the Statistics section, with the legend saying why. The paired tests' legend names the
    failed explainers of ``failures`` (``failures.csv``) whose pairs count in Holm's m without a row
    (:func:`_holm_failures`)."""
    shown = tests[[c for c in REGION_TEST_SHOWN if c in tests.columns]] if not tests.empty else tests
    rdc = board[board["metric"].astype(str) == "region_deletion_correlation"] if "metric" in board else board.iloc[:0]
    rdc = fixed_columns(rdc)  # the leaderboard's decimals: 0.000 for float noise, not 2.79e-09 (a review)
    rdc = rdc[[c for c in ("dataset", "model", "explainer", "mean", "ci_low", "ci_high", "chance", "n",
                           "p_vs_random") if c in rdc.columns]]
    holm = _holm_failures(pairwise, failures)  # before the † marks change the model names
    tables = (shown, rdc, pairwise)
    shown, rdc, pairwise = marked = [mark_at_chance(t, chance_blocks) for t in tables]
    dagger = f"; {STATS_CHANCE_NOTE}" if any(new is not old for new, old in zip(marked, tables)) else ""
    parts = ['<p class="note">Per region, the score of label-0 samples (negative) against the others '
             "(positive): Shapiro–Wilk and Levene choose Student's t-test or Mann–Whitney U; p_bonferroni "
             "adjusts across the regions of each (dataset, model, explainer, score) that have a test; "
             "significant: p_bonferroni &lt; α (– where there is no test). Test none (note says why): a region "
             "whose mask is empty on every sample of a class (its scores there come from the mask, not the map: "
             "any map, the random control's too, would differ), or a class with fewer than 3 values "
             "(Shapiro–Wilk needs 3). "
             'Full table with the normality and Levene p-values: '
             '<a href="region_tests.csv">region_tests.csv</a>; per-sample scores: '
             f'<a href="regions.csv">regions.csv</a>{dagger}.</p>']
    parts.append(table_html(shown, "no region tests", max_rows=400))
    parts.append("<h3>Region deletion correlation</h3>")
    if rdc.empty:
        parts.append('<p class="empty">not in this suite (add the metric region_deletion_correlation)</p>')
    else:
        parts.append('<p class="note">Spearman ρ between each region\'s saliency mass and the drop in score '
                     "when the region is removed (higher: the map ranks regions as the model uses them). Read "
                     "the mean against chance, ρ(region area, drop): what a constant map scores, since larger "
                     f"regions hold more mass and drop the score more; it is not 0{dagger}</p>")
        parts.append(table_html(rdc))
    if pairwise is not None:
        parts += [f"<details><summary>paired Wilcoxon signed-rank tests between explainers per region and class "
                  f"({WILCOXON_NOTE})</summary>",
                  f'<p class="note"><a href="region_pairwise.csv">region_pairwise.csv</a>{dagger}'
                  f"{holm}</p>",
                  table_html(pairwise, "no pairs", max_rows=500), "</details>"]
    return "".join(parts)


def _holm_failures(pairwise: pd.DataFrame | None, failures: pd.DataFrame | None) -> str:
    """A legend sentence naming, per (dataset, model) of ``pairwise``, the failed explainers whose planned pairs
    count in p_holm's family with no row (:func:`faithbench.stats.regions.failed_in_pairwise`), or "". A review:
    the table showed 6 pairs per group, p_holm = 10 p, and no word on why."""
    from faithbench.stats.regions import failed_in_pairwise

    if pairwise is None or pairwise.empty or failures is None or failures.empty:
        return ""
    blocks = pairwise[["dataset", "model"]].astype(str).drop_duplicates().itertuples(index=False)
    named = [f"{d} / {m}: {', '.join(names)}" for d, m in blocks if (names := failed_in_pairwise(failures, d, m))]
    if not named:
        return ""
    return html.escape(f". Holm's m counts the planned pairs, those of the failed explainers too, which have no "
                       f"rows ({'; '.join(named)}): p_holm adjusts over more pairs than a group shows")
