import math

import numpy as np
import pytest
import torch

from faithbench.metrics import AUPRC, IoUTop5, IoUTop10, IoUTop20, IoUTop40, RelevanceRank
from faithbench.metrics.functional import (auprc, bounding_box, iou_chance, iou_top_k, relevance_rank,
                                           top_fraction)


def _mask(shape, *slices):
    m = torch.zeros(shape, dtype=torch.bool)
    m[slices] = True
    return m


def test_relevance_rank_hand():
    sal = torch.tensor([[[5.0, 4.0], [3.0, 0.0]]])
    mask = _mask((1, 2, 2), 0, slice(None), 0)  # features (0,0)=5 and (1,0)=3; |M| = 2
    # top-2 = {5, 4}; one of them in M -> 1/2
    assert relevance_rank(sal, mask).item() == 0.5
    assert relevance_rank(-sal, mask).item() == 0.5  # top-2 of -s = {0, 3}: 3 in M
    assert math.isnan(relevance_rank(sal, torch.zeros(1, 2, 2, dtype=torch.bool)).item())


def test_relevance_rank_ties_seeded_and_chance(make_ctx, linear_logit):
    sal = torch.zeros(400, 10, 10)  # all tied: a random pick lands in M at the area fraction
    mask = _mask((400, 10, 10), slice(None), slice(0, 2))  # 20% in the top rows
    value = relevance_rank(sal, mask, generator=torch.Generator().manual_seed(0))
    assert 0.17 < value.mean().item() < 0.23  # index order would give 1.0 (the mask is the first 20 pixels)
    ctx = make_ctx(linear_logit(torch.ones(1, 1, 10, 10)), torch.ones(400, 1, 10, 10), sal, masks={"lesion": mask})
    out = RelevanceRank()(ctx)
    assert out["chance"][0].item() == pytest.approx(0.2)


def test_top_fraction_and_iou_hand():
    sal = torch.arange(16.0).reshape(1, 4, 4)  # 15 at (3, 3)
    top = top_fraction(sal, 0.25)  # 4 features: 12..15 = the last row
    assert torch.equal(top, _mask((1, 4, 4), 0, 3))
    mask = _mask((1, 4, 4), 0, slice(2, 4), slice(0, 2))  # 4 features, 2 in the last row
    assert iou_top_k(sal, mask, percent=25).item() == pytest.approx(2 / 6)
    assert iou_chance(mask, 25).item() == pytest.approx(1 / 7)  # E∩ = 4*4/16 = 1; 1 / (4 + 4 - 1)


def test_bounding_box_2d_3d_and_iou_bbox():
    region = torch.zeros(2, 5, 5, dtype=torch.bool)
    region[0, 1, 1] = region[0, 3, 2] = True  # two components -> one box rows 1..3, cols 1..2
    box = bounding_box(region)
    assert box[0].sum().item() == 6 and box[0, 1:4, 1:3].all()
    assert not box[1].any()  # empty stays empty
    vol = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    vol[0, 0, 0, 0] = vol[0, 2, 1, 3] = True
    assert bounding_box(vol).sum().item() == 3 * 2 * 4
    sal = torch.zeros(1, 4, 4)
    sal[0, 0, 0] = sal[0, 3, 3] = 1.0  # top 2 = the corners; box = whole image
    mask = _mask((1, 4, 4), 0, slice(1, 3), slice(1, 3))
    assert iou_top_k(sal, mask, percent=12.5).item() == 0.0
    assert iou_top_k(sal, mask, percent=12.5, bbox=True).item() == pytest.approx(4 / 16)


def test_iou_chance_with_bbox_is_the_area_fraction():
    # a random top-k% set spreads over the image, so its box is the image: IoU = |M| / N (a held-out
    # review: 0.500 for a half-image mask, the no-box formula wrote 0.286)
    half = _mask((2, 48, 80), 0, slice(0, 24))  # sample 1: empty mask -> NaN
    chance = iou_chance(half, 40, bbox=True)
    assert chance[0].item() == pytest.approx(0.5) and math.isnan(chance[1].item())
    assert iou_chance(half[:1], 40).item() == pytest.approx(0.2 / 0.7)  # no box: E∩ = 0.2 N, E∪ = 0.7 N
    assert iou_chance(_mask((1, 16, 20, 24), 0, slice(0, 2)), 5, bbox=True).item() == pytest.approx(0.125)


