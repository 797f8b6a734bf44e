"""More than two classes on a tiny test split (models.csv: auc_ci_min_class_n, auc_exact_p): a held-out review
(stats6 F1) found the macro AUC CI bootstrapped from 1 image per class, [1.0, 1.0], and 14% of random models
escaping the at-chance mark."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from faithbench.models.auc import binary_auc, macro_auc_permutation_p
from faithbench.models.training import classification_metrics
from faithbench.stats.chance import models_at_chance, weak_class_messages


def _macro(scores: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean([binary_auc(scores[:, c], (y == c).astype(int)) for c in np.unique(y)]))


def test_three_classes_of_one_perfectly_ranked_are_at_chance():
    y = torch.arange(3)
    metrics = classification_metrics(torch.eye(3) * 4, y, ("a", "b", "c"))
    assert metrics["auc"] == 1.0 and np.isnan(metrics["auc_ci_low"]) and np.isnan(metrics["auc_ci_high"])
    assert metrics["auc_ci_min_class_n"] == 1
    assert metrics["auc_exact_p"] == pytest.approx(1 / 6)  # 3! arrangements, one of them perfect
    assert all(np.isnan(metrics[f"ovr_auc_ci_low_{c}"]) for c in "abc")
    table = models_at_chance(pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, **metrics}]))
    assert table[["dataset", "ci_too_few", "exact_p"]].values.tolist() == [["d", "seed 0: 1", "auc_exact_p"]]
    models = pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, **metrics}])
    assert weak_class_messages(models)[0] == ("class with too few test samples: d / m (seed 0), class a has 1 "
                                              "(fewer than 5), too few for a one-vs-rest test AUC CI, so whether "
                                              "the model learned it cannot be told")


def test_three_classes_of_three_perfectly_ranked_pass_the_permutation_test():
    y = torch.arange(3).repeat_interleave(3)
    metrics = classification_metrics(torch.eye(3)[y] * 4, y, ("a", "b", "c"))
    assert metrics["auc_exact_p"] == pytest.approx(1 / 1680)  # 9! / (3!)^3 arrangements
    assert models_at_chance(pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, **metrics}])).empty


def test_enough_of_every_class_keeps_the_bootstrap_ci_and_no_exact_p():
    y = torch.arange(3).repeat_interleave(6)
    metrics = classification_metrics(torch.eye(3)[y] * 4 + 0.1 * torch.randn(18, 3, generator=torch.Generator().
                                                                            manual_seed(0)), y, ("a", "b", "c"))
    assert metrics["auc_ci_min_class_n"] == 6 and metrics["auc_ci_low"] > 0.5 and "auc_exact_p" not in metrics
    # a class absent from the test split does not count (the macro AUC leaves it out)
    absent = classification_metrics(torch.eye(4)[y] * 4, y, ("a", "b", "c", "d"))
    assert absent["auc_ci_min_class_n"] == 6 and "auc_exact_p" not in absent


def test_the_exact_branch_equals_brute_force_over_distinct_label_arrangements():
    rng = np.random.default_rng(3)
    for sizes in ([1, 1, 1], [2, 1, 3], [1, 2, 0, 2], [3, 3, 2]):
        y = np.repeat(np.arange(len(sizes)), sizes)
        scores = rng.integers(0, 3, size=(len(y), len(sizes))).astype(float)  # heavy ties
        observed = _macro(scores, y)
        null = [_macro(scores, np.array(a)) for a in set(itertools.permutations(y))]
        assert macro_auc_permutation_p(scores, y) == pytest.approx(np.mean(np.array(null) >= observed - 1e-12))


def test_monte_carlo_branch_is_seeded_and_uses_b_plus_one_over_m_plus_one():
    y = np.repeat(np.arange(3), 4)  # 34650 arrangements > 999
    scores = np.eye(3)[y] * 2.0
    p = macro_auc_permutation_p(scores, y, n_resamples=999)
    assert p == macro_auc_permutation_p(scores, y, n_resamples=999)  # seeded: the same every time
    assert p == pytest.approx(1 / 1000)  # no random arrangement reaches a perfect ranking: (0 + 1) / (999 + 1)
    assert np.isnan(macro_auc_permutation_p(scores[:4], y[:4]))  # one class present


@pytest.mark.parametrize("per, seed", [(1, 0), (2, 1), (3, 2)])
def test_a_random_model_is_called_above_chance_at_most_about_5_percent(per: int, seed: int):
    """The review's null simulation: random logits, 3 classes of ``per`` test images, 60 fixed-seed trials.
    Before: 1 image a class passed 14% of the time, [1.0, 1.0] and no mark."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat_interleave(per)
    passed = 0
    for _ in range(60):
        metrics = classification_metrics(torch.randn(len(y), 3, generator=generator), y, ("a", "b", "c"))
        passed += models_at_chance(pd.DataFrame([{"dataset": "d", "model": "m", "seed": 0, **metrics}])).empty
    assert passed <= 6 if per > 1 else passed == 0  # 1 a class: p >= 1/6, never below 0.05
