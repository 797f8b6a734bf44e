import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faithbench.stats import (
    critical_difference,
    friedman,
    holm,
    mean_ranks,
    nemenyi,
    pairwise_wilcoxon,
    rank_biserial,
    versus_control,
    wilcoxon_pair,
)


def test_holm_hand_example():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_is_monotone():
    p = np.array([0.5, 0.2, 0.9, 0.01])
    adjusted = holm(p)
    # sorted: 0.01*4 = 0.04, 0.2*3 = 0.6, 0.5*2 = 1.0, 0.9*1 -> running max 1.0
    np.testing.assert_allclose(adjusted, [1.0, 0.6, 1.0, 0.04])
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)


def test_holm_nan_does_not_count_in_m():
    adjusted = holm([0.01, np.nan, 0.04])
    assert np.isnan(adjusted[1])
    # m = 2: 0.01*2 = 0.02, 0.04*1 -> max(0.02, 0.04) = 0.04
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.04])
    assert holm([]).shape == (0,)
    assert np.isnan(holm([np.nan])).all()


def test_rank_biserial_hand_example():
    # d = a - b = [1, -2, 3, 4, 0]; zero dropped; ranks of |d| = [1, 2, 3, 4]
    # r = ((1 + 3 + 4) - 2) / 10 = 0.6
    a = np.array([2.0, 1.0, 5.0, 8.0, 7.0])
    b = np.array([1.0, 3.0, 2.0, 4.0, 7.0])
    assert rank_biserial(a, b) == pytest.approx(0.6)
    assert rank_biserial(b, a) == pytest.approx(-0.6)


def test_rank_biserial_ties_averaged():
    # d = [1, -1, 2]: |d| ranks [1.5, 1.5, 3]; r = (1.5 + 3 - 1.5) / 6 = 0.5
    assert rank_biserial([1.0, 0.0, 2.0], [0.0, 1.0, 0.0]) == pytest.approx(0.5)


def test_rank_biserial_extremes_and_nan():
    a = np.arange(10.0)
    assert rank_biserial(a + 1, a) == 1.0
    assert rank_biserial(a, a) == 0.0
    # the NaN pair is dropped: remaining d = [1, -2], r = (1 - 2) / 3
    assert rank_biserial([1.0, np.nan, 0.0], [0.0, 5.0, 2.0]) == pytest.approx(-1 / 3)
    assert np.isnan(rank_biserial([np.nan], [1.0]))


def test_wilcoxon_shift_dominance():
    rng = np.random.default_rng(0)
    b = rng.normal(size=30)
    a = b + 1.0 + 0.1 * rng.normal(size=30)
    statistic, p = wilcoxon_pair(a, b)
    expected = stats.wilcoxon(a, b)
    assert p < 0.01
    assert p == pytest.approx(expected.pvalue)
    assert statistic == pytest.approx(expected.statistic)
    _, p_greater = wilcoxon_pair(a, b, alternative="greater")
    _, p_less = wilcoxon_pair(a, b, alternative="less")
    assert p_greater < 0.01
    assert p_less > 0.99


def test_wilcoxon_identical_and_empty():
    a = np.arange(5.0)
    assert wilcoxon_pair(a, a) == (0.0, 1.0)
    statistic, p = wilcoxon_pair([np.nan, 1.0], [0.0, np.nan])
    assert np.isnan(statistic) and np.isnan(p)
    # a single non-zero pair: exact null has two outcomes
    assert wilcoxon_pair([1.0, 2.0], [1.0, 1.0], alternative="greater") == (1.0, 0.5)
    with pytest.raises(ValueError, match="alternative"):
        wilcoxon_pair(a, a, alternative="bigger")


def test_wilcoxon_drops_nan_pairs():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20), rng.normal(size=20)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[3], b_nan[7] = np.nan, np.nan
    keep = np.ones(20, bool)
    keep[[3, 7]] = False
    assert wilcoxon_pair(a_nan, b_nan) == pytest.approx(wilcoxon_pair(a[keep], b[keep]))


