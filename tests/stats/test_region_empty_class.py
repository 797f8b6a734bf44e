"""A region whose mask is empty on every sample of a class (``lesion`` on normal images) gets no between-class
test: its scores there come from the mask, not the map (a held-out review: every explainer, the random control
included, came out "significant", p 0.00025)."""

import math

import numpy as np
import pandas as pd
import pytest

from faithbench.stats.regions import (CLASS_TEST_COLUMNS, class_test, empty_class, empty_region_messages,
                                      region_class_tests)


def _table(rng, n_neg=10, n_pos=6, explainers=("random", "good")):
    rows = []
    for explainer in explainers:
        for i in range(n_neg + n_pos):
            label = int(i >= n_neg)
            lesion_area = 0.01 * label  # empty on every normal image
            lesion_share = float(rng.uniform(0.005, 0.015)) * label
            lung = float(rng.uniform(0.2, 0.4))
            for region, share, area in (("lesion", lesion_share, lesion_area), ("lung", lung, 0.3),
                                        ("heart", 1 - lung, 0.2)):
                rows.append({"dataset": "d", "model": "m", "explainer": explainer, "seed": 0, "sample_id": f"s{i}",
                             "label": label, "target": label, "region": region, "mean": share / 10,
                             "sum": share, "max": share if area else math.nan, "share": share, "area": area})
    return pd.DataFrame(rows)


def test_empty_class_rule():
    assert empty_class([0, 0, 0], [0.1, 0.0]).startswith("region empty on every negative sample")
    assert empty_class([0.1, 0.2], [0.0]).startswith("region empty on every positive sample")
    assert "every negative and every positive" in empty_class([0.0], [0.0])
    assert empty_class([0.0, 0.1], [0.0, 0.2]) == ""  # empty on some samples of each class: tested
    assert empty_class([math.nan, 0.0], [0.3]) != "" and empty_class([], [0.3]) == ""  # NaN, no samples: not counted


def test_a_region_empty_in_one_class_gets_no_test_and_leaves_the_family():
    frame = _table(np.random.default_rng(0))
    tests = region_class_tests(frame, ["share", "mean"])
    assert list(tests.columns) == CLASS_TEST_COLUMNS
    lesion = tests[tests["region"] == "lesion"]
    assert len(lesion) == 4 and (lesion["test"] == "none").all() and lesion["p"].isna().all()
    assert not lesion["significant"].any()  # was True for random too: exact p 2 / C(16, 6) = 2 / 8008
    assert lesion["note"].str.startswith("region empty on every negative sample").all()
    # the other regions keep their tests, Bonferroni over the 2 regions that have one
    for explainer in ("random", "good"):
        sub = frame[(frame["explainer"] == explainer) & (frame["region"] == "lung")]
        ref = class_test(sub.loc[sub.label == 0, "share"], sub.loc[sub.label == 1, "share"])
        row = tests.query("explainer == @explainer and score == 'share' and region == 'lung'").iloc[0]
        assert row["test"] == ref["test"] and row["p"] == pytest.approx(ref["p"])
        assert row["p_bonferroni"] == pytest.approx(min(1.0, 2 * ref["p"])) and row["n_regions"] == 2
        assert row["note"] == "" or pd.isna(row["note"])
    assert empty_region_messages(tests) == [
        "region_tests.csv: region 'lesion' of d / m: region empty on every negative sample: its scores there come "
        "from the mask, not the map, so no between-class test"]


def test_without_an_area_column_the_tests_are_as_before():
    frame = _table(np.random.default_rng(1)).drop(columns="area")
    lesion = region_class_tests(frame).query("region == 'lesion'")
    assert (lesion["test"] == "mannwhitney").all()
    assert lesion["p"].to_numpy() == pytest.approx(2 / math.comb(16, 6))


def test_fewer_than_3_values_says_why():
    out = class_test([0.1, 0.2, 0.3, 0.4], [0.5, 0.6])
    assert out["test"] == "none" and math.isnan(out["p"])
    assert out["note"] == "fewer than 3 values in a class (4 negative, 2 positive; Shapiro-Wilk needs 3)"
    assert class_test([0.1, 0.2, 0.3], [0.5, 0.6, 0.9])["note"] == ""
