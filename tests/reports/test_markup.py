"""Number formatting of the HTML tables."""

from __future__ import annotations

import pandas as pd
import pytest

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


def test_markdown_escapes_dollar_signs():
    """GitHub renders $...$ in a table cell as math: two names with a $ on one line (a held-out review)."""
    from faithbench.reports.markup import markdown_escape

    assert markdown_escape("mass_{lesion}^$ cxr_{32}^px~$") == r"mass\_{lesion}^\$ cxr\_{32}^px\~\$"


def test_column_decimals_tell_the_bold_cell_apart_and_stay_one_format():
    """A held-out review: 0.01049 (bold) and 0.0102 both read 0.010; five cells read 0.525 with one bold;
    one column mixed 0.000551 (3 significant digits) with 0.011 (3 decimals)."""
    from faithbench.reports.markup import column_decimals, format_fixed

    assert column_decimals([0.01049, 0.0102, 0.5], [0.01049], 0.0102) == 4  # 0.0105, 0.0102
    assert column_decimals([0.525049, 0.525041], [0.525041], 0.525049) == 5  # 0.52504 vs 0.52505
    assert column_decimals([0.525002, 0.525], [0.525002], 0.525) == 6  # 0.525002 vs 0.525000
    assert column_decimals([0.5250001, 0.525], [0.5250001], 0.525) == 3  # below what the cap shows: not pursued
    assert column_decimals([0.9, 0.5], [0.9], 0.5) == 3  # enough already: the default
    assert column_decimals([0.9, 0.9], [0.9, 0.9], float("nan")) == 3  # tied bold cells, no runner-up
    assert column_decimals([0.000551, 0.011], [0.011], 0.000551) == 5
    assert column_decimals([1234.5, 4.2e-4], [4.2e-4], 1234.5) == 5  # a diff review: read 0.000 beside 1234.5
    assert [format_fixed(v, 5) for v in (0.000551, 0.011)] == ["0.00055", "0.01100"]
    # float noise around 0 (a diff review: 0.000000 and -0.000000 in one column)
    assert column_decimals([1e-17, -2e-17, 0.4], [0.4], 1e-17) == 3
    # a column of nothing but values near 1e-17 cannot be told from real tiny values: scientific, as those
    assert column_decimals([2e-17, 1e-17, -3e-17], [2e-17], 1e-17) == -3
    assert [format_fixed(v, 3) for v in (-2e-17, -0.0004, -0.0006)] == ["0.000", "0.000", "-0.001"]


def test_a_column_of_tiny_means_prints_in_scientific_notation():
    """A held-out review: relevance_mass x 1e-5 (means near 1e-7) printed 0.000 [0.000, 0.000] in every cell,
    one bold, four with *; the same x 2 printed 0.000000 in two cells. Noise is now relative to the column's
    largest mean, and a column whose means need more than 6 decimals is scientific, 3 significant digits."""
    from faithbench.reports.markup import column_decimals, format_fixed

    means = [7.69e-7, 3.53e-7, 3.95e-7, 9.2e-8, 6.4e-8]
    assert column_decimals(means, [means[0]], means[2]) == -3
    assert [format_fixed(m, -3) for m in means] == ["7.69e-07", "3.53e-07", "3.95e-07", "9.20e-08", "6.40e-08"]
    doubled = [2 * m for m in means]
    assert [format_fixed(m, column_decimals(doubled, [doubled[0]], doubled[2])) for m in doubled] == [
        "1.54e-06", "7.06e-07", "7.90e-07", "1.84e-07", "1.28e-07"]
    # widened until the bold cell prints apart from the runner-up (4 digits here), not for float noise
    assert column_decimals([7.6900e-7, 7.6908e-7], [7.6900e-7], 7.6908e-7) == -4
    assert column_decimals([7.69e-7, 7.69e-7 * (1 + 1e-9)], [7.69e-7], 7.69e-7 * (1 + 1e-9)) == -3
    assert column_decimals([0.5, 3e-6], [0.5], 3e-6) == -3  # 3e-6 is no noise beside 0.5: one format
    assert column_decimals([0.5, 1e-7], [0.5], 1e-7) == 3  # below 0.5 x 10^-6: noise, 0.000
    assert [format_fixed(v, -3) for v in (0.0, -0.0, -3e-17, 1234.5)] == ["0.00e+00", "0.00e+00", "-3.00e-17",
                                                                           "1.23e+03"]


def test_latex_escape_writes_greek_letters_and_math_symbols_as_math():
    """A held-out review: an alias IG_ünïcødé_α→β stopped pdflatex ("Unicode character α (U+03B1) not set up
    for use with LaTeX"); Latin accents and arrows pdflatex sets itself, so they pass unchanged."""
    from faithbench.reports.markup import latex_escape

    assert latex_escape("IG_ünïcødé_α→β") == r"IG\_ünïcødé\_\ensuremath{\alpha}→\ensuremath{\beta}"
    assert latex_escape("ΩΛΑάςφϕ≤µ") == (r"\ensuremath{\Omega}\ensuremath{\Lambda}\ensuremath{\mathrm{A}}"
                                         r"\ensuremath{\alpha}\ensuremath{\varsigma}\ensuremath{\varphi}"
                                         r"\ensuremath{\phi}\ensuremath{\leq}µ")
    assert latex_escape("a−b ∆x") == r"a\ensuremath{-}b \ensuremath{\Delta}x"  # a diff review: pdflatex stopped
    assert latex_escape("中 Ж") == "中 Ж"  # other scripts need XeLaTeX/LuaLaTeX (docs/outputs.md)


def test_markdown_escape_keeps_an_entity_in_a_name_literal():
    """A held-out review: the alias grad<b>&amp;"x"_#1 rendered as grad<b>&"x"_#1 in GFM and python-markdown."""
    from faithbench.reports.markup import markdown_escape

    assert markdown_escape('grad<b>&amp;"x"_#1 & co') == r'grad\<b\>&amp;amp;"x"\_\#1 &amp; co'
    markdown = pytest.importorskip("markdown")
    html = markdown.markdown("| a |\n|---|\n| " + markdown_escape("g&amp;x & y") + " |", extensions=["tables"])
    assert "<td>g&amp;amp;x &amp; y</td>" in html
