"""What a metric refuses of an EvalContext built by hand, in one line (held-out review api8: D2 a label of another
shape gave focus NaN for every sample or a raw size mismatch; D3 a model whose output is not (B, K) logits, or an
empty batch, raw errors; D7 a NumPy mask "order must be str, not int")."""

import re

import pytest
import torch
from torch import nn

import faithbench
from faithbench.metrics.base import EvalContext, ForwardCounter

torch.manual_seed(0)
NET = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                    nn.Linear(4, 2)).eval()
X, TARGET = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 0, 1, 0, 1])
SALIENCY = torch.rand(6, 8, 8)


def _ctx(model=NET, x=X, target=TARGET, label=TARGET, saliency=SALIENCY, **kw) -> EvalContext:
    return EvalContext(model, x, target, label, saliency, masks=kw.pop("masks", {}), predict=ForwardCounter(model),
                       explainer=faithbench.create_explainer("saliency"), **kw)


@pytest.mark.parametrize("label", [torch.tensor([1]), torch.tensor([0, 1, 0]), torch.tensor([0, 1] * 4),
                                   torch.tensor([[0], [1], [0], [1], [0], [1]])])
def test_a_label_of_another_shape_is_refused_as_a_target_is(label):
    with pytest.raises(ValueError) as err:
        faithbench.create_metric("focus")(_ctx(label=label))
    assert str(err.value) == (f"focus: expected label of 6 class indices, shape (6,), got torch.int64 of shape "
                              f"{tuple(label.shape)}")


def test_a_label_past_the_classes_or_negative_is_refused():
    past = re.escape("focus: expected label class indices 0 to 1, got [0, 1, 0, 1, 0, 5]")
    with pytest.raises(ValueError, match=past):
        faithbench.create_metric("focus")(_ctx(label=torch.tensor([0, 1, 0, 1, 0, 5]), classes=("a", "b")))
    with pytest.raises(ValueError, match=re.escape("deletion_auc: expected label class indices >= 0, got [-1, 1, 0")):
        faithbench.create_metric("deletion_auc", steps=4)(_ctx(label=torch.tensor([-1, 1, 0, 1, 0, 1])))
    with pytest.raises(TypeError, match="^deletion_auc: expected label as a torch.Tensor of 6 class indices"):
        faithbench.create_metric("deletion_auc", steps=4)(_ctx(label=[0, 1, 0, 1, 0, 1]))


def test_a_right_label_scores_as_before_and_a_multilabel_rows_label_is_not_bounded_by_the_classes():
    """focus's value is the share of positive relevance on the target-class tiles: in [0, 1], and not NaN with two
    samples of each class; a multi-label row's label is its class's 0/1 (a one-class multi-label model: 1 is in)."""
    value = faithbench.create_metric("focus")(_ctx()).value
    assert not value.isnan().any() and bool(((value >= 0) & (value <= 1)).all())
    one = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1)).eval()
    ctx = _ctx(model=one, target=torch.zeros(6, dtype=torch.long), label=torch.ones(6, dtype=torch.long),
               classes=("finding",), multilabel=True, labels=torch.ones(6, 1, dtype=torch.long))
    assert faithbench.create_metric("deletion_auc", steps=4)(ctx).value.shape == (6,)


@pytest.mark.parametrize("metric", ["relevance_mass", "pointing_game", "auprc"])
def test_a_numpy_mask_is_refused_in_one_line(metric):
    mask = torch.zeros(6, 8, 8, dtype=torch.bool)
    mask[:, 1:4, 1:4] = True
    with pytest.raises(TypeError) as err:
        faithbench.create_metric(metric)(_ctx(masks={"lesion": mask.numpy()}))
    assert str(err.value) == f"{metric}: expected masks['lesion'] as a bool torch.Tensor, got ndarray"


class Tup(nn.Module):
    def forward(self, x):
        return NET(x), x.mean()


class Dic(nn.Module):
    def forward(self, x):
        return {"logits": NET(x)}


class Ext(nn.Module):
    def forward(self, x):
        return NET(x)[:, :, None]


@pytest.mark.parametrize("model, got", [
    (Tup(), "one logits tensor of shape (6, classes), got a tuple of 2 items (wrap it in a module whose forward "
            "returns the logits)"),
    (Dic(), "one logits tensor of shape (6, classes), got a dict of 1 items (wrap it in a module whose forward "
            "returns the logits)"),
    (Ext(), "logits of shape (6, classes), got (6, 2, 1) for a batch of 6")])
def test_a_model_whose_output_is_not_logits_is_refused_where_the_metric_first_reads_it(model, got):
    counter = ForwardCounter(model)
    with pytest.raises(ValueError) as err:
        counter(X)
    assert str(err.value) == f"expected the model to return {got}"
    with pytest.raises(ValueError, match="^expected the model to return "):
        faithbench.create_metric("deletion_auc", steps=4)(_ctx(model=model))


def test_an_empty_batch_is_refused_in_one_line():
    with pytest.raises(ValueError) as err:
        faithbench.create_metric("deletion_auc", steps=4)(_ctx(x=X[:0], target=TARGET[:0], label=TARGET[:0],
                                                              saliency=SALIENCY[:0]))
    assert str(err.value) == "deletion_auc: expected x of shape (B, C, *spatial) with B >= 1, got (0, 1, 8, 8)"
