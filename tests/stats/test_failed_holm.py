"""A failed cell and the Holm family (a held-out review, stats6 F3): an explainer failing under one seed had
n = 0, its comparison left the family, and another explainer's p_vs_random fell from 4/64 to 3/64 = 0.047,
which gave it a `*`. Planned comparisons count in m; an explainer skipped as not applicable is not planned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faithbench.stats.overall import failed_pairs, overall_ranks
from faithbench.stats.paired import holm
from faithbench.stats.tables import leaderboard, pairwise_table

GOOD = [0.9, 0.8, 0.85, 0.95, 0.7, 0.75]  # above random on all 6 samples: one-sided raw p 1/64


def _results(explainers: dict[str, tuple[list[float], tuple[int, ...]]]) -> pd.DataFrame:
    rows = [{"dataset": "d", "model": "m", "explainer": name, "metric": "insertion_auc", "seed": seed,
             "sample_id": f"s{i}", "value": v + 0.01 * seed, "higher_is_better": True, "category": "faithfulness",
             "chance": np.nan}
            for name, (values, seeds) in explainers.items() for seed in seeds for i, v in enumerate(values)]
    return pd.DataFrame(rows)


RESULTS = _results({"a": (GOOD, (0, 1)), "b": ([0.1, 0.6, 0.2, 0.7, 0.3, 0.2], (0, 1)),
                    "c": ([0.2, 0.5, 0.1, 0.6, 0.35, 0.1], (0, 1)),
                    "random": ([0.3, 0.4, 0.5, 0.2, 0.4, 0.3], (0, 1)), "flaky": (GOOD, (0,))})
FAILURES = pd.DataFrame([{"cell": "d/m/flaky/seed1", "dataset": "d", "model": "m", "explainer": "flaky", "seed": 1,
                          "stage": "explain", "metric": np.nan, "error_type": "RuntimeError", "message": "boom"}])


def _p(board: pd.DataFrame, explainer: str) -> float:
    return float(board.set_index("explainer").at[explainer, "p_vs_random"])


def test_holm_with_planned_m_counts_the_untested_as_p_one():
    np.testing.assert_allclose(holm([0.01, np.nan, 0.04], m=3), [0.03, np.nan, 0.08])
    np.testing.assert_allclose(holm([0.01, 0.04], m=3), holm([0.01, 0.04, 1.0])[:2])
    with pytest.raises(ValueError, match="m at least the 2 p-values"):
        holm([0.01, 0.04], m=1)


def test_an_explainer_failed_under_one_seed_stays_in_the_holm_family():
    board = leaderboard(RESULTS, failures=FAILURES)
    assert board.set_index("explainer").at["flaky", "n"] == 0
    assert _p(board, "a") == pytest.approx(4 / 64)  # a, b and c tested, flaky planned: m = 4
    assert not bool(board.set_index("explainer").at["a", "beats_random"])
    assert _p(leaderboard(RESULTS), "a") == pytest.approx(3 / 64)  # without failures.csv: m = 3, a `*`
    pairs = pairwise_table(RESULTS, failures=FAILURES).set_index(["explainer_a", "explainer_b"])
    raw = pairs["p"].dropna().sort_values()
    np.testing.assert_allclose(pairs.loc[raw.index, "p_holm"], holm(raw.to_numpy(), m=10))  # C(5, 2) pairs


def test_a_failed_explainer_without_rows_counts_and_a_skipped_one_does_not():
    results = RESULTS[RESULTS["explainer"] != "flaky"]  # failed under every seed: no row at all
    assert _p(leaderboard(results, failures=FAILURES), "a") == pytest.approx(4 / 64)
    assert _p(leaderboard(results), "a") == pytest.approx(3 / 64)  # not applicable (skipped.csv): not planned
    other = FAILURES.assign(model="other")  # another model's failure does not count here
    assert _p(leaderboard(results, failures=other), "a") == pytest.approx(3 / 64)
    metric = FAILURES.assign(metric="deletion_auc")  # nor another metric's
    assert _p(leaderboard(results, failures=metric), "a") == pytest.approx(3 / 64)
    pairs = pairwise_table(results, failures=FAILURES)
    raw = pairs["p"].sort_values()
    np.testing.assert_allclose(pairs.loc[raw.index, "p_holm"], holm(raw.to_numpy(), m=10))  # 6 + 4 with flaky


def test_overall_ranks_points_a_failed_explainer_to_failures_csv():
    overall = overall_ranks(RESULTS, (), failed_pairs(FAILURES))
    assert overall["left_out"].iloc[0] == ("flaky: no value on a sample shared with the others in any group, a cell "
                                           "failed (failures.csv)")
    plain = "flaky: no value on a sample shared with the others in any group"
    assert overall_ranks(RESULTS)["left_out"].iloc[0] == plain


@pytest.mark.parametrize("stage", ["checkpoint", "task"])
def test_a_whole_group_failure_under_one_seed_adds_nothing_to_the_family(stage):
    """A diff review: a checkpoint failing under seed 1 wrote a failures row for every cell, a not-applicable
    explainer's included, which entered the family (m = 4 became 5)."""
    results = RESULTS[RESULTS["explainer"] != "flaky"]
    failures = pd.DataFrame([{"cell": f"d/m/{e}/seed2", "dataset": "d", "model": "m", "explainer": e, "seed": 2,
                              "stage": stage, "metric": np.nan, "error_type": "RuntimeError", "message": "boom"}
                             for e in ("a", "b", "c", "random", "attention")])
    assert _p(leaderboard(results, failures=failures), "a") == _p(leaderboard(results), "a")
    assert (pairwise_table(results, failures=failures)["p_holm"].tolist()
            == pairwise_table(results)["p_holm"].tolist())


def test_overall_ranks_name_an_explainer_with_no_row_of_a_metric():
    """A review: a metric undefined on every sample of one explainer leaves it no row (a run writes defined values
    only); overall_ranks.csv ranked the other three with an empty left_out (rows present as NaN were named)."""
    rng = np.random.default_rng(2)
    rows = [{"dataset": d, "model": "m", "explainer": e, "metric": metric, "seed": 0, "sample_id": f"s{i}",
             "value": float(rng.normal() + k), "chance": np.nan, "higher_is_better": True, "category": "faithfulness"}
            for d in ("d1", "d2", "d3") for metric in ("A", "B") for k, e in enumerate(["gradcam", "ig", "random"])
            for i in range(6) if not (metric == "B" and e == "gradcam")]
    table = overall_ranks(pd.DataFrame(rows)).set_index(["metric", "explainer"])
    assert (table.loc["B", "left_out"] == "gradcam: no row in any group (undefined or skipped)").all()
    assert sorted(table.loc["B"].index) == ["ig", "random"] and (table.loc["A", "left_out"] == "").all()
    assert len(table.loc["A"]) == 3 and sorted(table.loc["A", "mean_rank"]) == [1.0, 2.0, 3.0]
