"""Bootstrap CI of the test AUC (models.csv: auc_ci_low, auc_ci_high)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faithbench.models.auc import (_resampled_aucs, auc_ci, binary_auc, class_auc_cis, class_log_odds,
                                   macro_and_class_cis)
from faithbench.models.training import classification_metrics


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


def test_macro_and_class_cis_share_the_resamples_of_auc_ci_and_class_auc_cis():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (25, 3))
    y[:, 2] = 0  # a class with no positive sample: its AUC is undefined everywhere
    scores = y + rng.normal(0, 1.5, (25, 3))
    macro, per_class = macro_and_class_cis(scores, y, n_boot=300, seed=4)
    assert macro == auc_ci(scores, y, n_boot=300, seed=4)
    np.testing.assert_equal(per_class, class_auc_cis(scores, y, n_boot=300, seed=4))
    assert np.isnan(per_class[2]).all() and macro[0] < macro[1]


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


def test_the_auc_of_a_confident_model_ranks_its_logits_not_float32_probabilities():
    """A held-out review: logits multiplied by 8 (the same ranking) gave float32 softmax probabilities
    of exactly 1.0 for most samples; 621 distinct scores became 13, the AUC 0.511 instead of 0.5595,
    and the model was marked at chance."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    margin = rng.normal(0, 1, 400) + 0.4 * y
    logits = torch.tensor(np.stack([np.zeros(400), margin], axis=1) * 40, dtype=torch.float32)
    assert int((logits.softmax(-1)[:, 1] == 1.0).sum()) > 50  # float32 probabilities tie at 1.0
    expected = roc_auc_score(y, margin)
    out = classification_metrics(logits, torch.tensor(y))
    assert out["auc"] == pytest.approx(expected, abs=1e-12)
    assert out["auc_ci_low"] < expected < out["auc_ci_high"]
    three = torch.cat([logits, torch.zeros(400, 1)], dim=1)  # one-vs-rest log-odds of each class
    y3 = torch.tensor(np.where(rng.random(400) < 0.2, 2, y))
    ovr = [roc_auc_score((y3 == c).numpy(), class_log_odds(three)[:, c]) for c in range(3)]
    assert classification_metrics(three, y3)["auc"] == pytest.approx(np.mean(ovr), abs=1e-12)
    multi = torch.tensor(np.stack([y, 1 - y], axis=1))
    ml = classification_metrics(logits, multi)  # multi-label: each class's logit, not its float32 sigmoid
    assert ml["auc"] == pytest.approx(np.mean([0.5, roc_auc_score(1 - y, margin)]), abs=1e-12)  # class 0: all tied


def test_too_few_test_samples_of_a_class_leave_the_ci_undefined():
    """A fuzzing review (clifuzz5 F6): a test split of 2 images gave AUC 1.0 with the CI [1.0, 1.0], which
    looked meaningful, and the model was not flagged at chance."""
    assert np.isnan(auc_ci(np.array([0.1, 0.9]), np.array([0, 1]))).all()
    assert np.isnan(auc_ci(np.arange(20.0), (np.arange(20) >= 16).astype(int))).all()  # 4 positives
    low, high = auc_ci(np.arange(10.0), (np.arange(10) >= 5).astype(int))  # 5 of each: a CI
    assert (low, high) == (1.0, 1.0)
    out = classification_metrics(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
    assert out["auc"] == 1.0 and np.isnan(out["auc_ci_low"]) and out["auc_ci_min_class_n"] == 1
