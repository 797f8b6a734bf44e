"""Multi-label metrics: sigmoid scores for perturbation metrics, and class sensitivity."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from faithbench.configurable import ParameterError
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.class_sensitivity import ClassSensitivity
from faithbench.metrics.faithfulness import DeletionAUC
from faithbench.metrics.functional.perturbation import score_logits


def test_score_logits_sigmoid_and_present():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 1.0]])
    target = torch.tensor([1, 2])
    assert score_logits(logits, target, "sigmoid").tolist() == pytest.approx([1 / (1 + math.e), 1 / (1 + math.exp(-1))])
    assert score_logits(logits, target, "present").tolist() == [0.0, 1.0]
    # the softmax of the same target for comparison: not the same number
    assert score_logits(logits, target, "prob")[0] == pytest.approx(math.exp(-1) / (math.exp(2) + math.exp(-1) + math.exp(0.5)))


class SumLogits(nn.Module):
    """Logits (s, -s, 2s) with s = sum of the image: every score is known by hand."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack([s, -s, 2 * s], dim=1)


@pytest.mark.parametrize("multilabel", [False, True])
def test_deletion_scores_sigmoid_of_the_target_on_multilabel(multilabel):
    x = torch.full((2, 1, 2, 2), 0.25)  # s = 1
    target = torch.tensor([0, 2])
    model = SumLogits()
    ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=torch.rand(2, 2, 2), masks={},
                      predict=ForwardCounter(model), multilabel=multilabel)
    out = DeletionAUC(steps=2)(ctx)  # equal pixels: x (s = 1), half of them zeroed (s = 0.5), all (s = 0)
    if multilabel:
        sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
        points = [[sig(s), sig(2 * s)] for s in (1.0, 0.5, 0.0)]
    else:
        soft = lambda s: [math.exp(k * s) / sum(math.exp(j * s) for j in (1, -1, 2)) for k in (1, 2)]  # noqa: E731
        points = [soft(s) for s in (1.0, 0.5, 0.0)]
    assert points[2] == pytest.approx([0.5, 0.5] if multilabel else [1 / 3, 1 / 3])
    for k, expected in enumerate(points):
        assert out["curve"][:, k].tolist() == pytest.approx(expected, abs=1e-6)
    assert out["value"].tolist() == pytest.approx([(a + 2 * b + c) / 4 for a, b, c in zip(*points)], abs=1e-6)


# class sensitivity -------------------------------------------------------------------------
PATTERNS = torch.tensor([
    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
    [[9.0, 1.0, 3.0], [2.0, -8.0, 4.0], [5.0, 6.0, 7.0]],   # |.| ranks differ from class 0's
    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [9.0, 8.0, 7.0]],    # nearly class 0's
])


class PerClass:
    """An explainer whose map depends on the target only: the fixed pattern of its class."""

    def __call__(self, model, x, target):
        return PATTERNS[target].clone()


class ClassBlind:
    """The same map whatever the class (like the sobel control)."""

    def __call__(self, model, x, target):
        return x[:, 0].clone()


def _ctx(explainer, target, labels):
    target = torch.tensor(target)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 3))
    x = torch.arange(len(target) * 9, dtype=torch.float32).reshape(len(target), 1, 3, 3) % 5
    return EvalContext(model=model, x=x, target=target, label=target, saliency=explainer(model, x, target),
                       masks={}, predict=ForwardCounter(model), explainer=explainer,
                       labels=None if labels is None else torch.tensor(labels), multilabel=True)


def _rho(a, b):
    return spearmanr(PATTERNS[a].abs().flatten(), PATTERNS[b].abs().flatten()).statistic


