"""Metric.__call__ checks every per-sample output's shape, so a plugin's wrong one fails that
metric in its cell (failures.csv) instead of ending the run (a held-out review: a chance of shape
(1,) raised a bare IndexError while the rows were written, exit 1, and the bad payload was cached;
a curve longer than its fractions was cut silently)."""

from typing import Any, ClassVar

import pytest
import torch

from faithbench.metrics.base import EvalContext, ForwardCounter, Metric, MetricOutput
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo


class Returns(Metric):
    info = MetricInfo("returns", higher_is_better=True, category=Category.FAITHFULNESS)
    defaults: ClassVar[dict[str, Any]] = {}
    output: ClassVar[MetricOutput]

    def compute(self, ctx: EvalContext, saliency: torch.Tensor) -> MetricOutput:
        return self.output


def _ctx(b: int = 3) -> EvalContext:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    return EvalContext(model=model, x=torch.rand(b, 1, 4, 4), target=torch.zeros(b, dtype=torch.long),
                       label=torch.zeros(b, dtype=torch.long), saliency=torch.rand(b, 4, 4), masks={},
                       predict=ForwardCounter(model))


@pytest.mark.parametrize("output, message", [
    (MetricOutput(value=torch.zeros(3), chance=torch.zeros(1)), r"expected chance of shape \(3,\), got \(1,\)"),
    (MetricOutput(value=torch.zeros(3), curve=torch.zeros(3, 5), fractions=torch.linspace(0, 1, 3)),
     r"expected a curve of shape \(3, K\) and fractions of shape \(K,\) or \(3, K\), got \(3, 5\) and \(3,\)"),
    (MetricOutput(value=torch.zeros(3), curve=torch.zeros(3, 5)), r"got \(3, 5\) and None"),
    (MetricOutput(value=torch.zeros(3), regions={"share": torch.zeros(3, 1)}, region_names=("a", "b")),
     r"expected regions\['share'\] of shape \(3, 2\), got \(3, 1\)"),
    (MetricOutput(value=torch.zeros(2)), r"expected per-sample values of shape \(3,\), got \(2,\)"),
])
def test_a_wrong_output_shape_is_refused_with_what_was_expected(output, message):
    Returns.output = output
    with pytest.raises(ValueError, match=message):
        Returns()(_ctx())


def test_right_shapes_pass():
    Returns.output = MetricOutput(value=torch.zeros(3), chance=torch.full((3,), 0.1), curve=torch.zeros(3, 4),
                                  fractions=torch.linspace(0, 1, 4))
    out = Returns()(_ctx())
    assert out.curve.shape == (3, 4)


@pytest.mark.parametrize("name", ["deletion_auc", "faithfulness_correlation", "max_sensitivity", "sparseness"])
@pytest.mark.parametrize("change, message", [
    ({"target": torch.tensor([0, 7, 1])}, r"expected target class indices 0 to 1, got \[0, 7, 1\]"),
    ({"target": torch.tensor([0, -1, 1])}, r"expected target class indices 0 to 1, got \[0, -1, 1\]"),
    ({"target": torch.tensor([0.0, 0.5, 1.0])}, r"expected target of whole class indices"),
    ({"target": torch.zeros(3, 1, dtype=torch.long)}, r"expected target of 3 class indices, shape \(3,\)"),
    ({"saliency": torch.rand(3, 2, 2)}, r"expected saliency of shape \(3, 4, 4\) \(x's batch and spatial axes\)"),
])
def test_metric_classes_refuse_a_target_past_the_classes_and_a_map_of_another_shape(name, change, message):
    # a review: class 7 of 2 was a raw IndexError in the perturbation metrics and was scored by
    # sparseness and max_sensitivity; a 2x2 map for 4x4 images was a broadcast error or a value
    ctx = _ctx()
    ctx.classes = ("normal", "lesion")
    for key, value in change.items():
        setattr(ctx, key, value)
    with pytest.raises(ValueError, match=message):
        metrics.get(name)()(ctx)


def test_a_target_is_checked_against_the_classes_only_when_they_are_known():
    ctx = _ctx()
    ctx.target = torch.tensor([1, 0, 1])  # classes () and a 2-class model: in range, scored
    assert metrics.get("sparseness")()(ctx).value.shape == (3,)
