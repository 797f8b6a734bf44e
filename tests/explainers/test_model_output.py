"""A direct explainer call on a model whose output is not one (B, K) logits tensor, or on an empty batch: one line
(held-out review api8 D3: "'tuple' object has no attribute 'shape'", and for a (B, 3, 1) output the false
"target class 2 is past the model's 1 outputs")."""

import random

import numpy as np
import pytest
import torch
from torch import nn

import faithbench

torch.manual_seed(0)
NET = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                    nn.Linear(4, 3)).eval()
X, TARGET = torch.rand(2, 1, 8, 8), torch.tensor([0, 2])


class Tup(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = NET

    def forward(self, x):
        return self.net(x), x.mean()


class Ext(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = NET

    def forward(self, x):
        return self.net(x)[:, :, None]


@pytest.mark.parametrize("name, params", [("saliency", {}), ("gradcam", {}), ("integrated_gradients", {}),
                                          ("occlusion", {"window": 4}), ("rise", {"n_masks": 8, "grid": 2})])
@pytest.mark.parametrize("model, got", [
    (Tup(), "one logits tensor of shape (1, classes), got a tuple of 2 items (wrap it in a module whose forward "
            "returns the logits)"),
    (Ext(), "logits of shape (1, classes), got (1, 3, 1) for a batch of 1")])
def test_an_output_that_is_not_logits_is_refused_in_one_line(name, params, model, got):
    with pytest.raises(ValueError) as err:
        faithbench.create_explainer(name, **params)(model.eval(), X, TARGET)
    assert str(err.value) == f"{name}: expected the model to return {got}"


def test_a_working_model_is_called_as_before_without_an_extra_forward():
    """The check runs once an explanation failed: occlusion's forward passes stay those of its windows."""
    calls = []
    handle = NET.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    try:
        faithbench.create_explainer("occlusion", window=4, stride=4)(NET, X, TARGET)
    finally:
        handle.remove()
    assert sum(calls) == 2 * (1 + 4)  # each image, then its 4 occluded copies


def test_the_output_check_leaves_the_model_and_the_callers_generators_as_they_were():
    model = Tup().train()
    states = torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    with pytest.raises(ValueError, match="^saliency: expected the model to return one logits tensor"):
        faithbench.create_explainer("saliency")(model, X, TARGET)
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(torch.random.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


def test_an_empty_batch_is_refused_in_one_line():
    with pytest.raises(ValueError) as err:
        faithbench.create_explainer("saliency")(NET, X[:0], TARGET[:0])
    assert str(err.value) == "saliency: expected x with B >= 1 images, got (0, 1, 8, 8)"
