"""Metric reliability (MetaQuantus idea) on constructed score tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faithbench.stats.reliability import RELIABILITY_COLUMNS, metric_reliability, reliability_footnote


def _rows(metric: str, condition: str, table: dict[str, list[float]], higher_is_better: bool = True) -> list[dict]:
    return [{"metric": metric, "explainer": e, "sample_id": f"s{i}", "condition": condition, "value": v,
             "higher_is_better": higher_is_better} for e, values in table.items() for i, v in enumerate(values)]


ORIGINAL = {"e1": [1.0, 1.5, 1.2, 1.1], "e2": [2.0, 2.5, 2.2, 2.1], "e3": [3.0, 3.5, 3.2, 3.1]}


def test_reliable_metric_passes():
    rows = (_rows("good", "original", ORIGINAL) + _rows("good", "minor", ORIGINAL)
            + _rows("good", "disruptive", {e: [0.0] * 4 for e in ORIGINAL}))
    table = metric_reliability(pd.DataFrame(rows))
    assert list(table.columns) == RELIABILITY_COLUMNS
    row = table.iloc[0]
    # minor = original: tau 1, no shift -> nr 1; disruptive: constant rows (tau 0 -> 1 - 0) and every
    # value dropped (|r| = 1) -> ar 1
    assert row["nr"] == pytest.approx(1.0) and row["ar"] == pytest.approx(1.0)
    assert bool(row["passed"]) and row["n_samples"] == 4 and row["n_explainers"] == 3


def test_fragile_metric_fails():
    reversed_ = {"e1": ORIGINAL["e3"], "e2": ORIGINAL["e2"], "e3": ORIGINAL["e1"]}
    rows = (_rows("bad", "original", ORIGINAL) + _rows("bad", "minor", reversed_)
            + _rows("bad", "disruptive", ORIGINAL))
    row = metric_reliability(pd.DataFrame(rows)).iloc[0]
    # minor reverses every sample's order: tau -1 -> 0; |r|: e1 and e3 all moved (1), e2 not (0) -> 2/3
    assert row["nr_ranking"] == pytest.approx(0.0)
    assert row["nr_scores"] == pytest.approx(1 / 3)
    assert row["nr"] == pytest.approx(1 / 6)
    # disruptive = original: nothing reacts
    assert row["ar"] == pytest.approx(0.0)
    assert not bool(row["passed"])


def test_agreement_is_oriented_and_missing_condition():
    rows = _rows("up", "original", ORIGINAL) + _rows("down", "original", ORIGINAL, higher_is_better=False)
    table = metric_reliability(pd.DataFrame(rows)).set_index("metric")
    # same values, opposite orientation: reversed rankings
    assert table.loc["up", "agreement_tau"] == pytest.approx(-1.0)
    assert table.loc["down", "agreement_tau"] == pytest.approx(-1.0)
    assert np.isnan(table.loc["up", "nr"]) and not bool(table.loc["up", "passed"])


def test_per_dataset_model_blocks_and_validation():
    rows = pd.DataFrame(_rows("m", "original", ORIGINAL) + _rows("m", "minor", ORIGINAL)
                        + _rows("m", "disruptive", {e: [0.0] * 4 for e in ORIGINAL}))
    both = pd.concat([rows.assign(dataset="d", model="a"), rows.assign(dataset="d", model="b")])
    table = metric_reliability(both)
    assert list(table.columns[:3]) == ["dataset", "model", "metric"]
    assert table["model"].tolist() == ["a", "b"] and table["passed"].all()
    with pytest.raises(ValueError, match="conditions"):
        metric_reliability(rows.assign(condition="tiny"))
    with pytest.raises(ValueError, match="duplicate"):
        metric_reliability(pd.concat([rows, rows]))
    with pytest.raises(ValueError, match="missing"):
        metric_reliability(rows.drop(columns=["higher_is_better"]))


def test_footnote_names_failing_metrics_on_the_board():
    reliability = pd.DataFrame([
        {"metric": "deletion_auc", "nr": 0.4, "ar": 0.9, "passed": False},
        {"metric": "pointing_game", "nr": 0.9, "ar": 0.2, "passed": False},
        {"metric": "insertion_auc", "nr": 0.9, "ar": 0.9, "passed": True},
    ])
    board = pd.DataFrame({"metric": ["deletion_auc", "insertion_auc"], "explainer": ["a", "a"]})
    note = reliability_footnote(reliability, board)
    assert "deletion_auc" in note and "noise resilience 0.40 < 0.60" in note
    assert "pointing_game" not in note  # not on this board
    assert "insertion_auc" not in note
    assert reliability_footnote(reliability, board[board["metric"] == "insertion_auc"]) == ""
    assert "adversary reactivity 0.20" in reliability_footnote(reliability, pd.DataFrame({"metric": ["pointing_game"]}))
