"""One definition of "the same prediction" for the batch-level metrics ``consistency`` and ``sufficiency``
(Dasgupta et al. 2022: f(x_j) = f(x_i)). On a multi-label batch, a row per (image, explained class k), f is
the decision on row i's class k (logit_k > 0), read on x_i and on x_j (a held-out review: consistency took the
arg-max of the K sigmoid logits, sufficiency the whole set of present classes; neither read class k)."""

import math

import torch
from torch import nn

from faithbench.metrics import Consistency, Sufficiency
from faithbench.metrics.functional import argmax_cell
from faithbench.scores import same_prediction
from tests.metrics.conftest import TinyCNN, make_ctx

# three sigmoid classes; rows (image, explained class): (a, 0) (a, 1) (b, 0) (b, 2) (c, 1) (e, 0)
LOGITS = {"a": [2.0, 1.0, -1.0], "b": [1.0, -1.0, 2.0], "c": [-1.0, 1.0, -2.0], "e": [-1.0, -2.0, -3.0]}
IDS = ["a", "a", "b", "b", "c", "e"]
TARGET = torch.tensor([0, 1, 0, 2, 1, 0])
# present: a {0, 1}, b {0, 2}, c {1}, e {}. Rows 0-4 compare with every other image's rows, row 5 with none:
# (a, 0): b, b present on 0, c not: 2/3; (a, 1): b, b absent, c present: 1/3; (b, 0): a, a yes, c no: 2/3;
# (b, 2): a, a, c all absent on 2: 0; (c, 1): a, a present, b, b absent: 2/4. The arg-max (a 0, b 2, c 1) and
# the sets of present classes differ between a, b and c, so the old definitions gave 0 to rows 0-4.
EXPECTED = [2 / 3, 1 / 3, 2 / 3, 0.0, 0.5]


class FirstPixels(nn.Module):
    """Logits = the image's first three pixels (row 0, columns 0 to 2)."""

    def forward(self, x):
        return x[:, 0, 0, :3]


def _x(ids=IDS) -> torch.Tensor:
    x = torch.zeros(len(ids), 1, 4, 4)
    x[:, 0, 0, :3] = torch.tensor([LOGITS[i] for i in ids])
    return x


def _consistency_maps() -> torch.Tensor:
    saliency = torch.zeros(6, 4, 4)
    saliency[:5, 0, 0] = 1.0  # rows 0-4: the top-left cell of a 2 x 2 grid
    saliency[5, 3, 3] = 1.0   # e: the bottom-right cell, alone
    return saliency


def _sufficiency_maps() -> torch.Tensor:
    # one feature varies; distances / the largest (1.0): rows 0-4 within 0.2 of each other, e >= 0.8 from all
    saliency = torch.zeros(6, 4, 4)
    saliency[:, 0, 0] = torch.tensor([0.0, 0.0, 0.1, 0.1, 0.2, 1.0])
    return saliency


def _values(metric, saliency, order=None):
    order = list(range(6)) if order is None else order
    ids = [IDS[i] for i in order]
    ctx = make_ctx(FirstPixels(), _x(ids), saliency[order], target=TARGET[order], ids=ids, multilabel=True)
    return metric(ctx).value


def _assert_expected(value):
    assert torch.allclose(value[:5], torch.tensor(EXPECTED), atol=1e-6), value.tolist()
    assert math.isnan(value[5].item())


def test_same_prediction_reads_row_i_class_on_both_images():
    logits = torch.tensor([LOGITS[i] for i in IDS])
    same = same_prediction(logits, TARGET)
    # [i, j]: logit_{k_i}(x_j) > 0 equals logit_{k_i}(x_i) > 0; row (a, 0) vs (b, 2): class 0, both present
    assert same[0, 3] and not same[3, 0]  # (b, 2) vs (a, 0): class 2, present on b, absent on a
    assert same.diagonal().all()
    assert same[4].tolist() == [True, True, False, False, True, False]
    single = same_prediction(logits)  # single-label: the arg-max (a 0, b 2, c 1, e 0), whatever the target
    top = {"a": 0, "b": 2, "c": 1, "e": 0}
    assert single.tolist() == [[top[i] == top[j] for j in IDS] for i in IDS]