def _wide(rng, n=25):
    base = rng.normal(size=n)
    return pd.DataFrame(
        {
            "gradcam": base + 2.0 + 0.1 * rng.normal(size=n),
            "random": base,
            "copy": base.copy(),
        }
    )


def test_pairwise_wilcoxon():
    wide = _wide(np.random.default_rng(2))
    table = pairwise_wilcoxon(wide)
    assert list(table.columns) == [
        "explainer_a", "explainer_b", "statistic", "p", "p_holm", "effect_size", "n",
    ]
    assert list(zip(table.explainer_a, table.explainer_b)) == [
        ("gradcam", "random"), ("gradcam", "copy"), ("random", "copy"),
    ]
    ga = table.iloc[0]
    assert ga.p < 0.01 and ga.effect_size == 1.0 and ga.n == 25
    same = table.iloc[2]
    assert same.p == 1.0 and same.effect_size == 0.0 and same.statistic == 0.0
    np.testing.assert_allclose(table.p_holm, holm(table.p))
    assert ga.p == pytest.approx(stats.wilcoxon(wide.gradcam, wide.random).pvalue)


def test_pairwise_wilcoxon_single_column_is_empty():
    table = pairwise_wilcoxon(pd.DataFrame({"a": [1.0, 2.0]}))
    assert table.empty
    assert list(table.columns) == [
        "explainer_a", "explainer_b", "statistic", "p", "p_holm", "effect_size", "n",
    ]


def test_versus_control_orientation():
    wide = _wide(np.random.default_rng(3))
    up = versus_control(wide, "random", higher_is_better=True).set_index("explainer")
    assert list(up.index) == ["gradcam", "copy"]
    assert up.loc["gradcam", "p"] < 0.01
    assert up.loc["copy", "p"] == 1.0
    assert up.loc["gradcam", "p_holm"] == pytest.approx(min(1.0, 2 * up.loc["gradcam", "p"]))
    assert up.loc["gradcam", "p"] == pytest.approx(
        stats.wilcoxon(wide.gradcam, wide.random, alternative="greater").pvalue
    )
    down = versus_control(wide, "random", higher_is_better=False).set_index("explainer")
    assert down.loc["gradcam", "p"] > 0.99
    assert down.loc["gradcam", "effect_size"] == 1.0  # not oriented: gradcam > random
    with pytest.raises(KeyError, match="control"):
        versus_control(wide, "edge", higher_is_better=True)
    assert versus_control(wide[["random"]], "random", True).empty


def test_friedman_against_scipy():
    rng = np.random.default_rng(4)
    wide = pd.DataFrame(rng.normal(size=(20, 4)), columns=list("abcd"))
    wide["d"] += 1.5
    wide.iloc[5, 1] = np.nan
    statistic, p, n_blocks, k = friedman(wide)
    complete = wide.dropna()
    expected = stats.friedmanchisquare(*complete.to_numpy().T)
    assert (n_blocks, k) == (19, 4)
    assert statistic == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)
    assert p < 0.01


def test_friedman_hand_example():
    # 3 blocks, every block ranks a < b < c: R = [3, 6, 9]
    # chi2 = 12 / (3*3*4) * (9 + 36 + 81) - 3*3*4 = 42 - 36 = 6
    wide = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0], "c": [7.0, 8.0, 9.0]})
    result = friedman(wide)
    assert result.statistic == pytest.approx(6.0)
    assert result.p == pytest.approx(np.exp(-3.0))  # chi2 sf with 2 dof = exp(-x/2)
    assert result.reason == ""


def test_friedman_needs_three_explainers():
    result = friedman(pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 1.0]}))
    assert np.isnan(result.statistic) and np.isnan(result.p)
    assert result.k == 2 and "k >= 3" in result.reason
    tied = friedman(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "c": [1.0, 2.0]}))
    assert tuple(tied) == (0.0, 1.0, 2, 3)


