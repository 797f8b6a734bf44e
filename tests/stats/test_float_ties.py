"""Wilcoxon and rank-biserial compare differences up to float rounding (a held-out review, F1)."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faithbench.stats import rank_biserial, wilcoxon_pair
from faithbench.stats.tables import leaderboard, pairwise_table

# a 0/1 metric under 3 seeds: a sample's hits per seed; explainer vs control (the review's case)
HITS_A = [[1, 1, 1]] * 5 + [[0, 0, 0]] * 3 + [[1, 1, 1]] * 2
HITS_B = [[1, 1, 0]] * 5 + [[1, 0, 0]] * 3 + [[0, 0, 0]] * 2


def _means(hits) -> np.ndarray:
    return pd.DataFrame(np.array(hits, float)).mean(axis=1).to_numpy()


def _enumerated(d: np.ndarray) -> tuple[float, float, float]:
    """(R+, P(R+ >= observed), P(R+ <= observed)) over all 2^n sign flips of the midranks of |d|, d exact."""
    d = d[d != 0]
    ranks = stats.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    sums = np.array([ranks[list(s)].sum() for k in range(d.size + 1) for s in itertools.combinations(range(d.size), k)])
    return observed, float(np.mean(sums >= observed - 1e-9)), float(np.mean(sums <= observed + 1e-9))


def test_seed_means_tie_as_the_exact_thirds():
    a, b = _means(HITS_A), _means(HITS_B)
    assert (a - b)[0] != -(a - b)[5]  # 1 - 2/3 and 1/3 - 0 differ in float: the case needs the tolerance
    statistic, p = wilcoxon_pair(a, b, alternative="greater")
    assert statistic == 41.5 and p == pytest.approx(0.0927734375, abs=1e-12)  # 95/1024
    statistic, p = wilcoxon_pair(a, b)
    assert statistic == 13.5 and p == pytest.approx(0.185546875, abs=1e-12)
    assert rank_biserial(a, b) == pytest.approx(28 / 55, abs=1e-12)  # (41.5 - 13.5) / 55 = 0.509


def test_seed_means_match_a_brute_force_enumeration_of_the_hit_counts():
    rng = np.random.default_rng(3)
    for _ in range(20):
        hits_a, hits_b = rng.random((9, 3)) < 0.6, rng.random((9, 3)) < 0.4
        counts = hits_a.sum(1).astype(float) - hits_b.sum(1)  # exactly 3x the differences of the means
        if not np.any(counts):
            continue
        r_plus, upper, lower = _enumerated(counts)
        statistic, p = wilcoxon_pair(_means(hits_a), _means(hits_b), alternative="greater")
        assert statistic == pytest.approx(r_plus) and p == pytest.approx(upper, abs=1e-12)
        assert wilcoxon_pair(_means(hits_a), _means(hits_b), alternative="less")[1] == pytest.approx(lower, abs=1e-12)


def test_a_rounding_zero_is_dropped():
    a, b = np.array([2 / 3, 1, 1, 1, 1]), np.array([1 - 1 / 3, 0, 0, 0, 0])
    assert a[0] - b[0] != 0  # -1.1e-16
    assert wilcoxon_pair(a, b) == (0.0, 0.125)  # four positive differences, none negative
    assert rank_biserial(a, b) == 1.0
    assert wilcoxon_pair(a[:1], b[:1]) == (0.0, 1.0) and rank_biserial(a[:1], b[:1]) == 0.0


def test_differences_that_differ_are_still_ranked_apart():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0 + 1e-9])  # |d| 1 and 1 + 1e-9: not rounding, ranks 1 and 2
    assert rank_biserial(a, b) == pytest.approx(-1 / 3)
    assert rank_biserial(a, np.array([0.0, 1.0 + 1e-13])) == 0.0  # within 1e-12 of each other: tied
    statistic, p = wilcoxon_pair(np.array([1e-9, -2e-9, 3e-9]), np.zeros(3))
    assert statistic == 2.0 and p == pytest.approx(0.75)  # tiny values are not zeros of their own scale


def _long(hits_by_explainer: dict) -> pd.DataFrame:
    rows = [dict(dataset="d", model="m", explainer=name, metric="pointing_game", seed=s, sample_id=i, value=float(v),
                 higher_is_better=True, category="localization", chance=0.1)
            for name, hits in hits_by_explainer.items() for i, row in enumerate(hits) for s, v in enumerate(row)]
    return pd.DataFrame(rows)


def test_leaderboard_and_pairwise_use_the_ties():
    results = _long({"gradcam": HITS_A, "random": HITS_B})
    row = leaderboard(results).set_index("explainer").loc["gradcam"]
    assert row["p_vs_random"] == pytest.approx(0.0927734375, abs=1e-9)
    assert not row["beats_random"]  # was True at p 0.0127
    pair = pairwise_table(results).iloc[0]
    assert pair["statistic"] == 13.5 and pair["p"] == pytest.approx(0.185546875, abs=1e-9)
    assert pair["effect_size"] == pytest.approx(28 / 55, abs=1e-9)


def test_a_pair_of_large_values_widens_no_other_pairs_tolerance():
    """A diff review: one pair near 1e4 tied another pair's |d| 0.5 with a third's 0.500000005 (p 0.844 -> 0.719);
    two differences tie only within the smaller of their pairs' scales."""
    a = np.array([10000.5, 0.2, 0.3, 0.9, 0.05, 0.7])
    b = np.array([10000.0, 0.7 + 5e-9, 0.2, 0.5, 0.6, 0.1])
    assert wilcoxon_pair(a, b) == (9.0, 0.84375)  # untied ranks: R- = 5 + 4 of the 2^6 flips
    assert rank_biserial(a, b) == pytest.approx(3 / 21)
