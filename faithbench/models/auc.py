"""ROC AUCs of a checkpoint's test predictions and their percentile bootstrap intervals
(``models.csv``: ``auc``, ``auc_ci_low``, ``auc_ci_high`` and the per-class columns).

The scores ranked are the log-odds of each class (:func:`class_log_odds`), in float64: float32
softmax probabilities of a confident model round to exactly 1.0 and tie (a held-out review: a
model whose logits were multiplied by 8, the same ranking, had 621 distinct scores collapse to 13,
its AUC 0.511 instead of sklearn's 0.5595, and was marked at chance).
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor

__all__ = ["MIN_CI_PER_CLASS", "auc_ci", "auc_exact_p", "binary_auc", "class_auc_cis", "class_log_odds",
           "macro_auc_permutation_p"]

# A binary AUC's bootstrap CI needs at least this many test samples of each class: with 1 of each, every
# resample with both classes repeats their order, and the CI [1.0, 1.0] looked meaningful (a fuzzing
# review); with 5 of each, a perfect ranking by chance has probability 1 / C(10, 5) = 0.004.
MIN_CI_PER_CLASS = 5


def class_log_odds(logits: Tensor) -> np.ndarray:
    """log(p_c / (1 - p_c)) of each class c of the softmax of ``logits (N, K)``, K >= 2, as
    ``(N, K)`` float64: l_c - logsumexp_{j != c} l_j, in the order of p_c without its rounding to 1
    (two classes: l_1 - l_0 and its negation)."""
    z = logits.detach().double().cpu()
    k = z.shape[-1]
    return torch.stack([z[:, c] - torch.cat([z[:, :c], z[:, c + 1:]], dim=1).logsumexp(-1)
                        for c in range(k)], dim=1).numpy()


def binary_auc(score: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC by the Mann–Whitney statistic (ties count one half)."""
    pos, neg = y == 1, y == 0
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum()))


