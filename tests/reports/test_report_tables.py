"""Statistics CSVs of a run folder and the Markdown/LaTeX leaderboard."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from faithbench.reports.latex import leaderboard_latex
from faithbench.reports.tables import (
    latex_escape,
    leaderboard_markdown,
    leaderboard_tables,
)
from faithbench.reports.writer import cost_summary, models_summary


def _board(rows):
    columns = ["dataset", "model", "metric", "explainer", "mean", "ci_low", "ci_high", "rank", "higher_is_better",
               "beats_random"]
    return pd.DataFrame(rows, columns=columns)


BOARD = _board([
    ("d_1", "m&n", "up_metric", "a", 0.9, 0.8, 1.0, 1, True, True),
    ("d_1", "m&n", "up_metric", "b", 0.5, 0.4, 0.6, 2, True, False),
    ("d_1", "m&n", "down_metric", "a", 0.7, 0.6, 0.8, 2, False, False),
    ("d_1", "m&n", "down_metric", "b", 0.2, 0.1, 0.3, 1, False, True),
])


def test_csv_tables_have_documented_columns(built):
    expected = {
        "leaderboard.csv": ["dataset", "model", "metric", "explainer", "mean", "ci_low", "ci_high", "median", "n",
                            "chance", "rank", "n_common", "higher_is_better", "category", "p_vs_random",
                            "beats_random",
                            "p_worse_than_random", "worse_than_random", "model_at_chance"],
        "pairwise.csv": ["dataset", "model", "metric", "explainer_a", "explainer_b", "statistic", "p", "p_holm",
                         "effect_size", "n"],
        "friedman.csv": ["dataset", "model", "metric", "statistic", "p", "n_blocks", "k", "cd", "reason"],
        "nemenyi.csv": ["dataset", "model", "metric", "explainer_a", "explainer_b", "p"],
        "overall_ranks.csv": ["metric", "explainer", "mean_rank", "n_blocks", "n_groups", "friedman_p", "cd",
                              "left_out"],
        "overall_nemenyi.csv": ["metric", "explainer_a", "explainer_b", "p", "n_blocks"],
        "agreement.csv": ["dataset", "model", "metric_a", "metric_b", "tau", "p", "n_explainers"],
    }
    for name, columns in expected.items():
        frame = pd.read_csv(built / name)
        assert list(frame.columns) == columns, name
        assert len(frame) > 0, name
    pairwise = pd.read_csv(built / "pairwise.csv")
    assert len(pairwise) == 2 * 6  # 2 metrics x C(4, 2) pairs
    friedman = pd.read_csv(built / "friedman.csv")
    assert (friedman["n_blocks"] == 8).all() and (friedman["cd"] > 0).all()  # 2 seeds of the same 8 samples
    agreement = pd.read_csv(built / "agreement.csv")
    # "good" is best on both metrics and the synthetic means order both metrics alike.
    assert agreement["tau"].iloc[0] == 1.0


def test_markdown_bolds_best_per_column_by_direction():
    text = leaderboard_markdown(BOARD)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| a ")
            or line.startswith("| b ")}
    header = next(line for line in text.splitlines() if line.startswith("| explainer"))
    # Metrics are sorted: down_metric first; arrows follow higher_is_better.
    assert "down\\_metric ↓" in header and "up\\_metric ↑" in header
    cells_a = [c.strip() for c in rows["a"].split("|")[2:4]]
    cells_b = [c.strip() for c in rows["b"].split("|")[2:4]]
    assert cells_a == ["0.700 [0.600, 0.800]", "**0.900 [0.800, 1.000]** \\*"]
    assert cells_b == ["**0.200 [0.100, 0.300]** \\*", "0.500 [0.400, 0.600]"]


def test_tables_mark_all_tied_best():
    board = _board([("d", "m", "x", "a", 0.5, 0.4, 0.6, 1, True, False),
                    ("d", "m", "x", "b", 0.5, 0.4, 0.6, 1, True, False),
                    ("d", "m", "x", "c", 0.1, 0.0, 0.2, 3, True, False)])
    (table,) = leaderboard_tables(board)
    assert [table.cells[e]["x"].best for e in ("a", "b", "c")] == [True, True, False]


def test_no_bold_where_every_explainer_ties():
    """A held-out review: pointing_game at 0.000 for all four explainers had every cell bold, controls included."""
    board = _board([("d", "m", "x", e, 0.0, 0.0, 0.0, 1, True, False) for e in ("a", "random", "sobel")]
                   + [("d", "m", "y", "a", 0.5, 0.4, 0.6, 1, True, False),
                      ("d", "m", "y", "random", np.nan, np.nan, np.nan, np.nan, True, False),
                      ("d", "m", "y", "sobel", 0.5, 0.4, 0.6, 1, True, False)])
    (table,) = leaderboard_tables(board)
    assert not any(table.cells[e][m].best for e in ("a", "random", "sobel") for m in ("x", "y") if table.cells[e][m])
    assert "**" not in leaderboard_markdown(board)
    assert r"\textbf{0." not in leaderboard_latex(board)


def test_no_bold_where_one_explainer_alone_has_a_value():
    # "y" has a value for "a" only (the others' rows are NaN or absent: "–"), so nothing is compared
    board = _board([("d", "m", "x", "a", 0.5, 0.4, 0.6, 2, True, False),
                    ("d", "m", "x", "b", 0.7, 0.6, 0.8, 1, True, False),
                    ("d", "m", "y", "a", 1.0, 1.0, 1.0, 1, True, False),
                    ("d", "m", "y", "b", np.nan, np.nan, np.nan, np.nan, True, False)])
    board["n"] = [8, 8, 8, 0]
    (table,) = leaderboard_tables(board)
    assert table.cells["b"]["x"].best and not table.cells["a"]["x"].best
    assert not table.cells["a"]["y"].best and "**1.000" not in leaderboard_markdown(board)
    assert table.n_header("x") == "n = 8" and table.n_header("y") == "n ≤ 8"
    alone = leaderboard_tables(board[board["metric"] == "y"].iloc[:1])[0]  # one explainer: its own best
    assert alone.cells["a"]["y"].best and alone.n_header("y") == "n = 8"
    absent = leaderboard_tables(board.drop(index=3))[0]  # b has no row for y at all
    assert not absent.cells["a"]["y"].best and absent.n_header("y") == "n ≤ 8"


def test_latex_is_escaped_booktabs():
    assert latex_escape("a_b & c%$#{}~^\\") == (r"a\_b \& c\%\$\#\{\}\textasciitilde{}\textasciicircum{}"
                                                 r"\textbackslash{}")
    tex = leaderboard_latex(BOARD)
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrr}"):
        assert command in tex
    # names split after an underscore where a line would pass 10 characters (narrow columns); the CI on a
    # second, smaller line
    assert r"d\_1 / m\&n" in tex and r"{up\_metric $\uparrow$" in tex and r"down\_\\metric $\downarrow$" in tex
    assert r"\faithbenchcell{\textbf{0.200}$^{*}$\\{\scriptsize [0.100,0.300]}}" in tex
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    # Every row has exactly one unescaped column separator per metric.
    assert all(len(re.findall(r"(?<!\\)&", line)) == 2 for line in body)
    assert "m&n" not in tex


def test_run_folder_markdown_and_latex(built, names):
    md = (built / "leaderboard.md").read_text()
    tex = (built / "leaderboard.tex").read_text()
    good = "".join(line for line in md.splitlines() if line.startswith("| good "))  # one row per category table
    assert good.count("**") == 4 and good.count("\\*") == 2  # both cells bold, both beat random
    assert r"hit\_\\rate\&co $\uparrow$" in tex
    assert r"\textless{}script\textgreater{}" in tex


def test_models_and_cost_summaries():
    models = pd.DataFrame({"dataset": ["d", "d"], "model": ["m", "m"], "seed": [0, 1], "accuracy": [0.8, 0.9],
                           "f1": [0.7, 0.7], "auc": [0.9, 1.0], "loss": [0.2, 0.4]})
    summary = models_summary(models)
    assert summary.loc[0, "seeds"] == 2 and abs(summary.loc[0, "accuracy_mean"] - 0.85) < 1e-12
    assert abs(summary.loc[0, "accuracy_sd"] - 0.0707106781) < 1e-8
    cost = pd.DataFrame({"dataset": "d", "model": "m", "explainer": "e", "seed": [0, 0, 0],
                         "samples": 4, "stage": ["explain", "metric", "metric"], "metric": [None, "x", "y"],
                         "seconds": [1.0, 2.0, 3.0], "passes": [4, 40, 0]})
    row = cost_summary(cost).iloc[0]
    assert (row["explain_seconds"], row["metric_seconds"], row["total_seconds"]) == (1.0, 5.0, 6.0)
    assert (row["samples"], row["seconds_per_sample"], row["metric_passes"]) == (4, 1.5, 40)


def test_bold_cells_print_apart_and_a_column_has_one_format():
    """A held-out review: ig 0.0102 and sobel 0.0105 (bold) both read 0.010 in every format; and a column
    mixed 0.000551 with 0.011. Each column now has the decimals its bold cell needs, in all three formats."""
    from faithbench.reports.html import _leaderboard_html

    board = _board([
        ("d", "m", "mass", "sobel", 0.0105, 0.0089, 0.0117, 1, True, False),
        ("d", "m", "mass", "ig", 0.0102, 0.0073, 0.0132, 2, True, False),
        ("d", "m", "mass", "random", 0.000551, 0.000332, 0.000791, 3, True, False),
        ("d", "m", "other", "sobel", 0.9, 0.8, 1.0, 1, True, False),
        ("d", "m", "other", "ig", 0.5, 0.4, 0.6, 2, True, False),
        ("d", "m", "other", "random", 0.1, 0.0, 0.2, 3, True, False),
    ])
    md = leaderboard_markdown(board)
    assert "**0.01050 [0.00890, 0.01170]**" in md and "| 0.01020 [0.00730, 0.01320] |" in md
    assert "0.00055 [0.00033, 0.00079]" in md and "**0.900 [0.800, 1.000]**" in md  # enough: 3 decimals
    tex = leaderboard_latex(board)
    assert r"\textbf{0.01050}" in tex and r"\faithbenchcell{0.01020\\{\scriptsize [0.00730,0.01320]}}" in tex
    html = _leaderboard_html(board)[("d", "m", "")]
    assert '<td class="best">0.01050 [0.00890, 0.01170]' in html and "<td>0.01020 [0.00730, 0.01320]" in html


def test_a_partial_run_whose_control_alone_has_rows_says_so():
    """Helper 136: every explainer but random failed, and the legends said the suite had no control."""
    from faithbench.reports.html import render_html

    alone = BOARD[BOARD["explainer"] == "a"].assign(explainer="random", beats_random=pd.NA, p_vs_random=float("nan"))
    said = "nothing was tested against the control random (no other explainer has rows): no \\* marks"
    assert said in leaderboard_markdown(alone) and "no control explainer" not in leaderboard_markdown(alone)
    assert "nothing was tested against the control: no $^{*}$ marks" in leaderboard_latex(alone)
    empty = pd.DataFrame()
    page = render_html(root=__import__("pathlib").Path("/nonexistent"), manifest={}, board=alone, models=empty,
                       models_table=empty, cost_table=empty, skipped=None, failures=None, friedman=empty,
                       overall=empty, agreement=empty, pairwise=empty)
    assert said.replace("\\", "") in page


def test_without_a_control_test_the_legend_promises_no_star():
    """A held-out review: a suite without the random control still read "* better than the random
    control"; the legend says there is no control and no * instead, in every format."""
    from faithbench.reports.html import render_html

    untested = BOARD.assign(beats_random=pd.NA, p_vs_random=float("nan"))
    tested = BOARD.assign(p_vs_random=[0.01, float("nan"), 0.5, 0.02])
    assert "no control explainer (random) in this suite: no \\* marks; bold" in leaderboard_markdown(untested)
    assert "\\* better than the random control" in leaderboard_markdown(tested)
    # helper 130: a clinician read bold and * as "faithful", and the row order and the CI at small n unexplained
    legend = leaderboard_markdown(tested)
    for said in ("a description, not a test", "rows in order of their mean rank over the columns",
                 "no \\* is no evidence of no difference", "about 89% at n = 8",
                 "agreement with the mask, not faithfulness to the model",
                 # helper 139: integrated gradients' random_logit 0.9997 read "1.000 *" beside the control's 1.000
                 # review sanity8 D1: efficient_mprt's model-blind value is 0 (↑), not 1, and its aim is not 0
                 "a map that ignores the model fails: 1 on the similarity checks (their worst; the aim is about 0), "
                 "0 on efficient_mprt ↑ (no rise in complexity; the aim is above 0), so \\* there says a map is not "
                 "wholly model-blind, not that it passes"):
        assert said in legend, said
    # review paper4 F3: the controls are named where they have rows, and only those
    assert "the controls ignore the model" not in legend
    assert "the controls ignore the model (random: noise); " in leaderboard_markdown(
        tested.replace({"explainer": {"b": "random"}}))
    tex = leaderboard_latex(untested)
    assert "no control explainer in this suite: no $^{*}$ marks" in tex and "better than" not in tex
    empty = pd.DataFrame()
    page = render_html(root=__import__("pathlib").Path("/nonexistent"), manifest={}, board=untested, models=empty,
                       models_table=empty, cost_table=empty, skipped=None, failures=None, friedman=empty,
                       overall=empty, agreement=empty, pairwise=empty)
    assert "no control explainer (random) in this suite: no * marks" in page and "better than the random" not in page