def test_class_sensitivity_known_answer_over_the_other_positive_classes():
    # row 0: class 0 with class 1 also present; row 1: class 1 with 0 and 2; row 2: class 2 alone
    ctx = _ctx(PerClass(), [0, 1, 2], [[1, 1, 0], [1, 1, 1], [0, 0, 1]])
    value = ClassSensitivity()(ctx)["value"]
    expected = [_rho(0, 1), (_rho(1, 0) + _rho(1, 2)) / 2]
    assert value[:2].tolist() == pytest.approx(expected, abs=1e-6)
    assert math.isnan(value[2])  # no other positive class: undefined, no row
    assert _rho(0, 1) < 0.5 < _rho(0, 2)  # the patterns do what the test says


def test_class_sensitivity_over_all_other_classes():
    ctx = _ctx(PerClass(), [2], None)  # no label vectors needed
    value = ClassSensitivity(others="all")(ctx)["value"]
    assert value.tolist() == pytest.approx([(_rho(2, 0) + _rho(2, 1)) / 2], abs=1e-6)


def test_a_constant_map_of_another_class_is_left_out_of_the_mean():
    """A class whose map is constant (an empty Grad-CAM) has no ranking to compare: the mean is over the
    other classes (one such class made the whole row NaN, and before version 2 it counted as 0, the best)."""
    class EmptyForOne(PerClass):
        def __call__(self, model, x, target):
            maps = super().__call__(model, x, target)
            maps[target == 1] = 0.0
            return maps

    value = ClassSensitivity(others="all")(_ctx(EmptyForOne(), [2, 1], None))["value"]
    assert value[0].item() == pytest.approx(_rho(2, 0), abs=1e-6)  # class 1 left out of row 0's mean
    assert math.isnan(value[1])  # its own map is constant: nothing to compare


def test_class_blind_map_scores_one():
    ctx = _ctx(ClassBlind(), [0, 1], [[1, 1, 0], [1, 1, 1]])
    assert ClassSensitivity()(ctx)["value"].tolist() == pytest.approx([1.0, 1.0])


def test_random_control_is_class_blind_in_a_mixed_batch():
    """A held-out review: with one noise draw per batch, class sensitivity re-explained the rows of
    each other class as a smaller batch, so row k got another image's noise and the `random` control
    scored 0.11 (class-sensitive, ranked above saliency) where it ignores the class: 1."""
    from faithbench.registry import explainers

    control = explainers.get("random")(seed=0)
    for target in ([0, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0]):
        ctx = _ctx(control, target, None)
        assert ClassSensitivity(others="all")(ctx)["value"].tolist() == pytest.approx([1.0] * 6)


def test_class_sensitivity_errors():
    with pytest.raises(ParameterError, match="'others' expects one of positive, all"):
        ClassSensitivity(others="some")
    with pytest.raises(ValueError, match="needs the multi-label class vectors"):
        ClassSensitivity()(_ctx(PerClass(), [0], None))
    assert not ClassSensitivity.info.higher_is_better and np.isin("explainer", list(ClassSensitivity.info.requires))


def test_a_row_whose_explained_class_is_absent_has_no_value():
    """A held-out review: with target: {samples: all}, class b (present in 1 of 24 images) had 20 class
    sensitivity rows, 19 of them images without b, against the docstring's "images where both A and B
    are positive". Row 0 explains class 0, absent from its image (classes 1 and 2 present): no value."""
    ctx = _ctx(PerClass(), [0, 1, 2], [[0, 1, 1], [1, 1, 1], [0, 1, 1]])
    metric = ClassSensitivity()
    value = metric(ctx)["value"]
    assert math.isnan(value[0])
    assert value[1:].tolist() == pytest.approx([(_rho(1, 0) + _rho(1, 2)) / 2, _rho(2, 1)], abs=1e-6)
    assert metric.version == "3" and "explained class absent" in metric.undefined_hint
    # others: all still compares every other class, present or not
    assert ClassSensitivity(others="all")(ctx)["value"][0].item() == pytest.approx((_rho(0, 1) + _rho(0, 2)) / 2,
                                                                                   abs=1e-6)
