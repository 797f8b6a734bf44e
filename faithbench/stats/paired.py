"""Paired, non-parametric tests for comparing explainers on the same samples.

Every function here is pure: it takes arrays or a *wide* table (rows = blocks, i.e. the
paired observations such as samples; columns = explainers) and returns numbers or a
DataFrame. NaNs mean "not defined for this sample"; each comparison drops them on its own
(pairwise for two-sample tests, whole rows for the Friedman family), so one missing value
never removes a sample from an unrelated comparison.

References
----------
- Wilcoxon (1945), Individual comparisons by ranking methods.
- Holm (1979), A simple sequentially rejective multiple test procedure.
- Kerby (2014), The simple difference formula: an approach to teaching nonparametric correlation. Compr. Psychol. 3.
- Friedman (1937); Nemenyi (1963); Demšar (2006), Statistical comparisons of classifiers
  over multiple data sets. JMLR 7:1-30.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from faithbench.stats.pvalues import holm  # re-exported (it moved)

__all__ = [
    "FriedmanResult",
    "common_means",
    "critical_difference",
    "friedman",
    "holm",
    "mean_ranks",
    "nemenyi",
    "pairwise_wilcoxon",
    "rank_biserial",
    "signed_rank_null",
    "snap_ties",
    "versus_control",
    "wilcoxon_pair",
]

PAIRWISE_COLUMNS = ["explainer_a", "explainer_b", "statistic", "p", "p_holm", "effect_size", "n"]
CONTROL_COLUMNS = ["explainer", "statistic", "p", "p_holm", "effect_size", "n"]


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Return a, b as float arrays with every pair holding a NaN or ±inf on either side removed (a review:
    inf - inf is NaN, and a raw numpy error followed)."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"expected paired samples of equal length, got {a.shape[0]} and {b.shape[0]}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


TIE_RTOL = 1e-12  # means this close (relative) are equal up to float rounding: a tie


def _differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The non-zero differences a - b, equal up to float rounding made equal: a difference within
    ``TIE_RTOL`` times max(|a|, |b|) of its own pair is a zero (dropped), and two |d| within ``TIE_RTOL``
    times the larger |d| or the SMALLER of their pairs' max(|a|, |b|) are one value (each run of them takes
    its smallest; a diff review: one pair of values near 1e4 had tied another pair's 0.5 and 0.500000005).
    A held-out review: a 0/1 metric averaged over 3 seeds gives 1 - 2/3 = 0.33333333333333337 but
    1/3 - 0 = 0.3333333333333333, ranked apart, and 2/3 - (1 - 1/3) = 1.1e-16 not a zero; the one-sided
    p 0.0127 of its 10 samples was 0.0928 with ties. Values of about 1e12 and more are compared coarser than
    their float resolution (a difference of 1 at 1e13 is a zero)."""
    d, scale = a - b, np.maximum(np.abs(a), np.abs(b))
    keep = np.abs(d) > TIE_RTOL * scale
    d, scale = d[keep], scale[keep]
    size = np.abs(d)
    order = np.argsort(size, kind="stable")
    s, f = size[order], scale[order]
    near = np.diff(s) <= TIE_RTOL * np.maximum(s[1:], np.minimum(f[1:], f[:-1]))  # continuous data: none
    if near.any():  # each run's values to its first (smallest), as snap_ties
        for i in np.flatnonzero(near) + 1:
            if s[i] - s[i - 1] <= TIE_RTOL * max(s[i], min(f[i], f[i - 1])):
                s[i] = s[i - 1]
        size[order] = s
    return np.sign(d) * size


