"""Metrics over time for sequences ``x (B, C, T, H, W)`` and saliency ``(B, T, H, W)`` (time =
the first spatial axis; see :mod:`faithbench.datasets.longitudinal`).

- The importance of visit t is the sum of its saliency over space: ``I[b, t] = Σ_{h,w} s[b,t,h,w]``.
- ``valid (B, T)`` bool marks real visits (False on padding frames); without it every visit counts.
- Temporal deletion / insertion (RISE's curves with whole visits as the features): rank the real
  visits by importance (descending, seeded tie-break; padding frames last, where replacing them
  is a no-op), and for k = 0..T take the top k visits out (deletion) or keep only them
  (insertion); AUC by the trapezoid over k / T. A visit taken out becomes the padding frame in
  place (``replace``) or leaves the sequence, which is padded again at the beginning (``remove``).
- Visit pointing: 1 if the most important real visit (seeded tie-break) holds the deciding
  change, i.e. its ``change`` mask is not empty; chance = (#real visits with the change) / (#real).
- A sample no map can score otherwise is undefined (NaN): one real visit for the curves (every
  ranking takes that visit first), a change on none or on every real visit for visit pointing
  (every map misses, or hits at chance 1).
- Per-visit localisation: a 2D localisation score computed in each visit whose mask is not empty,
  averaged over those visits.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from faithbench.metrics.functional.perturbation import (Predict, Score, auc, feature_ranks, perturbation_curve,
                                                       score_logits)
from faithbench.metrics.functional.localization import area_fraction, dilate, pointing_game, relevance_mass
from faithbench.seeds import Generators


def _check_sequence(x: Tensor, saliency: Tensor) -> None:
    if x.ndim != 5:
        raise ValueError(f"expected a sequence batch x of shape (B, C, T, H, W), got {tuple(x.shape)}")
    if tuple(saliency.shape) != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"expected saliency of shape {(x.shape[0], *x.shape[2:])} to match the sequence, "
                         f"got {tuple(saliency.shape)}")


def visit_importance(saliency: Tensor) -> Tensor:
    """``(B, T, *space) -> (B, T)`` float64: the sum of each visit's saliency over space (in float64: a
    finite float32 map of |s| ~ 1e36 summed to inf in float32, and could not be ranked; a review)."""
    return saliency.flatten(2).sum(dim=2, dtype=torch.float64)


def visits_valid(valid: Tensor | None, b: int, t: int, device: torch.device | None = None, *,
                 what: str = "a validity mask") -> Tensor:
    """``(B, T)`` validity from a per-visit ``(B, T)`` or per-voxel ``(B, T, *space)`` mask (a visit is
    real if any of its voxels is), or all True when ``valid`` is None. ``what`` names the mask in the
    error (visit pointing's change mask is read by it too: a review was pointed at the validity mask)."""
    if valid is None:
        return torch.ones(b, t, dtype=torch.bool, device=device)
    valid = valid.bool()
    out = valid.flatten(2).any(dim=2) if valid.ndim > 2 else valid
    if tuple(out.shape) != (b, t):
        raise ValueError(f"expected {what} of shape ({b}, {t}, ...), got {tuple(valid.shape)}")
    return out


def visit_ranks(importance: Tensor, valid: Tensor, *, generator: Generators = None) -> Tensor:
    """Rank of each visit, 0 = most important: ``(B, T)`` long. Real visits by importance
    (descending, ties by a seeded permutation), then padding frames (in the permutation's order).

    Lexicographic, (real before padding, importance): no key value stands for padding (a key just
    below the lowest real visit, nextafter(0, -inf) for an all-zero map, is a denormal that
    ``torch.set_flush_denormal(True)`` reads as 0, and padding then tied with the real visits and
    could come first; a review). The permutation is drawn over all T visits, as before, so the
    ranks of the real visits do not change."""
    importance = importance.double()
    valid = valid.to(importance.device).bool()
    by_importance = feature_ranks(torch.where(valid, importance, torch.zeros_like(importance)), generator=generator)
    key = by_importance + (~valid).long() * importance.shape[1]  # every padding visit after every real one
    return key.argsort(dim=1).argsort(dim=1)


def keep_visits(x: Tensor, keep: Tensor, pad_value: float = 0.0) -> Tensor:
    """The visits of ``x (B, C, T, H, W)`` where ``keep (B, T)``, in time order, right-aligned, with
    padding frames at the beginning: the sequence of a patient who had only those visits (the
    datasets' padding protocol)."""
    out = torch.full_like(x, float(pad_value))
    t = x.shape[2]
    for b in range(x.shape[0]):
        idx = keep[b].nonzero()[:, 0].to(x.device)
        if len(idx):
            out[b, :, t - len(idx):] = x[b, :, idx]
    return out


REMOVAL_MODES = ("replace", "remove")


@torch.no_grad()
def temporal_curve(predict: Predict, x: Tensor, target: Tensor, ranks: Tensor, *, pad_value: float = 0.0,
                   insertion: bool, score: Score = "prob", max_batch: int = 256,
                   mode: str = "replace") -> tuple[Tensor, Tensor]:
    """Scores ``(B, T + 1)`` after taking out the top k = 0..T visits of ``ranks (B, T)``
    (deletion), or keeping only them (insertion); and the fractions k / T ``(T + 1,)``.

    ``mode="replace"``: a visit taken out becomes the padding frame in place (insertion starts from
    an all-padding sequence). ``mode="remove"``: it is removed from the sequence, the earlier
    visits move one step later and a padding frame enters at the beginning
    (:func:`keep_visits`), so every perturbed sequence looks like a shorter patient history, as the
    model saw in training (padding only ever at the beginning).
    """
    if x.ndim != 5 or tuple(ranks.shape) != (x.shape[0], x.shape[2]):
        raise ValueError(f"expected x (B, C, T, H, W) and visit ranks (B, T), got {tuple(x.shape)} and "
                         f"{tuple(ranks.shape)}")
    if mode not in REMOVAL_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(REMOVAL_MODES)}")
    t = x.shape[2]
    if mode == "replace":
        voxel_ranks = ranks.to(x.device).reshape(*ranks.shape, 1, 1).expand(-1, -1, *x.shape[3:])
        replacement = torch.full_like(x, float(pad_value))
        return perturbation_curve(predict, x, target, voxel_ranks, replacement, insertion=insertion, score=score,
                                  max_batch=max_batch, counts=torch.arange(t + 1))
    ranks = ranks.to(x.device)
    scores = torch.empty(x.shape[0], t + 1, dtype=torch.float64, device=x.device)
    for k in range(t + 1):
        keep = ranks < k if insertion else ranks >= k
        seq = keep_visits(x, keep, pad_value)
        scores[:, k] = torch.cat([score_logits(predict(seq[i:i + max_batch]), target[i:i + max_batch], score)
                                  for i in range(0, len(seq), max_batch)])
    return scores, torch.arange(t + 1, dtype=torch.float64) / t