def test_consistency_scores_each_row_on_its_explained_class():
    _assert_expected(_values(Consistency(grid=2), _consistency_maps()))


def test_sufficiency_scores_each_row_on_its_explained_class():
    _assert_expected(_values(Sufficiency(threshold=0.6), _sufficiency_maps()))


def test_row_order_does_not_change_a_row_value():
    generator = torch.Generator().manual_seed(0)
    for metric, maps in ((Consistency(grid=2), _consistency_maps()), (Sufficiency(threshold=0.6), _sufficiency_maps())):
        base = _values(metric, maps)
        for _ in range(5):
            order = torch.randperm(6, generator=generator).tolist()
            torch.testing.assert_close(_values(metric, maps, order), base[order], equal_nan=True)


def test_a_random_multilabel_batch_is_invariant_to_row_order():
    torch.manual_seed(3)
    model = TinyCNN(classes=3).eval()
    images = torch.rand(6, 1, 8, 8)
    rows = [(i, k) for i in range(6) for k in range(3) if (i + k) % 3 != 2]
    ids = [f"s{i}" for i, _ in rows]
    x, target = images[[i for i, _ in rows]], torch.tensor([k for _, k in rows])
    saliency = torch.rand(len(rows), 8, 8)
    order = torch.randperm(len(rows)).tolist()
    for metric in (Consistency(grid=2), Sufficiency(threshold=0.7)):
        value = metric(make_ctx(model, x, saliency, target=target, ids=ids, multilabel=True)).value
        shuffled = metric(make_ctx(model, x[order], saliency[order], target=target[order],
                                   ids=[ids[i] for i in order], multilabel=True)).value
        torch.testing.assert_close(shuffled, value[order], equal_nan=True)


def _old_consistency(discrete, predicted):  # version 3's single-label computation, written out
    same_e = (discrete[None] == discrete[:, None]) & (discrete != -1)[:, None]
    same_e.fill_diagonal_(False)
    n = same_e.sum(1)
    value = (same_e & (predicted[None] == predicted[:, None])).sum(1).double() / n.clamp(min=1)
    return torch.where(n > 0, value, torch.full_like(value, float("nan"))).float()


def _old_sufficiency(saliency, predicted, threshold):  # version 2's single-label computation, written out
    flat = saliency.flatten(1).double()
    variance = flat.var(dim=0)
    scaled = flat[:, variance > 0] / variance[variance > 0].sqrt()
    dist = torch.cdist(scaled, scaled, compute_mode="donot_use_mm_for_euclid_dist")
    dist = dist / dist.max()
    near = (dist <= threshold) & ~torch.eye(len(flat), dtype=torch.bool)
    count = near.sum(1)
    same = predicted[:, None] == predicted[None, :]
    return torch.where(count > 0, (near & same).sum(1).double() / count.clamp(min=1), float("nan")).float()


def test_single_label_values_are_unchanged_bit_for_bit():
    torch.manual_seed(1)
    model = FirstPixels()
    x = torch.randn(12, 1, 8, 8)
    saliency = torch.randn(12, 8, 8)
    saliency[:4] = saliency[0]  # some shared explanations
    predicted = model(x).argmax(-1)
    assert len(set(predicted.tolist())) > 1
    ctx = make_ctx(model, x, saliency, target=predicted)
    consistency = Consistency(grid=2)(ctx).value
    old = _old_consistency(argmax_cell(saliency.abs(), 2), predicted)
    assert torch.equal(consistency.isnan(), old.isnan()) and torch.equal(consistency.nan_to_num(), old.nan_to_num())
    sufficiency = Sufficiency(threshold=0.6)(ctx).value
    old = _old_sufficiency(saliency.abs(), predicted, 0.6)
    assert torch.equal(sufficiency.isnan(), old.isnan()) and torch.equal(sufficiency.nan_to_num(), old.nan_to_num())
    assert not old.isnan().all()