def rank_biserial(a, b) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014).

    With d = a - b over the pairs where both are defined, zero differences dropped (the
    'wilcox' zero method, as in ``scipy.stats.wilcoxon``) and R_i the average-tie rank of
    |d_i| (zeros and ties up to float rounding, :func:`_differences`),

        r = (sum_{d_i > 0} R_i - sum_{d_i < 0} R_i) / sum_i R_i,

    in [-1, 1]; positive when a tends to exceed b. Returns 0.0 when every difference is
    zero and NaN when no pair is left.

    Example: a - b = [1, -2, 3, 4] gives ranks [1, 2, 3, 4], so r = (1+3+4 - 2) / 10 = 0.6.
    """
    a, b = _paired(a, b)
    if a.size == 0:
        return float("nan")
    d = _differences(a, b)
    if d.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


EXACT_MAX = 50  # up to this many non-zero differences the Wilcoxon p is exact (scipy's bound for its exact null)


def signed_rank_null(doubled_ranks: np.ndarray) -> np.ndarray:
    """The exact null distribution of 2 R+ given the ranks: ``pmf[t] = P(2 R+ = t)`` when each
    difference is positive or negative with probability 1/2 independently (Wilcoxon's sign
    flips). ``doubled_ranks``: twice the (average) ranks of |d|, whole numbers, so ties keep
    their midranks exactly. Built by convolution, one rank at a time."""
    pmf = np.zeros(int(doubled_ranks.sum()) + 1)
    pmf[0] = 1.0
    for w in doubled_ranks.astype(int):
        shifted = np.zeros_like(pmf)
        shifted[w:] = pmf[:pmf.size - w]
        pmf = 0.5 * (pmf + shifted)
    return pmf


def wilcoxon_pair(a, b, alternative: str = "two-sided") -> tuple[float, float]:
    """Wilcoxon signed-rank test of a against b (Wilcoxon 1945).

    Pairs with a NaN or ±inf on either side are dropped, then the zero differences (Wilcoxon's
    ``zero_method='wilcox'``); the n differences left are ranked by |d| (ties: average ranks). Zeros and
    ties are up to float rounding (:func:`_differences`: 1 - 2/3 and 1/3 - 0 tie).
    With n <= ``EXACT_MAX`` (50) the p-value is exact: the distribution of R+ over the 2^n sign
    flips of those ranks (:func:`signed_rank_null`), with ties and all; it equals scipy's exact
    null without ties and its exhaustive permutation test with them. Above 50: the normal
    approximation with the tie correction and a continuity correction (``scipy.stats.wilcoxon``,
    ``method='asymptotic', correction=True``; R's ``wilcox.test`` default). scipy's own
    ``method='auto'`` counts the zero differences when it picks a method, so a 0/1 metric with 16
    samples of which 4 differ got the normal approximation on 4 differences (p 0.023 instead of
    the exact 0.0625, the smallest four pairs can give); this does not.

    ``alternative``: 'two-sided' (default; twice the smaller tail, at most 1), 'greater'
    (a > b: P(R+ >= observed)) or 'less' (P(R+ <= observed)). Returns (statistic, p): the
    statistic is min(R+, R-) for 'two-sided' and R+ otherwise, as in scipy. Every difference
    zero -> (0.0, 1.0) (no evidence either way); no pair at all -> (NaN, NaN).

    Example: d = [1, 1, 1, 1] (a sign test): R+ = 10 of 10, P(R+ >= 10) = 1/16 = 0.0625.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"expected alternative in ('two-sided', 'greater', 'less'), got {alternative!r}")
    a, b = _paired(a, b)
    if a.size == 0:
        return float("nan"), float("nan")
    d = _differences(a, b)
    if d.size == 0:
        return 0.0, 1.0
    ranks = stats.rankdata(np.abs(d))
    r_plus, r_minus = float(ranks[d > 0].sum()), float(ranks[d < 0].sum())
    statistic = min(r_plus, r_minus) if alternative == "two-sided" else r_plus
    if d.size > EXACT_MAX:
        result = stats.wilcoxon(d, zero_method="wilcox", correction=True, alternative=alternative,
                                method="asymptotic")
        return statistic, float(result.pvalue)
    pmf = signed_rank_null(np.rint(2 * ranks))
    observed = int(round(2 * r_plus))
    upper, lower = float(pmf[observed:].sum()), float(pmf[:observed + 1].sum())
    p = {"greater": upper, "less": lower, "two-sided": 2 * min(upper, lower)}[alternative]
    return statistic, min(p, 1.0)