def test_a_column_of_tiny_means_is_scientific_in_every_format_and_its_chance_row():
    """A held-out review: means near 1e-7 printed 0.000 [0.000, 0.000] in each cell of leaderboard.md, .tex
    and index.html, one bold with *; the column is now in scientific notation, its chance level too."""
    from faithbench.reports.html import _leaderboard_html

    board = _board([
        ("d", "m", "mass", "ig", 7.69e-7, 6.7e-7, 8.85e-7, 1, True, True),
        ("d", "m", "mass", "sobel", 9.16e-8, 8.1e-8, 1.02e-7, 2, True, True),
        ("d", "m", "mass", "random", 6.44e-8, 5.5e-8, 7.3e-8, 3, True, False),
    ]).assign(chance=[7e-8, 7e-8, 7e-8], n=10)
    md = leaderboard_markdown(board)
    assert "| ig | **7.69e-07 [6.70e-07, 8.85e-07]** \\* |" in md and "| random | 6.44e-08 [5.50e-08, 7.30e-08] |" in md
    assert "| *chance* | 7.00e-08 |" in md and "0.000" not in md
    tex = leaderboard_latex(board)
    # review paper4 F6: a math minus in the exponent (text mode sets a hyphen)
    assert r"\faithbenchcell{\textbf{7.69e$-$07}$^{*}$\\{\scriptsize [6.70e$-$07,8.85e$-$07]}}" in tex
    assert r"\textit{chance} & 7.00e$-$08 \\" in tex
    html = _leaderboard_html(board)[("d", "m", "")]
    assert '<td class="best">7.69e-07 [6.70e-07, 8.85e-07]<sup>*</sup>' in html
    assert "<td>7.00e-08</td>" in html


