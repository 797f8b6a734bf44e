"""The CheXlocalize protocol (Saporta et al. 2022, "Benchmarking saliency methods for chest X-ray
interpretation", Nature Machine Intelligence 4:867-878; code: rajpurkarlab/cheXlocalize).

A heat map becomes a segmentation, which is scored against the ground-truth mask:

1. min-max normalise each map to [0, 1] (a constant map becomes all zeros);
2. binarise: ``normalised > t`` with t from Otsu's method per map (the default; 256 bins over
   [0, 1], as ``skimage.filters.threshold_otsu(normalised, nbins=256)``; CheXlocalize runs
   OpenCV's Otsu on the map scaled to uint8, the same histogram), or a fixed t in [0, 1], e.g.
   tuned on validation maps per class with :func:`tune_threshold` (maximises mIoU);
3. probability gating (optional): a map whose target probability p is not above the gate
   (p <= gate) becomes an empty segmentation (CheXlocalize keeps the map when p > cutoff);
   :func:`tune_gate` picks the gate on validation data;
4. per sample: IoU = |S ∩ M| / |S ∪ M| (mIoU is its mean) and hit = 1 if the map's maximum lies
   in M (pointing; a gated map has no maximum: 0). A sample whose mask is empty gets NaN, as
   ``calculate_iou``/``get_hit_rates`` of CheXlocalize.

Chance levels: hit -> the mask's area fraction |M| / N; IoU -> the expected IoU of a random
segmentation of the same size k = |S| as the one scored (ratio of expectations, as
:func:`~faithbench.metrics.functional.localization.iou_chance`): E|A∩M| = k |M| / N,
chance = E|A∩M| / (k + |M| - E|A∩M|) (0 for an empty segmentation).

Shapes: ``saliency`` and ``mask`` ``(B, *spatial)`` (2D or 3D), ``prob`` ``(B,)``; outputs ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from faithbench.metrics.functional.localization import pointing_game
from faithbench.metrics.functional.similarity import minmax

__all__ = ["DEFAULT_GATE_GRID", "DEFAULT_THRESHOLD_GRID", "OTSU_BINS", "binarize", "chexlocalize_hit",
           "chexlocalize_iou", "iou", "otsu_threshold", "random_iou_chance", "segment", "tune_gate",
           "tune_threshold"]

OTSU_BINS = 256
# CheXlocalize searches the map threshold over a grid and the probability cutoff over
# np.arange(0, 0.9, 0.1) (0.0 .. 0.8).
DEFAULT_THRESHOLD_GRID = tuple(round(0.1 * i, 1) for i in range(1, 10))
DEFAULT_GATE_GRID = tuple(round(0.1 * i, 1) for i in range(0, 9))


def _histogram(values: Tensor, bins: int) -> Tensor:
    """Counts ``(B, bins)`` of ``values (B, N)`` in [0, 1] over ``bins`` equal bins, last bin closed
    (the binning of ``np.histogram(v, bins, range=(0, 1))``, edge corrections included)."""
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64, device=values.device)
    idx = (values * bins).floor().long().clamp(0, bins - 1)
    idx = idx - (values < edges[idx]).long()
    idx = idx + ((values >= edges[(idx + 1).clamp(max=bins)]) & (idx != bins - 1)).long()
    idx = idx.clamp(0, bins - 1)
    counts = torch.zeros(values.shape[0], bins, dtype=torch.float64, device=values.device)
    return counts.scatter_add_(1, idx, torch.ones_like(values, dtype=torch.float64))


def otsu_threshold(saliency: Tensor, bins: int = OTSU_BINS) -> Tensor:
    """Otsu's threshold (Otsu 1979) of each min-max normalised map, in [0, 1], ``(B,)``.

    Histogram of ``bins`` bins over [0, 1] with centres c_i; for every split after bin i the
    between-class variance w1(i) w2(i+1) (μ1(i) - μ2(i+1))² (w: cumulative counts, μ: class
    means); the threshold is the centre of the bin that maximises it (the first on ties), as
    ``skimage.filters.threshold_otsu(minmax(saliency), nbins=bins)``. A constant map gets 0
    (its normalised values are all 0, so ``> 0`` selects nothing, as skimage's min)."""
    norm = minmax(saliency).flatten(1)
    counts = _histogram(norm, bins)
    centres = (torch.arange(bins, dtype=torch.float64, device=norm.device) + 0.5) / bins
    w1 = counts.cumsum(1)
    w2 = counts.flip(1).cumsum(1).flip(1)
    m1 = (counts * centres).cumsum(1) / w1.clamp(min=1e-300)
    m2 = (counts * centres).flip(1).cumsum(1).flip(1) / w2.clamp(min=1e-300)
    between = w1[:, :-1] * w2[:, 1:] * (m1[:, :-1] - m2[:, 1:]) ** 2
    threshold = centres[between.argmax(dim=1)]
    constant = norm.amax(1) == norm.amin(1)
    return torch.where(constant, torch.zeros_like(threshold), threshold)


def binarize(saliency: Tensor, threshold: str | float | Tensor = "otsu") -> Tensor:
    """Bool segmentation ``(B, *spatial)``: ``minmax(saliency) > t`` with t Otsu's per map
    (``"otsu"``), one float in [0, 1] for all maps, or a ``(B,)`` tensor of per-map values."""
    if isinstance(threshold, str):
        if threshold != "otsu":
            raise ValueError(f"expected threshold 'otsu' or a float in [0, 1], got {threshold!r}")
        t = otsu_threshold(saliency)
    elif isinstance(threshold, Tensor):
        t = threshold.double().to(saliency.device)
    else:
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"expected a threshold in [0, 1] (on the min-max normalised map), got {threshold}")
        t = torch.full((saliency.shape[0],), float(threshold), dtype=torch.float64, device=saliency.device)
    norm = minmax(saliency)
    return norm > t.reshape(-1, *[1] * (saliency.ndim - 1))


