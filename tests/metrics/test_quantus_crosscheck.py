"""Cross-checks against Quantus 0.6.0 on identical inputs.

Where the definitions agree the values agree to float precision. Where they differ on purpose
the test shows the difference:
- ties: Quantus ranks by ``np.argsort(-a)`` (numpy's implementation order among equal values:
  index order for a constant map, which favours the top-left corner); we break ties by a seeded
  random permutation (SCIENCE.md);
- PixelFlipping's curve omits the unperturbed point and its AUC is ``np.trapz(dx=1)`` over the
  steps; ours includes f(x) at fraction 0 and integrates over the fraction axis [0, 1];
- RelevanceMassAccuracy sums signed saliency; ours counts positive saliency only (Arras et al.
  2022 define it on positive relevance; a negative value inside the mask is not "mass").
"""

import numpy as np
import pytest
import torch

quantus = pytest.importorskip("quantus")

from faithbench.metrics.functional import (auc, deletion_curve, feature_ranks, perturbation_curve,  # noqa: E402
                                           pointing_game, relevance_mass, relevance_rank)


@pytest.fixture
def setup(tiny_cnn):
    torch.manual_seed(0)
    model = tiny_cnn(classes=3).eval()
    x = torch.rand(3, 1, 8, 8)
    sal = torch.rand(3, 8, 8)  # continuous: no ties
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, sal, y


def _pixel_flipping(model, x, sal, y, **kw):
    metric = quantus.PixelFlipping(features_in_step=4, perturb_baseline=0.0, disable_warnings=True, **kw)
    return np.array(metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=sal[:, None].numpy(),
                           device="cpu"))


def test_deletion_curve_equals_pixel_flipping(setup):
    model, x, sal, y = setup
    ours, fractions = deletion_curve(model, x, y, sal, steps=16, baseline="zero", score="prob")
    theirs = _pixel_flipping(model, x, sal, y)
    assert theirs.shape == (3, 16)
    assert np.allclose(ours[:, 1:].numpy(), theirs, atol=1e-6)  # same images, same softmax scores
    # the AUC conventions differ: Quantus' return_auc_per_sample is np.trapz(dx=1) over steps 1..n
    # (np.trapz is gone in numpy >= 2.4, so Quantus 0.6.0 cannot compute it here); ours integrates
    # over the fraction axis [0, 1] starting from f(x)
    assert np.allclose(auc(ours, fractions).numpy(), np.trapezoid(ours.numpy(), dx=1 / 16, axis=1), atol=1e-6)
    assert not np.allclose(auc(ours, fractions).numpy(), np.trapezoid(theirs, dx=1, axis=1), atol=1e-3)


def test_pixel_flipping_ties_by_index_order(setup):
    model, x, _, y = setup
    tied = torch.full((3, 8, 8), 0.5)  # two tied groups (Quantus refuses uniform maps)
    tied[:, 4:] = 1.0
    theirs = _pixel_flipping(model, x, tied, y)
    # Quantus' order among ties is whatever np.argsort(-a) returns (an implementation order:
    # index order for a constant map, not even that here); with that order our curve is Quantus'
    numpy_order = torch.from_numpy(np.argsort(-tied.flatten(1).numpy(), axis=1))
    ranks = torch.argsort(numpy_order, dim=1).reshape(3, 8, 8)
    by_numpy, _ = perturbation_curve(model, x, y, ranks, torch.zeros_like(x), steps=16, insertion=False)
    assert np.allclose(by_numpy[:, 1:].numpy(), theirs, atol=1e-6)
    ours, _ = deletion_curve(model, x, y, tied, steps=16, baseline="zero")
    assert not np.allclose(ours[:, 1:].numpy(), theirs, atol=1e-4)  # seeded permutation, not the corner


def _masks():
    gen = torch.Generator().manual_seed(1)
    mask = torch.zeros(4, 8, 8, dtype=torch.bool)
    mask[:, 2:5, 3:7] = True
    mask[3] = torch.rand(8, 8, generator=gen) < 0.3
    return mask


