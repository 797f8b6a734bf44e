"""A cell of one sample has no interval: the rendered tables print "[–]" (LaTeX "[--]"), not the bootstrap's
zero-width "[v, v]" under the heading "95% CI" (held-out review round 5, F4); the CSVs keep [v, v]."""

from __future__ import annotations

import pandas as pd

from faithbench.reports.html import _leaderboard_html
from faithbench.reports.latex import leaderboard_latex
from faithbench.reports.medical import strata_html
from faithbench.reports.tables import leaderboard_markdown

BOARD = pd.DataFrame(
    [("d", "m", "deletion_auc", "gradcam", 0.508, 0.508, 0.508, 1, 1, False, False),
     ("d", "m", "deletion_auc", "saliency", 0.312, 0.25, 0.4, 8, 2, False, False)],
    columns=["dataset", "model", "metric", "explainer", "mean", "ci_low", "ci_high", "n", "rank", "higher_is_better",
             "beats_random"])


def test_markdown_prints_no_interval_for_one_sample():
    md = leaderboard_markdown(BOARD)
    assert "0.508 [–]" in md and "[0.508, 0.508]" not in md
    assert "0.312 [0.250, 0.400]" in md  # n = 8 keeps its interval
    assert "\\[–\\]: a single sample, no interval" in md  # the legend says what [–] is (Markdown-escaped)


def test_html_and_latex_print_no_interval_for_one_sample():
    html = "".join(_leaderboard_html(BOARD).values())
    assert "0.508 [–]" in html and "[0.508, 0.508]" not in html and "0.312 [0.250, 0.400]" in html
    tex = leaderboard_latex(BOARD)
    assert "{\\scriptsize [--]}" in tex and "[0.508,0.508]" not in tex and "[0.250,0.400]" in tex
    assert "[--]: a single sample, no interval." in tex


def test_strata_html_shows_no_ci_for_a_one_map_stratum():
    table = pd.DataFrame({"dataset": "d", "model": "m", "metric": "x", "explainer": "e", "stratum_kind": "confidence",
                          "stratum": ["low", "high"], "n": [1, 5], "mean": [0.123456, 0.5], "ci_low": [0.123456, 0.41],
                          "ci_high": [0.123456, 0.61], "lower": [0.2, 0.9], "upper": [0.2, 0.95]})
    html = strata_html(table)
    assert html.count("0.123") == 1  # the mean only, not ci_low and ci_high beside it
    assert "0.41" in html and "0.61" in html


def test_the_strata_note_explains_what_its_table_holds():
    """A review: a multi-label class-target run's note left out the finding stratum its table and plots showed,
    and said what target: predicted does."""
    rows = {"dataset": "d", "model": "m", "metric": "x", "explainer": "e", "n": 3, "mean": 0.5}
    table = pd.DataFrame([{**rows, "stratum_kind": "finding", "stratum": "present"},
                          {**rows, "stratum_kind": "correctness", "stratum": "correct"}])
    target = {"classes": ["nodule"], "samples": "all"}
    note = strata_html(table, target=target)
    assert "whether the image has the explained class's finding (present / absent" in note
    assert "With target: predicted" not in note
    assert "With target: predicted" in strata_html(table, target="predicted") and "With target: predicted" in \
        strata_html(table)  # the suite's target unknown: said
    plain = strata_html(table[table["stratum_kind"] == "correctness"], target="predicted")
    assert "finding (present" not in plain and "With target: predicted" in plain