def _gated(prob: Tensor | None, gate: float | Tensor | None, b: int, device: torch.device) -> Tensor:
    """True where the map is kept (p > gate, or no gate); ``gate`` one float or a ``(B,)`` tensor of
    per-map gates (-inf: that map is never gated)."""
    if gate is None:
        return torch.ones(b, dtype=torch.bool, device=device)
    if prob is None:
        raise ValueError("a probability gate needs the target probabilities (prob), got None")
    if tuple(prob.shape) != (b,):
        raise ValueError(f"expected prob of shape ({b},), got {tuple(prob.shape)}")
    if isinstance(gate, Tensor):
        if tuple(gate.shape) != (b,):
            raise ValueError(f"expected per-map gates of shape ({b},), got {tuple(gate.shape)}")
        return prob.to(device).double() > gate.to(device).double()
    return prob.to(device) > gate


def segment(saliency: Tensor, threshold: str | float | Tensor = "otsu", prob: Tensor | None = None,
            gate: float | Tensor | None = None) -> Tensor:
    """The CheXlocalize segmentation ``(B, *spatial)`` bool: :func:`binarize`, then emptied where
    the target probability is not above ``gate`` (no gating when ``gate`` is None; a ``(B,)``
    tensor gives each map its own gate, as the per-class gates tuned on validation data)."""
    seg = binarize(saliency, threshold)
    keep = _gated(prob, gate, saliency.shape[0], saliency.device)
    return seg & keep.reshape(-1, *[1] * (saliency.ndim - 1))


def _check(saliency: Tensor, mask: Tensor) -> None:
    if saliency.shape != mask.shape:
        raise ValueError(f"expected mask of shape {tuple(saliency.shape)} to match the saliency, "
                         f"got {tuple(mask.shape)}")


def iou(segmentation: Tensor, mask: Tensor) -> Tensor:
    """|S ∩ M| / |S ∪ M| per sample ``(B,)``; NaN where M is empty (CheXlocalize)."""
    _check(segmentation, mask)
    s, m = segmentation.flatten(1).bool(), mask.flatten(1).bool()
    inter = (s & m).sum(1).double()
    union = (s | m).sum(1).double()
    value = inter / union.clamp(min=1)
    return torch.where(m.any(1), value, torch.full_like(value, float("nan"))).float()


def chexlocalize_iou(saliency: Tensor, mask: Tensor, *, threshold: str | float | Tensor = "otsu",
                     prob: Tensor | None = None, gate: float | Tensor | None = None) -> Tensor:
    """Per-sample IoU of the CheXlocalize segmentation with the mask (mean: mIoU); see the module
    docstring. NaN where the mask is empty."""
    _check(saliency, mask)
    return iou(segment(saliency, threshold, prob, gate), mask)


