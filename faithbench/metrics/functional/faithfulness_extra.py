"""Faithfulness by correlation between attribution and the effect of removing features.

Shared pieces: a :class:`Scorer` (the counted forward, the target score, the chunk size), the
feature grid (pixels/voxels, or p x p (x p) patches: :func:`feature_ids`), seeded random subsets
of features and the chunked engine :meth:`Scorer.perturbed`, which builds perturbed images on
x's device for a chunk of (sample, perturbation) pairs at a time and scores them in one forward.

Metrics here (each a pure function; the registered classes live in
``faithbench/metrics/faithfulness_extra.py``):

- faithfulness correlation (Bhatt et al. 2020),
- sensitivity-n (Ancona et al. 2018),
- faithfulness estimate (Alvarez-Melis & Jaakkola 2018),
- monotonicity (Arya et al. 2019),
- monotonicity correlation (Nguyen & Martínez 2020).

``replacement`` is the image that a removed feature takes its values from (see
:func:`~faithbench.metrics.functional.perturbation.make_baseline`); ``saliency`` is ``(B, *spatial)``
for ``x (B, C, *spatial)``, 2D or 3D; per-feature attribution is the sum of saliency over the
feature's pixels/voxels. A feature is a pixel/voxel (or patch) with all its C channels: removing
it replaces every channel. (Quantus 0.6.0 broadcasts the map over the channels and treats each
channel-pixel as its own feature: the two agree on 1-channel inputs only.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from faithbench.metrics.functional.perturbation import (MAX_CHUNK_ELEMENTS, Predict, Score, _check_saliency,
                                                        perturbation_curve, pool_features, score_logits)
from faithbench.metrics.functional.similarity import pearson, spearman
from faithbench.seeds import Generators, draw_rows

Build = Callable[[Tensor, Tensor], Tensor]  # (sample index (P,), perturbation index (P,)) -> images (P, C, *spatial)


@dataclass(frozen=True)
class Scorer:
    """The target score of a batch of images: ``predict`` (the counted no-grad forward),
    ``score`` (``prob``, ``logit``, ``correct``, ``sigmoid``, ``present``: see
    :func:`~faithbench.metrics.functional.perturbation.score_logits`) and ``max_batch`` (perturbed
    images per forward chunk, further capped at ``MAX_CHUNK_ELEMENTS`` input elements)."""

    predict: Predict
    score: Score = "prob"
    max_batch: int = 256

    @torch.no_grad()
    def __call__(self, images: Tensor, target: Tensor) -> Tensor:
        return score_logits(self.predict(images), target, self.score)

    def chunk(self, x: Tensor) -> int:
        return max(1, min(self.max_batch, MAX_CHUNK_ELEMENTS // max(1, x[0].numel())))

    @torch.no_grad()
    def perturbed(self, x: Tensor, target: Tensor, count: int, build: Build) -> Tensor:
        """Scores ``(B, count)`` of ``count`` perturbations per sample; ``build(i, r)`` makes the
        images of the (sample i, perturbation r) pairs of one chunk (sample-major order)."""
        b = x.shape[0]
        total = b * count
        out = torch.empty(total, dtype=torch.float64, device=x.device)
        size = self.chunk(x)
        for start in range(0, total, size):
            flat = torch.arange(start, min(total, start + size), device=x.device)
            i, r = flat // count, flat % count
            out[start: start + len(flat)] = self(build(i, r), target[i])
        return out.view(b, count)


def feature_ids(spatial: tuple[int, ...], patch: int, device: torch.device | str = "cpu") -> tuple[Tensor, int]:
    """The feature each pixel/voxel belongs to, ``(*spatial)`` long, and the number of features:
    row-major non-overlapping p x p (x p) patches (edge patches may be smaller), as
    :func:`~faithbench.metrics.functional.perturbation.pool_features` orders them."""
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    grid = [-(-s // patch) for s in spatial]
    ids = torch.arange(math.prod(grid), device=device).reshape(grid)
    for axis in range(len(grid)):  # a patch above the side repeats the side's length, no more (patch 1e12 ran)
        ids = ids.repeat_interleave(min(patch, spatial[axis]), dim=axis)
    return ids[tuple(slice(0, s) for s in spatial)].contiguous(), math.prod(grid)


def whole_features(spatial: tuple[int, ...], patch: int, device: torch.device | str = "cpu") -> Tensor:
    """Indices (in :func:`feature_ids`' order) of the features of full size: every feature where
    ``patch`` divides each side (or exceeds it), else all but the patches cut by the border. A cut
    patch has fewer pixels, so its summed saliency and the effect of removing it shrink together,
    and a correlation over features of unequal size rewards a constant map (a held-out review:
    faithfulness estimate 0.97 on 16 x 20 images in 8 x 8 patches, NaN on 16 x 16)."""
    grid = [-(-s // patch) for s in spatial]
    keep = torch.ones(grid, dtype=torch.bool, device=device)
    for axis, side in enumerate(spatial):
        if grid[axis] > 1 and side % patch:  # the last patch along this axis is cut
            keep.narrow(axis, grid[axis] - 1, 1).fill_(False)
    return keep.flatten().nonzero().flatten()


def feature_attribution(saliency: Tensor, patch: int) -> Tensor:
    """Summed saliency per feature: ``(B, *spatial)`` -> ``(B, n_features)``."""
    return pool_features(saliency.float(), patch).flatten(1)


def random_subsets(b: int, runs: int, n: int, k: int, generator: Generators) -> Tensor:
    """``runs`` uniform random subsets of ``k`` of ``n`` features per sample (without
    replacement within a subset): ``(B, runs, k)`` long, drawn on the CPU from ``generator`` (one: the
    whole batch; B of them: sample i's from the i-th, :func:`~faithbench.seeds.draw_rows`), one
    run at a time (memory B x n, not B x runs x n: a 64^3 volume has 262144 voxels)."""
    if not 1 <= k <= n:
        raise ValueError(f"expected a subset size between 1 and the {n} features, got {k}")
    return draw_rows(generator, b, lambda g, rows: torch.stack(
        [torch.rand((rows, n), generator=g).topk(k, dim=-1).indices for _ in range(runs)], dim=1))


def subset_deltas(scorer: Scorer, x: Tensor, target: Tensor, subsets: Tensor, replacement: Tensor, *,
                  patch: int = 1) -> Tensor:
    """Δ_r = f(x) - f(x with the features of subset r replaced): ``subsets (B, R, k)`` feature
    indices -> ``(B, R)``. Costs B (R + 1) forward passes."""
    ids, n = feature_ids(tuple(x.shape[2:]), patch, x.device)
    flat_ids = ids.flatten()
    subsets = subsets.to(x.device)
    view = (-1, 1, *ids.shape)

    def build(i: Tensor, r: Tensor) -> Tensor:
        chosen = torch.zeros((len(i), n), dtype=torch.bool, device=x.device)
        chosen.scatter_(1, subsets[i, r], True)
        return torch.where(chosen[:, flat_ids].view(view), replacement[i], x[i])

    f0 = scorer(x, target)
    return f0[:, None] - scorer.perturbed(x, target, subsets.shape[1], build)


def subset_correlation(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, subsets: Tensor,
                       replacement: Tensor, *, patch: int = 1) -> Tensor:
    """Pearson ρ over subsets r between Σ_{i in S_r} s_i and Δ_r (:func:`subset_deltas`): ``(B,)``;
    NaN where either is constant."""
    _check_saliency(x, saliency)
    deltas = subset_deltas(scorer, x, target, subsets, replacement, patch=patch)
    attribution = feature_attribution(saliency.to(x.device), patch)
    sums = attribution.gather(1, subsets.to(x.device).flatten(1)).view(subsets.shape).sum(-1)
    return pearson(sums, deltas).float()


def faithfulness_correlation(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacement: Tensor, *,
                             runs: int = 100, subset_size: int = 224, generator: Generators) -> Tensor:
    """Faithfulness correlation (Bhatt et al. 2020, "Evaluating and aggregating feature-based model
    explanations", IJCAI), per sample ``(B,)``:

        μ_F = corr_{S ⊂ features, |S| = subset_size} ( Σ_{i in S} s_i ,  f(x) - f(x_{S <- baseline}) ),

    Pearson over ``runs`` uniform random subsets (seeded by ``generator``, :func:`random_subsets`) of pixel/voxel
    features.
    Higher is better. ``subset_size`` is clipped to the number of features."""
    n = math.prod(x.shape[2:])
    subsets = random_subsets(x.shape[0], runs, n, min(subset_size, n), generator)
    return subset_correlation(scorer, x, target, saliency, subsets, replacement)


def sensitivity_n(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacement: Tensor, *,
                  subsets: list[Tensor], patch: int = 1) -> Tensor:
    """Sensitivity-n (Ancona et al. 2018, "Towards better understanding of gradient-based
    attribution methods for deep neural networks", ICLR): for each subset size n, the Pearson ρ over
    random subsets S, |S| = n, of features (pixels/voxels or patches),

        ρ_n = corr_S ( Σ_{i in S} s_i ,  f(x) - f(x_{S <- baseline}) ).

    ``subsets``: one ``(B, runs, n)`` tensor of feature indices per size (:func:`random_subsets`).
    Returns ``(B, len(subsets))``: the curve ρ_n per sample (a method "satisfies sensitivity-n"
    where ρ_n = 1)."""
    return torch.stack([subset_correlation(scorer, x, target, saliency, s, replacement, patch=patch)
                        for s in subsets], dim=1)


def random_subsets_by_size(b: int, runs: int, n: int, sizes: list[int], generator: Generators) -> list[Tensor]:
    """:func:`random_subsets` for each size (clipped to 1..n), in order: from one generator, each size for the whole
    batch; from B generators, sample i's subsets of every size from the i-th."""
    # with B generators each size draws row i from the i-th, so generator i gives sample i's sizes in order
    return [random_subsets(b, runs, n, max(1, min(size, n)), generator) for size in sizes]


def faithfulness_estimate(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacement: Tensor, *,
                          patch: int = 1) -> Tensor:
    """Faithfulness estimate (Alvarez-Melis & Jaakkola 2018, "Towards robust interpretability with
    self-explaining neural networks", NeurIPS), per sample ``(B,)``: remove each feature j (pixel/voxel
    or patch) alone,

        ρ = corr_j ( s_j ,  f(x) - f(x_{j <- baseline}) ),

    Pearson over features (a feature: a pixel/voxel or patch with all its channels; patches cut by
    the border left out, :func:`whole_features`); higher is better. Costs B (n_features + 1) forward
    passes. Equals Quantus 0.6.0's
    ``FaithfulnessEstimate(features_in_step=1)`` with ``patch=1`` on 1-channel inputs only: on C > 1
    channels Quantus correlates over the C N channel-pixels, each with its pixel's saliency."""
    _check_saliency(x, saliency)
    whole = whole_features(tuple(x.shape[2:]), patch)
    singles = whole.view(1, -1, 1).expand(x.shape[0], len(whole), 1)
    deltas = subset_deltas(scorer, x, target, singles, replacement, patch=patch)
    return pearson(feature_attribution(saliency.to(x.device), patch)[:, whole.to(x.device)], deltas).float()


def insertion_counts(n_features: int, steps: int) -> Tensor:
    """Features restored after each step k = 1..min(steps, n): round(k / steps * n)."""
    steps = min(steps, n_features)
    return torch.round(torch.arange(1, steps + 1, dtype=torch.float64) / steps * n_features).long()


def monotonicity_curve(scorer: Scorer, x: Tensor, target: Tensor, ranks_ascending: Tensor, replacement: Tensor, *,
                       steps: int) -> Tensor:
    """f(baseline with the c_k least relevant features of x restored), k = 1..steps: ``(B, K)``.
    ``ranks_ascending``: 0 = least relevant feature (per pixel, as from
    :func:`~faithbench.metrics.functional.perturbation.feature_ranks` of ``-saliency``)."""
    n = int(ranks_ascending.flatten(1).max()) + 1
    curve, _ = perturbation_curve(scorer.predict, x, target, ranks_ascending, replacement, insertion=True,
                                  score=scorer.score, max_batch=scorer.max_batch, counts=insertion_counts(n, steps))
    return curve


def monotonicity(curve: Tensor) -> Tensor:
    """Monotonicity (Arya et al. 2019, "One explanation does not fit all", AIX360): 1 where the
    score never decreases as features are restored into the baseline in increasing order of
    relevance (:func:`monotonicity_curve`), else 0: ``(B, K)`` -> ``(B,)``. Higher is better."""
    return (curve.diff(dim=1) >= 0).all(dim=1).float()


def monotonicity_correlation(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacements: Tensor, *,
                             patch: int = 1, eps: float = 1e-5) -> Tensor:
    """Monotonicity correlation (Nguyen & Martínez 2020, "On quantitative aspects of model
    interpretability"), per sample ``(B,)``: for each feature j, with D draws of the replacement
    (``replacements (D, B, C, *spatial)``; e.g. seeded uniform noise),

        v_j = mean_d (f(x_{j <- r_d}) - f(x))^2 / f(x)^2,   ρ = Spearman_j ( s_j , v_j ),

    (the 1 / f(x)^2 factor is 1 where |f(x)| < ``eps``; a feature: a pixel/voxel or patch with all
    its channels, patches cut by the border left out, :func:`whole_features`). Higher is better.
    Costs B (D n + 1) forward passes. Equals Quantus 0.6.0's ``MonotonicityCorrelation`` (one draw,
    ``features_in_step=1``, ``patch=1``) on 1-channel inputs only: on C > 1 channels Quantus perturbs
    and ranks each channel-pixel as its own feature."""
    _check_saliency(x, saliency)
    ids = feature_ids(tuple(x.shape[2:]), patch, x.device)[0]
    whole = whole_features(tuple(x.shape[2:]), patch, x.device)
    n, draws = len(whole), replacements.shape[0]
    replacements = replacements.to(x.device)
    view = (-1, 1, *ids.shape)

    def build(i: Tensor, pair: Tensor) -> Tensor:
        j, d = whole[pair // draws], pair % draws
        return torch.where((ids[None] == j.view(-1, *[1] * ids.ndim)).view(view), replacements[d, i], x[i])

    f0 = scorer(x, target)
    scores = scorer.perturbed(x, target, n * draws, build).view(x.shape[0], n, draws)
    inverse = torch.where(f0.abs() >= eps, 1.0 / f0.abs().clamp(min=eps), torch.ones_like(f0)) ** 2
    variance = (scores - f0[:, None, None]).square().mean(dim=2) * inverse[:, None]
    return spearman(feature_attribution(saliency.to(x.device), patch)[:, whole], variance).float()
