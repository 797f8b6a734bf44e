"""Deletion/insertion on volumes: the same known answer as in 2D, one axis more."""

import pytest
import torch

from faithbench.metrics.functional import deletion_auc, insertion_auc


def test_deletion_insertion_known_answer_3d(linear_logit):
    w = torch.arange(8, 0, -1, dtype=torch.float32).reshape(1, 1, 2, 2, 2)  # 8..1
    model = linear_logit(w)
    x = torch.ones(1, 1, 2, 2, 2)
    target = torch.tensor([1])
    # deleting voxels in order of weight: logits 36, 28, 21, 15, 10, 6, 3, 1, 0 at fractions k/8
    curve = torch.tensor([36.0, 28, 21, 15, 10, 6, 3, 1, 0])
    expected = torch.trapezoid(curve, dx=1 / 8).item()
    got = deletion_auc(model, x, target, w[:, 0], steps=8, baseline="zero", score="logit")
    assert got.item() == pytest.approx(expected)
    ins = insertion_auc(model, x, target, w[:, 0], steps=8, baseline="zero", score="logit")
    assert ins.item() == pytest.approx(torch.trapezoid(36 - curve, dx=1 / 8).item())


def test_blur_baseline_3d_and_patches(linear_logit):
    torch.manual_seed(0)
    model = linear_logit(torch.randn(1, 1, 8, 8, 8))
    x = torch.rand(3, 1, 8, 8, 8)
    sal = torch.randn(3, 8, 8, 8)
    t = torch.ones(3, dtype=torch.long)
    for patch in (1, 2, 4):
        value = insertion_auc(model, x, t, sal, steps=10, baseline="blur", sigma=1.0, patch=patch)
        assert value.shape == (3,) and torch.isfinite(value).all() and (0 <= value).all() and (value <= 1).all()