def single_visit(valid: Tensor) -> Tensor:
    """``(B,)`` bool: sequences with fewer than two real visits, ``valid (B, T)``. Every ranking of their visits
    takes the one real visit first (padding last), so every map gets the same curve: the temporal deletion and
    insertion AUCs are undefined there (NaN; a review: 0.546 for every explainer at seq_len 1)."""
    return valid.sum(dim=1) < 2


def undefine(value: Tensor, undefined: Tensor) -> Tensor:
    """``value`` with NaN where ``undefined (B,)``."""
    return torch.where(undefined.to(value.device), torch.full_like(value, float("nan")), value)


def temporal_deletion_auc(predict: Predict, x: Tensor, target: Tensor, saliency: Tensor, *,
                          valid: Tensor | None = None, pad_value: float = 0.0, score: Score = "prob",
                          generator: Generators = None, max_batch: int = 256,
                          mode: str = "replace") -> Tensor:
    """Temporal deletion AUC per sample ``(B,)``; lower is better; NaN for a sequence of one real visit."""
    _check_sequence(x, saliency)
    real = visits_valid(valid, x.shape[0], x.shape[2], saliency.device)
    ranks = visit_ranks(visit_importance(saliency), real, generator=generator)
    return undefine(auc(*temporal_curve(predict, x, target, ranks, pad_value=pad_value, insertion=False, score=score,
                                        max_batch=max_batch, mode=mode)), single_visit(real))


def temporal_insertion_auc(predict: Predict, x: Tensor, target: Tensor, saliency: Tensor, *,
                           valid: Tensor | None = None, pad_value: float = 0.0, score: Score = "prob",
                           generator: Generators = None, max_batch: int = 256,
                           mode: str = "replace") -> Tensor:
    """Temporal insertion AUC per sample ``(B,)``; higher is better; NaN for a sequence of one real visit."""
    _check_sequence(x, saliency)
    real = visits_valid(valid, x.shape[0], x.shape[2], saliency.device)
    ranks = visit_ranks(visit_importance(saliency), real, generator=generator)
    return undefine(auc(*temporal_curve(predict, x, target, ranks, pad_value=pad_value, insertion=True, score=score,
                                        max_batch=max_batch, mode=mode)), single_visit(real))