def chexlocalize_hit(saliency: Tensor, mask: Tensor, *, prob: Tensor | None = None,
                     gate: float | Tensor | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """Hit rate per sample: 1 if the map's maximum lies in the mask (ties among maxima by a seeded
    draw, as ``pointing_game``), 0 otherwise or when the map is gated (p <= gate); NaN where the
    mask is empty (CheXlocalize's ``get_hit_rates``)."""
    _check(saliency, mask)
    hit = pointing_game(saliency, mask, generator=generator)
    keep = _gated(prob, gate, saliency.shape[0], hit.device)
    return torch.where(keep | hit.isnan(), hit, torch.zeros_like(hit))


def random_iou_chance(segmentation: Tensor, mask: Tensor) -> Tensor:
    """Expected IoU with ``mask`` of a random segmentation of the same size as ``segmentation``
    (ratio of expectations; 0 for an empty segmentation, NaN for an empty mask), ``(B,)``."""
    _check(segmentation, mask)
    s, m = segmentation.flatten(1).bool(), mask.flatten(1).bool()
    n = m.shape[1]
    k, size = s.sum(1).double(), m.sum(1).double()
    inter = k * size / n
    value = inter / (k + size - inter).clamp(min=1e-300)
    value = torch.where(k > 0, value, torch.zeros_like(value))
    return torch.where(size > 0, value, torch.full_like(value, float("nan"))).float()


def tune_threshold(val_maps: Tensor, val_masks: Tensor, grid: Sequence[float] = DEFAULT_THRESHOLD_GRID) -> float:
    """The map threshold t in ``grid`` that maximises the validation mIoU, mean over the samples
    with a non-empty mask of IoU(minmax(map) > t, mask) (Saporta et al. 2022 tune one per class:
    call this once per class). Ties: the smallest t. ``val_maps``/``val_masks``: ``(N, *spatial)``."""
    _check(val_maps, val_masks)
    grid = [float(t) for t in grid]
    if not grid:
        raise ValueError("expected a non-empty grid of thresholds in [0, 1], got []")
    if not val_masks.flatten(1).any(1).any():
        raise ValueError("tune_threshold needs at least one validation sample with a non-empty mask")
    scores = [float(np.nanmean(iou(binarize(val_maps, t), val_masks).numpy())) for t in grid]
    best = max(range(len(grid)), key=lambda i: (scores[i], -grid[i]))  # ties: the smallest t
    return grid[best]


def tune_gate(val_probs: Tensor | Sequence[float], val_has_finding: Tensor | Sequence[bool],
              grid: Sequence[float] = DEFAULT_GATE_GRID, val_iou: Tensor | Sequence[float] | None = None) -> float:
    """The probability gate g in ``grid`` (default 0.0 .. 0.8, step 0.1, as CheXlocalize) that
    maximises the validation mIoU of the gated segmentations, where a sample scores

    - with a finding: its IoU if kept (p > g), 0 if gated;
    - without a finding: 1 if gated (empty segmentation, empty mask), 0 if kept.

    ``val_iou`` (per-sample IoU of the ungated segmentation; NaN/ignored for samples without a
    finding) defaults to 1 for every finding, which makes the criterion the accuracy of
    "p > g" as a detector of the finding. Ties: the smallest g."""
    probs = torch.as_tensor(np.asarray(val_probs, dtype=float))
    has = torch.as_tensor(np.asarray(val_has_finding, dtype=bool))
    if probs.ndim != 1 or probs.shape != has.shape or probs.numel() == 0:
        raise ValueError(f"expected val_probs and val_has_finding of the same length N >= 1, got "
                         f"{tuple(probs.shape)} and {tuple(has.shape)}")
    gain = torch.ones_like(probs) if val_iou is None else torch.as_tensor(np.asarray(val_iou, dtype=float))
    if gain.shape != probs.shape:
        raise ValueError(f"expected val_iou of shape {tuple(probs.shape)}, got {tuple(gain.shape)}")
    gain = torch.nan_to_num(gain, nan=0.0)
    scores = []
    for g in grid:
        kept = probs > float(g)
        score = torch.where(has, torch.where(kept, gain, 0.0), (~kept).double())
        scores.append(float(score.mean()))
    if not scores:
        raise ValueError("expected a non-empty grid of gates, got []")
    best = max(range(len(scores)), key=lambda i: (scores[i], -float(grid[i])))  # ties: the smallest g
    return float(grid[best])
