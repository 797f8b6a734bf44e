"""The "Statistics" section of ``index.html``: the Friedman, overall-rank, agreement and pairwise tables, each row
of a model at chance marked † as the leaderboard marks it (a held-out review: the Friedman table showed such a
model's p = 0.005 "between explainers" unmarked, while its CD diagram hid that p)."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from faithbench.reports.markup import disagreement_html, table_html
from faithbench.reports.notes import CD_NOTE, DAGGER, WILCOXON_NOTE

__all__ = ["STATS_CHANCE_NOTE", "mark_at_chance", "statistics_html"]

STATS_CHANCE_NOTE = (f"{DAGGER} model at chance (see the leaderboard): its tests compare explainers of a model that "
                     "does not beat chance, so they say nothing sure about the task")


def mark_at_chance(frame: pd.DataFrame, chance_blocks: Collection[tuple[str, ...]]) -> pd.DataFrame:
    """``frame`` (``friedman.csv``, ``pairwise.csv``, ``agreement.csv`` as read) with " †" after the model of
    each row whose (dataset, model[, class]) falls in ``chance_blocks``
    (:func:`~faithbench.reports.figure.blocks_at_chance`, as :func:`~faithbench.reports.figure.at_chance`
    decides for the figures); ``frame`` itself when no row does or it has no dataset and model columns."""
    from faithbench.reports.figure import at_chance

    if frame is None or frame.empty or not chance_blocks or not {"dataset", "model"} <= set(frame.columns):
        return frame
    classes = frame["class"].fillna("").astype(str) if "class" in frame.columns else [""] * len(frame)
    blocks = set(chance_blocks)
    marked = [at_chance((d, m, c), blocks) for d, m, c in zip(frame["dataset"], frame["model"], classes)]
    if not any(marked):
        return frame
    return frame.assign(model=[f"{m} {DAGGER}" if flag else m for m, flag in zip(frame["model"], marked)])


def statistics_html(friedman: pd.DataFrame, overall: pd.DataFrame, agreement: pd.DataFrame, pairwise: pd.DataFrame,
                    chance_blocks: Collection[tuple[str, ...]] = ()) -> str:
    """The section's body; rows of ``chance_blocks`` (:func:`mark_at_chance`) carry † and the legend says why
    (``overall`` leaves such groups out already: its left_out column names them)."""
    tables = (friedman, agreement, pairwise)
    friedman, agreement, pairwise = marked = [mark_at_chance(f, chance_blocks) for f in tables]
    dagger = f"; {STATS_CHANCE_NOTE}" if any(new is not old for new, old in zip(marked, tables)) else ""
    parts = [
        "<h3>Friedman tests</h3>", '<p class="note">per (dataset, model, metric), samples as blocks; '
        f'{CD_NOTE}{dagger} (<a href="friedman.csv">friedman.csv</a>, '
        '<a href="nemenyi.csv">nemenyi.csv</a>)</p>', table_html(friedman, "no Friedman tests"),
        "<h3>Mean ranks across datasets and models</h3>",
        '<p class="note">each dataset one block: the ranks in its (dataset, model) groups averaged (they share its '
        f'test images); Friedman test over the datasets; {CD_NOTE}; left_out: '
        'groups of a model at chance or lacking an explainer (<a href="overall_ranks.csv">overall_ranks.csv</a>, '
        'pairwise p-values in '
        '<a href="overall_nemenyi.csv">overall_nemenyi.csv</a>)</p>', table_html(overall, "none"),
        "<h3>Agreement between metrics</h3>",
        '<p class="note">Kendall τ between the explainer rankings of two metrics (1: same order, −1: reversed; '
        'empty where a metric ties every explainer (it has no order to compare); '
        f'<a href="agreement.csv">agreement.csv</a>){dagger}</p>', disagreement_html(agreement),
        table_html(agreement, "fewer than two metrics"),
        f"<details><summary>pairwise Wilcoxon signed-rank tests ({WILCOXON_NOTE})</summary>",
        f'<p class="note"><a href="pairwise.csv">pairwise.csv</a>{dagger}</p>',
        table_html(pairwise, "no pairs", max_rows=500), "</details>",
    ]
    return "".join(parts)
