"""A metric on which one explainer of several has a value ranks nothing (a held-out review, report11 D2: a plugin
metric NaN on every random map gave saliency rank 1.0 with n_common 10 in leaderboard.csv, while the tables bolded
no cell and showed random "– (n = 0)", and docs/outputs.md said 0 / no rank)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from faithbench.reports.tables import leaderboard_markdown, leaderboard_tables
from faithbench.stats.tables import leaderboard

LOW = [0.1, 0.3, 0.2, 0.25, 0.15, 0.05]
HIGH = [0.9, 0.8, 0.85, 0.95, 0.7, 0.75]


def _results(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """Tidy rows per (explainer, metric); a NaN value is left out, as the runner leaves an undefined sample."""
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": metric, "seed": 0, "sample_id": f"s{i}",
             "value": v, "higher_is_better": True, "category": "faithfulness", "chance": np.nan}
            for (e, metric), vs in values.items() for i, v in enumerate(vs) if not np.isnan(v)]
    return pd.DataFrame(rows)


def _column(board: pd.DataFrame, metric: str, column: str) -> dict[str, float]:
    rows = board[board["metric"] == metric]
    return dict(zip(rows["explainer"], rows[column].astype(float)))


RUN = _results({("saliency", "x"): HIGH, ("random", "x"): LOW,
                ("saliency", "nan_for_random"): LOW, ("random", "nan_for_random"): [np.nan] * 6,
                ("saliency", "uneven"): HIGH, ("random", "uneven"): LOW[:3] + [np.nan] * 3})


def test_a_metric_undefined_for_every_other_explainer_has_no_rank():
    board = leaderboard(RUN)
    assert _column(board, "x", "rank") == {"saliency": 1.0, "random": 2.0}
    assert _column(board, "x", "n_common") == {"saliency": 6.0, "random": 6.0}
    lone = _column(board, "nan_for_random", "rank")
    assert list(lone) == ["saliency"] and np.isnan(lone["saliency"])  # random has no row, saliency no rank
    assert _column(board, "nan_for_random", "n_common") == {"saliency": 0.0}
    assert _column(board, "nan_for_random", "n") == {"saliency": 6.0}  # its own summary stays
    # two explainers with a value, on 3 shared samples: ranked there (saliency higher on each)
    assert _column(board, "uneven", "rank") == {"saliency": 1.0, "random": 2.0}
    assert _column(board, "uneven", "n_common") == {"saliency": 3.0, "random": 3.0}


def test_the_tables_bold_exactly_the_rank_1_cells():
    board = leaderboard(RUN)
    (table,) = leaderboard_tables(board)
    for row in board.itertuples(index=False):
        assert table.cells[row.explainer][row.metric].best == (row.rank == 1.0), (row.explainer, row.metric)
    assert table.cells["random"]["nan_for_random"] is None
    assert "**" not in [line for line in leaderboard_markdown(board).splitlines() if "nan\\_for\\_random" in line][0]
    # the rows' order: saliency 1, 1 (no rank on nan_for_random) before random 2, 2
    assert table.explainers == ["saliency", "random"]


def test_an_explainer_whose_cell_failed_leaves_the_other_unranked():
    results = _results({("saliency", "x"): HIGH})
    failures = pd.DataFrame([{"cell": "d/m/flaky/seed0", "dataset": "d", "model": "m", "explainer": "flaky",
                              "seed": 0, "stage": "explain", "metric": np.nan, "error_type": "RuntimeError",
                              "message": "boom"}])
    board = leaderboard(results, failures=failures)
    assert np.isnan(_column(board, "x", "rank")["saliency"]) and _column(board, "x", "n_common") == {"saliency": 0}
    assert not leaderboard_tables(board)[0].cells["saliency"]["x"].best


def test_a_suite_of_one_explainer_keeps_its_rank():
    board = leaderboard(_results({("saliency", "x"): HIGH}))
    assert _column(board, "x", "rank") == {"saliency": 1.0} and _column(board, "x", "n_common") == {"saliency": 6}
    assert leaderboard_tables(board)[0].cells["saliency"]["x"].best  # the tables: "one explainer: its own best"
