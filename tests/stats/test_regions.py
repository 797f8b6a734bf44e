"""The region-based study's procedure, cross-checked against scipy.stats."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faithbench.stats.regions import (CLASS_TEST_COLUMNS, REGION_PAIRWISE_COLUMNS, bonferroni, class_test,
                                      mann_whitney, region_class_tests, region_pairwise)


def test_normal_data_with_equal_variances_get_students_t():
    # normal quantiles: as normal as 40 values get, the same spread in both classes
    z = stats.norm.ppf((np.arange(40) + 0.5) / 40)
    neg, pos = 0.2 + 0.05 * z, 0.23 + 0.05 * z[::-1]
    out = class_test(neg, pos)
    assert out["shapiro_p_negative"] == pytest.approx(stats.shapiro(neg).pvalue)
    assert out["shapiro_p_positive"] == pytest.approx(stats.shapiro(pos).pvalue)
    assert out["levene_p"] == pytest.approx(stats.levene(neg, pos).pvalue)
    assert min(out["shapiro_p_negative"], out["shapiro_p_positive"], out["levene_p"]) > 0.05
    ref = stats.ttest_ind(neg, pos, equal_var=True)
    assert out["test"] == "t"
    assert (out["statistic"], out["p"]) == pytest.approx((ref.statistic, ref.pvalue))
    assert out["mean_negative"] == pytest.approx(neg.mean()) and out["n_positive"] == 40


def test_skewed_data_get_mann_whitney():
    rng = np.random.default_rng(1)
    neg, pos = rng.exponential(1.0, 40), rng.exponential(2.0, 40)
    out = class_test(neg, pos)
    assert min(out["shapiro_p_negative"], out["shapiro_p_positive"]) < 0.05  # not normal
    ref = stats.mannwhitneyu(neg, pos, alternative="two-sided")
    assert out["test"] == "mannwhitney"
    assert (out["statistic"], out["p"]) == pytest.approx((ref.statistic, ref.pvalue))


def test_unequal_variances_get_mann_whitney():
    rng = np.random.default_rng(2)
    neg, pos = rng.normal(0.0, 1.0, 50), rng.normal(0.0, 6.0, 50)
    out = class_test(neg, pos)
    assert out["shapiro_p_negative"] > 0.05 and out["shapiro_p_positive"] > 0.05
    assert out["levene_p"] < 0.05 and out["test"] == "mannwhitney"
    assert out["p"] == pytest.approx(stats.mannwhitneyu(neg, pos, alternative="two-sided").pvalue)


def test_degenerate_inputs():
    out = class_test([0.1, 0.2], [0.3, 0.4, 0.5, float("nan")])
    assert out["test"] == "none" and math.isnan(out["p"]) and out["n_positive"] == 3
    same = class_test([0.5] * 5, [0.5] * 6)
    assert same["test"] == "mannwhitney" and same["p"] == 1.0
    # a constant class is not normal: Mann-Whitney, whatever the other class looks like
    const = class_test([0.0] * 10, np.linspace(0.1, 1.0, 10))
    assert const["test"] == "mannwhitney" and const["shapiro_p_negative"] == 0.0
    # fully separated, 10 vs 10 with ties: the exact p is 2 / C(20, 10) (scipy's normal approximation: 1.5e-4)
    assert const["p"] == pytest.approx(2 / math.comb(20, 10), rel=1e-12)


def _exhaustive_p(x, y) -> float:
    """Two-sided permutation p of U by listing every split of the pooled values into len(x) and len(y)."""
    pooled = np.concatenate([x, y])
    ranks = stats.rankdata(pooled)
    observed = ranks[:len(x)].sum()
    sums = np.array([ranks[list(chosen)].sum() for chosen in itertools.combinations(range(len(pooled)), len(x))])
    upper, lower = np.mean(sums >= observed - 1e-9), np.mean(sums <= observed + 1e-9)
    return min(1.0, 2 * min(upper, lower))


def test_mann_whitney_with_ties_is_exact():
    """A held-out review (helper 170): scipy's default method uses the normal approximation whenever
    there are ties, and region shares tie easily; 3 vs 3 fully separated got p 0.047, below 0.1, the
    smallest p that 3 vs 3 can give."""
    for neg, pos, p in (([1, 1, 1], [2, 2, 2], 0.1), ([0, 0, 0], [0.2, 0.3, 0.4], 0.1),
                        # ranks: five 0s share 3, then 6..9; R of neg = 18; R <= 18 for the 5 of 9 that are
                        # all the 0s (1) or four 0s and 0.05 (5): p = 2 * 6 / C(9, 5)
                        ([0, 0, 0, 0, 0.05], [0, 0.2, 0.3, 0.4], 2 * 6 / math.comb(9, 5))):
        out = class_test(neg, pos)
        assert out["test"] == "mannwhitney" and out["p"] == pytest.approx(p, rel=1e-12)
        assert out["statistic"] == stats.mannwhitneyu(neg, pos).statistic
    rng = np.random.default_rng(3)
    for _ in range(40):  # many ties: values from a grid of four
        x, y = rng.choice(4, rng.integers(3, 8)) / 10, rng.choice(4, rng.integers(3, 8)) / 10
        statistic, p = mann_whitney(x, y)
        assert p == pytest.approx(_exhaustive_p(x, y), rel=1e-9, abs=1e-12)
        assert statistic == stats.mannwhitneyu(x, y).statistic
    x, y = rng.choice(3, 5) / 10, rng.choice(3, 6) / 10  # and scipy's exhaustive permutation test
    reference = stats.permutation_test((x, y), lambda a, b: stats.mannwhitneyu(a, b).statistic,
                                       permutation_type="independent", n_resamples=np.inf).pvalue
    assert mann_whitney(x, y)[1] == pytest.approx(reference)


def test_mann_whitney_exact_without_ties_and_normal_above_50_values():
    rng = np.random.default_rng(4)
    x, y = rng.normal(0, 1, 12), rng.normal(0.8, 1, 15)  # no ties: scipy's exact null applies
    assert mann_whitney(x, y)[1] == pytest.approx(stats.mannwhitneyu(x, y, method="exact").pvalue, rel=1e-9)
    x, y = rng.normal(0, 1, 26), rng.normal(0.5, 1, 25)  # 51 values: the normal approximation
    assert mann_whitney(x, y)[1] == stats.mannwhitneyu(x, y, method="asymptotic").pvalue


def test_bonferroni_known_answer():
    out = bonferroni([0.01, 0.04, float("nan"), 0.6])
    assert out[[0, 1, 3]].tolist() == pytest.approx([0.03, 0.12, 1.0]) and math.isnan(out[2])


def _regions_table(rng):
    """Two explainers x 30 samples (15 per class) x 2 regions; explainer 'good' puts more share in
    region 'lung' for positives, 'flat' does not."""
    rows = []
    for explainer in ("flat", "good"):
        for i in range(30):
            label = int(i >= 15)
            lung = rng.normal(0.3 + (0.3 if explainer == "good" and label else 0.0), 0.05)
            for region, share in (("lung", lung), ("heart", 1 - lung)):
                rows.append({"dataset": "d", "model": "m", "explainer": explainer, "seed": 0,
                             "sample_id": f"s{i}", "label": label, "target": label, "region": region,
                             "mean": share / 10, "sum": share, "max": share, "share": share, "area": 0.5})
    return pd.DataFrame(rows)


def test_region_class_tests_adjust_across_regions():
    frame = _regions_table(np.random.default_rng(3))
    tests = region_class_tests(frame, ["share", "mean"])
    assert list(tests.columns) == CLASS_TEST_COLUMNS and len(tests) == 2 * 2 * 2
    good = tests.query("explainer == 'good' and score == 'share'").set_index("region")
    sub = frame.query("explainer == 'good' and region == 'lung'")
    ref = class_test(sub.loc[sub.label == 0, "share"], sub.loc[sub.label == 1, "share"])
    assert good.loc["lung", "p"] == pytest.approx(ref["p"])
    assert good.loc["lung", "p_bonferroni"] == pytest.approx(min(1.0, 2 * ref["p"]))
    assert bool(good.loc["lung", "significant"]) and good.loc["lung", "n_regions"] == 2
    assert good.loc["lung", "mean_positive"] > good.loc["lung", "mean_negative"] + 0.2
    flat = tests.query("explainer == 'flat' and score == 'share'")
    assert not flat["significant"].any()


def test_region_pairwise_matches_scipy_wilcoxon():
    frame = _regions_table(np.random.default_rng(4))
    pairs = region_pairwise(frame)
    assert list(pairs.columns) == REGION_PAIRWISE_COLUMNS
    assert len(pairs) == 2 * 2  # (lung, heart) x (negative, positive), one pair each
    row = pairs.query("region == 'lung' and samples == 'positive'").iloc[0]
    assert (row["explainer_a"], row["explainer_b"], row["n"]) == ("flat", "good", 15)
    a = frame.query("explainer == 'flat' and region == 'lung' and label == 1")["share"].to_numpy()
    b = frame.query("explainer == 'good' and region == 'lung' and label == 1")["share"].to_numpy()
    ref = stats.wilcoxon(a, b)
    assert (row["statistic"], row["p"]) == pytest.approx((ref.statistic, ref.pvalue))
    assert row["effect_size"] == -1.0  # 'good' is higher on every positive sample


def test_seeds_of_a_sample_are_one_observation():
    """Two seeds explain the same 30 images: the tests see 30 samples (each the mean of its two
    seeds' scores), not 60 observations."""
    one = _regions_table(np.random.default_rng(5))
    other = one.assign(seed=1, share=one["share"] + np.random.default_rng(6).normal(0, 0.05, len(one)))
    both = pd.concat([one, other], ignore_index=True)
    tests = region_class_tests(both).query("explainer == 'flat'").set_index("region")
    means = both.query("explainer == 'flat' and region == 'heart'").groupby("sample_id")[["share", "label"]].mean()
    ref = class_test(means.loc[means.label == 0, "share"], means.loc[means.label == 1, "share"])
    assert (tests.loc["heart", "n_negative"], tests.loc["heart", "n_positive"]) == (15, 15)
    assert tests.loc["heart", "p"] == pytest.approx(ref["p"])
    pairs = region_pairwise(both).query("region == 'lung' and samples == 'negative'").iloc[0]
    assert pairs["n"] == 15


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"missing \['share'\]"):
        region_class_tests(pd.DataFrame(columns=["dataset", "model", "explainer", "seed", "sample_id", "label",
                                                 "region"]))
