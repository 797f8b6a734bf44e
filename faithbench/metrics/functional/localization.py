"""Localisation of saliency against a mask of the target-relevant region.

Every function maps ``saliency (B, *spatial)`` and a bool ``mask (B, *spatial)`` to ``(B,)``;
a sample whose mask is empty gets NaN (the score is undefined there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check(saliency: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    if saliency.shape != mask.shape:
        raise ValueError(f"expected mask of shape {tuple(saliency.shape)} to match the saliency, "
                         f"got {tuple(mask.shape)}")
    return saliency.flatten(1).float(), mask.flatten(1).bool()


def dilate(mask: Tensor, tolerance: int) -> Tensor:
    """Grow a bool mask ``(B, *spatial)`` by ``tolerance`` pixels (a (2t+1)^d cube)."""
    if tolerance <= 0:
        return mask.bool()
    pool = F.max_pool2d if mask.ndim == 3 else F.max_pool3d
    k = 2 * tolerance + 1
    return pool(mask[:, None].float(), k, stride=1, padding=tolerance)[:, 0] > 0


def area_fraction(mask: Tensor) -> Tensor:
    """Fraction of features inside the mask: the chance level of most localisation scores."""
    return mask.flatten(1).float().mean(dim=1)


def pointing_game(saliency: Tensor, mask: Tensor, *, tolerance: int = 0,
                  generator: torch.Generator | None = None) -> Tensor:
    """1.0 if the maximum of the saliency falls inside the (dilated) mask, else 0.0
    (Zhang et al. 2018). Ties among maxima: one is chosen by a seeded random draw.
    Chance level: the dilated mask's area fraction."""
    m = dilate(mask, tolerance)
    s, m = _check(saliency, m)
    is_max = s == s.max(dim=1, keepdim=True).values
    keys = torch.rand(s.shape, generator=generator).to(s.device)
    pick = torch.where(is_max, keys, torch.full_like(keys, -1.0)).argmax(dim=1)
    hit = m.gather(1, pick[:, None])[:, 0].float()
    return torch.where(m.any(dim=1), hit, torch.full_like(hit, float("nan")))


def relevance_mass(saliency: Tensor, mask: Tensor) -> Tensor:
    """Share of the positive saliency inside the mask (Arras et al. 2022, relevance mass
    accuracy; Wang et al. 2020, energy-based pointing game):

        sum_{i in M} max(s_i, 0) / sum_i max(s_i, 0).

    NaN if the mask is empty or no saliency is positive. Chance level: the area fraction."""
    s, m = _check(saliency, mask)
    pos = s.clamp(min=0)
    total = pos.sum(dim=1)
    inside = (pos * m).sum(dim=1)
    value = inside / total
    undefined = (total <= 0) | ~m.any(dim=1)
    return torch.where(undefined, torch.full_like(value, float("nan")), value)