def test_an_explainer_worse_than_the_control_is_marked_in_every_format():
    """A new user's review: integrated gradients was below random on insertion (pairwise p_holm 1.8e-11)
    and carried no mark, the * being one-sided. ``worse_than_random`` is marked °, not at chance."""
    from faithbench.reports.html import _leaderboard_html

    board = BOARD.assign(p_vs_random=[0.01, 0.9, 0.5, 0.02], worse_than_random=[False, True, False, False])
    md = leaderboard_markdown(board)
    assert "0.500 [0.400, 0.600] °" in md and md.count("°") == 2  # the cell and the legend
    assert "° worse than it (the other side of that test)" in md
    tex = leaderboard_latex(board)
    assert r"0.500$^{\circ}$" in tex and r"$^{\circ}$: worse" in tex
    html = _leaderboard_html(board)[("d_1", "m&n", "")]
    assert "<td>0.500 [0.400, 0.600]<sup>°</sup></td>" in html
    chance = board.assign(model_at_chance=True)  # marks withheld for a model at chance, as the *
    assert "0.500 [0.400, 0.600] °" not in leaderboard_markdown(chance)
    assert "<sup>°</sup>" not in _leaderboard_html(chance)[("d_1", "m&n", "")]


def test_the_report_names_the_metrics_that_disagree():
    """A new user's review: deletion ranked Grad-CAM first and insertion saliency, τ = 0 in the agreement
    table, and the page had no line putting it together."""
    from faithbench.reports.markup import disagreement_html as _disagreement

    agreement = pd.DataFrame({"dataset": "cxr", "model": "cnn", "metric_a": ["deletion_auc", "deletion_auc"],
                              "metric_b": ["insertion_auc", "pointing_game"], "tau": [0.0, 0.6], "p": [1.0, 0.2],
                              "n_explainers": 4})
    line = _disagreement(agreement)
    assert "deletion_auc and insertion_auc on cxr / cnn (τ = 0.00, p = 1, 4 explainers)" in line
    assert "pointing_game" not in line
    # helper 130: "says nothing of the other's" was false for a reversed ranking, and no τ had its p
    assert "says nothing" not in line
    assert "with p ≥ 0.05 the data show no agreement, not a proven disagreement" in line
    assert _disagreement(agreement.assign(tau=[0.2, float("nan")])) == ""
    assert "/ nodule (τ = -0.33, p = 1," in _disagreement(agreement.assign(tau=[-1 / 3, 1.0], **{"class": "nodule"}))
    assert "(τ = -1.00, p &lt; 0.001," in _disagreement(agreement.assign(tau=[-1.0, 1.0], p=[1e-5, 0.2]))


