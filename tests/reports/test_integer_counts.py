"""The counts of models.csv stay whole numbers when two multi-class datasets with different class names share a
run (a held-out review: their NaN cells made pandas write ``ovr_n_c_a`` as 6.0 in models.csv, and the HTML
per-checkpoint table print 8.000)."""

from __future__ import annotations

import re

import pandas as pd

from faithbench.reports.html import _models_html
from faithbench.reports.summaries import integer_counts, models_summary
from faithbench.reports.writer import write_outputs


def _models() -> pd.DataFrame:
    return pd.DataFrame([
        {"model": "cnn", "dataset": "tri", "seed": 0, "accuracy": 0.667, "predicted_classes": 2,
         "auc_ci_min_class_n": 8, "ovr_n_alpha": 8, "ovr_auc_alpha": 0.961, "parameters": 387},
        {"model": "cnn", "dataset": "noise4", "seed": 0, "accuracy": 0.208, "predicted_classes": 3,
         "auc_ci_min_class_n": 6, "ovr_n_c_a": 6, "ovr_auc_c_a": 0.435, "parameters": 396},
    ])


def test_models_csv_writes_counts_as_integers_beside_another_dataset_s_classes(tmp_path):
    models = _models()
    assert models["ovr_n_alpha"].dtype == float  # the NaN of the other dataset's row: 8.0
    write_outputs(tmp_path, pd.DataFrame(), pd.DataFrame(), models, pd.DataFrame(), pd.DataFrame())
    lines = (tmp_path / "models.csv").read_text().splitlines()
    assert lines == ["model,dataset,seed,accuracy,predicted_classes,auc_ci_min_class_n,auc_exact_p,ovr_n_alpha,"
                     "ovr_auc_alpha,parameters,ovr_n_c_a,ovr_auc_c_a",
                     "cnn,tri,0,0.667,2,8,,8,0.961,387,,",
                     "cnn,noise4,0,0.208,3,6,,,,396,6,0.435"]


def test_models_csv_has_the_exact_p_columns_also_where_no_p_was_computed(tmp_path):
    """A held-out review: ``auc_exact_p``, documented as empty where every class has 5+ test samples, was absent,
    so reading it failed with a KeyError; a multi-label class's ``auc_exact_p_<class>`` likewise."""
    models = pd.DataFrame([
        {"model": "cnn", "dataset": "bin", "seed": 0, "auc_ci_min_class_n": 9},
        {"model": "cnn", "dataset": "small", "seed": 0, "auc_ci_min_class_n": 4, "auc_exact_p": 0.0143},
        {"model": "cnn", "dataset": "ml", "seed": 0, "auc_ci_min_class_n_nodule": 7, "auc_ci_min_class_n_mass": 3,
         "auc_exact_p_mass": 0.25}])
    write_outputs(tmp_path, pd.DataFrame(), pd.DataFrame(), models, pd.DataFrame(), pd.DataFrame())
    frame = pd.read_csv(tmp_path / "models.csv")
    assert list(frame.columns) == ["model", "dataset", "seed", "auc_ci_min_class_n", "auc_exact_p",
                                   "auc_ci_min_class_n_nodule", "auc_exact_p_nodule", "auc_ci_min_class_n_mass",
                                   "auc_exact_p_mass"]
    assert frame["auc_exact_p"].isna().tolist() == [True, False, True] and frame["auc_exact_p_nodule"].isna().all()
    assert frame["auc_exact_p_mass"].tolist()[2] == 0.25


def test_the_html_per_checkpoint_table_prints_counts_as_integers():
    models = pd.read_csv(pd.io.common.StringIO(_models().to_csv(index=False)))  # as the report reads it: floats
    page = _models_html(models, models_summary(models))
    per_seed = page[page.index("per checkpoint"):]
    rows = re.findall(r"<tr>(.*?)</tr>", per_seed)
    assert rows[1] == ("<td>cnn</td><td>tri</td><td>0</td><td>0.667</td><td>2</td><td>8</td><td>8</td>"
                       "<td>0.961</td><td>387</td><td>–</td><td>–</td>")
    assert rows[2] == ("<td>cnn</td><td>noise4</td><td>0</td><td>0.208</td><td>3</td><td>6</td><td>–</td>"
                       "<td>–</td><td>396</td><td>6</td><td>0.435</td>")


def test_only_whole_count_columns_become_integers():
    frame = pd.DataFrame({"ovr_n_a": [8.0, None], "ovr_n_b": [2.5, 1.0], "accuracy": [1.0, 0.0],
                          "predicted_classes": ["2", "x"]})
    out = integer_counts(frame)
    assert str(out["ovr_n_a"].dtype) == "Int64" and out["ovr_n_a"].tolist()[0] == 8
    assert out["ovr_n_b"].dtype == float and out["accuracy"].dtype == float  # not whole / not a count
    assert out["predicted_classes"].tolist() == ["2", "x"]  # text stays text