@pytest.mark.parametrize("metric", [IoUTop5(bbox=True), IoUTop20(bbox=True), IoUTop40(bbox=True)],
                         ids=lambda m: m.name)
def test_iou_bbox_chance_matches_random_maps(make_ctx, linear_logit, metric):
    sal = torch.rand(500, 48, 80, generator=torch.Generator().manual_seed(0))  # 500 seeded random maps
    mask = _mask((500, 48, 80), slice(None), slice(12, 36), slice(20, 52))  # a 24 x 32 blob, 20 % of the image
    ctx = make_ctx(linear_logit(torch.ones(1, 1, 48, 80)), torch.ones(500, 1, 48, 80), sal, masks={"lesion": mask})
    out = metric(ctx)
    assert out["chance"][0].item() == pytest.approx(0.2)
    # the no-box formula said 0.111 (k = 20 %) and 0.154 (k = 40 %); random maps score 0.2
    assert out["value"].mean().item() == pytest.approx(out["chance"][0].item(), abs=0.02)


def test_iou_classes_report_chance(make_ctx, linear_logit):
    sal = torch.rand(300, 10, 10, generator=torch.Generator().manual_seed(0))  # the random control
    mask = _mask((300, 10, 10), slice(None), slice(2, 6), slice(2, 7))  # 20 features
    ctx = make_ctx(linear_logit(torch.ones(1, 1, 10, 10)), torch.ones(300, 1, 10, 10), sal, masks={"lesion": mask})
    for metric in (IoUTop10(), IoUTop20(), IoUTop40()):
        out = metric(ctx)
        # the random control lands near the reported chance level
        assert out["value"].mean().item() == pytest.approx(out["chance"][0].item(), abs=0.02)


def test_auprc_hand():
    # scores 0.9 (+), 0.8 (-), 0.7 (+), 0.1 (-): AP = 1/2 * 1 + 1/2 * 2/3
    sal = torch.tensor([[[0.9, 0.8], [0.7, 0.1]]])
    mask = torch.tensor([[[True, False], [True, False]]])
    assert auprc(sal, mask).item() == pytest.approx(0.5 + 1 / 3)
    # ties enter together: one threshold, precision = prevalence
    assert auprc(torch.ones(1, 2, 2), mask).item() == pytest.approx(0.5)
    assert math.isnan(auprc(sal, torch.zeros_like(mask)).item())


def test_auprc_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    gen = torch.Generator().manual_seed(0)
    sal = torch.randint(0, 6, (5, 9, 9), generator=gen).float()  # many ties on purpose
    sal[0] = torch.rand(9, 9, generator=gen)
    mask = torch.rand(5, 9, 9, generator=gen) < 0.3
    ours = auprc(sal, mask)
    ref = [metrics.average_precision_score(m.flatten().numpy(), s.flatten().numpy()) for s, m in zip(sal, mask)]
    assert np.allclose(ours.numpy(), ref, atol=1e-6)


def test_auprc_chance_is_the_expected_ap_of_a_random_order(make_ctx, linear_logit):
    """Not the prevalence (a held-out review: 15-27 % below the random control on small lesions). Exact
    on tiny images: the mean AP over every placement of the P mask features among the N ranks."""
    import itertools

    from faithbench.metrics.functional import auprc_chance

    for n, p in ((5, 1), (5, 2), (6, 3), (7, 7), (8, 5)):
        aps = []
        for inside in itertools.combinations(range(n), p):
            mask = torch.zeros(1, n, dtype=torch.bool)
            mask[0, list(inside)] = True
            aps.append(auprc(-torch.arange(n, dtype=torch.float32)[None], mask).item())  # rank k = feature k
        mask = torch.zeros(1, n, dtype=torch.bool)
        mask[0, :p] = True
        assert auprc_chance(mask).item() == pytest.approx(float(np.mean(aps)), rel=1e-6)
        assert auprc_chance(mask).item() >= p / n
    assert math.isnan(auprc_chance(torch.zeros(1, 3, 3, dtype=torch.bool)).item())
    mask = _mask((2, 4, 4), slice(None), 0)
    ctx = make_ctx(linear_logit(torch.ones(1, 1, 4, 4)), torch.ones(2, 1, 4, 4), torch.rand(2, 4, 4),
                   masks={"lesion": mask})
    harmonic = sum(1 / k for k in range(1, 17))
    assert AUPRC()(ctx)["chance"].tolist() == pytest.approx([(harmonic + 3 / 15 * (16 - harmonic)) / 16] * 2)
