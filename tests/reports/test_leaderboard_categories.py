"""The leaderboards group their metric columns by category and show the chance level (md, HTML, LaTeX)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from faithbench.reports.html import _leaderboard_html
from faithbench.reports.latex import leaderboard_latex
from faithbench.reports.tables import (CATEGORY_ORDER, CHANCE_LEVEL_NOTE, category_key, leaderboard_markdown,
                                       leaderboard_tables, markdown_escape)

# (metric, category, higher_is_better, chance per explainer); rows given out of order on purpose
METRICS = [
    ("ece_map", "calibration", False, None),  # a plugin's own category
    ("sparseness", "complexity", True, None),
    ("relevance_mass", "localization", True, {"a": 0.1, "b": 0.4}),  # n-weighted: (0.1 * 30 + 0.4 * 10) / 40
    ("completeness", "axiomatic", False, None),
    ("deletion_auc", "faithfulness", False, None),
    ("max_sensitivity", "robustness", False, None),
    ("pointing_game", "localization", True, {"a": 0.25, "b": 0.25}),
    ("mprt_cascading", "randomization", False, None),
    ("insertion_auc", "faithfulness", True, None),
    ("zeta", "another_plugin", True, None),
]
GROUPS = [("faithfulness", ["deletion_auc", "insertion_auc"]), ("localization", ["pointing_game", "relevance_mass"]),
          ("randomization", ["mprt_cascading"]), ("robustness", ["max_sensitivity"]),
          ("complexity", ["sparseness"]), ("axiomatic", ["completeness"]), ("another_plugin", ["zeta"]),
          ("calibration", ["ece_map"])]
COLUMNS = [m for _, ms in GROUPS for m in ms]


def board(categories: bool = True) -> pd.DataFrame:
    """A leaderboard.csv of one (dataset, model): explainers a (n = 30) and b (n = 10)."""
    rows = []
    for metric, category, hib, chance in METRICS:
        for explainer, mean, n in (("a", 0.8, 30), ("b", 0.3, 10)):
            rows.append({"dataset": "d", "model": "m", "metric": metric, "explainer": explainer, "mean": mean,
                         "ci_low": mean - 0.1, "ci_high": mean + 0.1, "median": mean, "n": n,
                         "chance": np.nan if chance is None else chance[explainer],
                         "rank": 1.0 if (explainer == "a") == hib else 2.0, "higher_is_better": hib,
                         "category": category, "p_vs_random": np.nan, "beats_random": False})
    frame = pd.DataFrame(rows)
    return frame if categories else frame.drop(columns="category")


def test_category_order_is_the_builtin_one_then_others_alphabetically():
    assert CATEGORY_ORDER == ("faithfulness", "localization", "randomization", "robustness", "complexity",
                              "axiomatic")
    names = ["other", "zeta_cat", "axiomatic", "calibration", "faithfulness", "localization"]
    assert sorted(names, key=category_key) == ["faithfulness", "localization", "axiomatic", "calibration",
                                               "zeta_cat", "other"]


def test_columns_grouped_in_category_order_with_chance_levels():
    (table,) = leaderboard_tables(board())
    assert table.metrics == COLUMNS
    assert table.groups() == GROUPS
    assert table.chance_level("pointing_game") == pytest.approx(0.25)
    assert table.chance_level("relevance_mass") == pytest.approx((0.1 * 30 + 0.4 * 10) / 40)
    assert math.isnan(table.chance_level("deletion_auc")) and table.has_chance()
    assert not table.has_chance(["deletion_auc", "zeta"])


def test_metrics_without_a_category_go_last_under_other():
    frame = board()
    frame.loc[frame["metric"] == "sparseness", "category"] = np.nan  # e.g. a plugin writer left it empty
    (table,) = leaderboard_tables(frame)
    assert table.groups()[-1] == ("other", ["sparseness"]) and ("complexity", ["sparseness"]) not in table.groups()


def test_markdown_one_table_per_category_with_a_chance_row():
    text = leaderboard_markdown(board())
    lines = text.splitlines()
    headings = [line[4:] for line in lines if line.startswith("### ")]
    assert headings == ["faithfulness", "localization", "randomization", "robustness", "complexity", "axiomatic",
                        "another\\_plugin", "calibration"]
    headers = [line for line in lines if line.startswith("| explainer")]
    assert len(headers) == len(GROUPS)
    for header, (_, metrics) in zip(headers, GROUPS):
        assert [c.strip().split(" ")[0].replace("\\", "") for c in header.strip("|").split("|")[1:]] == metrics
    # every table has the explainers in the same order; only the localisation table has a chance row
    assert [line.split("|")[1].strip() for line in lines if line.startswith(("| a ", "| b "))] == ["a", "b"] * 8
    chance_rows = [line for line in lines if line.startswith("| *chance*")]
    assert chance_rows == ["| *chance* | 0.250 | 0.175 |"]
    assert lines.index(chance_rows[0]) > lines.index("### localization") > lines.index("### faithfulness")
    assert markdown_escape(CHANCE_LEVEL_NOTE) in text  # the legend explains the row...
    no_chance = board().assign(chance=np.nan)
    assert markdown_escape(CHANCE_LEVEL_NOTE) not in leaderboard_markdown(no_chance)  # ...when there is one
    assert "*chance*" not in leaderboard_markdown(no_chance)


def test_markdown_without_categories_is_one_table():
    text = leaderboard_markdown(board(categories=False))
    assert "### " not in text and sum(line.startswith("| explainer") for line in text.splitlines()) == 1
    header = next(line for line in text.splitlines() if line.startswith("| explainer"))
    assert header.index("completeness") < header.index("deletion") < header.index("zeta")  # alphabetical
    assert "| *chance* |" in text  # the chance row does not need categories


def test_html_category_header_row_and_chance_footer():
    (page,) = _leaderboard_html(board()).values()
    head, foot = page.split("</thead>")[0], page.split("<tfoot>")[1]
    assert '<th rowspan="2">explainer</th>' in head
    spans = re.findall(r'<th class="category" colspan="(\d+)">([^<]*)</th>', head)
    assert [(c, int(n)) for n, c in spans] == [(c, len(ms)) for c, ms in GROUPS]
    metric_row = head.split('<tr class="metrics">')[1]
    assert re.findall(r"<th>([a-z_]+) ", metric_row) == COLUMNS
    cells = re.findall(r"<td>([^<]*)</td>", foot)
    assert cells[0] == "chance" and cells[1:] == ["", "", "0.250", "0.175"] + [""] * 6
    (plain,) = _leaderboard_html(board(categories=False)).values()
    assert 'class="category"' not in plain and "<tr><th>explainer</th>" in plain


def test_latex_multicolumn_category_row_with_cmidrules_and_chance_row():
    tex = leaderboard_latex(board())
    body = tex.split(r"\toprule")[1].split(r"\bottomrule")[0].strip().splitlines()
    spans = re.findall(r"\\multicolumn\{(\d+)\}\{c\}\{([^}]*)\}", body[0])
    assert [(c.replace("\\_", "_"), int(n)) for n, c in spans] == [(c, len(ms)) for c, ms in GROUPS]
    rules = re.findall(r"\\cmidrule\(lr\)\{(\d+)-(\d+)\}", body[1])
    assert rules == [("2", "3"), ("4", "5"), ("6", "6"), ("7", "7"), ("8", "8"), ("9", "9"), ("10", "10"),
                     ("11", "11")]
    names = [re.sub(r"\\_(\\\\)?", "_", h) for h in re.findall(r"\\faithbenchcell\[c\]\{(.*?) \$", body[2])]
    assert names == COLUMNS
    assert body[-2] == r"\midrule" and body[-1] == r"\textit{chance} &  &  & 0.250 & 0.175" + " & " * 6 + r" \\"
    # a full row per line: one unescaped & per metric column
    for line in body[2:]:
        if line.endswith(r"\\"):
            assert len(re.findall(r"(?<!\\)&", line)) == len(COLUMNS)
    plain = leaderboard_latex(board(categories=False))
    assert r"\multicolumn" not in plain and r"\cmidrule" not in plain and r"\textit{chance}" in plain


def test_a_run_folder_report_shows_categories_and_chance(built):
    md = (built / "leaderboard.md").read_text()
    # the synthetic run: deletion_auc (faithfulness) before hit_rate&co (its own category "localisation")
    assert md.index("### faithfulness") < md.index("### localisation")
    assert "| *chance* | 0.300 |" in md
    page = (built / "index.html").read_text()
    assert 'colspan="1">faithfulness</th>' in page
    assert '<tr class="chance"><td>chance</td><td></td><td>0.300</td>' in page
    tex = (built / "leaderboard.tex").read_text()
    assert r"\multicolumn{1}{c}{faithfulness} & \multicolumn{1}{c}{localisation}" in tex
