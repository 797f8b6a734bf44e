"""agreement.csv's Kendall τ p: exact over the orderings up to 8 explainers, ties or not (a held-out review, F2)."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faithbench.stats.pvalues import kendall_tau
from faithbench.stats.tables import agreement_table


def _board(ranks: dict) -> pd.DataFrame:
    return pd.DataFrame([dict(dataset="d", model="m", metric=metric, explainer=f"e{i}", rank=float(r))
                         for metric, column in ranks.items() for i, r in enumerate(column)])


def test_a_tie_gets_the_exact_p_not_the_normal_approximation():
    row = agreement_table(_board({"x": [1, 1, 3, 4], "y": [1, 2, 3, 4]})).iloc[0]
    assert row["tau"] == pytest.approx(0.9128709, abs=1e-6)
    assert row["p"] == pytest.approx(4 / 24)  # scipy's asymptotic p: 0.071, below a perfect ranking's 1/12
    perfect = agreement_table(_board({"x": [1, 2, 3, 4], "y": [1, 2, 3, 4]})).iloc[0]
    assert perfect["p"] == pytest.approx(1 / 12) and row["p"] > perfect["p"]


def test_untied_rankings_equal_scipys_exact_p():
    rng = np.random.default_rng(0)
    for n in range(3, 9):
        for _ in range(5):
            a, b = rng.permutation(n) + 1.0, rng.permutation(n) + 1.0
            tau, p = kendall_tau(a, b)
            exact = stats.kendalltau(a, b, method="exact")
            assert tau == pytest.approx(exact.statistic) and p == pytest.approx(exact.pvalue, abs=1e-12)


def test_ties_match_a_brute_force_enumeration():
    rng = np.random.default_rng(1)
    for n in (5, 6):
        for _ in range(6):
            a, b = rng.integers(0, 3, n).astype(float), rng.integers(0, 4, n).astype(float)
            if np.ptp(a) == 0 or np.ptp(b) == 0:
                continue
            observed = abs(stats.kendalltau(a, b).statistic)
            shuffled = [stats.kendalltau(a, b[list(o)]).statistic for o in itertools.permutations(range(n))]
            assert kendall_tau(a, b)[1] == pytest.approx(np.mean(np.abs(shuffled) >= observed - 1e-12), abs=1e-12)


def test_above_eight_scipys_p_and_constant_rankings_undefined():
    a, b = np.arange(10.0), np.array([0, 2, 1, 3, 4, 6, 5, 7, 9, 8.0])
    assert kendall_tau(a, b)[1] == pytest.approx(stats.kendalltau(a, b).pvalue)
    assert np.isnan(kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])).all()
