"""Attribution localisation, top-k intersection, ROC AUC and Focus: known answers, controls and
Quantus 0.6.0 on identical inputs (tie-free maps; Quantus breaks ties by index order, we by a
seeded permutation)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from faithbench.metrics import ROCAUC, AttributionLocalisation, Focus, TopKIntersection
from faithbench.metrics.functional import (attribution_localisation, build_mosaic, focus, mosaic_plan, roc_auc,
                                           top_k_intersection)
from faithbench.registry import explainers

quantus = pytest.importorskip("quantus")

TOP_ROW = torch.tensor([[[True, True], [False, False]]])


def test_known_answers():
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert attribution_localisation(s, TOP_ROW).item() == pytest.approx(0.3)
    assert attribution_localisation(s, TOP_ROW, weighted=True).item() == pytest.approx(0.6)  # 0.3 x 4 / 2
    desc = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
    assert top_k_intersection(desc, TOP_ROW, 2).item() == 1.0
    assert top_k_intersection(desc, TOP_ROW, 3).item() == pytest.approx(2 / 3)
    assert roc_auc(torch.tensor([[[4.0, 1.0], [3.0, 2.0]]]), torch.tensor([[[True, False], [True, False]]])).item() == 1
    assert roc_auc(torch.ones(1, 2, 2), TOP_ROW).item() == 0.5  # ties count one half
    assert math.isnan(roc_auc(s, torch.ones(1, 2, 2, dtype=torch.bool)).item())
    assert math.isnan(attribution_localisation(s, torch.zeros(1, 2, 2, dtype=torch.bool)).item())
    with pytest.raises(ValueError, match="1 <= k <= 4"):
        top_k_intersection(s, TOP_ROW, 5)


def test_attribution_localisation_signed_map_is_undefined(make_ctx, tiny_cnn):
    # postprocess none on a signed map: R_in / R_tot would be 2.0 and -1.0 (a review), no share
    signed = torch.tensor([[[2.0, 0.0], [-1.0, 0.0]], [[-1.0, 0.0], [2.0, 0.0]], [[2.0, 0.0], [1.0, 1.0]]])
    mask = TOP_ROW.expand(3, 2, 2)
    value = attribution_localisation(signed, mask)
    assert math.isnan(value[0].item()) and math.isnan(value[1].item())
    assert value[2].item() == pytest.approx(0.5)
    ctx = make_ctx(tiny_cnn(), torch.rand(3, 1, 2, 2), signed, masks={"lesion": mask})
    value = AttributionLocalisation(postprocess="none")(ctx).value
    assert value.isnan().tolist() == [True, True, False]
    assert AttributionLocalisation()(ctx).value.tolist() == pytest.approx([2 / 3, 1 / 3, 0.5])  # abs, the default


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_metric_classes_refuse_non_finite_maps(make_ctx, tiny_cnn, bad):
    # a review: the same NaN pixel was ranked first by one metric, skipped by another, NaN in a third
    sal = torch.rand(2, 4, 4)
    sal[0, 1, 1] = bad
    ctx = make_ctx(tiny_cnn(), torch.rand(2, 1, 4, 4), sal, masks={"lesion": torch.ones(2, 4, 4, dtype=torch.bool)})
    for metric in (AttributionLocalisation(), ROCAUC()):
        with pytest.raises(ValueError, match="saliency contains NaN or Inf"):
            metric(ctx)


def _masks(b, size, gen):
    mask = torch.zeros(b, size, size, dtype=torch.bool)
    mask[:, 2:6, 3:7] = True
    mask[-1] = torch.rand(size, size, generator=gen) < 0.3
    return mask


def _run(metric, sal, mask, **kw):
    x = np.zeros((len(sal), 1, *sal.shape[1:]), dtype=np.float32)
    return np.array(metric(model=None, x_batch=x, y_batch=np.zeros(len(sal), dtype=int),
                           a_batch=sal[:, None].numpy().copy(), s_batch=mask[:, None].numpy().astype(np.float32),
                           **kw), dtype=float)


def test_mask_overlap_equals_quantus(make_ctx, tiny_cnn):
    gen = torch.Generator().manual_seed(0)
    sal = torch.rand(4, 10, 10, generator=gen) - 0.2
    mask = _masks(4, 10, gen)
    ctx = make_ctx(tiny_cnn(), torch.rand(4, 1, 10, 10), sal, masks={"lesion": mask})
    ours = AttributionLocalisation()(ctx)
    assert np.allclose(ours.value.numpy(), _run(quantus.AttributionLocalisation(disable_warnings=True), sal, mask),
                       atol=1e-6)
    assert torch.allclose(ours.chance, mask.flatten(1).float().mean(1))
    ours = TopKIntersection(k=10)(ctx).value.numpy()
    assert np.allclose(ours, _run(quantus.TopKIntersection(k=10, disable_warnings=True), sal, mask), atol=1e-6)
    assert np.allclose(ROCAUC()(ctx).value.numpy(), _run(quantus.AUC(disable_warnings=True), sal, mask), atol=1e-6)
    # ties (a 5 x 5 grid upsampled to 10 x 10): sklearn's ROC counts a tie one half, as we do
    tied = torch.rand(4, 5, 5, generator=gen).repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert np.allclose(roc_auc(tied, mask).numpy(), _run(quantus.AUC(disable_warnings=True), tied, mask), atol=1e-6)
    # k as a fraction: round(0.1 x 100) = 10 features
    assert np.allclose(TopKIntersection(k=0, fraction=0.1)(ctx).value.numpy(), ours)


def test_top_k_intersection_default_fits_small_images(make_ctx, tiny_cnn):
    # default k: 0 takes 2 % of the features: round(0.02 x 784) = 16 on a 28 x 28 image (MedMNIST)
    gen = torch.Generator().manual_seed(1)
    sal, mask = torch.rand(2, 28, 28, generator=gen), _masks(2, 28, gen)
    ctx = make_ctx(tiny_cnn(), torch.rand(2, 1, 28, 28), sal, masks={"lesion": mask})
    assert np.allclose(TopKIntersection()(ctx).value.numpy(), TopKIntersection(k=16)(ctx).value.numpy())
    top16 = sal.flatten(1).argsort(dim=1, descending=True)[:, :16]
    expected = mask.flatten(1).gather(1, top16).float().mean(1)
    assert np.allclose(TopKIntersection()(ctx).value.numpy(), expected.numpy())
    with pytest.raises(ValueError, match="k = 1000 is more than the 784 features per sample"):
        TopKIntersection(k=1000)(ctx)


def test_mosaic_layout_equals_quantus():
    x = torch.arange(4 * 2 * 3 * 4, dtype=torch.float32).reshape(4, 2, 3, 4)
    tiles = torch.tensor([[2, 0, 3, 1]])
    from quantus.functions.mosaic_func import build_single_mosaic

    theirs = build_single_mosaic([x[i].numpy() for i in tiles[0]])
    assert np.array_equal(build_mosaic(x, tiles)[0].numpy(), theirs)
    vol = torch.rand(2, 1, 3, 4, 5)
    assert build_mosaic(vol, torch.tensor([[0, 1, 1, 0]])).shape == (1, 1, 3, 8, 10)


def test_mosaic_plan_seeded_and_valid():
    label = torch.tensor([0, 0, 1, 1, 2])
    member = label[:, None] == label[None, :]
    tiles, is_target, valid = mosaic_plan(member, torch.Generator().manual_seed(0))
    assert valid.tolist() == [True, True, True, True, False]  # class 2 has no second sample
    for i in range(4):
        assert i in tiles[i].tolist() and is_target[i].sum() == 2
        assert (label[tiles[i]] == label[i]).tolist() == is_target[i].tolist()
    again = mosaic_plan(member, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], tiles) and torch.equal(again[1], is_target)


def test_a_mispredicted_sample_is_no_distractor_in_its_own_mosaic():
    """A held-out review: explained for its predicted class, a mispredicted x_i was put on a
    non-target tile in 50 of 50 seeds (the model reads that tile as the target class)."""
    label = torch.tensor([0, 0, 1, 1, 1, 0])
    target = torch.tensor([1, 0, 1, 1, 1, 0])  # sample 0 is predicted 1 but labelled 0
    member = target[:, None] == label[None, :]
    for seed in range(20):
        tiles, is_target, valid = mosaic_plan(member, torch.Generator().manual_seed(seed))
        assert valid[0] and 0 not in tiles[0].tolist()
        assert (label[tiles[0]] == 1).tolist() == is_target[0].tolist()
        assert 1 in tiles[1].tolist()  # a correctly predicted sample still fills its own target tile


def test_focus_equals_quantus():
    gen = torch.Generator().manual_seed(0)
    maps = torch.rand(3, 8, 8, generator=gen) - 0.3
    is_target = torch.tensor([[True, False, True, False], [False, True, False, True], [True, True, False, False]])
    ours = focus(maps, is_target).numpy()
    theirs = quantus.Focus(normalise=False, disable_warnings=True).evaluate_batch(
        a_batch=maps[:, None].numpy(), c_batch=[tuple(int(v) for v in row) for row in is_target])
    assert np.allclose(ours, theirs, atol=1e-6)


class _Brightness:
    """A model-free 'explainer' that returns the image: bright tiles get the relevance."""

    seed = 0

    def __call__(self, model, x, target):
        return x.mean(1)


class _Pool(nn.Module):
    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 2)

    def forward(self, x):
        return self.fc(x.flatten(2).mean(2))


@pytest.mark.parametrize("dims", [2, 3])
def test_focus_known_answer_and_random_chance(make_ctx, dims):
    label = torch.tensor([1, 1, 1, 0, 0, 0])
    x = label.float().reshape(6, 1, *[1] * dims).expand(6, 1, *[8] * dims).clone()  # class 1 bright, 0 dark
    model = _Pool()
    ctx = make_ctx(model, x, x[:, 0], target=torch.ones(6, dtype=torch.long), explainer=_Brightness())
    ctx.label = label
    out = Focus()(ctx)
    # all relevance on the target-class tiles; for the class-0 samples (explained for class 1, as
    # if mispredicted) the mosaic holds two class-1 samples, not x_i
    assert torch.allclose(out.value, torch.ones(6))
    random = explainers.get("random")(seed=0)
    ctx = make_ctx(model, x, random(model, x, ctx.target), target=ctx.target, explainer=random)
    ctx.label = label
    assert ((Focus()(ctx).value - 0.5).abs() < 0.08).all()


def test_focus_explains_nothing_without_a_valid_mosaic(make_ctx):
    """A review: with one class in the batch (subset: positive on two classes) every mosaic is invalid,
    yet each was explained (512 integrated-gradients passes for NaN); now none is."""
    x = torch.rand(4, 1, 8, 8)
    calls = []

    class Counting(_Brightness):
        def __call__(self, model, inputs, target):
            calls.append(len(inputs))
            return super().__call__(model, inputs, target)

    ctx = make_ctx(_Pool(), x, x[:, 0], target=torch.ones(4, dtype=torch.long), explainer=Counting())
    ctx.label = torch.ones(4, dtype=torch.long)
    out = Focus()(ctx)
    assert out.value.shape == (4,) and out.value.isnan().all()
    assert calls == []
    label = torch.tensor([1, 1, 0, 0])  # two of each class, each explained for its own: every mosaic is valid
    ctx = make_ctx(_Pool(), x, x[:, 0], target=label, explainer=Counting())
    ctx.label = label
    assert not Focus()(ctx).value.isnan().any() and calls == [4]