def test_latex_caption_gives_the_small_n_caveat_and_the_model_warnings():
    """A held-out review: an n = 8 table's caption had no word on CI coverage, and "model predicts one class"
    was only a `% WARNING:` comment, which no paper shows."""
    board = BOARD.assign(n=8)
    warnings = ["model predicts one class: d_1 / m&n (seed 0, test accuracy 0.500) predicts the same class for "
                "every test sample, so its maps explain that class whatever the image; read its leaderboard rows "
                "with caution", "model predicts one class: other / m&n (seed 0, test accuracy 0.5) predicts ..."]
    tex = leaderboard_latex(board, warnings=warnings)
    caption = tex.split(r"\caption{", 1)[1].split("\n", 1)[0]
    assert r"With fewer than about 30 samples (here n = 8) the 95\% CI covers less than 95\% (about 89\%" in caption
    assert r"rows in order of their mean rank" in caption
    assert r" Warning: model predicts one class: d\_1 / m\&n (seed 0, test accuracy 0.500) predicts" in caption
    assert "other / m" not in tex  # another (dataset, model)'s warning stays out
    assert "With fewer than" in leaderboard_latex(BOARD.assign(n=20))  # a diff review: 92% covered at n = 20
    assert "With fewer than" not in leaderboard_latex(BOARD.assign(n=30))


