"""Stratified analysis on constructed tables with known answers."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from faithbench.stats.strata import STRATA_COLUMNS, stratify, tertiles


def _results(model: str = "m", conf_scale: float = 1.0) -> pd.DataFrame:
    """9 samples (value i for sample i = 1..9) x 2 explainers x (a localisation and a complexity
    metric); lesion area 0.01 i, confidence conf_scale (1 - i/10), correct for i <= 4."""
    rows = []
    for explainer, offset in (("e1", 0.0), ("e2", 10.0)):
        for metric, category in (("pointing_game", "localization"), ("sparseness", "complexity")):
            for i in range(1, 10):
                rows.append({"dataset": "d", "model": model, "explainer": explainer, "metric": metric, "seed": 0,
                             "sample_id": f"s{i}", "value": i + offset, "higher_is_better": True,
                             "category": category, "chance": np.nan, "lesion_area": 0.01 * i,
                             "confidence": conf_scale * (1 - i / 10), "correct": i <= 4})
    return pd.DataFrame(rows)


def test_tertiles_known_answer():
    labels = tertiles(range(1, 10), ("a", "b", "c"))
    assert labels.tolist() == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    # edges from the distinct values: [1, 1, 1, 1, 2, 3] -> q1 = 1.67, q2 = 2.33
    assert tertiles([1, 1, 1, 1, 2, 3], ("a", "b", "c")).tolist() == ["a"] * 4 + ["b", "c"]
    # two areas (a review's phantom lesions): the smaller first, the larger last, never "medium"
    assert tertiles([1] * 5 + [2] * 8, ("a", "b", "c")).tolist() == ["a"] * 5 + ["c"] * 8
    assert tertiles([1] * 8 + [2] * 16, ("a", "b", "c")).tolist() == ["a"] * 8 + ["c"] * 16
    # the largest value is last even when it holds most samples: [1, 2, 3, 4 x 7] -> q1 = 2, q2 = 3
    assert tertiles([1, 2, 3] + [4] * 7, ("a", "b", "c")).tolist() == ["a", "a", "b"] + ["c"] * 7
    assert tertiles([0.5] * 4 + [np.nan], ("a", "b", "c")).tolist()[:4] == ["b"] * 4  # one value: the middle
    assert pd.isna(tertiles([np.nan, 1.0, 2.0, 3.0], ("a", "b", "c"))[0])


def test_stratify_known_means():
    table = stratify(_results())
    assert list(table.columns) == STRATA_COLUMNS
    assert set(table["metric"]) == {"pointing_game"}  # complexity is not stratified
    e1 = table[table["explainer"] == "e1"].set_index(["stratum_kind", "stratum"])
    assert e1.loc[("lesion_size", "small"), "mean"] == pytest.approx(2.0)
    assert e1.loc[("lesion_size", "medium"), "mean"] == pytest.approx(5.0)
    assert e1.loc[("lesion_size", "large"), "mean"] == pytest.approx(8.0)
    assert e1.loc[("lesion_size", "small"), ["lower", "upper"]].tolist() == pytest.approx([0.01, 0.03])
    # confidence falls with i: the high-confidence tertile holds samples 1..3
    assert e1.loc[("confidence", "high"), "mean"] == pytest.approx(2.0)
    assert e1.loc[("confidence", "low"), "mean"] == pytest.approx(8.0)
    assert e1.loc[("correctness", "correct"), ["n", "mean"]].tolist() == pytest.approx([4, 2.5])
    assert e1.loc[("correctness", "wrong"), ["n", "mean"]].tolist() == pytest.approx([5, 7.0])
    e2 = table[table["explainer"] == "e2"].set_index(["stratum_kind", "stratum"])
    assert e2.loc[("lesion_size", "large"), "mean"] == pytest.approx(18.0)
    # order: lesion size, confidence, correctness; strata in their natural order
    assert e1.index.tolist() == [("lesion_size", "small"), ("lesion_size", "medium"), ("lesion_size", "large"),
                                 ("confidence", "low"), ("confidence", "medium"), ("confidence", "high"),
                                 ("correctness", "correct"), ("correctness", "wrong")]
    low, high = e1.loc[("lesion_size", "small"), ["ci_low", "ci_high"]]
    assert 1.0 <= low <= 2.0 <= high <= 3.0


def test_lesion_free_samples_and_per_model_confidence():
    other = _results(model="m2", conf_scale=0.5)  # another model: its own confidence tertiles
    frame = pd.concat([_results(), other], ignore_index=True)
    frame.loc[frame["sample_id"] == "s9", "lesion_area"] = np.nan  # no mask
    frame.loc[frame["sample_id"] == "s8", "lesion_area"] = 0.0  # empty mask
    table = stratify(frame)
    size = table[(table["model"] == "m") & (table["explainer"] == "e1") & (table["stratum_kind"] == "lesion_size")]
    # areas 0.01..0.07 for samples 1..7: q1 = 0.03, q2 = 0.05 -> {1,2,3}, {4,5}, {6,7}
    assert size["n"].tolist() == [3, 2, 2]
    assert size["mean"].tolist() == pytest.approx([2.0, 4.5, 6.5])
    conf = table[(table["model"] == "m2") & (table["explainer"] == "e1") & (table["stratum_kind"] == "confidence")]
    assert conf["n"].tolist() == [3, 3, 3]
    assert conf["mean"].tolist() == pytest.approx([8.0, 5.0, 2.0])


def test_csv_roundtrip_and_missing_columns():
    frame = _results()
    back = pd.read_csv(io.StringIO(frame.assign(correct=frame["correct"].astype(str)).to_csv(index=False)))
    table = stratify(back)
    row = table[(table["explainer"] == "e1") & (table["stratum"] == "correct")]
    assert row["mean"].item() == pytest.approx(2.5)
    bare = frame.drop(columns=["lesion_area", "confidence", "correct"])
    assert stratify(bare).empty and list(stratify(bare).columns) == STRATA_COLUMNS
    only = stratify(frame.drop(columns=["lesion_area", "confidence"]))
    assert set(only["stratum_kind"]) == {"correctness"}
    with pytest.raises(ValueError, match="missing"):
        stratify(frame.drop(columns=["category"]))


def test_multilabel_class_column():
    frame = pd.concat([_results().assign(**{"class": "a"}), _results().assign(**{"class": "b"})])
    table = stratify(frame)
    assert "class" in table.columns and table.columns.tolist().index("class") == 2
    assert set(table["class"]) == {"a", "b"}
    assert len(table) == 2 * len(stratify(_results()))


def test_repeated_index_is_harmless():
    two = pd.concat([_results(), _results().assign(metric="deletion_auc", category="faithfulness")])
    assert two.index.has_duplicates
    table = stratify(two)
    assert set(table["metric"]) == {"pointing_game", "deletion_auc"}
    assert table[table["metric"] == "deletion_auc"]["mean"].tolist() == pytest.approx(
        table[table["metric"] == "pointing_game"]["mean"].tolist())


def test_the_cis_do_not_depend_on_the_row_order():
    """A review: shuffling the rows of results (same data) moved strata.csv's bootstrap CIs on 20 of 174 rows."""
    rng = np.random.default_rng(0)
    frame = _results().assign(value=lambda f: f["value"] + rng.normal(0, 3, len(f)))
    shuffled = frame.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(stratify(shuffled), stratify(frame))