def visit_pointing(importance: Tensor, change: Tensor, valid: Tensor | None = None, *,
                   generator: Generators = None) -> tuple[Tensor, Tensor]:
    """Visit pointing: does the most important real visit hold the deciding change?

    importance ``(B, T)``; change ``(B, T)`` or ``(B, T, *space)`` bool (a visit holds the change if
    any of its voxels is set); valid as in :func:`visits_valid`. Returns the hit (1.0 / 0.0) and the
    chance level |change ∩ valid| / |valid|, both ``(B,)``; NaN (undefined) when no real visit holds the
    change, or every real visit does (every map hits, at chance 1: one real visit, or a mask such as
    ``valid`` or an anatomy mask set on every visit; a review found a column of 1.000 = chance).
    Ties among the most important visits: one drawn by the seeded permutation.
    """
    b, t = importance.shape
    holds = visits_valid(change, b, t, importance.device, what="a change mask")
    real = visits_valid(valid, b, t, importance.device)
    target = holds & real
    ranks = visit_ranks(importance, real, generator=generator).to(importance.device)
    hit = target.gather(1, ranks.argmin(dim=1, keepdim=True))[:, 0].float()
    chance = target.sum(1).float() / real.sum(1).clamp(min=1).float()
    defined = target.any(dim=1) & (target != real).any(dim=1)  # some real visit without the change
    nan = torch.full_like(hit, float("nan"))
    return torch.where(defined, hit, nan), torch.where(defined, chance, nan)


def _visit_values(score: Callable[[Tensor, Tensor], Tensor], saliency: Tensor, mask: Tensor) -> Tensor:
    """``score`` in every visit, ``(B, T)``, NaN in the visits whose mask is empty."""
    if saliency.shape != mask.shape or saliency.ndim < 3:
        raise ValueError(f"expected saliency and mask of one shape (B, T, *space), got {tuple(saliency.shape)} "
                         f"and {tuple(mask.shape)}")
    b, t = saliency.shape[:2]
    values = score(saliency.reshape(b * t, *saliency.shape[2:]), mask.reshape(b * t, *mask.shape[2:])).view(b, t)
    present = mask.flatten(2).any(dim=2)
    return torch.where(present, values, torch.full_like(values, float("nan")))


def per_visit(score: Callable[[Tensor, Tensor], Tensor], saliency: Tensor, mask: Tensor) -> Tensor:
    """A 2D localisation ``score(saliency (N, H, W), mask (N, H, W)) -> (N,)`` computed in every
    visit of ``(B, T, H, W)`` and averaged over the visits whose mask is not empty (and whose score
    is defined): ``(B,)``, NaN when no visit has the region."""
    return _visit_values(score, saliency, mask).nanmean(dim=1)


def per_visit_with_chance(score: Callable[[Tensor, Tensor], Tensor], chance: Callable[[Tensor], Tensor],
                          saliency: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`per_visit` of ``score`` and of ``chance(mask)``, the chance averaged over the same
    visits as the value (a visit whose score is undefined leaves both: a review found relevance mass
    0.559 over one visit against a chance of 0.258 averaged over two)."""
    values = _visit_values(score, saliency, mask)
    levels = _visit_values(lambda _s, m: chance(m), saliency, mask)
    return values.nanmean(dim=1), torch.where(values.isnan(), values, levels).nanmean(dim=1)


def visit_pointing_game(saliency: Tensor, mask: Tensor, *, tolerance: int = 0,
                        generator: Generators = None) -> tuple[Tensor, Tensor]:
    """Pointing game within each visit that holds the region, averaged (value, chance) ``(B,)``;
    chance: the mean (dilated) area fraction of the region in those visits. A sequence of B generators
    draws the T visits of sequence i, in turn, from its i-th."""
    if generator is not None and not isinstance(generator, torch.Generator):
        generator = [g for g in generator for _ in range(saliency.shape[1])]
    return per_visit_with_chance(lambda s, m: pointing_game(s, m, tolerance=tolerance, generator=generator),
                                 lambda m: area_fraction(dilate(m, tolerance)), saliency, mask)


def visit_relevance_mass(saliency: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Relevance mass within each visit that holds the region (the share of that visit's positive
    saliency inside the region), averaged over those where it is defined (some positive saliency);
    chance: the mean area fraction over the same visits. ``(B,)`` each."""
    return per_visit_with_chance(relevance_mass, area_fraction, saliency, mask)


__all__ = ["REMOVAL_MODES", "keep_visits", "per_visit", "single_visit", "temporal_curve", "temporal_deletion_auc",
           "temporal_insertion_auc", "undefine", "visit_importance", "visit_pointing", "visit_pointing_game",
           "visit_ranks", "visit_relevance_mass", "visits_valid"]
