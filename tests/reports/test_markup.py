"""Number formatting of the HTML tables."""

from __future__ import annotations

import pandas as pd

from faithbench.reports.markup import format_number, format_p, is_p_value, table_html


def test_p_values_keep_three_significant_digits():
    """0.0496 (significant at 0.05) and 0.0504 (not) both read 0.050 with three decimals."""
    frame = pd.DataFrame({"explainer": ["a", "b", "c", "d"], "mean": [0.0496, 0.05, 0.0504, 1.0],
                          "p_holm": [0.0496, 0.05, 0.0504, 1.0], "friedman_p": [2.44e-4, 0.5, float("nan"), 1e-9]})
    html = table_html(frame)
    for text in ("<td>0.0496</td>", "<td>0.05</td>", "<td>0.0504</td>", "<td>1</td>", "<td>0.000244</td>",
                 "<td>1e-09</td>", "<td>–</td>"):
        assert text in html, text
    assert html.count("<td>0.050</td>") == 3  # the means keep their three decimals
    assert [format_p(v) for v in (0.04996, 0.123456)] == ["0.05", "0.123"]
    assert format_number(0.0496) == "0.050"


def test_which_columns_hold_p_values():
    assert all(is_p_value(c) for c in ("p", "p_holm", "p_bonferroni", "p_vs_random", "friedman_p", "levene_p",
                                       "shapiro_p_negative"))
    assert not any(is_p_value(c) for c in ("mean", "n_perm", "cd", "ap", "pointing_game"))