def _localisation(metric, sal, mask):
    x = np.zeros((len(sal), 1, *sal.shape[1:]), dtype=np.float32)
    return np.array(metric(model=None, x_batch=x, y_batch=np.zeros(len(sal), dtype=int),
                           a_batch=sal[:, None].numpy(), s_batch=mask[:, None].numpy().astype(np.float32)),
                    dtype=float)


def test_pointing_game_equals_quantus():
    mask = _masks()
    sal = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(2))
    sal[0, 3, 4] = 2.0  # max inside
    sal[1, 7, 7] = 2.0  # max outside
    theirs = _localisation(quantus.PointingGame(disable_warnings=True), sal, mask)
    assert np.array_equal(pointing_game(sal, mask).numpy(), theirs)
    # ties: Quantus hits if ANY maximum is in the mask; we draw one maximum (seeded)
    two = torch.full((1, 8, 8), 0.5)
    two[0, 3, 4] = two[0, 0, 0] = 1.0  # two maxima: one inside, one outside
    assert _localisation(quantus.PointingGame(disable_warnings=True), two, mask[:1])[0] == 1.0
    draws = [pointing_game(two, mask[:1], generator=torch.Generator().manual_seed(s)).item() for s in range(100)]
    assert 0.3 < np.mean(draws) < 0.7


def test_relevance_mass_equals_quantus_on_nonnegative():
    mask = _masks()
    sal = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(3))
    theirs = _localisation(quantus.RelevanceMassAccuracy(disable_warnings=True), sal, mask)
    assert np.allclose(relevance_mass(sal, mask).numpy(), theirs, atol=1e-6)
    # signed saliency: Quantus' ratio of signed sums vs ours of positive parts
    signed = sal - 0.5
    theirs_signed = _localisation(quantus.RelevanceMassAccuracy(disable_warnings=True, normalise=False), signed, mask)
    ours_signed = relevance_mass(signed, mask).numpy()
    expected = [(s.clamp(min=0) * m).sum().item() / s.clamp(min=0).sum().item() for s, m in zip(signed, mask)]
    assert np.allclose(ours_signed, expected, atol=1e-6)
    assert not np.allclose(ours_signed, theirs_signed, atol=1e-3)


def test_relevance_rank_equals_quantus():
    mask = _masks()
    sal = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(4))
    theirs = _localisation(quantus.RelevanceRankAccuracy(disable_warnings=True), sal, mask)
    assert np.allclose(relevance_rank(sal, mask).numpy(), theirs, atol=1e-12)
    # ties: Quantus takes the tied features in index order; the mask of the top rows then always wins
    top = torch.zeros(1, 8, 8, dtype=torch.bool)
    top[0, :2] = True
    flat = torch.full((1, 8, 8), 0.5)
    flat[0, 7, 7] = 0.1  # (Quantus refuses a uniform map)
    assert _localisation(quantus.RelevanceRankAccuracy(disable_warnings=True), flat, top)[0] == 1.0
    ours = np.mean([relevance_rank(flat, top, generator=torch.Generator().manual_seed(s)).item() for s in range(50)])
    assert 0.15 < ours < 0.35  # ~ the area fraction 16/63


def test_index_order_ranks_reproduce_quantus_order():
    # our ranking with distinct values is exactly argsort(-a): the shared basis of the checks above
    sal = torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(5))
    ranks = feature_ranks(sal, generator=torch.Generator().manual_seed(0)).flatten(1)
    order = np.argsort(-sal.flatten(1).numpy(), axis=1)
    assert np.array_equal(ranks.argsort(1).numpy(), order)


def test_morf_aopc_equals_region_perturbation(setup):
    from faithbench.metrics.functional import aopc

    model, x, sal, y = setup
    metric = quantus.RegionPerturbation(patch_size=2, regions_evaluation=10, order="morf", perturb_baseline=0.0,
                                        disable_warnings=True)
    theirs = np.array(metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=sal[:, None].numpy(),
                             device="cpu"))  # f(x) - f(x^(k)), k = 1..10
    ours = aopc(model, x, y, sal, order="morf", steps=10, patch=2, baseline="zero", score="prob")
    # Samek's AOPC averages over k = 0..L, and the k = 0 term is 0
    assert np.allclose(ours.numpy(), theirs.sum(axis=1) / 11, atol=1e-6)