def test_the_dagger_legend_gives_every_reason_a_model_is_at_chance():
    """A held-out review (stats6 F2): a model marked by the exact-p rule (t8: AUC 1.0, 1 positive of 8, no CI,
    exact p 0.125) had the caption "the 95% bootstrap CI of its test AUC does not lie above 0.5", which no CI
    supports; the Markdown legend, the HTML and every figure said the same. They now give the three reasons."""
    from faithbench.reports.figure import CHANCE_TITLE

    board = BOARD.assign(model_at_chance=True)
    caption = leaderboard_latex(board).split(r"\caption{", 1)[1].split("\n", 1)[0]
    assert (r"$^{\dagger}$Model at chance: the 95\% bootstrap CI of its test AUC does not lie above 0.5, or the AUC "
            r"is undefined, or with fewer than 5 test samples of a class (no CI) an exact test of the AUC gives "
            r"p \ensuremath{\geq} 0.05; marks of significance withheld.") in caption
    legend = leaderboard_markdown(board)
    assert ("† model at chance: the 95% bootstrap CI of its test AUC does not lie above 0.5, or the AUC is "
            "undefined, or with fewer than 5 test samples of a class (no CI) an exact test of the AUC gives "
            "p ≥ 0.05") in legend
    assert CHANCE_TITLE == ("† model at chance: test AUC 95% CI not above 0.5, or AUC undefined,\n"
                            "or < 5 test samples of a class and exact p ≥ 0.05; no significance shown")