def auc_exact_p(score: np.ndarray, y: np.ndarray) -> float:
    """One-sided exact p-value of the Mann–Whitney U test that the positives score higher (AUC > 0.5):
    ``scipy.stats.mannwhitneyu(..., alternative="greater", method="exact")`` on untied scores; with ties,
    whose null distribution that exact method ignores (a diff review: 2 + 8 tied scores, AUC 0.938, gave
    0.044 where the tie-aware test gives 0.067), a permutation test of U (``scipy.stats.permutation_test``:
    exact over the distinct splits where there are at most 9999, else 9999 seeded resamples; a class of one
    sample, which scipy's test refuses, exactly: its midrank against each of the n places it could take). NaN
    without both classes. Meant for a class of few samples, where no bootstrap CI is given (:data:`MIN_CI_PER_CLASS`):
    it tells a perfect ranking of 4 + 4 (1/70 = 0.014) from one of 1 + 1 (0.5); scipy's exact distribution
    grows with both counts (14.6 s at 500 + 500)."""
    from scipy.stats import mannwhitneyu, permutation_test, rankdata

    pos, neg = np.asarray(score)[np.asarray(y) == 1], np.asarray(score)[np.asarray(y) == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    if np.unique(np.concatenate([pos, neg])).size == pos.size + neg.size:
        return float(mannwhitneyu(pos, neg, alternative="greater", method="exact").pvalue)
    if min(len(pos), len(neg)) == 1:  # a diff review: permutation_test needs two samples a group (every cell failed)
        ranks = rankdata(np.concatenate([pos, neg]))  # U grows with the positives' midranks; n equally likely places
        if len(pos) == 1:
            return float(np.mean(ranks >= ranks[0] - 1e-9))
        return float(np.mean(ranks <= ranks[-1] + 1e-9))
    return float(permutation_test((pos, neg), lambda a, b, axis: mannwhitneyu(a, b, axis=axis).statistic,
                                  permutation_type="independent", alternative="greater", n_resamples=9999,
                                  vectorized=True, random_state=0).pvalue)


def macro_auc_permutation_p(scores: np.ndarray, labels: np.ndarray, n_resamples: int = 9999, seed: int = 0) -> float:
    """One-sided p of the macro one-vs-rest AUC of single-label ``scores (N, K)`` (one column per class) against
    class indices ``labels (N,)``, K > 2, under exchangeable labels: the share of the label arrangements (the
    class sizes kept) whose macro AUC, over the classes present, is at least the observed one. Exact over the
    distinct arrangements where there are at most ``n_resamples`` (3 classes of 1: 6, so a perfect ranking gets
    1/6; 3 of 3: 1680), else ``n_resamples`` permutations from ``numpy.random.default_rng(seed)`` with
    p = (b + 1) / (m + 1), as ``scipy.stats.permutation_test`` (which refuses a class of one sample).
    The k > 2 twin of :func:`auc_exact_p` for a test split with fewer than :data:`MIN_CI_PER_CLASS` of a
    class (a review: 3 classes of 1 image gave the bootstrap CI [1.0, 1.0], and 14% of random models passed).
    NaN with fewer than two classes present."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels).astype(int)
    present = [c for c in range(s.shape[1]) if (y == c).any()]
    if len(present) < 2:
        return float("nan")
    n, sizes = len(y), [int((y == c).sum()) for c in present]
    ranks = np.stack([rankdata(s[:, c]) for c in present], axis=1)  # the labels move, the ranks stay
    group = np.searchsorted(present, y)  # each sample's index among the classes present

    def macro(arranged: np.ndarray) -> np.ndarray:  # (B, N) group indices -> (B,) macro AUCs
        return np.mean([((arranged == j) @ ranks[:, j] - m * (m + 1) / 2) / (m * (n - m))
                        for j, m in enumerate(sizes)], axis=0)

    observed = float(macro(group[None])[0]) - 1e-12  # float noise of an equal arrangement counts as equal
    count = int(np.prod([comb(sum(sizes[j:]), m) for j, m in enumerate(sizes)], dtype=object))
    if count <= n_resamples:
        return float(np.mean(macro(_arrangements(sizes, n)) >= observed))
    rng, hits, chunk = np.random.default_rng(seed), 0, max(1, 2_000_000 // n)  # chunks of a few MB
    for start in range(0, n_resamples, chunk):
        drawn = np.stack([rng.permutation(group) for _ in range(min(chunk, n_resamples - start))])
        hits += int((macro(drawn) >= observed).sum())
    return (hits + 1) / (n_resamples + 1)


def _arrangements(sizes: list[int], n: int) -> np.ndarray:
    """Every distinct assignment of ``n`` places to groups 0.. of these ``sizes``, (M, n) group indices."""
    rows = [np.full(n, len(sizes) - 1)]
    for j, size in enumerate(sizes[:-1]):
        rows = [np.where(np.isin(np.arange(n), pick), j, row) for row in rows
                for pick in combinations(np.flatnonzero(row == len(sizes) - 1), size)]
    return np.stack(rows)


_MAX_DRAWS_PER_CHUNK = 500_000  # bootstrap indices drawn at once (a few arrays of 4 MB)


def _resampled_aucs(score: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The Mann–Whitney AUC (ties one half) of each resample ``score[idx[b]], y[idx[b]]``, (B,):
    a resample is the original samples with multiplicities, so one sort serves every resample."""
    b, n = idx.shape
    order = np.argsort(score, kind="stable")
    s, pos = score[order], y[order] == 1
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[order] = np.arange(n)
    weight = np.zeros((b, n))
    np.add.at(weight, (np.repeat(np.arange(b), n), rank_of[idx].ravel()), 1.0)  # multiplicity, sorted order
    neg_below = np.concatenate([np.zeros((b, 1)), np.cumsum(weight * ~pos, axis=1)], axis=1)
    first = np.searchsorted(s, s, side="left")  # each sample's tie group [first, last) in sorted order
    last = np.searchsorted(s, s, side="right")
    below, tied = neg_below[:, first], neg_below[:, last] - neg_below[:, first]
    n_pos, n_neg = (weight * pos).sum(1), (weight * ~pos).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((weight * pos) * (below + 0.5 * tied)).sum(1) / (n_pos * n_neg)


def auc_ci(scores, labels, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the ROC AUC (Efron & Tibshirani 1993, ch. 13), resampling samples.

    ``scores (N,)`` and 0/1 ``labels (N,)``: the binary AUC of :func:`binary_auc`; ``scores (N, K)``
    and 0/1 ``labels (N, K)``: the macro mean over the K classes of the one-vs-rest AUCs (classes
    with an undefined AUC in a resample left out). Draw ``n_boot`` resamples of the N rows with
    replacement (indices from ``numpy.random.default_rng(seed)``, shape (n_boot, N)), take each
    resample's AUC A*_b and return the quantiles ``(Q_{(1-level)/2}(A*), Q_{(1+level)/2}(A*))`` over
    the resamples where it is defined. Defaults: 1000 resamples, seed 0, level 0.95; (NaN, NaN)
    when no resample has both classes, and for the binary AUC when a class has fewer than
    :data:`MIN_CI_PER_CLASS` samples. A model whose interval does not lie above 0.5 is at chance.
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    if s.shape != y.shape or s.ndim not in (1, 2) or len(s) == 0:
        raise ValueError(f"expected scores and labels of the same shape (N,) or (N, K), N > 0, got {s.shape} "
                         f"and {y.shape}")
    if not 0 < level < 1:
        raise ValueError(f"expected 0 < level < 1, got {level}")
    if s.ndim == 1 and min(int((y == 1).sum()), int((y == 0).sum())) < MIN_CI_PER_CLASS:
        return float("nan"), float("nan")
    return _macro_interval(_bootstrap_aucs(s, y, n_boot, seed), level)


def class_auc_cis(scores, labels, n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> list[tuple[float, float]]:
    """Per class of multi-label ``scores (N, K)`` and 0/1 ``labels (N, K)``: the percentile bootstrap
    CI of its one-vs-rest AUC, from the same resamples as :func:`auc_ci`'s macro interval (the
    resamples where that class's AUC is defined; (NaN, NaN) where none is, and, as :func:`auc_ci`'s binary
    rule, where the class has fewer than :data:`MIN_CI_PER_CLASS` positive or negative samples: 1 positive
    ranked first gave [1.0, 1.0], a review). A class whose interval does not lie above 0.5 is at chance
    though the macro AUC is not."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    if s.shape != y.shape or s.ndim != 2 or len(s) == 0:
        raise ValueError(f"expected scores and labels of the same shape (N, K), N > 0, got {s.shape} and {y.shape}")
    return _class_intervals(_bootstrap_aucs(s, y, n_boot, seed), y, level)


def macro_and_class_cis(scores, labels, n_boot: int = 1000, seed: int = 0, level: float = 0.95
                        ) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """:func:`auc_ci`'s macro interval and :func:`class_auc_cis`'s per-class intervals (NaN for a class of
    fewer than :data:`MIN_CI_PER_CLASS` positives or negatives) of multi-label ``scores (N, K)`` against 0/1
    ``labels (N, K)``, from one set of resamples (drawn once, not twice)."""
    y = np.asarray(labels)
    boot = _bootstrap_aucs(np.asarray(scores, dtype=float), y, n_boot, seed)
    return _macro_interval(boot, level), _class_intervals(boot, y, level)


def _bootstrap_aucs(s: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, K)`` AUCs of each class on each resample of the rows (NaN: undefined there)."""
    s, y = (s[:, None], y[:, None]) if s.ndim == 1 else (s, y)
    y = y.astype(int)
    rng = np.random.default_rng(seed)
    n = len(s)
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // n)
    parts = []
    for start in range(0, int(n_boot), chunk):
        idx = rng.integers(0, n, size=(min(chunk, int(n_boot) - start), n))
        parts.append(np.stack([_resampled_aucs(s[:, c], y[:, c], idx) for c in range(s.shape[1])], axis=1))
    return np.concatenate(parts)


def _macro_interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    """The interval of the macro AUC over the resamples of ``boot (n_boot, K)`` where it is defined."""
    defined = ~np.all(np.isnan(boot), axis=1)
    return _interval(np.nanmean(boot[defined], axis=1) if defined.any() else np.empty(0), level)


def _class_intervals(boot: np.ndarray, labels: np.ndarray, level: float) -> list[tuple[float, float]]:
    """Each class's interval over the resamples of ``boot (n_boot, K)`` where its AUC is defined; (NaN, NaN)
    for a class of 0/1 ``labels (N, K)`` with fewer than :data:`MIN_CI_PER_CLASS` positives or negatives."""
    positives = (labels == 1).sum(axis=0)
    smaller = np.minimum(positives, len(labels) - positives)
    return [_interval(boot[~np.isnan(boot[:, c]), c], level) if smaller[c] >= MIN_CI_PER_CLASS
            else (float("nan"), float("nan")) for c in range(boot.shape[1])]


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)
