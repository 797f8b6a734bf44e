"""Complexity of an explanation: how concentrated is the saliency? Every function maps
``saliency (B, *spatial)`` (2D or 3D, non-negative: the metrics apply ``abs`` first) to ``(B,)``;
an all-zero map has no distribution and gets NaN (``effective_complexity``: 0 features).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _flat(saliency: Tensor) -> Tensor:
    a = saliency.flatten(1).double()
    if (a < 0).any():
        raise ValueError("expected non-negative saliency (apply abs or relu first), got negative values")
    return a


def sparseness(saliency: Tensor) -> Tensor:
    """Gini index of the saliency (Chalasani et al. 2020, "Concise explanations of neural networks
    using adversarial training"), with a_(1) <= .. <= a_(n) the sorted values:

        G = Σ_i (2i - n - 1) a_(i) / (n Σ_i a_(i)),

    0 for a uniform map, (n - 1) / n when one feature holds everything. Higher is sparser."""
    a = _flat(saliency).sort(dim=1).values
    n = a.shape[1]
    i = _positions(n, a)
    total = a.sum(1)
    value = ((2 * i - n - 1) * a).sum(1) / (n * total)
    return _nan_where(value, total <= 0)


def complexity(saliency: Tensor) -> Tensor:
    """Entropy of the fractional contributions (Bhatt et al. 2020, "Evaluating and aggregating
    feature-based model explanations"): p_i = a_i / Σ_j a_j, H = -Σ_i p_i ln p_i (0 ln 0 = 0);
    0 when one feature holds everything, ln n for a uniform map. Lower is simpler."""
    a = _flat(saliency)
    total = a.sum(1, keepdim=True)
    p = a / total.clamp(min=1e-300)
    value = 0.0 - (p * p.clamp(min=1e-300).log()).sum(1)  # 0.0, not -0.0, for one feature (a review)
    return _nan_where(value, total[:, 0] <= 0)


def effective_complexity(saliency: Tensor, eps: float = 1e-5) -> Tensor:
    """Effective complexity (Nguyen & Martinez 2020, "On quantitative aspects of model
    interpretability"): the number of features whose |saliency| exceeds ``eps``, |{i : |a_i| > eps}|
    (the metric divides each map by its own maximum first, so eps is relative to that map; Quantus
    0.6.0 divides by the batch's maximum). Lower is simpler."""
    return (saliency.flatten(1).abs() > eps).sum(1).float()


def _positions(n: int, like: Tensor) -> Tensor:
    return torch.arange(1, n + 1, dtype=like.dtype, device=like.device)


def _nan_where(value: Tensor, undefined: Tensor) -> Tensor:
    return value.masked_fill(undefined, float("nan")).float()


__all__ = ["complexity", "effective_complexity", "sparseness"]
