"""Multi-label training: binary cross-entropy with logits, and per-class metrics (checked against sklearn)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from torch import nn

from faithbench.models import training
from faithbench.models.training import Recipe, classification_metrics, multilabel_metrics, train_model


def test_multilabel_metrics_match_sklearn():
    gen = torch.Generator().manual_seed(0)
    y = (torch.rand(200, 3, generator=gen) < 0.4).long()
    logits = 1.5 * (y.float() - 0.5) + torch.randn(200, 3, generator=gen)
    out = classification_metrics(logits, y, ("a", "b", "c"))  # (N, K) labels dispatch to multilabel_metrics
    pred = (logits > 0).numpy()
    yn = y.numpy()
    assert out["accuracy"] == pytest.approx(np.mean([accuracy_score(yn[:, k], pred[:, k]) for k in range(3)]))
    assert out["f1"] == pytest.approx(f1_score(yn, pred, average="macro"))
    assert out["auc"] == pytest.approx(roc_auc_score(yn, logits.sigmoid().numpy(), average="macro"))
    assert out["auc_b"] == pytest.approx(roc_auc_score(yn[:, 1], logits[:, 1].numpy()))
    assert out["f1_c"] == pytest.approx(f1_score(yn[:, 2], pred[:, 2]))
    assert out["loss"] == pytest.approx(float(F.binary_cross_entropy_with_logits(logits, y.float())))
    assert "auc_a" not in multilabel_metrics(logits, y)  # per-class columns only with names


def test_a_class_with_no_positive_and_no_positive_prediction_has_no_f1():
    """Helper 138: the model right on every image of a class never present (and never predicted) got F1 0,
    and the macro F1 counted it (0.583 instead of 0.778). Now NaN and left out, as its AUC; the others
    equal scikit-learn's."""
    gen = torch.Generator().manual_seed(1)
    y = (torch.rand(100, 3, generator=gen) < 0.4).long()
    y[:, 2] = 0
    logits = 1.5 * (y.float() - 0.5) + torch.randn(100, 3, generator=gen)
    logits[:, 2] = -3.0  # never predicted
    out = multilabel_metrics(logits, y, ("a", "b", "d"))
    pred, yn = (logits > 0).numpy(), y.numpy()
    assert np.isnan(out["f1_d"]) and np.isnan(out["auc_d"]) and out["accuracy_d"] == 1.0
    assert out["f1"] == pytest.approx(np.mean([f1_score(yn[:, k], pred[:, k]) for k in range(2)]))
    assert out["f1"] > f1_score(yn, pred, average="macro", zero_division=0)  # sklearn's default counts the 0


def test_train_model_uses_bce_with_pos_weight(monkeypatch):
    """Two independent classes, each decided by one pixel: a linear model learns both."""
    gen = torch.Generator().manual_seed(0)
    y = (torch.rand(256, 2, generator=gen) < torch.tensor([0.25, 0.5])).long()
    x = torch.randn(256, 1, 2, 2, generator=gen) * 0.1
    x[:, 0, 0, 0] += 2 * y[:, 0] - 1
    x[:, 0, 1, 1] += 2 * y[:, 1] - 1
    calls = []
    real = F.binary_cross_entropy_with_logits

    def spy(logits, target, **kw):
        calls.append(kw.get("pos_weight"))
        return real(logits, target, **kw)

    monkeypatch.setattr(training.F, "binary_cross_entropy_with_logits", spy)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    recipe = Recipe(epochs=30, lr=0.05, batch_size=64, class_weights=True, weight_decay=0.0)
    train_model(model, x[:192], y[:192], x[192:], y[192:], recipe, seed=0)
    positives = y[:192].float().sum(0)
    assert calls and torch.allclose(calls[0], (192 - positives) / positives)  # negatives / positives per class
    out = training.evaluate_model(model, x[192:], y[192:], ("first", "second"))
    assert out["accuracy_first"] > 0.95 and out["accuracy_second"] > 0.95 and out["auc"] > 0.99
