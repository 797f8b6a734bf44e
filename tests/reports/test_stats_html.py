"""index.html's Statistics section marks the rows of a model at chance † as the leaderboard does (a held-out
review: a model at chance showed Friedman p = 0.00483 and its pairwise and agreement rows unmarked, while its CD
diagram hid that p and docs/outputs.md promised † in every table)."""

from __future__ import annotations

import html
import re

import pandas as pd

from faithbench.reports.html import render_html
from faithbench.reports.stats_html import STATS_CHANCE_NOTE, mark_at_chance


def _tables(with_class: bool = False) -> dict[str, pd.DataFrame]:
    extra = {"class": ["c1", "c2"]} if with_class else {}
    keys = {"dataset": ["noise4", "tri"], "model": ["cnn", "cnn"], **extra}
    return {
        "friedman": pd.DataFrame({**keys, "metric": "deletion_auc", "statistic": [10.667, 22.167],
                                  "p": [0.00483, 1.54e-05], "n_blocks": 12, "k": 3, "cd": 0.957}),
        "pairwise": pd.DataFrame({**keys, "metric": "deletion_auc", "explainer_a": "gradcam",
                                  "explainer_b": "random", "statistic": 23.0, "p": 0.2334, "p_holm": 0.7002,
                                  "effect_size": 0.41, "n": 12}),
        "agreement": pd.DataFrame({**keys, "metric_a": "deletion_auc", "metric_b": "pointing_game",
                                   "tau": [-0.82, 1.0], "p": [0.67, 0.33], "n_explainers": 3}),
    }


def _board(at_chance: bool) -> pd.DataFrame:
    return pd.DataFrame({"dataset": ["noise4", "tri"], "model": "cnn", "metric": "deletion_auc",
                         "explainer": "gradcam", "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "median": 0.5,
                         "n": 12, "chance": float("nan"), "rank": 1.0, "n_common": 12, "higher_is_better": False,
                         "category": "faithfulness", "p_vs_random": 0.2, "beats_random": False,
                         "p_worse_than_random": 0.9, "worse_than_random": False,
                         "model_at_chance": [at_chance, False]})


def _statistics(tmp_path, at_chance: bool) -> str:
    page = render_html(root=tmp_path, manifest=None, board=_board(at_chance), models=pd.DataFrame(),
                       models_table=pd.DataFrame(), cost_table=pd.DataFrame(), skipped=None, failures=None,
                       overall=pd.DataFrame(), **_tables())
    section = page[page.index('<section id="statistics">'):]
    return html.unescape(section[:section.index("</section>")])


def test_rows_of_a_model_at_chance_carry_a_dagger_in_every_statistics_table(tmp_path):
    text = _statistics(tmp_path, at_chance=True)
    rows = re.findall(r"<tr>(.*?)</tr>", text)
    friedman = [r for r in rows if "10.667" in r or "22.167" in r]
    assert friedman == ["<td>noise4</td><td>cnn †</td><td>deletion_auc</td><td>10.667</td><td>0.00483</td>"
                        "<td>12</td><td>3</td><td>0.957</td>",
                        "<td>tri</td><td>cnn</td><td>deletion_auc</td><td>22.167</td><td>1.54e-05</td>"
                        "<td>12</td><td>3</td><td>0.957</td>"]
    assert sum("<td>cnn †</td>" in r for r in rows) == 3  # Friedman, agreement, pairwise: noise4 only
    assert sum("<td>cnn</td>" in r for r in rows) == 3
    assert "deletion_auc and pointing_game on noise4 / cnn † (τ = -0.82, p = 0.67, 3 explainers)" in text
    assert text.count(STATS_CHANCE_NOTE) == 3  # the legends of the three marked tables


def test_no_dagger_and_no_legend_without_a_model_at_chance(tmp_path):
    text = _statistics(tmp_path, at_chance=False)
    assert "†" not in text and "model at chance (see" not in text


def test_a_multi_label_class_at_chance_marks_only_its_rows():
    friedman = _tables(with_class=True)["friedman"]
    marked = mark_at_chance(friedman, {("noise4", "cnn", "c1")})
    assert list(marked["model"]) == ["cnn †", "cnn"]
    assert list(mark_at_chance(friedman, {("noise4", "cnn", "c2")})["model"]) == ["cnn", "cnn"]
    assert list(mark_at_chance(friedman, {("tri", "cnn")})["model"]) == ["cnn", "cnn †"]  # a whole model
    assert mark_at_chance(friedman, set()) is friedman
