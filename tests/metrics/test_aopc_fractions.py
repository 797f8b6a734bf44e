"""AOPC curves' fractions are each sample's own where patches are cut by the border (a held-out
review, F3: sample 0's fractions were written for every sample)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from faithbench import create_metric
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.runner.cell import CellResult, CellRun, _append_rows

H, W = 48, 80  # patch 7: the last row of patches is 6 px high, the last column 3 px wide


class Mean(nn.Module):
    """Logits (0, mean of x): any replacement moves the score."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1)
        return torch.stack([torch.zeros_like(m), m], dim=1)


def batch_of_two() -> EvalContext:
    torch.manual_seed(0)
    x = torch.rand(2, 1, H, W)
    saliency = 1e-3 * torch.rand(2, H, W)
    saliency[0, 42:, 77:] += 1.0  # sample 0: the cut 6 x 3 corner patch first
    saliency[1, :7, :7] += 1.0  # sample 1: a whole 7 x 7 patch first
    target = torch.ones(2, dtype=torch.long)
    return EvalContext(model=Mean(), x=x, target=target, label=target, saliency=saliency, masks={},
                       predict=ForwardCounter(Mean()), explainer=None, seed=0)


def test_each_sample_gets_the_fractions_of_its_own_patches():
    out = create_metric("morf_aopc", patch=7, steps=5, baseline="zero")(batch_of_two())
    assert tuple(out.fractions.shape) == (2, 6)
    assert out.fractions[:, 1].tolist() == pytest.approx([18 / (H * W), 49 / (H * W)])  # 0.00469, 0.01276
    assert out.fractions[:, 0].tolist() == [0.0, 0.0]
    # the AOPC values are unchanged: the mean of the drops, whatever the x axis
    assert out.value.tolist() == pytest.approx(out.curve.mean(dim=1).tolist())


def test_the_runner_writes_each_samples_own_fractions():
    metric = create_metric("morf_aopc", patch=7, steps=5, baseline="zero")
    ctx = batch_of_two()
    batch = SimpleNamespace(ids=["a", "b"], label=torch.ones(2, dtype=torch.long))
    cell = SimpleNamespace(dataset=SimpleNamespace(label="d"), model=SimpleNamespace(label="m"),
                           explainer=SimpleNamespace(label="e"), seed=0)
    payload = CellRun._score(metric, ctx, batch)
    result = CellResult(cell=cell)
    _append_rows(result, cell, SimpleNamespace(label="morf_aopc"), metric, batch, ctx.target, payload)
    first = {p["sample_id"]: p["fraction"] for p in result.curves if p["step"] == 1}
    assert first == pytest.approx({"a": 18 / (H * W), "b": 49 / (H * W)})
