"""region_pairwise.csv and a failed cell (held-out review report13, D1): a failed explainer's pairs were planned
and count in the Holm family m, as in pairwise.csv and p_vs_random; they were left out (m 6 where pairwise.csv
counted 10 in the same run)."""

from __future__ import annotations

import itertools
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faithbench.stats.paired import holm
from faithbench.stats.regions import region_pairwise

BASE = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
# each explainer's share minus random's, per sample; the same for the 6 negative and the 6 positive samples
OFFSETS = {"random": [0.0] * 6, "a": [0.31, 0.32, 0.33, 0.34, 0.35, 0.36], "b": [0.05, 0.06, 0.07, 0.08, 0.09, -0.01],
           "c": [-0.02, 0.04, -0.06, 0.085, -0.1, 0.12]}
# two-sided exact p by hand: every difference one sign, 2/64; b vs random W- = 1: 2 * 2/64; c vs random
# W- = 1 + 3 + 5 = 9: 2 * 27/64; b vs c (differences .07 .02 .13 -.005 .19 -.13): W- = 1 + 4.5, 2 * 11/64
RAW = {("a", "b"): 1 / 32, ("a", "c"): 1 / 32, ("a", "random"): 1 / 32, ("b", "c"): 11 / 32,
       ("b", "random"): 1 / 16, ("c", "random"): 27 / 32}
# Holm over m = 10 planned pairs (C(5, 2), flaky's 4 without a p): sorted 1/32 x 3, 1/16, 11/32, 27/32 scaled by
# 10, 9, 8, 7, 6, 5 -> 0.3125, 0.28125, 0.25, 0.4375, 2.06, 4.2, running maximum, capped at 1
HOLM_10 = {("a", "b"): 0.3125, ("a", "c"): 0.3125, ("a", "random"): 0.3125, ("b", "c"): 1.0,
           ("b", "random"): 0.4375, ("c", "random"): 1.0}
# m = 6 (no failure): 6/32, 5/32, 4/32, 3/16, 2 * 11/32, 27/32, running maximum
HOLM_6 = {("a", "b"): 0.1875, ("a", "c"): 0.1875, ("a", "random"): 0.1875, ("b", "c"): 0.6875,
          ("b", "random"): 0.1875, ("c", "random"): 0.84375}


def _regions() -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "d", "model": "m", "explainer": name, "seed": 0, "sample_id": f"s{i:02d}",
                          "label": int(i >= 6), "target": 0, "region": "r", "mean": 0.0, "sum": 0.0, "max": 0.0,
                          "share": BASE[i % 6] + offsets[i % 6], "area": 0.2}
                         for name, offsets in OFFSETS.items() for i in range(12)])


def _failures(**changes) -> pd.DataFrame:
    row = {"cell": "d/m/flaky/seed0", "dataset": "d", "model": "m", "explainer": "flaky", "seed": 0,
           "stage": "explain", "metric": np.nan, "error_type": "RuntimeError", "message": "boom"}
    return pd.DataFrame([{**row, **changes}])


def _column(table: pd.DataFrame, column: str) -> dict[tuple[str, str], float]:
    assert set(table["samples"]) == {"negative", "positive"} and len(table) == 12
    negative = table[table["samples"] == "negative"]
    positive = table[table["samples"] == "positive"].set_index(["explainer_a", "explainer_b"])[column]
    out = dict(zip(zip(negative["explainer_a"], negative["explainer_b"]), negative[column]))
    assert positive.to_dict() == out  # the same values in both classes
    return out


def test_raw_p_values_are_the_hand_computed_exact_ones():
    table = region_pairwise(_regions())
    assert _column(table, "p") == pytest.approx(RAW, abs=1e-15)
    d = np.array(OFFSETS["b"]) - np.array(OFFSETS["c"])  # with a tie: every one of the 2^6 sign flips
    ranks = stats.rankdata(np.round(np.abs(d), 12))
    sums = [ranks[np.array(signs) < 0].sum() for signs in itertools.product((1, -1), repeat=6)]
    observed = ranks[d < 0].sum()
    assert observed == 5.5 and 2 * np.mean(np.array(sums) <= observed + 1e-9) == pytest.approx(11 / 32)


def test_an_explainer_failed_without_rows_counts_in_m():
    table = region_pairwise(_regions(), failures=_failures())
    assert _column(table, "p_holm") == pytest.approx(HOLM_10, abs=1e-15)
    assert _column(table, "p_holm") == pytest.approx(dict(zip(RAW, holm(list(RAW.values()), m=10))))
    regions_metric = region_pairwise(_regions(), failures=_failures(stage="metric", metric="regions"))
    assert _column(regions_metric, "p_holm") == pytest.approx(HOLM_10, abs=1e-15)  # the regions block failed


@pytest.mark.parametrize("changes", [{"model": "other"}, {"dataset": "other"}, {"stage": "metric", "metric": "iou"},
                                     {"stage": "checkpoint"}, {"stage": "task"}])
def test_failures_that_take_no_pair_of_these_regions_do_not_count(changes):
    """Another model's or dataset's failure, a metric's other than regions (its maps were scored), and a whole
    group's failure (its seed gone from every explainer alike, as in pairwise.csv)."""
    table = region_pairwise(_regions(), failures=_failures(**changes))
    assert _column(table, "p_holm") == pytest.approx(HOLM_6, abs=1e-15)


def test_without_failures_the_table_is_unchanged_bit_for_bit():
    plain = region_pairwise(_regions())
    assert _column(plain, "p_holm") == pytest.approx(HOLM_6, abs=1e-15)
    pd.testing.assert_frame_equal(region_pairwise(_regions(), failures=None), plain, check_exact=True)
    empty = pd.DataFrame(columns=_failures().columns)
    pd.testing.assert_frame_equal(region_pairwise(_regions(), failures=empty), plain, check_exact=True)


def test_a_failed_explainer_with_rows_under_another_seed_counts_once_per_pair():
    """flaky failed under seed 1 but has rows under seed 0: its pairs have a p and count once each."""
    flaky = _regions().query("explainer == 'a'").assign(explainer="flaky", share=lambda f: f["share"] + 0.5)
    table = region_pairwise(pd.concat([_regions(), flaky]), failures=_failures(seed=1, cell="d/m/flaky/seed1"))
    raw = table[table["samples"] == "negative"]["p"].to_numpy()
    assert len(raw) == 10
    np.testing.assert_allclose(table[table["samples"] == "negative"]["p_holm"], holm(raw), rtol=0, atol=0)
