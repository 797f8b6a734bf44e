"""Repeatability/reproducibility of saliency maps (Arun et al. 2021): SSIM against scikit-image,
known answers for identical and unrelated maps, sample alignment, the random-pair baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as sps
from skimage.metrics import structural_similarity

from faithbench.stats.paired import wilcoxon_pair
from faithbench.stats.repeatability import (REPEATABILITY_COLUMNS, map_similarity, partner_baseline,
                                          repeatability_table)


def _blobs(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """n maps, each a Gaussian blob at a random centre (different samples look different)."""
    g = torch.Generator().manual_seed(seed)
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in shape], indexing="ij")
    maps = []
    for _ in range(n):
        centre = [float(torch.randint(0, s, (1,), generator=g)) for s in shape]
        d2 = sum((grid - c) ** 2 for grid, c in zip(grids, centre))
        maps.append(torch.exp(-d2 / 8.0))
    return torch.stack(maps)


@pytest.mark.parametrize("shape", [(16, 16), (12, 12, 12)])
def test_ssim_matches_skimage(shape):
    g = torch.Generator().manual_seed(1)
    a = torch.rand((2, *shape), generator=g, dtype=torch.float64)
    b = a + 0.3 * torch.rand((2, *shape), generator=g, dtype=torch.float64)
    ours = map_similarity(a, b, "ssim", postprocess="none")
    for i in range(2):
        na = (a[i] - a[i].min()) / (a[i].max() - a[i].min())
        nb = (b[i] - b[i].min()) / (b[i].max() - b[i].min())
        ref = structural_similarity(na.numpy(), nb.numpy(), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0)
        assert ours[i] == pytest.approx(ref, abs=1e-6)


def test_spearman_matches_scipy():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(3, 8, 8, generator=g), torch.randn(3, 8, 8, generator=g)
    ours = map_similarity(a, b, "spearman")
    for i in range(3):
        ref = sps.spearmanr(a[i].abs().ravel().numpy(), b[i].abs().ravel().numpy()).statistic
        assert ours[i] == pytest.approx(ref, abs=1e-6)


def test_baseline_pairs_maps_of_the_same_class():
    """Two seeds whose maps share only their class template agree no better than two random maps
    of one class: not repeatable (the review's case; pairs across classes gave p = 0.0004)."""
    n, side = 24, 16
    targets = [i % 2 for i in range(n)]
    template = torch.zeros(2, side, side)
    template[0, :, : side // 2] = 1.0
    template[1, :, side // 2:] = 1.0

    def maps(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.stack([template[t] + 0.8 * torch.rand(side, side, generator=g) for t in targets])

    ids = [f"s{i:02d}" for i in range(n)]
    a, b = maps(0), maps(1)
    table = repeatability_table({("d", "m", "gradcam", 0): (ids, targets, a),
                                 ("d", "m", "gradcam", 1): (ids, targets, b)}, metrics=("spearman",))
    row = table.iloc[0]
    # the reference: each sample against every other sample of its class, under the other seed, both ways round
    sims = np.array([sps.spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(n)])
    base = np.array([np.mean([sps.spearmanr(x[i].ravel(), y[j].ravel()).statistic for x, y in ((a, b), (b, a))
                              for j in range(n) if j != i and targets[j] == targets[i]]) for i in range(n)])
    assert row["mean"] == pytest.approx(sims.mean(), abs=1e-6)
    assert row["baseline_mean"] == pytest.approx(base.mean(), abs=1e-6)
    assert row["baseline_mean"] > 0.5  # pairs across classes averaged about 0
    assert row["p"] == pytest.approx(wilcoxon_pair(sims, base, alternative="greater")[1], abs=1e-9)
    assert row["p"] > 0.05


def test_a_fixed_model_has_no_repeatability_rows_but_keeps_its_reproducibility_rows():
    """A model that no seed retrains (a weights file) holds one checkpoint under every seed: its seed
    pairs agree trivially (a review: 12 rows of 1.000, p < 0.05), so they get no row; the trained
    model's seed pair and the pair of models stay."""
    maps = _blobs(12, (16, 16), seed=0)
    ids = [f"s{i}" for i in range(12)]
    entries = {(("d", model, "e", seed)): (ids, maps.clone()) for model in ("fixed", "trained") for seed in (0, 1)}
    table = repeatability_table(entries, metrics=("spearman",), fixed_models={"fixed"})
    assert table[["kind", "model", "a", "b"]].values.tolist() == [["repeatability", "trained", "0", "1"],
                                                                 ["reproducibility", "", "fixed", "trained"]]
    assert table["mean"].tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(TypeError, match="got the string 'fixed'"):
        repeatability_table(entries, fixed_models="fixed")


def test_identical_seeds_are_perfectly_repeatable():
    maps = _blobs(12, (16, 16), seed=0)
    ids = [f"s{i}" for i in range(12)]
    table = repeatability_table({("d", "m", "e", 0): (ids, maps), ("d", "m", "e", 1): (ids, maps.clone())})
    assert list(table.columns) == REPEATABILITY_COLUMNS
    assert set(table["kind"]) == {"repeatability"}
    assert table[["a", "b"]].values.tolist() == [["0", "1"], ["0", "1"]]
    for row in table.itertuples():
        assert row.mean == pytest.approx(1.0, abs=1e-6)
        assert row.ci_low == pytest.approx(1.0, abs=1e-6)
        assert row.n == 12
        assert row.baseline_mean < 0.9  # maps of different samples differ
        assert row.p < 0.01  # 12 positive differences: exact one-sided p = 2^-12


def test_alignment_by_sample_id_and_reproducibility():
    maps = _blobs(8, (12, 12), seed=3)
    ids = [f"s{i}" for i in range(8)]
    order = [7, 6, 5, 4, 3, 2, 1, 0]
    shuffled = (["x"] + [ids[i] for i in order], torch.cat([torch.zeros(1, 12, 12), maps[order]]))
    table = repeatability_table({
        ("d", "cnn", "e", 0): (ids, maps),
        ("d", "vit", "e", 0): shuffled,  # same maps in another order, plus an unmatched id
        ("d", "vit", "e", 5): (ids, maps),  # seed 5 has no cnn partner: not in reproducibility
    }, metrics=("spearman",))
    repro = table[table["kind"] == "reproducibility"]
    assert repro[["model", "a", "b"]].values.tolist() == [["", "cnn", "vit"]]
    assert repro["mean"].iloc[0] == pytest.approx(1.0)
    assert repro["n"].iloc[0] == 8
    rep = table[table["kind"] == "repeatability"]
    assert rep[["model", "a", "b"]].values.tolist() == [["vit", "0", "5"]]
    assert rep["n"].iloc[0] == 8


def test_unrelated_maps_are_not_repeatable():
    a = _blobs(16, (12, 12), seed=10)
    b = _blobs(16, (12, 12), seed=11)  # independent blobs: no better than random pairs
    ids = [str(i) for i in range(16)]
    table = repeatability_table({("d", "m", "e", 0): (ids, a), ("d", "m", "e", 1): (ids, b)})
    for row in table.itertuples():
        assert row.p > 0.05
        assert abs(row.mean - row.baseline_mean) < 0.25


def test_bad_input_and_empty():
    assert repeatability_table({("d", "m", "e", 0): (["a"], torch.zeros(1, 4, 4))}).empty
    with pytest.raises(ValueError, match="dataset, model, explainer, seed"):
        repeatability_table({("d", "m"): (["a"], torch.zeros(1, 4, 4))})
    with pytest.raises(ValueError, match="one sample id per map"):
        repeatability_table({("d", "m", "e", 0): (["a"], torch.zeros(2, 4, 4)),
                             ("d", "m", "e", 1): (["a"], torch.zeros(1, 4, 4))})


def test_maps_of_different_classes_are_not_compared_and_counted():
    """Sample s3 is explained for class 1 under seed 1 (the model predicted otherwise): it is left
    out and counted; the other 7 samples have identical maps."""
    maps = _blobs(8, (12, 12), seed=4)
    ids = [f"s{i}" for i in range(8)]
    other = maps.clone()
    other[3] = torch.rand(12, 12, generator=torch.Generator().manual_seed(0))
    targets = [0] * 8
    moved = [0, 0, 0, 1, 0, 0, 0, 0]
    table = repeatability_table({("d", "m", "e", 0): (ids, targets, maps), ("d", "m", "e", 1): (ids, moved, other),
                                 ("d", "v", "e", 0): (ids, moved, other), ("d", "v", "e", 1): (ids, targets, maps)},
                                metrics=("spearman",))
    rep = table[table["kind"] == "repeatability"].set_index("model")
    assert rep["n"].tolist() == [7, 7] and rep["n_target_differs"].tolist() == [1, 1]
    assert rep["mean"].tolist() == pytest.approx([1.0, 1.0])
    repro = table[table["kind"] == "reproducibility"].iloc[0]
    # seeds 0 and 1: a sample's values averaged, so 7 samples; one left out under each seed
    assert (repro["n"], repro["n_target_differs"]) == (7, 2)


def test_a_pair_with_every_target_different_is_still_reported():
    maps = _blobs(4, (8, 8), seed=5)
    ids = ["a", "b", "c", "d"]
    table = repeatability_table({("d", "m", "e", 0): (ids, [0] * 4, maps), ("d", "m", "e", 1): (ids, [1] * 4, maps)})
    assert table["metric"].tolist() == ["spearman", "ssim"]
    assert (table["n"] == 0).all() and (table["n_target_differs"] == 4).all() and table["mean"].isna().all()


def test_maps_without_targets_are_matched_by_id():
    maps = _blobs(4, (8, 8), seed=6)
    ids = ["a", "b", "c", "d"]
    table = repeatability_table({("d", "m", "e", 0): (ids, maps), ("d", "m", "e", 1): (ids[::-1], maps.flip(0))},
                                metrics=("ssim",))
    assert table[["n", "n_target_differs"]].values.tolist() == [[4, 0]] and table["mean"].iloc[0] == pytest.approx(1)


def test_reproducibility_averages_a_samples_seeds():
    """Two models share seeds 0 and 1, which explain the same 8 images: each sample is one
    observation, its similarity the mean over the two seeds (n 8, not 16), and the test runs on
    those means."""
    from faithbench.stats.paired import wilcoxon_pair

    ids = [f"s{i}" for i in range(8)]
    a0, a1, b1 = (_blobs(8, (12, 12), seed=s) for s in (20, 21, 22))
    table = repeatability_table({("d", "cnn", "e", 0): (ids, a0), ("d", "vit", "e", 0): (ids, a0),
                                 ("d", "cnn", "e", 1): (ids, a1), ("d", "vit", "e", 1): (ids, b1)},
                                metrics=("spearman",))
    repro = table[table["kind"] == "reproducibility"].iloc[0]
    per_seed = [map_similarity(a0, a0, "spearman", "abs"), map_similarity(a1, b1, "spearman", "abs")]
    means = (per_seed[0] + per_seed[1]) / 2
    baseline = (partner_baseline(a0, a0, [0] * 8, "spearman") + partner_baseline(a1, b1, [0] * 8, "spearman")) / 2
    assert repro["n"] == 8 and repro["mean"] == pytest.approx(means.mean())
    assert repro["baseline_mean"] == pytest.approx(baseline.mean())
    assert repro["p"] == pytest.approx(wilcoxon_pair(means, baseline, alternative="greater")[1])


def test_a_map_with_nan_is_undefined_under_both_similarities():
    """SSIM gave NaN for a map with NaN while Spearman ranked the NaNs (0.054 for an all-NaN map), so the two
    rows of one pair counted different n (a held-out review)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 8, 8, generator=gen), torch.rand(3, 8, 8, generator=gen)
    a[1] = float("nan")
    b[2, 0, 0] = float("inf")
    for metric in ("ssim", "spearman"):
        values = map_similarity(a, b, metric)
        assert np.isfinite(values[0]) and np.isnan(values[1:]).all(), metric


def test_reproducibility_counts_a_sample_once_when_its_class_changes_between_seeds():
    """Single-label data: both models explain class 0 of 6 images under seed 0 and class 1 under
    seed 1 (two checkpoints that flip together under ``target: predicted``). Each image is one
    observation (its two seeds' similarities averaged): n 6 and the exact p of 6 pairs, 1/64, not
    n 12 and 1/4096 (a held-out review)."""
    ids = [f"s{i}" for i in range(6)]
    base = _blobs(6, (12, 12), seed=30)
    noise = [0.3 * torch.rand(6, 12, 12, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
             for s in range(4)]
    maps = {("d", "m1", "e", 0): (ids, [0] * 6, base + noise[0]), ("d", "m2", "e", 0): (ids, [0] * 6, base + noise[1]),
            ("d", "m1", "e", 1): (ids, [1] * 6, base + noise[2]), ("d", "m2", "e", 1): (ids, [1] * 6, base + noise[3])}
    repro = repeatability_table(maps, metrics=("spearman",)).query("kind == 'reproducibility'").iloc[0]
    means = (map_similarity(base + noise[0], base + noise[1], "spearman")
             + map_similarity(base + noise[2], base + noise[3], "spearman")) / 2
    assert (repro["n"], repro["n_target_differs"]) == (6, 0)
    assert repro["mean"] == pytest.approx(means.mean())
    assert repro["p"] == pytest.approx(1 / 64)


def test_multilabel_units_are_sample_class_pairs():
    """Multi-label maps hold a sample once per explained class: each (sample, class) is a unit,
    over the shared seeds averaged (3 images x 2 classes: n 6, not 3)."""
    ids, targets = ["a", "a", "b", "b", "c", "c"], [0, 1, 0, 1, 0, 1]
    maps = _blobs(6, (10, 10), seed=31)
    table = repeatability_table({("d", m, "e", s): (ids, targets, maps) for m in ("m1", "m2") for s in (0, 1)},
                                metrics=("ssim",))
    assert table["n"].tolist() == [6, 6, 6] and table["mean"].tolist() == pytest.approx([1.0] * 3)


# the four maps of the known answer (2 x 2 pixels, ranks 1..4): Spearman ρ = 1 − Σd² / 10
# ρ(U, R) −1, ρ(U, V) 0.6, ρ(R, V) −0.6
_U, _R, _V = [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [2.0, 1.0, 4.0, 3.0]


def _known_answer_maps() -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Class 0: units 0, 1, 2 with maps U, U, R under a and U, V, R under b; unit 3 alone in class 1."""
    a = torch.tensor([_U, _U, _R, _V]).reshape(4, 2, 2)
    b = torch.tensor([_U, _V, _R, _V]).reshape(4, 2, 2)
    return a, b, [0, 0, 0, 1]


def test_partner_baseline_known_answer():
    """By hand, s(x, y) = ρ: unit 0 (a U, b U): s(a0,b1) 0.6, s(a0,b2) −1, s(b0,a1) 1, s(b0,a2) −1: −0.1;
    unit 1 (a U, b V): s(a1,b0) 1, s(a1,b2) −1, s(b1,a0) 0.6, s(b1,a2) −0.6: 0; unit 2 (a R, b R):
    −1, −0.6, −1, −1: −0.9; unit 3 alone in its class: NaN."""
    a, b, classes = _known_answer_maps()
    assert partner_baseline(a, b, classes, "spearman").tolist() == pytest.approx([-0.1, 0.0, -0.9, np.nan],
                                                                                nan_ok=True)
    assert partner_baseline(b, a, classes, "spearman").tolist() == pytest.approx([-0.1, 0.0, -0.9, np.nan],
                                                                                nan_ok=True)
    ids = ["s0", "s1", "s2", "s3"]
    row = repeatability_table({("d", "m", "e", 0): (ids, classes, a), ("d", "m", "e", 1): (ids, classes, b)},
                              metrics=("spearman",)).iloc[0]
    assert row["n"] == 4 and row["mean"] == pytest.approx((1 + 0.6 + 1 + 1) / 4)
    assert row["baseline_mean"] == pytest.approx(-1 / 3)  # the lone unit's NaN baseline left out
    # differences 1.1, 0.6, 1.9 (unit 3 has no baseline): all positive, exact one-sided p = 2^-3
    assert row["p"] == pytest.approx(0.125)


def test_partner_baseline_ssim_matches_skimage():
    """Each unit's SSIM baseline equals the mean of scikit-image's SSIM over its 2(k − 1) same-class pairs."""
    g = torch.Generator().manual_seed(7)
    a = torch.rand(7, 14, 14, generator=g, dtype=torch.float64)
    b = 0.5 * a + torch.rand(7, 14, 14, generator=g, dtype=torch.float64)
    classes = [0, 1, 0, 1, 0, 0, 2]

    def sk(x: torch.Tensor, y: torch.Tensor) -> float:
        nx, ny = ((m - m.min()) / (m.max() - m.min()) for m in (x, y))
        return structural_similarity(nx.numpy(), ny.numpy(), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0)

    expected = [np.mean([sk(x[i], y[j]) for x, y in ((a, b), (b, a)) for j in range(7)
                         if j != i and classes[j] == classes[i]]) if classes.count(classes[i]) > 1 else np.nan
                for i in range(7)]
    assert partner_baseline(a, b, classes, "ssim").tolist() == pytest.approx(expected, abs=1e-7, nan_ok=True)


def test_p_depends_on_no_draw():
    """The baseline is exact: the table's ``seed`` (which drew one partner per unit before) and the order of the
    samples leave baseline_mean and p unchanged, and so does swapping the two checkpoints (a held-out review: with
    one drawn partner, a row's p was below 0.05 in 5 % of the draws but 0.0105 in the table)."""
    n, side = 16, 12
    targets = [i % 2 for i in range(n)]
    ids = [f"s{i:02d}" for i in range(n)]
    a = _blobs(n, (side, side), seed=40)
    b = a + 0.6 * torch.rand(n, side, side, generator=torch.Generator().manual_seed(41), dtype=torch.float64)
    maps = {("d", "m", "e", 0): (ids, targets, a), ("d", "m", "e", 1): (ids, targets, b)}
    tables = [repeatability_table(maps, seed=seed) for seed in range(4)]
    order = list(range(n))[::-1]
    shuffled = {key: ([v[0][i] for i in order], [v[1][i] for i in order], v[2][order]) for key, v in maps.items()}
    tables.append(repeatability_table(shuffled))
    tables.append(repeatability_table({("d", "m", "e", 0): maps[("d", "m", "e", 1)],
                                       ("d", "m", "e", 1): maps[("d", "m", "e", 0)]}))
    for table in tables[1:]:
        assert table["p"].tolist() == pytest.approx(tables[0]["p"].tolist(), rel=1e-9)
        assert table["baseline_mean"].tolist() == pytest.approx(tables[0]["baseline_mean"].tolist(), abs=1e-12)
    expected = np.mean([np.mean([map_similarity(x[i:i + 1], y[j:j + 1], "spearman")[0] for x, y in ((a, b), (b, a))
                                 for j in range(n) if j != i and targets[j] == targets[i]]) for i in range(n)])
    spearman = tables[0].set_index("metric").loc["spearman"]
    assert spearman["baseline_mean"] == pytest.approx(expected, abs=1e-6)


def test_duplicate_units_are_refused():
    """Several maps of one (sample id, class) in one stack were merged silently into one unit (n 1; a review)."""
    maps = _blobs(6, (8, 8), seed=8)
    with pytest.raises(ValueError, match=r"once in the maps of \('d', 'm', 'e', 0\), got sample id 's0' with class "
                                         r"0 6 times"):
        repeatability_table({("d", "m", "e", 0): (["s0"] * 6, [0] * 6, maps),
                             ("d", "m", "e", 1): (["s0"] * 6, [0] * 6, maps)})
    with pytest.raises(ValueError, match="got sample id 'b' 2 times"):
        repeatability_table({("d", "m", "e", 0): (["a", "b", "c", "d", "b", "e"], maps),
                             ("d", "m", "e", 1): (["a", "b", "c", "d", "e", "f"], maps)})
    # multi-label: one sample once per class is not a duplicate
    table = repeatability_table({("d", "m", "e", s): (["a", "a", "b", "b", "c", "c"], [0, 1] * 3, maps)
                                 for s in (0, 1)}, metrics=("ssim",))
    assert table["n"].tolist() == [6]
