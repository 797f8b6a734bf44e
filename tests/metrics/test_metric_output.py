"""What a metric's compute may return (MetricOutput.of): a MetricOutput or a legacy dict, with a tensor value."""

import pytest
import torch

from faithbench.metrics.base import MetricOutput


def test_a_metric_output_or_a_legacy_dict():
    value = torch.tensor([0.5, 1.0])
    out = MetricOutput(value=value)
    assert MetricOutput.of(out) is out
    assert torch.equal(MetricOutput.of({"value": value, "chance": value}).chance, value)
    with pytest.raises(ValueError, match=r"got keys \['score'\]"):
        MetricOutput.of({"score": value})


@pytest.mark.parametrize("returned, message", [
    ([0.5, 1.0], "a metric returns a MetricOutput \\(or a dict with 'value'\\), got list"),  # was an AttributeError
    ({"value": [0.5, 1.0]}, "a metric's value is a torch.Tensor of per-sample values, got list"),
    (MetricOutput(value=0.5), "a metric's value is a torch.Tensor of per-sample values, got float"),
])
def test_what_is_not_one_is_named(returned, message):
    with pytest.raises(TypeError, match=message):
        MetricOutput.of(returned)
