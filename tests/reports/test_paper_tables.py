"""The tables users paste into papers (held-out review paper4, F1-F6): the CI-coverage caption over the cells that
have a CI, an n = 0 cell that says so, bold ranked on few common samples said so, only the controls that ran named,
a math minus in LaTeX numbers, and unique LaTeX labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from faithbench.reports.html import _leaderboard_html
from faithbench.reports.latex import leaderboard_latex
from faithbench.reports.notes import control_labels, significance_note
from faithbench.reports.tables import leaderboard_markdown
from faithbench.stats import leaderboard

COLUMNS = ["dataset", "model", "metric", "explainer", "mean", "ci_low", "ci_high", "n", "rank", "higher_is_better",
           "beats_random"]


def _board(rows, columns=COLUMNS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


UNDEFINED = _board([("d", "m", "relevance_mass", "gradcam", np.nan, np.nan, np.nan, 0, np.nan, True, False),
                    ("d", "m", "relevance_mass", "saliency", 0.312, 0.25, 0.4, 8, 1, True, False),
                    ("d", "m", "relevance_mass", "random", 0.2, 0.1, 0.3, 8, 2, True, False)])


def test_the_coverage_caption_takes_n_of_the_cells_with_a_ci():
    tex = leaderboard_latex(UNDEFINED)
    assert "(here n = 8) the 95\\% CI covers less than 95\\%" in tex and "here n = 0" not in tex


def test_no_coverage_sentence_when_no_cell_under_30_has_a_ci():
    board = _board([("d", "m", "x", "gradcam", 0.5, 0.5, 0.5, 1, 1, True, False),
                    ("d", "m", "x", "saliency", 0.3, 0.2, 0.4, 40, 2, True, False),
                    ("d", "m", "x", "ig", np.nan, np.nan, np.nan, 0, np.nan, True, False)])
    tex = leaderboard_latex(board)
    assert "With fewer than" not in tex and "[--]: a single sample, no interval." in tex


def test_an_n0_cell_says_n0_in_latex_as_in_markdown():
    tex = leaderboard_latex(UNDEFINED)
    assert r"\faithbenchcell[l]{gradcam} & \faithbenchcell{--\\{\scriptsize n=0}} \\" in tex
    assert "| gradcam | – (n = 0) |" in leaderboard_markdown(UNDEFINED)


SHARED = _board([("d", "m", "insertion_auc", "integrated_gradients", 0.35639, 0.35632, 0.35646, 8, 2, 1, True, False),
                 ("d", "m", "insertion_auc", "gradcam", 0.35636, 0.35636, 0.35636, 1, 1, 1, True, False),
                 ("d", "m", "deletion_auc", "integrated_gradients", 0.2, 0.1, 0.3, 8, 1, 8, False, False),
                 ("d", "m", "deletion_auc", "gradcam", 0.3, 0.2, 0.4, 8, 2, 8, False, False)],
                COLUMNS[:9] + ["n_common"] + COLUMNS[9:])


def test_bold_ranked_on_one_common_sample_says_so_everywhere():
    md = leaderboard_markdown(SHARED)
    assert "| insertion\\_auc ↑ (n ≤ 8; rank 1: on the 1 sample every explainer with a value has) |" in md
    assert "| deletion\\_auc ↓ (n = 8) |" in md  # ranked on every sample: nothing to say
    assert "**0.35636 [–]** (n = 1)" in md  # the rank itself is unchanged
    html = "".join(_leaderboard_html(SHARED).values())
    assert "<small>n ≤ 8; rank 1: on the 1 sample every explainer with a value has</small>" in html
    assert ("bold: best per column (rank 1: on the samples every explainer with a value has; insertion\\_auc: on "
            "the 1 sample every explainer with a value has); ") in leaderboard_latex(SHARED)


def test_the_leaderboard_csv_gives_the_common_samples():
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": "x", "seed": 0, "sample_id": s,
             "value": np.nan if (e == "a" and s > 0) or (e == "c") else 0.1 * s, "higher_is_better": True,
             "category": "faithfulness", "chance": np.nan} for e in ("a", "b", "c") for s in range(5)]
    board = leaderboard(pd.DataFrame(rows), n_resamples=50)
    assert board.set_index("explainer")["n_common"].to_dict() == {"a": 1, "b": 1, "c": 1}
    assert board.set_index("explainer")["n"].to_dict() == {"a": 1, "b": 5, "c": 0}


def test_the_legend_names_only_the_controls_with_rows():
    md = leaderboard_markdown(UNDEFINED)
    assert "the controls ignore the model (random: noise); localisation" in md and "sobel" not in md
    tex = leaderboard_latex(UNDEFINED)
    assert "the controls ignore the model (random: noise); " in tex and "center_prior" not in tex
    none = UNDEFINED[UNDEFINED["explainer"] != "random"]
    assert "controls ignore" not in leaderboard_markdown(none) and "controls ignore" not in leaderboard_latex(none)
    manifest = {"suite": {"explainers": [{"name": "random", "alias": "1e3"}, "sobel"]}}
    aliased = UNDEFINED.replace({"explainer": {"random": "1e3"}})
    labels = control_labels(manifest, aliased)
    assert labels == {"random": ["1e3"]}
    # a diff review: the .tex legend (no manifest) dropped an aliased random; it takes the run's labels now
    assert "the controls ignore the model (1e3 (random): noise); " in leaderboard_latex(
        aliased, control="1e3", controls=control_labels(manifest))
    assert "the controls ignore the model (1e3 (random): noise); " in significance_note("1e3", True, False, labels)


def test_latex_numbers_use_a_math_minus():
    board = _board([("d", "m", "x", "a", -0.357, -0.4, -0.3, 8, 1, False, False),
                    ("d", "m", "x", "b", 0.2, 0.1, 0.3, 8, 2, False, False),
                    ("d", "m", "y", "a", 5.13e-07, 5.12e-07, 5.14e-07, 8, 1, False, False),
                    ("d", "m", "y", "b", 9.16e-08, 9.1e-08, 9.2e-08, 8, 2, False, False)])
    tex = leaderboard_latex(board)
    assert r"\textbf{$-$0.357}\\{\scriptsize [$-$0.400,$-$0.300]}" in tex
    assert "5.13e$-$07" in tex and "e-0" not in tex and "{-0" not in tex


def test_latex_labels_are_unique_in_a_file():
    rows = [("x-y", "z", "m", "a", 0.5, 0.4, 0.6, 8, 1, True, False), ("x", "y-z", "m", "a", 0.5, 0.4, 0.6, 8, 1, True,
                                                                       False)]
    tex = leaderboard_latex(_board(rows))
    assert r"\label{tab:faithbench-x-y-z}" in tex and r"\label{tab:faithbench-x-y-z-2}" in tex


def test_an_explainer_without_a_row_for_a_metric_says_n0_as_one_with_an_n0_row():
    """Review 8 (F4): gradcam had relevance_mass rows with n 0 for one class and none for the other; one table
    printed `– (n = 0)`, the other `–` under the same "n ≤ 3" header whose every printed n was 3."""
    board = _board([("d", "m", "relevance_mass", "saliency", 0.312, 0.25, 0.4, 3, 1, True, False),
                    ("d", "m", "relevance_mass", "random", 0.2, 0.1, 0.3, 3, 2, True, False),
                    ("d", "m", "deletion_auc", "gradcam", 0.3, 0.2, 0.4, 3, 1, False, False),
                    ("d", "m", "deletion_auc", "saliency", 0.4, 0.3, 0.5, 3, 2, False, False),
                    ("d", "m", "deletion_auc", "random", 0.5, 0.4, 0.6, 3, 3, False, False)])
    md = leaderboard_markdown(board)
    assert "relevance\\_mass ↑ (n ≤ 3)" in md
    assert "| gradcam | **0.300 [0.200, 0.400]** | – (n = 0) |" in md
    tex = leaderboard_latex(board)
    assert r"\faithbenchcell{--\\{\scriptsize n=0}}" in tex
    html = "".join(_leaderboard_html(board).values())
    assert "<td>– <small>(n = 0)</small></td>" in html
    assert leaderboard_markdown(UNDEFINED).count("– (n = 0)") == 1  # the n-0 row: as before