def test_critical_difference_matches_demsar_table():
    # Demšar (2006), Table 5a: q_0.05 and q_0.10 for k = 2..10
    q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    q10 = [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]
    for k, (a, b) in enumerate(zip(q05, q10), start=2):
        factor = np.sqrt(k * (k + 1) / 12.0)  # n = 2 blocks
        assert critical_difference(k, 2) / factor == pytest.approx(a, abs=1e-3)
        assert critical_difference(k, 2, alpha=0.10) / factor == pytest.approx(b, abs=1e-3)
    # Demšar's worked example: k = 4 classifiers, N = 14 data sets -> CD = 1.25
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)
    assert np.isnan(critical_difference(1, 10))
    # one block ranks each explainer once: no critical difference (helper 114 saw cd 6.1 printed for it)
    assert np.isnan(critical_difference(5, 1))


def test_nemenyi_matches_scikit_posthocs_and_cd():
    import scikit_posthocs

    rng = np.random.default_rng(5)
    wide = pd.DataFrame(rng.normal(size=(30, 3)), columns=["z", "a", "m"])
    wide["z"] += 2.0
    matrix = nemenyi(wide)
    assert list(matrix.index) == ["z", "a", "m"]
    expected = scikit_posthocs.posthoc_nemenyi_friedman(wide.to_numpy())
    np.testing.assert_allclose(matrix.to_numpy(), expected.to_numpy())
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    # consistency with the CD: a rank difference above CD <=> p < 0.05
    ranks = mean_ranks(wide, higher_is_better=True)
    cd = critical_difference(3, 30)
    for a in wide.columns:
        for b in wide.columns:
            if a != b:
                assert (abs(ranks[a] - ranks[b]) > cd) == (matrix.loc[a, b] < 0.05)
    assert matrix.loc["z", "a"] < 0.05


def test_nemenyi_of_one_block_is_not_a_test():
    """A held-out review (helper 170): one complete block gave p 0.333 and 0.759 from a single ranking,
    where cd is NaN and the docs say one ranking has nothing to compare with."""
    one = pd.DataFrame({"a": [3.0, np.nan], "b": [2.0, 1.0], "random": [1.0, 0.0]})  # one complete row
    matrix = nemenyi(one)
    assert list(matrix.columns) == ["a", "b", "random"]
    assert np.isnan(matrix.to_numpy()[~np.eye(3, dtype=bool)]).all() and (np.diag(matrix) == 1.0).all()
    two = nemenyi(pd.DataFrame({"a": [3.0, 2.0], "b": [2.0, 1.0], "random": [1.0, 0.0]}))
    # two blocks: mean ranks 1, 2, 3 (higher first or not, the gaps are the same): a vs random 2 apart
    expected = stats.studentized_range.sf(2 / np.sqrt(3 * 4 / (6 * 2)) * np.sqrt(2), 3, np.inf)
    assert two.loc["a", "random"] == pytest.approx(expected)


def test_an_all_tied_comparison_has_p_1_and_counts_in_holm():
    """The convention docs/statistics.md states (a docs review, helper 167, could not find it there):
    every difference zero -> p = 1, still one of the m of Holm; no pair at all -> NaN, not counted."""
    control = np.zeros(16)
    hits = np.r_[np.ones(10), np.zeros(6)]  # 10 hits where the control misses: exact p = 2^-10
    wide = pd.DataFrame({"random": control, "good": hits, "tie_a": control, "tie_b": control, "tie_c": control})
    table = versus_control(wide, "random", higher_is_better=True).set_index("explainer")
    assert table.loc["good", "p"] == 2.0 ** -10
    assert (table.loc[["tie_a", "tie_b", "tie_c"], "p"] == 1.0).all()
    assert table.loc["good", "p_holm"] == pytest.approx(4 * 2.0 ** -10)  # m = 4, the tied three included
    wide["none"] = np.nan  # no pair: NaN, left out of m
    table = versus_control(wide, "random", higher_is_better=True).set_index("explainer")
    assert np.isnan(table.loc["none", "p"]) and table.loc["good", "p_holm"] == pytest.approx(4 * 2.0 ** -10)


