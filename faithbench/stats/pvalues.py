"""The check of the p-values given to a multiple-comparison adjustment (Holm, Bonferroni), Holm's, and
Kendall's τ-b with an exact permutation p for a few values (agreement of two rankings)."""

from __future__ import annotations

import functools
import itertools

import numpy as np
from scipy import stats

__all__ = ["holm", "kendall_tau", "p_values"]


def p_values(p, where: str) -> np.ndarray:
    """``p`` as a float array, each value in [0, 1] or NaN (a test not defined: it stays NaN and does not
    count). Anything else is a ValueError that begins with ``where`` and names the first such value: an
    adjustment of a value that is not a p-value gives a number that looks like one (a review:
    ``holm([1.5, -0.2])`` returned ``[1.0, -0.4]``)."""
    p = np.asarray(p, dtype=float)
    bad = np.flatnonzero(~np.isnan(p.ravel()) & ~((p.ravel() >= 0) & (p.ravel() <= 1)))
    if bad.size:
        raise ValueError(f"{where}: expected p-values in [0, 1] (NaN for a test not defined), got "
                         f"{p.ravel()[bad[0]]:g} at index {int(bad[0])}")
    return p


def holm(p, m: int | None = None) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values (Holm 1979).

    With the non-NaN p-values sorted ascending, p_(1) <= p_(2) <= ..., and m the comparisons of the family,

        p_holm_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j)),

    returned in the original order. The running maximum makes the adjusted values
    monotone in the raw ones. NaNs stay NaN; a value outside [0, 1] is a ValueError. ``m``: by default the
    non-NaN values; given, the comparisons planned, some of them left without a p (a failed cell, a held-out
    review: counting only the others gave another explainer a ``*``), which count as p = 1 would.

    Example: p = [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02]; with m = 5, [0.04, 0.09, 0.09, 0.025].
    """
    p = p_values(p, "holm")
    out = np.full(p.shape, np.nan)
    flat = p.ravel()
    valid = np.flatnonzero(~np.isnan(flat))
    if m is not None and m < valid.size:
        raise ValueError(f"holm: expected m at least the {valid.size} p-values given, got {m}")
    m = valid.size if m is None else int(m)
    if valid.size == 0:
        return out
    # A stable sort keeps equal p-values in input order, so the result is deterministic.
    order = valid[np.argsort(flat[valid], kind="stable")]
    scaled = (m - np.arange(valid.size)) * flat[order]
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out.ravel()[order] = adjusted  # out is contiguous: ravel is a view
    return out


EXACT_KENDALL_UP_TO = 8  # 8! = 40320 orderings


@functools.lru_cache(maxsize=256)
def _kendall_null(ties_a: tuple[int, ...], ties_b: tuple[int, ...]) -> np.ndarray:
    """|S| of every ordering of ``b`` against ``a``, sorted, given the sizes of their tie groups in value
    order: the null depends on nothing else, so the metric pairs of a table share it (the orderings
    of 8 values took 24 ms a pair)."""
    a, b = np.repeat(np.arange(len(ties_a)), ties_a), np.repeat(np.arange(len(ties_b)), ties_b)
    i, j = np.triu_indices(a.size, 1)
    shuffled = b[np.array(list(itertools.permutations(range(b.size))))]
    return np.sort(np.abs(np.sign(shuffled[:, i] - shuffled[:, j]) @ np.sign(a[i] - a[j])))


def kendall_tau(a, b) -> tuple[float, float]:
    """Kendall τ-b of ``a`` and ``b`` (1D, equal length; ``scipy.stats.kendalltau``) and its two-sided p.

    Up to :data:`EXACT_KENDALL_UP_TO` (8) values the p is exact, with ties or not: the share of the n!
    orderings of ``b`` whose |τ_b| is at least the observed one. τ_b = S / sqrt((n0 - n1)(n0 - n2)) with
    S the concordant minus the discordant pairs, and reordering ``b`` keeps its ties, so the denominator
    stays and the whole numbers |S| are compared. Without ties this is scipy's exact p; with them scipy
    takes its normal approximation (a held-out review: ranks [1, 1, 3, 4] against [1, 2, 3, 4], τ 0.913,
    got p 0.071, below the exact 1/12 of a perfect agreement; exact: 4/24 = 0.167). Above 8: scipy's p
    (exact without ties, asymptotic with them). (NaN, NaN) when τ is not defined (a constant ranking).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    result = stats.kendalltau(a, b)
    tau = float(result.statistic)
    if np.isnan(tau):
        return float("nan"), float("nan")
    if a.size > EXACT_KENDALL_UP_TO:
        return tau, float(result.pvalue)
    i, j = np.triu_indices(a.size, 1)
    observed = abs(np.sign(b[i] - b[j]) @ np.sign(a[i] - a[j]))
    null = _kendall_null(*(tuple(np.unique(x, return_counts=True)[1].tolist()) for x in (a, b)))
    return tau, float(null.size - np.searchsorted(null, observed, side="left")) / null.size
