"""Limits of a metric that depend on the image: refused when computed (and by validation,
tests/test_metric_checks.py), never a silent NaN."""

from __future__ import annotations

import pytest
import torch

from faithbench.registry import metrics


def test_faithfulness_correlation_refuses_a_whole_image_subset_when_computed(make_ctx, tiny_cnn):
    cls = metrics.get("faithfulness_correlation")
    model, x, sal = tiny_cnn().eval(), torch.rand(2, 1, 8, 8), torch.rand(2, 8, 8)
    with pytest.raises(ValueError, match=r"parameter 'subset_size' = 64 is not below the 64 features \(8 x 8\)"):
        cls(runs=4, subset_size=64)(make_ctx(model, x, sal))
    assert not cls(runs=4, subset_size=63)(make_ctx(model, x, sal)).value.isnan().any()
