"""faithbench.scores: the one score function of explainers and metrics, and the one check of a model's output
(held-out review api8: D1, a one-logit model scored as a constant; D3, outputs that are not (B, K) logits)."""

import re

import pytest
import torch
from torch import nn

import faithbench
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.scores import ONE_LOGIT_FIX, output_problem, target_score


def _one_logit_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 1)).eval()


class TwoLogits(nn.Module):
    """docs/models.md's fix: [0, z], whose softmax is [1 - sigmoid(z), sigmoid(z)]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return torch.cat([torch.zeros_like(z), z], 1)


def _ctx(model: nn.Module, x: torch.Tensor, target: torch.Tensor, saliency: torch.Tensor, **kw) -> EvalContext:
    return EvalContext(model, x, target, target, saliency, masks={}, predict=ForwardCounter(model), **kw)


@pytest.mark.parametrize("score, why", [("prob", "a softmax over one logit is 1"),
                                        ("softmax", "a softmax over one logit is 1"),
                                        ("correct", "the arg-max of one output is class 0")])
def test_a_score_that_is_constant_on_one_output_is_refused(score, why):
    with pytest.raises(ValueError) as err:
        target_score(torch.tensor([[0.3], [-2.0]]), torch.tensor([0, 0]), score)
    assert str(err.value) == (f"score {score!r} on a model with one output: {why} for every input, so every "
                              f"explainer would score the same; expected two or more outputs ({ONE_LOGIT_FIX}), "
                              f"or the 'logit' score (or 'sigmoid', a multi-label model's)")


def test_sigmoid_logit_and_present_read_one_output_as_it_is():
    logits, target = torch.tensor([[0.3], [-2.0]]), torch.tensor([0, 0])
    assert torch.allclose(target_score(logits, target, "sigmoid"), torch.tensor([0.574442516, 0.119202922]))
    assert target_score(logits, target, "logit").tolist() == pytest.approx([0.3, -2.0])
    assert target_score(logits, target, "present").tolist() == [1.0, 0.0]


def test_logits_of_three_axes_are_refused_with_their_shape():
    with pytest.raises(ValueError, match=re.escape("expected logits of shape (batch, classes), got (2, 3, 1)")):
        target_score(torch.zeros(2, 3, 1), torch.tensor([0, 2]), "prob")


@pytest.mark.parametrize("name", ["deletion_auc", "insertion_auc"])
def test_a_metric_refuses_the_softmax_of_a_one_logit_model_and_takes_its_sigmoid(name):
    """The review's case: [1.0, 1.0] for any map. Its sigmoid (a multi-label context's score) equals the two-logit
    wrapper's softmax of class 1."""
    net, x, saliency = _one_logit_net(), torch.rand(2, 1, 8, 8), torch.rand(2, 8, 8)
    with pytest.raises(ValueError, match="^score 'prob' on a model with one output: a softmax over one logit is 1"):
        faithbench.create_metric(name, steps=4)(_ctx(net, x, torch.tensor([0, 0]), saliency))
    one = faithbench.create_metric(name, steps=4)(_ctx(net, x, torch.tensor([0, 0]), saliency, multilabel=True))
    two = faithbench.create_metric(name, steps=4)(_ctx(TwoLogits(net).eval(), x, torch.tensor([1, 1]), saliency))
    assert torch.allclose(one.value, two.value, atol=1e-6)
    assert min(abs(v - 1.0) for v in one.value.tolist()) > 1e-3  # not the constant 1 the softmax gave


def test_rise_refuses_the_softmax_of_a_one_logit_model():
    net, x = _one_logit_net(), torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="^score 'softmax' on a model with one output"):
        faithbench.create_explainer("rise", n_masks=8, grid=2)(net, x, torch.tensor([0]))
    saliency = faithbench.create_explainer("rise", n_masks=8, grid=2, score="sigmoid")(net, x, torch.tensor([0]))
    assert saliency.shape == (1, 8, 8) and saliency.std() > 0


def test_the_run_and_the_score_name_the_same_fix():
    from faithbench.models.errors import logits_problem

    assert logits_problem(torch.zeros(1, 1), 2).endswith(f"for a batch of 1 ({ONE_LOGIT_FIX})")


@pytest.mark.parametrize("out, message", [
    ((torch.zeros(2, 3), torch.zeros(())), "expected the model to return one logits tensor of shape (2, classes), "
     "got a tuple of 2 items (wrap it in a module whose forward returns the logits)"),
    ({"logits": torch.zeros(2, 3)}, "expected the model to return one logits tensor of shape (2, classes), got a "
     "dict of 1 items (wrap it in a module whose forward returns the logits)"),
    (torch.zeros(2, 3, 1), "expected the model to return logits of shape (2, classes), got (2, 3, 1) for a batch of 2"),
    (torch.zeros(3, 3), "expected the model to return logits of shape (2, classes), got (3, 3) for a batch of 2"),
    (torch.zeros(2, 3), None),
])
def test_output_problem(out, message):
    assert output_problem(out, 2) == message