def _wide_float(wide: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(wide, pd.DataFrame):
        raise TypeError(f"expected a wide DataFrame (rows = blocks, columns = explainers), got {type(wide).__name__}")
    if wide.columns.has_duplicates:
        raise ValueError(f"expected unique explainer columns, got {list(wide.columns)}")
    return wide.astype(float)


def pairwise_wilcoxon(wide: pd.DataFrame) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank test for every unordered pair of columns.

    ``wide``: rows = paired observations (samples), columns = explainers. For each pair
    (a, b) with a before b in column order: ``statistic, p`` from :func:`wilcoxon_pair`,
    ``p_holm`` Holm-adjusted across all pairs of this table (Holm 1979), ``effect_size`` the
    matched-pairs rank-biserial r of a vs b (Kerby 2014; positive when a > b) and ``n`` the
    number of pairs with both values defined (zero differences included).
    Fewer than two columns -> empty DataFrame with these columns.
    """
    wide = _wide_float(wide)
    rows = []
    for a, b in itertools.combinations(wide.columns, 2):
        x, y = _paired(wide[a].to_numpy(), wide[b].to_numpy())
        statistic, p = wilcoxon_pair(x, y)
        rows.append(
            {
                "explainer_a": a,
                "explainer_b": b,
                "statistic": statistic,
                "p": p,
                "effect_size": rank_biserial(x, y),
                "n": int(x.size),
            }
        )
    table = pd.DataFrame(rows, columns=[c for c in PAIRWISE_COLUMNS if c != "p_holm"])
    table.insert(4, "p_holm", holm(table["p"].to_numpy(dtype=float)))
    return table.astype({"n": int})


def versus_control(wide: pd.DataFrame, control: str, higher_is_better: bool) -> pd.DataFrame:
    """One-sided Wilcoxon signed-rank test of each explainer against a control column.

    H1: the explainer is better than ``control`` on the same samples, i.e.
    alternative='greater' if ``higher_is_better`` else 'less'. ``p_holm`` is Holm-adjusted
    across the explainers of this table (Holm 1979). ``effect_size`` is the rank-biserial r
    of explainer vs control (Kerby 2014), *not* oriented: positive means larger values than
    the control, which is better only when ``higher_is_better``. ``n`` counts the pairs with
    both values defined. Only a control column -> empty DataFrame with these columns.
    """
    wide = _wide_float(wide)
    if control not in wide.columns:
        raise KeyError(f"expected the control explainer {control!r} among the columns, got {list(wide.columns)}")
    alternative = "greater" if higher_is_better else "less"
    ref = wide[control].to_numpy()
    rows = []
    for name in wide.columns:
        if name == control:
            continue
        x, y = _paired(wide[name].to_numpy(), ref)
        statistic, p = wilcoxon_pair(x, y, alternative=alternative)
        rows.append(
            {
                "explainer": name,
                "statistic": statistic,
                "p": p,
                "effect_size": rank_biserial(x, y),
                "n": int(x.size),
            }
        )
    table = pd.DataFrame(rows, columns=[c for c in CONTROL_COLUMNS if c != "p_holm"])
    table.insert(3, "p_holm", holm(table["p"].to_numpy(dtype=float)))
    return table.astype({"n": int})


class _FriedmanFields(NamedTuple):
    statistic: float
    p: float
    n_blocks: int
    k: int


class FriedmanResult(_FriedmanFields):
    """Result of :func:`friedman`: a 4-tuple ``(statistic, p, n_blocks, k)``.

    ``reason`` is an attribute outside the tuple, so that ``stat, p, n, k = friedman(w)``
    unpacks: empty unless the test could not be run (statistic and p are then NaN) or was
    degenerate.
    """

    reason: str = ""

    def __new__(cls, statistic, p, n_blocks, k, reason: str = ""):
        self = super().__new__(cls, float(statistic), float(p), int(n_blocks), int(k))
        self.reason = reason  # a subclass of a namedtuple without __slots__ has a __dict__ for this
        return self


def _complete_blocks(wide: pd.DataFrame) -> pd.DataFrame:
    return _wide_float(wide).dropna(axis=0, how="any")


def snap_ties(values: pd.Series, scale: pd.Series | None = None) -> pd.Series:
    """``values`` with each value within ``TIE_RTOL`` (1e-12) times max(|a|, |b|, their ``scale``) of its
    run's smallest value (sorted ascending) replaced by it, so ranking ties means equal up to float
    rounding (reviews: equal means 0.52083333333333[34], and signed means 0 up to rounding, 1.1e-17 and
    2.2e-17, ranked 1 and 2). ``scale``: each value's magnitude (common_means: its column's mean |x|, so
    one explainer's outlier widens no other's tolerance). ±inf ties only with itself. NaN stays NaN; same
    index and order."""
    x = values.to_numpy(dtype=float, copy=True)
    floor = np.zeros_like(x) if scale is None else np.nan_to_num(scale.reindex(values.index).to_numpy(float),
                                                                 nan=0.0, posinf=0.0)
    order = [i for i in np.argsort(x, kind="stable") if not np.isnan(x[i])]
    for prev, cur in zip(order[:-1], order[1:]):
        finite = np.isfinite(x[cur]) and np.isfinite(x[prev])  # a review: an inf tolerance tied inf with 0.4
        if x[cur] == x[prev] or finite and abs(x[cur] - x[prev]) <= TIE_RTOL * max(
                abs(x[cur]), abs(x[prev]), floor[cur], floor[prev]):
            x[cur] = x[prev]  # x[prev] already holds its run's first value
    return pd.Series(x, index=values.index, name=values.name)


def common_means(wide: pd.DataFrame) -> pd.Series:
    """Each column's mean over the rows on which every column with a value anywhere is defined
    (the complete blocks of :func:`friedman` once the columns without any value are left out), so
    that explainers undefined on different samples are compared on the same ones: an explainer
    whose map is undefined on the hard samples is not ranked on its easy ones (found by a held-out
    review). NaN for a column without a value and for every column when no such row is left.
    Indexed by column, in column order; equal to the column means when no value is NaN, up to float
    rounding: means within 1e-12 of each other relative to the larger |value| made equal
    (:func:`snap_ties`), so every ranking by these means (the leaderboard's rank and bold, overall
    ranks, agreement τ) ties them."""
    data = _wide_float(wide)
    present = data.dropna(axis=1, how="all")
    complete = present.dropna(axis=0, how="any")
    means = pd.Series(np.nan, index=data.columns, dtype=float)
    if len(complete):
        means[complete.columns] = complete.mean(axis=0)
    return snap_ties(means, complete.abs().mean(axis=0))


def friedman(wide: pd.DataFrame) -> FriedmanResult:
    """Friedman rank test across the columns with the rows as blocks (Friedman 1937).

    Rows with any NaN are dropped (the test needs complete blocks). Within each block the
    k values are ranked (ties averaged) and, with R_j the rank sum of column j over the N
    blocks,

        chi2_F = 12 / (N k (k+1)) * sum_j R_j^2 - 3 N (k+1),

    tie-corrected and referred to chi2 with k-1 degrees of freedom, via
    ``scipy.stats.friedmanchisquare``. Returns (statistic, p, n_blocks, k); the result's
    ``reason`` attribute explains a NaN: k < 3 (scipy's Friedman needs three groups; use
    the Wilcoxon test for two) or fewer than 2 complete blocks. All values tied within
    every block -> (0.0, 1.0) with a reason.
    """
    complete = _complete_blocks(wide)
    n_blocks, k = complete.shape
    if k < 3:
        return FriedmanResult(
            np.nan, np.nan, n_blocks, k, f"Friedman needs k >= 3 explainers, got k = {k}"
        )
    if n_blocks < 2:
        return FriedmanResult(
            np.nan, np.nan, n_blocks, k,
            f"Friedman needs at least 2 complete blocks (rows without NaN), got {n_blocks}",
        )
    values = complete.to_numpy()
    if np.all(values == values[:, :1]):
        return FriedmanResult(0.0, 1.0, n_blocks, k, "all values tied within every block")
    result = stats.friedmanchisquare(*values.T)
    return FriedmanResult(result.statistic, result.pvalue, n_blocks, k)


def nemenyi(wide: pd.DataFrame) -> pd.DataFrame:
    """Nemenyi post-hoc p-values for the Friedman design (Nemenyi 1963; Demšar 2006).

    Rows with any NaN are dropped. Two columns differ when their mean ranks differ by more
    than the critical difference (see :func:`critical_difference`); the p-value is
    P(q > |R̄_i - R̄_j| * sqrt(2) / sqrt(k(k+1)/(6N))) under the studentized range with k
    groups and infinite degrees of freedom, from
    ``scikit_posthocs.posthoc_nemenyi_friedman``. Returns a symmetric k × k DataFrame
    indexed by the explainers in column order, 1 on the diagonal; all NaN off the diagonal when
    fewer than 2 columns or 2 complete blocks (one ranking has nothing to compare with, as for the CD).
    """
    import scikit_posthocs

    complete = _complete_blocks(wide)
    names = list(complete.columns)
    n_blocks, k = complete.shape
    if k < 2 or n_blocks < 2:
        matrix = np.full((k, k), np.nan)
        np.fill_diagonal(matrix, 1.0)
        return pd.DataFrame(matrix, index=names, columns=names)
    values = complete.reset_index(drop=True)
    values.columns = range(k)  # positional names: scikit-posthocs needs no special labels
    matrix = scikit_posthocs.posthoc_nemenyi_friedman(values)
    matrix = matrix.loc[range(k), range(k)].to_numpy(dtype=float)
    return pd.DataFrame(matrix, index=names, columns=names)


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks (Demšar 2006, section 3.2.2).

        CD = q_alpha * sqrt(k (k+1) / (6 n)),  q_alpha = Q_{1-alpha}(k, inf) / sqrt(2),

    with Q the studentized range quantile (``scipy.stats.studentized_range.ppf``) for k
    groups and infinite degrees of freedom; n is the number of blocks. Demšar's Table 5a:
    k = 5, alpha = 0.05 -> q_alpha = 2.728. NaN for k < 2 or n < 2 (one block: nothing to compare).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"expected 0 < alpha < 1, got {alpha}")
    if k < 2 or n < 2:
        return float("nan")
    q_alpha = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(k * (k + 1) / (6.0 * n)))


def mean_ranks(wide: pd.DataFrame, higher_is_better: bool) -> pd.Series:
    """Mean rank of each column over the complete blocks (Demšar 2006).

    Within each row (block) the columns are ranked 1 = best (largest value if
    ``higher_is_better``, else smallest), ties receiving the average of their ranks; rows
    with any NaN are dropped, as in :func:`friedman`. Returns a Series named 'mean_rank'
    indexed by explainer, in column order; all NaN when no complete block is left.
    """
    complete = _complete_blocks(wide)
    values = complete.to_numpy()
    if values.shape[0] == 0:
        return pd.Series(np.nan, index=complete.columns, name="mean_rank", dtype=float)
    oriented = -values if higher_is_better else values
    ranks = stats.rankdata(oriented, method="average", axis=1)
    return pd.Series(ranks.mean(axis=0), index=complete.columns, name="mean_rank")
