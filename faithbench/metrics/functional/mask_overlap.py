"""Localisation scores of saliency against a mask (Kohlbrenner et al. 2020; Theiner et al. 2021;
ROC AUC). Every function maps ``saliency (B, *spatial)`` and a bool ``mask (B, *spatial)``, 2D or
3D, to ``(B,)``; a sample whose mask is empty (or, for ROC AUC, full) gets NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from faithbench.metrics.functional.perturbation import feature_ranks
from faithbench.metrics.functional.similarity import rankdata
from faithbench.seeds import Generators, or_row_generators


def _check(saliency: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    if saliency.shape != mask.shape:
        raise ValueError(f"expected mask of shape {tuple(saliency.shape)} to match the saliency, "
                         f"got {tuple(mask.shape)}")
    return saliency.flatten(1).double(), mask.flatten(1).bool()


def attribution_localisation(saliency: Tensor, mask: Tensor, *, weighted: bool = False) -> Tensor:
    """Attribution localisation (Kohlbrenner et al. 2020, "Towards best practice in explaining
    neural network decisions with LRP"): the share of the (non-negative: post-process first)
    attribution inside the mask, μ = R_in / R_tot; ``weighted``: μ_w = μ · N / |M|, so that a
    uniform map scores 1. NaN for an empty mask, no attribution, or a negative attribution anywhere
    (``postprocess: none`` on a signed map: μ is then no share; a review got 2.0 and -1.0)."""
    s, m = _check(saliency, mask)
    total, inside = s.sum(1), (s * m).sum(1)
    value = inside / torch.where(total != 0, total, torch.ones_like(total))
    area = m.sum(1)
    if weighted:
        value = value * m.shape[1] / area.clamp(min=1)
    undefined = (total <= 0) | (area == 0) | (s < 0).any(1)
    return value.masked_fill(undefined, float("nan")).float()


def top_k_intersection(saliency: Tensor, mask: Tensor, k: int, *, generator: Generators = None) -> Tensor:
    """Top-k intersection (Theiner et al. 2021, "Interpretable semantic photo geolocation"): the
    share of the k most salient features that lie in the mask, |top_k(s) ∩ M| / k. Ties at the
    k-th value by a seeded permutation (``generator`` as in
    :mod:`~faithbench.metrics.functional.localization`: None seeds each row from 0 and its map and
    mask). NaN for an empty mask."""
    s, m = _check(saliency, mask)
    n = s.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"top_k_intersection: expected 1 <= k <= {n} (features per sample), got k = {k}")
    ranks = feature_ranks(saliency, generator=or_row_generators(generator, saliency, mask)).flatten(1).to(m.device)
    value = (m & (ranks < k)).sum(1).double() / k
    return value.masked_fill(~m.any(1), float("nan")).float()


def roc_auc(saliency: Tensor, mask: Tensor) -> Tensor:
    """Area under the ROC curve of the saliency as a per-pixel score for the mask: the
    probability that a feature inside M outranks one outside, ties counting one half
    (Mann-Whitney U / (|M| |M̄|), from average ranks; = ``sklearn.metrics.roc_auc_score``).
    Chance 0.5. NaN for an empty or full mask."""
    s, m = _check(saliency, mask)
    ranks = rankdata(s)
    pos = m.sum(1).double()
    neg = m.shape[1] - pos
    u = (ranks * m).sum(1) - pos * (pos + 1) / 2
    value = u / (pos * neg).clamp(min=1)
    return value.masked_fill((pos == 0) | (neg == 0), float("nan")).float()


__all__ = ["attribution_localisation", "roc_auc", "top_k_intersection"]