def test_mean_ranks_orientation_and_ties():
    wide = pd.DataFrame(
        {"a": [3.0, 3.0, np.nan], "b": [2.0, 3.0, 0.0], "c": [1.0, 1.0, 5.0]}
    )
    # row 3 dropped (NaN). higher better: row 1 ranks [1, 2, 3], row 2 [1.5, 1.5, 3]
    up = mean_ranks(wide, higher_is_better=True)
    np.testing.assert_allclose(up.to_numpy(), [1.25, 1.75, 3.0])
    down = mean_ranks(wide, higher_is_better=False)
    np.testing.assert_allclose(down.to_numpy(), [2.75, 2.25, 1.0])
    assert list(up.index) == ["a", "b", "c"]


def _brute_force_p(d, alternative):
    """P-value over all 2^n sign flips of the ranks of |d| (zeros dropped), by enumeration."""
    d = d[d != 0]
    ranks = stats.rankdata(np.abs(d))
    signs = (np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1
    null = signs @ ranks
    observed = ranks[d > 0].sum()
    upper, lower = np.mean(null >= observed - 1e-9), np.mean(null <= observed + 1e-9)
    return {"greater": upper, "less": lower, "two-sided": min(1.0, 2 * min(upper, lower))}[alternative]


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_is_exact_with_ties_and_zeros(alternative):
    rng = np.random.default_rng(3)
    for n in (9, 16):  # scipy's 'auto' permutes for n <= 13 and goes asymptotic above, zeros counted
        a = rng.integers(0, 4, size=n + 4).astype(float)
        b = rng.integers(0, 4, size=n + 4).astype(float)
        d = a - b
        _, p = wilcoxon_pair(a, b, alternative=alternative)
        assert p == pytest.approx(_brute_force_p(d, alternative), abs=1e-12)
        if np.count_nonzero(d) <= 13:
            perm = stats.wilcoxon(d[d != 0], alternative=alternative, method=stats.PermutationMethod())
            assert p == pytest.approx(perm.pvalue, abs=1e-12)


def test_wilcoxon_on_a_binary_metric_is_the_exact_sign_test():
    # 16 samples, 4 hits where the control misses, tied elsewhere: 4 differences of +1
    a = np.array([1.0] * 4 + [0.0] * 12)
    b = np.zeros(16)
    statistic, p = wilcoxon_pair(a, b, alternative="greater")
    assert statistic == 10.0 and p == pytest.approx(1 / 16)  # not scipy 'auto''s normal 0.0228
    assert p == pytest.approx(stats.binomtest(4, 4, 0.5, alternative="greater").pvalue)
    assert stats.wilcoxon(a, b, alternative="greater").pvalue < 0.05  # what scipy's 'auto' gives


def test_wilcoxon_above_fifty_differences_is_the_corrected_normal_approximation():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=80), rng.normal(size=80) - 0.2
    statistic, p = wilcoxon_pair(a, b)
    expected = stats.wilcoxon(a, b, correction=True, method="asymptotic")
    assert (statistic, p) == pytest.approx((expected.statistic, expected.pvalue))
    assert p != pytest.approx(stats.wilcoxon(a, b, correction=False, method="asymptotic").pvalue, rel=1e-6)


@pytest.mark.parametrize("p, shown", [([1.5, -0.2], "got 1.5 at index 0"), ([0.1, -0.2], "got -0.2 at index 1"),
                                      ([0.1, np.inf], "got inf at index 1")])
def test_holm_and_bonferroni_refuse_values_that_are_not_p_values(p, shown):
    """A review: holm([1.5, -0.2]) returned [1.0, -0.4], a negative adjusted p, without a word."""
    from faithbench.stats.regions import bonferroni

    for adjust in (holm, bonferroni):
        with pytest.raises(ValueError, match=rf"^{adjust.__name__}: expected p-values in \[0, 1\] .*{shown}$"):
            adjust(p)
    assert holm([0.0, 1.0, np.nan])[1] == 1.0 and np.isnan(bonferroni([np.nan, 0.5])[0])
