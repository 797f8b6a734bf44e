"""A ReLU written as torch.where, clamp or torch.maximum is refused as F.relu is (a held-out review).

deeplift ran on ``torch.where(h > 0, h, 0)`` (the trace did not count Where: sums 55 % off), and
guided_backprop / guided_gradcam on ``h.clamp(min=0)`` and ``torch.maximum(h, 0)`` (a hybrid map,
correlation 0.40 with the guided one). A clamp inside a torch.nn layer is that layer's, not the forward's.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench.registry import explainers

FORMS = {
    "where": lambda h: torch.where(h > 0, h, 0.0),
    "leaky_where": lambda h: torch.where(h > 0, h, 0.1 * h),
    "clamp": lambda h: h.clamp(min=0),
    "clamp_both": lambda h: h.clamp(0, 6),
    "maximum": lambda h: torch.maximum(h, torch.zeros_like(h)),
    "abs": torch.abs,
    "exp": torch.exp,
}


class _Net(nn.Module):
    """conv - nn.ReLU - conv - ``form`` - global average pool - linear (``form`` None: a second nn.ReLU)."""

    def __init__(self, form: str | None) -> None:
        super().__init__()
        self.conv1, self.relu1, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)
        self.relu2, self.form = nn.ReLU(), form
        self.pool, self.flatten, self.head = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(self.relu1(self.conv1(x)))
        h = self.relu2(h) if self.form is None else FORMS[self.form](h)
        return self.head(self.flatten(self.pool(h)))


def _model(form: str | None) -> nn.Module:
    torch.manual_seed(0)
    model = _Net(form).eval()
    model.arch_family = "cnn"
    return model


X = torch.rand(2, 1, 12, 12)


@pytest.mark.parametrize("name", ["deeplift", "guided_backprop", "guided_gradcam"])
@pytest.mark.parametrize("form", list(FORMS))
def test_a_functional_relu_form_is_refused(name: str, form: str) -> None:
    reason = explainers.get(name)().unsupported_reason(_model(form), X)
    op = {"where": "Where", "leaky_where": "Where", "clamp": "Clamp", "clamp_both": "Clamp",
          "maximum": "Maximum", "abs": "Abs", "exp": "Exp"}[form]
    assert reason is not None and op in reason and "\n" not in reason


@pytest.mark.parametrize("name", ["deeplift", "guided_backprop", "guided_gradcam"])
def test_the_module_form_and_ops_inside_torch_layers_still_run(name: str) -> None:
    assert explainers.get(name)().unsupported_reason(_model(None), X) is None
    model = _model(None)
    model.relu2 = nn.Sequential(nn.ReLU(), nn.BatchNorm2d(4).eval())
    assert explainers.get(name)().unsupported_reason(model, X) is None  # the norm's operations are its own
