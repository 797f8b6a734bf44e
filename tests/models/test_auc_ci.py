"""Bootstrap CI of the test AUC (models.csv: auc_ci_low, auc_ci_high)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faithbench.models.training import _resampled_aucs, auc_ci, binary_auc, classification_metrics


def test_resampled_aucs_match_the_mann_whitney_auc_of_each_resample():
    rng = np.random.default_rng(1)
    score = np.round(rng.random(40), 1)  # many ties
    y = (rng.random(40) < 0.4).astype(int)
    idx = np.random.default_rng(0).integers(0, 40, size=(100, 40))
    expected = [binary_auc(score[i], y[i]) for i in idx]
    np.testing.assert_allclose(_resampled_aucs(score, y, idx), expected)


def test_auc_ci_is_the_percentile_interval_of_the_resampled_aucs():
    rng = np.random.default_rng(2)
    score, y = rng.random(30), rng.integers(0, 2, 30)
    idx = np.random.default_rng(7).integers(0, 30, size=(200, 30))
    aucs = np.array([binary_auc(score[i], y[i]) for i in idx])
    expected = np.quantile(aucs[~np.isnan(aucs)], [0.025, 0.975])
    assert auc_ci(score, y, n_boot=200, seed=7) == pytest.approx(tuple(expected))


def test_auc_ci_separates_a_good_model_from_one_at_chance():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 100)
    assert auc_ci(y + 0.1 * rng.random(200), y) == (1.0, 1.0)  # perfectly separated
    low, high = auc_ci(rng.random(200), y)
    assert low < 0.5 < high  # scores independent of the label
    low, _ = auc_ci(y + rng.normal(0, 0.7, 200), y)
    assert low > 0.6
    assert np.isnan(auc_ci(rng.random(5), np.ones(5))).all()  # one class only: undefined


def test_auc_ci_macro_over_classes_and_bad_shapes():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, (60, 3))
    low, high = auc_ci(y + 0.01 * rng.random((60, 3)), y)
    assert (low, high) == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"same shape.*got \(4,\) and \(5,\)"):
        auc_ci(np.zeros(4), np.zeros(5))


@pytest.mark.parametrize("k", [2, 3])
def test_classification_metrics_report_the_auc_ci(k):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % k
    logits = torch.nn.functional.one_hot(y, k).float() * 2 + torch.randn(90, k, generator=g) * 2
    out = classification_metrics(logits, y)
    assert out["auc_ci_low"] < out["auc"] < out["auc_ci_high"]
    assert 0.5 < out["auc_ci_low"]
