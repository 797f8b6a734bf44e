"""The CheXlocalize protocol (Saporta et al. 2022, "Benchmarking saliency methods for chest X-ray
interpretation", Nature Machine Intelligence 4:867-878; code: rajpurkarlab/cheXlocalize).

A heat map becomes a segmentation, which is scored against the ground-truth mask:

1. min-max normalise each map to [0, 1] (a constant map becomes all zeros);
2. binarise: ``normalised > t`` with t from Otsu's method per map (the default), or a fixed t in
   [0, 1] (as CheXlocalize's ``cam_to_segmentation`` with a threshold), e.g. tuned on validation maps
   per class with :func:`tune_threshold`. Our Otsu is ``skimage.filters.threshold_otsu(normalised,
   nbins=256)``: 256 bins of width 1/256, t the centre of the best bin. CheXlocalize's is not the same
   histogram: it truncates ``np.uint8(255 * normalised)`` (levels of width 1/255) and keeps the levels
   above OpenCV's Otsu level (``cv2.THRESH_OTSU``). The two segmentations can differ by the pixels near
   the threshold (on one phantom run, 54 of 264 test segmentations were identical and the IoU with the
   mask differed by at most 0.0017; on other maps by up to 0.03: docs/metrics.md);
3. probability gating (optional): a map whose target probability p is not above the gate
   (p <= gate) becomes an empty segmentation (CheXlocalize's ``tune_probability_threshold.py`` keeps
   a map when p > cutoff; its ``heatmap_to_segmentation_probability_threshold.py``, which writes the
   gated masks, when p >= cutoff); :func:`tune_gate` picks the gate on validation data;
4. per sample: IoU = |S ∩ M| / |S ∪ M| (mIoU is its mean) and hit = 1 if the map's maximum lies
   in M (pointing; a gated map has no maximum: 0).

Samples whose mask is empty (without the finding): NaN by default (``full_dataset=False``: left out,
as the default of CheXlocalize's ``eval.py``, ``--true_pos_only True``, and its ``get_hit_rates``).
With ``full_dataset=True`` such a sample's IoU is 0 when its (gated) segmentation is non-empty (a false
positive) and NaN when it is empty, as ``calculate_iou(pred, gt, true_pos_only=False)`` of ``eval.py``
and ``eval_full_dataset.py`` (NaN only for an empty union): the evaluation the paper reports gated
segmentations with (its README, "Fine-tune probability thresholds"). The hit rate has no such mode in
CheXlocalize (nor a gate); ``full_dataset=True`` gives it the IoU's rule: 0 for a kept map, NaN for a
gated one. A sample with the finding whose segmentation is empty (gated, or a constant map) has IoU 0 in
both modes (CheXlocalize's true-positive slice leaves it out); its hit is 0 when gated, and a constant
map's hit is the seeded tie-break's (|M| / N on average).

Chance levels: hit -> the mask's area fraction |M| / N of a kept map, 0 of a gated one; IoU -> the
expected IoU of a random segmentation of the same size k = |S| as the one scored (ratio of
expectations, as :func:`~faithbench.metrics.functional.localization.iou_chance`): E|A∩M| = k |M| / N,
chance = E|A∩M| / (k + |M| - E|A∩M|) (0 for an empty segmentation).

Shapes: ``saliency`` and ``mask`` ``(B, *spatial)`` (2D or 3D), ``prob`` ``(B,)``; outputs ``(B,)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from faithbench.metrics.functional.localization import pointing_game
from faithbench.metrics.functional.similarity import minmax
from faithbench.seeds import Generators

__all__ = ["DEFAULT_GATE_GRID", "DEFAULT_THRESHOLD_GRID", "MIOU_DECIMALS", "OTSU_BINS", "binarize",
           "chexlocalize_hit", "chexlocalize_iou", "hit_chance", "iou", "otsu_threshold", "random_iou_chance",
           "segment", "tune_gate", "tune_threshold"]

OTSU_BINS = 256
# CheXlocalize searches the map threshold over np.arange(0.2, .8, .1) (0.2 .. 0.8,
# tune_heatmap_threshold.py) and the probability cutoff over np.arange(0, .9, .1) (0.0 .. 0.8,
# tune_probability_threshold.py); rounded here (arange gives 0.30000000000000004 ...).
DEFAULT_THRESHOLD_GRID = tuple(round(0.1 * i, 1) for i in range(2, 9))
DEFAULT_GATE_GRID = tuple(round(0.1 * i, 1) for i in range(0, 9))
MIOU_DECIMALS = 3  # tune_probability_threshold.py rounds each cutoff's mIoU before taking the first maximum


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


def _iou(segmentation: Tensor, mask: Tensor, full_dataset: bool) -> Tensor:
    """Float64 IoU per sample; NaN where M is empty, or with ``full_dataset`` where S ∪ M is."""
    _check(segmentation, mask)
    s, m = segmentation.flatten(1).bool(), mask.flatten(1).bool()
    inter = (s & m).sum(1).double()
    union = (s | m).sum(1).double()
    value = inter / union.clamp(min=1)
    defined = union > 0 if full_dataset else m.any(1)
    return torch.where(defined, value, torch.full_like(value, float("nan")))


def iou(segmentation: Tensor, mask: Tensor, *, full_dataset: bool = False) -> Tensor:
    """|S ∩ M| / |S ∪ M| per sample ``(B,)``; NaN where M is empty, or with ``full_dataset`` only
    where S and M both are (an empty M with a non-empty S: 0), as CheXlocalize's ``calculate_iou``
    with ``true_pos_only=False``."""
    return _iou(segmentation, mask, full_dataset).float()


def chexlocalize_iou(saliency: Tensor, mask: Tensor, *, threshold: str | float | Tensor = "otsu",
                     prob: Tensor | None = None, gate: float | Tensor | None = None,
                     full_dataset: bool = False) -> Tensor:
    """Per-sample IoU of the CheXlocalize segmentation with the mask (mean: mIoU); see the module
    docstring. NaN where the mask is empty (``full_dataset``: where the segmentation is empty too)."""
    _check(saliency, mask)
    return iou(segment(saliency, threshold, prob, gate), mask, full_dataset=full_dataset)


def chexlocalize_hit(saliency: Tensor, mask: Tensor, *, prob: Tensor | None = None,
                     gate: float | Tensor | None = None, full_dataset: bool = False,
                     generator: Generators = None) -> Tensor:
    """Hit rate per sample: 1 if the map's maximum lies in the mask (ties among maxima by a seeded
    draw, as ``pointing_game``, whose ``generator`` default it shares), 0 otherwise or when the map is
    gated (p <= gate); NaN where the mask is empty (CheXlocalize's ``get_hit_rates``), or with
    ``full_dataset`` 0 there for a kept map (it points at a finding that is not there) and NaN for a
    gated one."""
    _check(saliency, mask)
    hit = pointing_game(saliency, mask, generator=generator)
    keep = _gated(prob, gate, saliency.shape[0], hit.device)
    empty = ~mask.flatten(1).bool().any(1).to(hit.device)
    value = torch.where(keep | empty, hit, torch.zeros_like(hit))
    if full_dataset:
        value = torch.where(empty & keep, torch.zeros_like(hit), value)
    return value


def hit_chance(mask: Tensor, *, prob: Tensor | None = None, gate: float | Tensor | None = None) -> Tensor:
    """The hit rate of a map in random order, ``(B,)``: the mask's area fraction |M| / N for a kept map,
    0 for a gated one (it scores 0 whatever it shows; a held-out review: with gate 0.5 random maps
    scored 0.048 against the 0.094 written as chance before)."""
    keep = _gated(prob, gate, mask.shape[0], mask.device)
    return mask.flatten(1).float().mean(dim=1) * keep


def random_iou_chance(segmentation: Tensor, mask: Tensor, *, full_dataset: bool = False) -> Tensor:
    """Chance IoU with ``mask`` of a random segmentation A of the same size k as ``segmentation``: the ratio
    of expectations E|A ∩ M| / E|A ∪ M| (0 for an empty segmentation), ``(B,)``; NaN for an empty mask, or
    with ``full_dataset`` only where the segmentation is empty too (a non-empty one: 0), as :func:`iou`.
    An approximation of the expected IoU E[|A ∩ M| / |A ∪ M|], a little below it on small sets (|A ∩ M| is
    hypergeometric): k = 50, |M| = 20 on 8 x 16 x 16, 0.00702 against the exact 0.00712 (+1.4 %; a held-out
    review's Monte Carlo of 3000 draws 0.00755), k = 5 +4.1 %, k = 500 and |M| = 200 +0.1 %; k = |M| = 1
    gives 1 / (2N - 1), half of the exact 1 / N."""
    _check(segmentation, mask)
    s, m = segmentation.flatten(1).bool(), mask.flatten(1).bool()
    n = m.shape[1]
    k, size = s.sum(1).double(), m.sum(1).double()
    inter = k * size / n
    value = inter / (k + size - inter).clamp(min=1e-300)
    value = torch.where(k > 0, value, torch.zeros_like(value))
    defined = (k + size > 0) if full_dataset else size > 0
    return torch.where(defined, value, torch.full_like(value, float("nan"))).float()


def _nanmean(values: np.ndarray) -> float:
    """``np.nanmean`` (NaN, without a warning, when every value is NaN)."""
    return float("nan") if np.isnan(values).all() else float(np.nanmean(values))


def _best(grid: Sequence[float], scores: Sequence[float]) -> float:
    """The grid value of the highest score; ties: the smallest value; a NaN score ranks last."""
    if not grid:
        raise ValueError("expected a non-empty grid, got []")
    ranked = [-math.inf if math.isnan(s) else s for s in scores]
    return float(grid[max(range(len(grid)), key=lambda i: (ranked[i], -float(grid[i])))])


def tune_threshold(val_maps: Tensor, val_masks: Tensor, grid: Sequence[float] = DEFAULT_THRESHOLD_GRID) -> float:
    """The map threshold t in ``grid`` (default 0.2, ..., 0.8) that maximises the validation mIoU
    on the true-positive slice, the criterion of CheXlocalize's ``tune_heatmap_threshold.py``:

        mIoU(t) = nanmean_i IoU(minmax(map_i) > t, mask_i),

    where a sample whose mask or segmentation is empty is NaN (left out: ``calculate_iou(pred, gt,
    true_pos_only=True)``). Ties: the smallest t (the reference's first maximum on its ascending
    grid); a t at which no sample is scored ranks last; NaN when no t scores any sample (every map
    constant, so empty at every t: there is nothing to tune, and the smallest t would pass for a
    tuned one). Saporta et al. 2022 tune one per pathology: call this once per class.
    ``val_maps``/``val_masks``: ``(N, *spatial)``."""
    _check(val_maps, val_masks)
    grid = [float(t) for t in grid]
    if not grid:
        raise ValueError("expected a non-empty grid of thresholds in [0, 1], got []")
    if not val_masks.flatten(1).any(1).any():
        raise ValueError("tune_threshold needs at least one validation sample with a non-empty mask")
    scores = []
    for t in grid:
        seg = binarize(val_maps, t)
        value = _iou(seg, val_masks, full_dataset=False)
        value = torch.where(seg.flatten(1).any(1), value, torch.full_like(value, float("nan")))
        scores.append(_nanmean(value.cpu().numpy()))
    if all(math.isnan(s) for s in scores):
        return math.nan
    return _best(grid, scores)


def tune_gate(val_probs: Tensor | Sequence[float], val_has_finding: Tensor | Sequence[bool],
              grid: Sequence[float] = DEFAULT_GATE_GRID, val_iou: Tensor | Sequence[float] | None = None,
              val_nonempty: Tensor | Sequence[bool] | None = None) -> float:
    """The probability gate g in ``grid`` (default 0.0, ..., 0.8) that maximises the validation mIoU
    of the gated segmentations, the criterion of CheXlocalize's ``tune_probability_threshold.py``
    (``compute_miou``, with ``calculate_iou(pred, gt, true_pos_only=False)`` of ``eval.py``: NaN only
    where the prediction and the ground truth are both empty):

        mIoU(g) = round(nanmean_i score_i(g), 3), where score_i(g) is
        - with a finding: its IoU if kept (p_i > g), 0 if gated (an empty prediction);
        - without a finding: 0 if kept with a non-empty segmentation (a false positive), NaN (left
          out) if gated or if its segmentation is empty.

    ``val_iou``: each sample's IoU at the threshold the gate is applied with (read for the samples
    with a finding; NaN counts 0); default 1 for every finding, which makes mIoU(g) the Jaccard index
    TP / (TP + FN + FP) of "p > g" as a detector of the finding. ``val_nonempty``: whether each
    sample's ungated segmentation is non-empty (default: all are, as a non-constant map thresholded
    below 1; a map always has a maximum to point with). Ties, after the rounding to 3 decimals as
    the reference: the smallest g (its first maximum on the ascending grid); a g at which no sample
    is scored (every one gated and without a finding) ranks last."""
    probs = np.asarray(val_probs, dtype=float)
    has = np.asarray(val_has_finding, dtype=bool)
    if probs.ndim != 1 or probs.shape != has.shape or probs.size == 0:
        raise ValueError(f"expected val_probs and val_has_finding of the same length N >= 1, got "
                         f"{probs.shape} and {has.shape}")
    gain = np.ones_like(probs) if val_iou is None else np.asarray(val_iou, dtype=float)
    nonempty = np.ones_like(has) if val_nonempty is None else np.asarray(val_nonempty, dtype=bool)
    for name, value in (("val_iou", gain), ("val_nonempty", nonempty)):
        if value.shape != probs.shape:
            raise ValueError(f"expected {name} of shape {probs.shape}, got {value.shape}")
    gain = np.nan_to_num(gain, nan=0.0)
    grid = [float(g) for g in grid]
    if not grid:
        raise ValueError("expected a non-empty grid of gates, got []")
    scores = []
    for g in grid:
        kept = probs > g
        score = np.where(has, np.where(kept, gain, 0.0), np.where(kept & nonempty, 0.0, np.nan))
        scores.append(float(round(np.float64(_nanmean(score)), MIOU_DECIMALS)))
    return _best(grid, scores)
