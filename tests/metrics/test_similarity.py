import numpy as np
import pytest
import torch

from faithbench.metrics.functional import (hog_pearson, minmax, rankdata, similarity, spearman, spearman_abs,
                                          spearman_abs_matrix, ssim, ssim_matrix)


def test_rankdata_matches_scipy_average():
    stats = pytest.importorskip("scipy.stats")
    v = torch.tensor([[3.0, 1.0, 3.0, 2.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    assert rankdata(v).tolist() == [stats.rankdata(r).tolist() for r in v.numpy()]


def test_spearman_hand_and_scipy():
    stats = pytest.importorskip("scipy.stats")
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0]])
    assert spearman(a, b).tolist() == pytest.approx([1.0, -1.0])
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 5, (3, 50), generator=gen).float(), torch.rand(3, 50, generator=gen)
    ref = [stats.spearmanr(p, q).statistic for p, q in zip(x.numpy(), y.numpy())]
    assert spearman(x, y).numpy() == pytest.approx(np.array(ref), abs=1e-10)
    # valid entries only; < min_count valid -> NaN
    valid = torch.tensor([[True, True, True, False], [True, True, False, False]])
    b2 = b.clone()
    b2[0, 3] = -100.0  # ignored
    out = spearman(a, b2, valid=valid, min_count=3)
    assert out[0].item() == pytest.approx(1.0) and torch.isnan(out[1])


def test_spearman_abs_constant_convention():
    a = torch.rand(3, 4, 4)
    const = torch.zeros(3, 4, 4)
    assert spearman_abs(a, -a).tolist() == pytest.approx([1.0] * 3)  # |.| first
    assert spearman_abs(a, const).tolist() == [0.0] * 3
    assert spearman_abs(const, const).tolist() == [1.0] * 3


@pytest.mark.parametrize("shape", [(2, 24, 20), (2, 12, 13, 14)])
def test_ssim_matches_skimage(shape):
    metrics = pytest.importorskip("skimage.metrics")
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(shape, generator=gen)
    b = a + 0.3 * torch.rand(shape, generator=gen)
    ours = ssim(a, b)
    na, nb = minmax(a).numpy(), minmax(b).numpy()
    ref = [metrics.structural_similarity(p, q, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False) for p, q in zip(na, nb)]
    assert ours.numpy() == pytest.approx(np.array(ref), abs=1e-5)
    assert ssim(a, a).tolist() == pytest.approx([1.0, 1.0])


def test_hog_pearson_2d_3d():
    pytest.importorskip("skimage.feature")
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(2, 16, 16, generator=gen)
    assert hog_pearson(a, a * 3 + 1).tolist() == pytest.approx([1.0, 1.0])  # min-max invariant
    b = torch.rand(2, 16, 16, generator=gen)
    assert (hog_pearson(a, b) < 0.5).all()
    v = torch.rand(1, 3, 16, 16, generator=gen)
    assert hog_pearson(v, v).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 16 x 16"):
        hog_pearson(torch.rand(1, 8, 8), torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="unknown similarity"):
        similarity(a, b, "pearson")


@pytest.mark.parametrize("name", ["spearman_abs", "ssim", "hog_pearson"])
def test_a_non_finite_map_has_no_similarity(name):
    """A held-out review: an all-NaN re-explanation scored spearman_abs -0.002 and hog_pearson 0.0, the best
    value of a randomisation check, and one NaN pixel still 0.995."""
    from faithbench.metrics.functional.similarity import similarity

    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(4, 16, 16, generator=gen), torch.rand(4, 16, 16, generator=gen)
    clean = similarity(a, b, name)
    b[1] = float("nan")
    b[2, 3, 4] = float("inf")
    a[3, 0, 0] = float("nan")
    out = similarity(a, b, name)
    assert torch.isnan(out[1:]).all() and out[0].item() == pytest.approx(clean[0].item())


@pytest.mark.parametrize("shape", [(9, 9), (16, 15), (12, 11, 13)])
def test_matrices_equal_every_pair(shape):
    """spearman_abs_matrix / ssim_matrix (the repeatability baseline) equal the pairwise functions on every
    (i, j), constant maps included (two constant: ρ 1; constant against varying: 0), and SciPy's ρ."""
    from scipy.stats import spearmanr

    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, *shape, generator=gen), torch.randn(5, *shape, generator=gen)
    a[1], b[2], b[4] = 0.0, 0.0, torch.round(b[4] * 2)  # two constant maps, one with ties
    rho, structure = spearman_abs_matrix(a, b), ssim_matrix(a, b)
    assert rho.shape == structure.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            pair = (a[i:i + 1], b[j:j + 1])
            assert float(rho[i, j]) == pytest.approx(float(spearman_abs(*pair)[0]), abs=1e-6)
            assert float(structure[i, j]) == pytest.approx(float(ssim(*pair)[0]), abs=1e-6)
    assert rho[1].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert float(rho[0, 4]) == pytest.approx(spearmanr(a[0].abs().ravel(), b[4].abs().ravel()).statistic, abs=1e-9)
    with pytest.raises(ValueError, match="of one spatial shape"):
        ssim_matrix(a, torch.zeros(2, 3, 3))
