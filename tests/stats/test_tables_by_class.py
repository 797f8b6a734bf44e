"""Multi-label results (a ``class`` column): every table is per (dataset, model, class, metric)."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from faithbench.reports.tables import leaderboard_markdown, leaderboard_tables
from faithbench.stats import agreement_table, friedman_table, leaderboard, overall_ranks, pairwise_table
from faithbench.stats.tables import LEADERBOARD_COLUMNS


def _results(with_class: bool = True) -> pd.DataFrame:
    """Samples s0..s9 explained for both classes; gradcam's value differs by class."""
    rng = np.random.default_rng(0)
    rows = []
    for cls, shift in (("nodule", 0.5), ("cavity", 0.1)):
        for i in range(10):
            for explainer, base in (("gradcam", shift), ("random", 0.0), ("sobel", 0.05)):
                row = {"dataset": "ml", "model": "cnn", "explainer": explainer, "metric": "pointing_game", "seed": 0,
                       "sample_id": f"s{i}", "value": base + rng.normal(0, 0.1) + 0.01 * i, "chance": 0.01,
                       "higher_is_better": True, "category": "localization"}
                if with_class:
                    row["class"] = cls
                rows.append(row)
    return pd.DataFrame(rows)


def test_leaderboard_per_class():
    results = _results()
    board = leaderboard(results)
    assert list(board.columns) == LEADERBOARD_COLUMNS[:2] + ["class"] + LEADERBOARD_COLUMNS[2:]
    assert len(board) == 6 and set(board["class"]) == {"nodule", "cavity"}
    for cls in ("nodule", "cavity"):
        sub = results[results["class"] == cls]
        row = board[(board["class"] == cls) & (board["explainer"] == "gradcam")].iloc[0]
        assert row["mean"] == pytest.approx(sub[sub["explainer"] == "gradcam"]["value"].mean())
        assert row["n"] == 10
        # one-sided Wilcoxon against random on the class's own pairs, Holm over 2 explainers
        g = sub[sub["explainer"] == "gradcam"].set_index("sample_id")["value"]
        r = sub[sub["explainer"] == "random"].set_index("sample_id")["value"]
        p = wilcoxon(g, r.loc[g.index], alternative="greater").pvalue
        assert row["p_vs_random"] >= p and row["p_vs_random"] <= min(1.0, 2 * p)


def test_other_tables_per_class_and_single_label_unchanged():
    results = _results()
    assert set(pairwise_table(results)["class"]) == {"nodule", "cavity"}
    assert (pairwise_table(results)["n"] == 10).all()
    friedman = friedman_table(results)
    assert list(friedman["class"]) == ["cavity", "nodule"] and (friedman["n_blocks"] == 10).all()
    overall = overall_ranks(results)  # (dataset, model, class) groups of one dataset: one block
    assert (overall["n_groups"] == 2).all() and (overall["n_blocks"] == 1).all()
    # a class at chance leaves its own group (a diff review: marked † but still ranked), not the model's others
    one = overall_ranks(results, at_chance=[tuple(results[["dataset", "model"]].iloc[0]) + ("cavity",)])
    assert (one["n_groups"] == 1).all() and one["left_out"].str.endswith("/ cavity: model at chance").all()
    assert "class" in agreement_table(leaderboard(results)).columns
    plain = leaderboard(_results(with_class=False).query("value == value").iloc[:30])
    assert list(plain.columns) == LEADERBOARD_COLUMNS and "class" not in friedman_table(_results(False).iloc[:30])
    # without the class column the same sample ids of two classes would be duplicates
    with pytest.raises(ValueError, match="duplicate row"):
        leaderboard(_results(with_class=False))


def test_mixed_single_and_multilabel_rows():
    single = _results(with_class=False).iloc[:30].assign(dataset="single")
    board = leaderboard(pd.concat([_results(), single], ignore_index=True))
    assert sorted(board["class"].unique()) == ["", "cavity", "nodule"]
    assert len(board[board["dataset"] == "single"]) == 3


def test_markdown_has_one_table_per_class():
    board = leaderboard(_results())
    assert [t.title for t in leaderboard_tables(board)] == ["ml / cnn / cavity", "ml / cnn / nodule"]
    text = leaderboard_markdown(board)
    assert "## ml / cnn / cavity" in text and "## ml / cnn / nodule" in text