def test_explained_class_strata_when_maps_explain_several_classes():
    # helper 114: Grad-CAM best on deletion over all maps, worse than random on the maps of one class
    frame = _results().assign(target=lambda f: (f["sample_id"].str[1:].astype(int) > 6).astype(int))
    table = stratify(frame)
    rows = table[(table["stratum_kind"] == "explained_class") & (table["explainer"] == "e1")]
    assert rows["stratum"].tolist() == ["class 0", "class 1"] and rows["n"].tolist() == [6, 3]
    assert rows["mean"].tolist() == pytest.approx([3.5, 8.0])  # values 1..6 and 7..9
    assert rows["lower"].isna().all() and set(rows["metric"]) == {"pointing_game"}  # localisation only
    assert list(table["stratum_kind"].unique())[-1] == "explained_class"  # after the other kinds
    # one explained class (target: a class name, subset: positive) or multi-label results: no such rows
    assert "explained_class" not in set(stratify(frame.assign(target=1))["stratum_kind"])
    assert "explained_class" not in set(stratify(frame.assign(**{"class": "a"}))["stratum_kind"])


def test_finding_strata_on_multilabel_results_that_explain_absent_classes():
    """A review: a class's insertion AUC 0.522 where present, 0.264 where absent, 0.393 pooled, and no
    breakdown. Samples 1..3 have class a (label 1), 4..9 do not."""
    frame = _results().assign(**{"class": "a", "target": 0,
                                 "label": lambda f: (f["sample_id"].str[1:].astype(int) <= 3).astype(int)})
    table = stratify(frame)
    rows = table[(table["stratum_kind"] == "finding") & (table["explainer"] == "e1")]
    assert rows["stratum"].tolist() == ["present", "absent"] and rows["n"].tolist() == [3, 6]
    assert rows["mean"].tolist() == pytest.approx([2.0, 6.5])  # values 1..3 and 4..9
    assert rows["lower"].isna().all() and list(table["stratum_kind"].unique())[-1] == "finding"
    # every row of the class present (each_positive) or single-label results: no such stratum
    assert "finding" not in set(stratify(frame.assign(label=1))["stratum_kind"])
    assert "finding" not in set(stratify(frame.drop(columns="class"))["stratum_kind"])


def test_nan_values_set_no_edge_and_make_no_empty_stratum():
    """A held-out review: the two least confident samples' values NaN gave a ``low`` row with n = 0 (and the
    NaN samples' range in lower/upper), and those samples took the low third of the edges, so the 4 defined
    values split 0 / 2 / 2. Dropped first: the 4 defined values split 2 / 1 / 1 over their own tertiles
    (distinct confidences 0.7, 0.8, 0.9, 0.95: q1 0.8, q2 0.9)."""
    n = 6
    frame = pd.DataFrame({"dataset": "d", "model": "m", "metric": "x", "explainer": "e", "seed": 0,
                          "sample_id": [f"s{i}" for i in range(n)], "value": [np.nan, np.nan, 0.5, 0.6, 0.7, 0.8],
                          "category": "localization", "confidence": [0.6, 0.61, 0.7, 0.8, 0.9, 0.95],
                          "correct": [True] * n})
    table = stratify(frame).set_index(["stratum_kind", "stratum"])
    assert (table["n"] > 0).all()
    assert table.loc[("confidence", "low"), ["n", "mean", "lower", "upper"]].tolist() == pytest.approx(
        [2, 0.55, 0.7, 0.8])
    assert table.loc[("confidence", "medium"), ["n", "mean"]].tolist() == pytest.approx([1, 0.7])
    assert table.loc[("confidence", "high"), ["n", "mean"]].tolist() == pytest.approx([1, 0.8])
    assert table.loc[("correctness", "correct"), "n"] == 4
