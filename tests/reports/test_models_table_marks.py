"""index.html's Models table names the multi-label classes at chance at the model's † (a held-out review: a model
whose macro test AUC CI [0.519, 0.606] lies above 0.5 was marked "small_cnn †" under a legend saying its CI does
not, while only class nodule, CI [0.466, 0.589], was at chance)."""

from __future__ import annotations

import html
import re

import pandas as pd

from faithbench.reports.figure import model_marks
from faithbench.reports.html import render_html
from faithbench.reports.summaries import models_summary
from faithbench.stats.chance import mark_models_at_chance, models_at_chance


def _models(macro: tuple[float, float], nodule: tuple[float, float], cavity: tuple[float, float]) -> pd.DataFrame:
    """One multi-label checkpoint (the review's run: macro 0.561, nodule 0.527, cavity 0.595) and one single-label
    checkpoint at chance."""
    row = {"model": "small_cnn", "dataset": "cxr_ml", "seed": 0, "accuracy": 0.493, "f1": 0.0, "auc": 0.561,
           "auc_ci_low": macro[0], "auc_ci_high": macro[1], "loss": 0.697,
           "auc_nodule": 0.527, "auc_ci_low_nodule": nodule[0], "auc_ci_high_nodule": nodule[1],
           "auc_ci_min_class_n_nodule": 150, "auc_cavity": 0.595, "auc_ci_low_cavity": cavity[0],
           "auc_ci_high_cavity": cavity[1], "auc_ci_min_class_n_cavity": 146}
    single = {"model": "cnn", "dataset": "cxr", "seed": 0, "accuracy": 0.5, "f1": 0.4, "auc": 0.52,
              "auc_ci_low": 0.45, "auc_ci_high": 0.6, "loss": 0.7}
    return pd.DataFrame([row, single])


def _board() -> pd.DataFrame:
    keys = [("cxr_ml", "small_cnn", "nodule"), ("cxr_ml", "small_cnn", "cavity"), ("cxr", "cnn", float("nan"))]
    return pd.DataFrame([{"dataset": d, "model": m, "class": c, "metric": "deletion_auc", "explainer": "gradcam",
                          "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "median": 0.5, "n": 5, "chance": float("nan"),
                          "rank": 1.0, "n_common": 5, "higher_is_better": False, "category": "faithfulness",
                          "p_vs_random": 0.2, "beats_random": False, "p_worse_than_random": 0.9,
                          "worse_than_random": False} for d, m, c in keys])


def _models_rows(tmp_path, models: pd.DataFrame) -> dict[str, str]:
    """The Models summary table's model cell, by dataset."""
    board = mark_models_at_chance(_board(), models)
    page = render_html(root=tmp_path, manifest=None, board=board, models=models,
                       models_table=models_summary(models), cost_table=pd.DataFrame(), skipped=None, failures=None,
                       friedman=pd.DataFrame(), overall=pd.DataFrame(), agreement=pd.DataFrame(),
                       pairwise=pd.DataFrame(), at_chance=models_at_chance(models))
    section = page[page.index('<section id="models">'):]
    summary = html.unescape(section[:section.index("</table>")])
    return {d: m for d, m in re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", summary)}


def test_a_multi_label_model_with_one_class_at_chance_names_the_class(tmp_path):
    rows = _models_rows(tmp_path, _models((0.519, 0.606), (0.466, 0.589), (0.531, 0.661)))
    assert rows == {"cxr_ml": "small_cnn † (class nodule)", "cxr": "cnn †"}


def test_two_classes_at_chance_are_both_named(tmp_path):
    rows = _models_rows(tmp_path, _models((0.519, 0.606), (0.466, 0.589), (0.49, 0.661)))
    assert rows["cxr_ml"] == "small_cnn † (classes cavity, nodule)"


def test_a_macro_auc_at_chance_marks_the_model_itself(tmp_path):
    rows = _models_rows(tmp_path, _models((0.48, 0.606), (0.466, 0.589), (0.531, 0.661)))
    assert rows["cxr_ml"] == "small_cnn †"


def test_no_class_at_chance_no_mark(tmp_path):
    rows = _models_rows(tmp_path, _models((0.519, 0.606), (0.51, 0.589), (0.531, 0.661)))
    assert rows == {"cxr_ml": "small_cnn", "cxr": "cnn †"}


def test_model_marks_of_blocks():
    blocks = {("a", "m", "c2"), ("a", "m", "c1"), ("b", "m"), ("c", "m", ""), ("d", "m", "c1")}
    assert model_marks(blocks, whole={("d", "m")}) == {("a", "m"): "† (classes c1, c2)", ("b", "m"): "†",
                                                       ("c", "m"): "†", ("d", "m"): "†"}
    assert model_marks(set()) == {}
