"""Perturbation curves: deletion and insertion (Petsiuk et al. 2018, RISE).

Features (pixels/voxels, or p x p (x p) patches) are ranked by saliency, descending, with ties
broken by a seeded random permutation (never index order, which biases toward the top-left
corner). For k = 0..steps the top ``round(k/steps * n)`` features are replaced:

- deletion starts from x and replaces features by the deletion baseline;
- insertion starts from the insertion baseline and restores features of x.

Score at each step: softmax probability of the target (``prob``), the target logit (``logit``)
or 1/0 whether the argmax is the target (``correct``); for a multi-label model (one sigmoid per
class) the sigmoid of the target logit (``sigmoid``) or 1/0 whether the target class is
predicted present, logit > 0 (``present``). AUC is the trapezoid over the fraction
of features replaced, in [0, 1]. Every perturbed image is built on the model's device, batched
across samples and steps in chunks of ``max_batch`` images.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from faithbench.scores import MULTILABEL, target_score
from faithbench.seeds import Generators, draw_rows, normal_draws, or_row_generators, seeded_rows, uniform_keys

from faithbench.metrics.functional.similarity import spearman

Predict = Callable[[Tensor], Tensor]
Score = Literal["prob", "logit", "correct", "sigmoid", "present"]
# the multi-label counterpart of each single-label score (RISE, Petsiuk et al. 2018, scores the
# softmax of one class; a multi-label model's classes are independent sigmoids)
MULTILABEL_SCORE = MULTILABEL  # a single-label score's multi-label counterpart
BaselineName = Literal["zero", "blur", "mean", "noise", "uniform"]
BASELINES = ("zero", "blur", "mean", "noise", "uniform")


# --- baselines ------------------------------------------------------------------------
def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur over the spatial axes of ``(B, C, *spatial)`` (2D or 3D).

    Kernel radius ceil(3 sigma) (capped at each axis' size - 1), reflect padding (torch's ``reflect``, the edge
    pixel not repeated: scipy.ndimage's ``mode='mirror'``, not its ``'reflect'``). Not the blur of
    RISE's reference code (an 11 x 11 kernel from ``gaussian_filter`` of a delta with sigma 5,
    nearly flat, zero padding): see :class:`faithbench.metrics.faithfulness.InsertionAUC`.
    """
    if sigma <= 0:
        return x.clone()
    dims = x.ndim - 2
    out = x
    for axis in range(dims):
        size = x.shape[2 + axis]
        radius = max(1, min(int(math.ceil(3 * sigma)), size - 1))
        t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
        kernel = torch.exp(-(t**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum()
        # move the axis last, flatten the rest, run a 1D convolution
        moved = out.movedim(2 + axis, -1)
        shape = moved.shape
        flat = moved.reshape(-1, 1, shape[-1])
        flat = F.pad(flat, (radius, radius), mode="reflect" if size > radius else "replicate")
        flat = F.conv1d(flat, kernel[None, None])
        out = flat.reshape(shape).movedim(-1, 2 + axis)
    return out


def make_baseline(x: Tensor, name: BaselineName, *, background: float = 0.0, sigma: float = 5.0,
                  generator: Generators = None) -> Tensor:
    """The replacement image for ``x (B, C, *spatial)``.

    zero: the dataset's background value in model input space (not 0 after normalisation);
    blur: Gaussian blur with ``sigma`` pixels; mean: each sample's per-channel mean;
    noise: Gaussian noise with each sample's per-channel mean and std (seeded);
    uniform: uniform noise between each sample's per-channel min and max (seeded) -- Samek
    et al. 2017's U(0, 1) replacement, carried over to an input space that is not [0, 1].
    ``generator``: one draws the whole batch; B of them (the classes' ``ctx.generators``) draw row i from the
    i-th (:func:`~faithbench.seeds.draw_rows`), so a sample's baseline does not depend on its batch.
    """
    if name == "zero":
        return torch.full_like(x, float(background))
    if name == "blur":
        return gaussian_blur(x, sigma)
    spatial = tuple(range(2, x.ndim))
    mean = x.mean(dim=spatial, keepdim=True)
    if name == "mean":
        return mean.expand_as(x).clone()
    if name == "noise":
        std = x.std(dim=spatial, keepdim=True)
        noise = normal_draws(tuple(x.shape), generator, x.dtype).to(x.device)
        return mean + std * noise
    if name == "uniform":
        lo, hi = x.amin(dim=spatial, keepdim=True), x.amax(dim=spatial, keepdim=True)
        u = draw_rows(generator, len(x), lambda g, n: torch.rand((n, *x.shape[1:]), generator=g, dtype=x.dtype))
        return lo + (hi - lo) * u.to(x.device)
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")


# --- ranking --------------------------------------------------------------------------
def pool_features(saliency: Tensor, patch: int) -> Tensor:
    """Sum saliency over non-overlapping patches: ``(B, *spatial)`` -> ``(B, *grid)``.

    Edge patches that do not fit are padded with zeros (ceil division)."""
    if patch <= 1:
        return saliency
    dims = saliency.ndim - 1
    pads: list[int] = []
    for size in reversed(saliency.shape[1:]):
        pads += [0, (-size) % patch]
    s = F.pad(saliency[:, None], pads)
    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    return pool(s, patch, stride=patch)[:, 0] * patch**dims


def feature_ranks(saliency: Tensor, *, patch: int = 1, generator: Generators = None) -> Tensor:
    """Rank of every feature, 0 = most salient: ``(B, *spatial)`` -> ``(B, *spatial)`` long.

    Ties are broken by a random permutation drawn from ``generator``, per sample: one generator draws the
    batch's permutations at once, a sequence of B draws row i's from its i-th; None: seed 0 and each row's
    bytes (:func:`~faithbench.seeds.or_row_generators`), the same ranks on every call and in any batch.
    With ``patch > 1`` patches are ranked by their MEAN saliency (the order of their sums where every
    patch is whole; an edge patch cut by the border by its own mean, as IROF ranks its segments: by
    its sum it always came last for the random control, a held-out review's morf_aopc of random maps
    0.376 against 0.101 for a random order, 28^3 volumes in 8^3 patches; by its mean, whose spread is
    larger over fewer pixels, 0.145: validate warns of such a patch), and every pixel of a patch carries
    its patch's rank. Whole patches are ranked by their exact sums (float64, version 4 of the ranking metrics):
    patches whose values sum equally in another arrangement tie and the seed orders them (float32 pooling split
    such ties by a rounding bit, a held-out review: deletion_auc moved by 0.016 on a 4-level map); means of
    cut patches are rounded to the map's dtype, so equal means that division rounds apart tie too.
    """
    if not torch.isfinite(saliency).all():
        raise ValueError("saliency contains NaN or Inf; cannot rank features")
    spatial = saliency.shape[1:]
    grid = saliency
    if patch > 1:  # in float64: equal sums stay equal, so the seed, not a float32 rounding bit, orders them
        wide = saliency.double()
        grid = pool_features(wide, patch)
        if any(size % patch for size in spatial):  # means, back in the map's dtype: equal means stay ties
            grid = (grid / pool_features(torch.ones_like(wide[:1]), patch)).to(saliency.dtype)
    flat = grid.flatten(1)
    b, n = flat.shape
    shuffle = uniform_keys((b, n), or_row_generators(generator, saliency)).argsort(dim=1).to(flat.device)
    by_value = flat.gather(1, shuffle).argsort(dim=1, descending=True, stable=True)
    order = shuffle.gather(1, by_value)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=flat.device).expand(b, n))
    ranks = ranks.reshape(grid.shape)
    if patch > 1:
        for axis in range(1, ranks.ndim):
            ranks = ranks.repeat_interleave(patch, dim=axis)
        ranks = ranks[(slice(None), *[slice(0, s) for s in spatial])]
    return ranks


def step_counts(n_features: int, steps: int) -> Tensor:
    """Features replaced after each step k = 0..steps: round(k / steps * n)."""
    return torch.round(torch.arange(steps + 1, dtype=torch.float64) / steps * n_features).long()


# --- curves ---------------------------------------------------------------------------
def score_logits(logits: Tensor, target: Tensor, score: Score) -> Tensor:
    """The score of the target class, float64 ``(B,)``: ``prob`` (softmax), ``logit``, ``correct``
    (argmax == target, 0/1); multi-label: ``sigmoid`` (sigmoid of the target logit) or ``present``
    (target logit > 0, 0/1). :func:`faithbench.scores.target_score` of the logits in float64: near
    saturation a float32 softmax resolves 6e-8 below 1, coarser than the effect of one patch (a held-out
    review: 4e-6 at f(x) = 0.99905, and monotonicity_correlation NaN at 0.9999998); the metrics keep the
    scores in float64 through their arithmetic."""
    return target_score(logits.double(), target, score)


def _chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(total, start + size))


MAX_CHUNK_ELEMENTS = 2**22  # input elements per forward chunk (16 MB of float32)


@torch.no_grad()
def perturbation_curve(predict: Predict, x: Tensor, target: Tensor, ranks: Tensor, replacement: Tensor,
                       *, steps: int | None = None, insertion: bool, score: Score = "prob",
                       max_batch: int = 256, counts: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Scores after each step: ``(B, K)``, and the fractions of features replaced ``(K,)``.

    Deletion (``insertion=False``): step k shows x with its top-c_k features set to
    ``replacement``. Insertion: step k shows ``replacement`` with the top-c_k features of x.
    c_k = round(k / steps * n) for k = 0..steps (K = steps + 1), or the given ``counts``
    (features replaced per step, e.g. 0, 1, 2, ... patches for AOPC). Images are built on x's
    device in chunks of at most ``max_batch`` (sample, step) pairs and ``MAX_CHUNK_ELEMENTS``
    input elements (so 256 images of 1x64x64 but 27 of 3x224x224: on a CPU a huge batch of
    large images runs slower per image, and memory stays bounded for volumes).
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    max_batch = max(1, min(max_batch, MAX_CHUNK_ELEMENTS // max(1, x[0].numel())))
    b = x.shape[0]
    if ranks.shape != (b, *x.shape[2:]):
        raise ValueError(f"expected ranks of shape {(b, *x.shape[2:])} to match the image's spatial shape, "
                         f"got {tuple(ranks.shape)}")
    n_features = int(ranks.flatten(1).max()) + 1
    if counts is None:
        if steps is None or steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        counts = step_counts(n_features, steps)
    counts = counts.to(x.device)
    k = len(counts)
    src, dst = (replacement, x) if insertion else (x, replacement)
    # int32 ranks halve the memory traffic of the per-step comparison
    small = ranks.to(torch.int32) if n_features < 2**31 else ranks
    step_counts_ = counts.to(small.dtype)
    scores = torch.empty(b * k, dtype=torch.float64, device=x.device)
    view = (-1,) + (1,) * (ranks.ndim - 1)
    buffer = torch.empty((min(max_batch, b * k), *x.shape[1:]), dtype=x.dtype, device=x.device)
    for sl in _chunks(b * k, max_batch):
        # (sample, step) pairs flattened sample-major: a chunk is a run of steps of a few samples;
        # each sample's images are written straight into one buffer (no gathered copies of x)
        images = buffer[: sl.stop - sl.start]
        start = sl.start
        while start < sl.stop:
            i = start // k
            stop = min(sl.stop, (i + 1) * k)
            steps_here = step_counts_[start - i * k: stop - i * k]
            replaced = (small[i][None] < steps_here.view(view))[:, None]
            torch.where(replaced, dst[i], src[i], out=images[start - sl.start: stop - sl.start])
            start = stop
        flat = torch.arange(sl.start, sl.stop, device=x.device)
        scores[sl] = score_logits(predict(images), target[flat // k], score)
    return scores.view(b, k), counts.double().cpu() / n_features


def auc(curve: Tensor, fractions: Tensor) -> Tensor:
    """Trapezoid area under ``curve (B, K)`` over ``fractions (K,)`` in [0, 1]."""
    return torch.trapezoid(curve, fractions.to(curve.device), dim=-1)


def seeded(seed: int, salt: int) -> torch.Generator:
    """One generator for one purpose (``salt``) in a cell seeded ``seed``, the formula of
    :meth:`EvalContext.generator` (what is drawn per batch: a model's randomised weights). What is drawn per
    image (tie-breaks, baselines, subsets, noise) comes from :func:`~faithbench.seeds.seeded_rows` (``seed``,
    ``salt``, ``x``), as the classes' ``ctx.generators``, so the functional API reproduces the classes."""
    return torch.Generator().manual_seed(seed * 1_000_003 + salt)


# salts: what each random draw is for, shared with the metric classes
SALT_RANKS, SALT_BASELINE = 1, 2


def _curve(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, insertion: bool, steps: int,
           baseline: BaselineName, background: float, sigma: float, patch: int, score: Score, seed: int,
           max_batch: int) -> tuple[Tensor, Tensor]:
    _check_saliency(x, saliency)
    ranks = feature_ranks(saliency, patch=patch, generator=seeded_rows(seed, SALT_RANKS, x)).to(x.device)
    base = make_baseline(x, baseline, background=background, sigma=sigma,
                         generator=seeded_rows(seed, SALT_BASELINE, x))
    return perturbation_curve(model, x, target, ranks, base, steps=steps, insertion=insertion, score=score,
                              max_batch=max_batch)


def _check_saliency(x: Tensor, saliency: Tensor) -> None:
    expected = (x.shape[0], *x.shape[2:])
    if tuple(saliency.shape) != expected:
        raise ValueError(f"expected saliency of shape {expected} to match the image's spatial shape, "
                         f"got {tuple(saliency.shape)}")


def deletion_curve(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, steps: int = 50,
                   baseline: BaselineName = "zero", background: float = 0.0, sigma: float = 5.0,
                   patch: int = 1, score: Score = "prob", seed: int = 0,
                   max_batch: int = 256) -> tuple[Tensor, Tensor]:
    """Deletion curve ``(B, steps + 1)`` and its fractions ``(steps + 1,)`` (Petsiuk et al. 2018)."""
    return _curve(model, x, target, saliency, insertion=False, steps=steps, baseline=baseline,
                  background=background, sigma=sigma, patch=patch, score=score, seed=seed, max_batch=max_batch)


def insertion_curve(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, steps: int = 50,
                    baseline: BaselineName = "blur", background: float = 0.0, sigma: float = 5.0,
                    patch: int = 1, score: Score = "prob", seed: int = 0,
                    max_batch: int = 256) -> tuple[Tensor, Tensor]:
    """Insertion curve ``(B, steps + 1)`` and its fractions ``(steps + 1,)`` (Petsiuk et al. 2018)."""
    return _curve(model, x, target, saliency, insertion=True, steps=steps, baseline=baseline,
                  background=background, sigma=sigma, patch=patch, score=score, seed=seed, max_batch=max_batch)


def deletion_auc(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, steps: int = 50,
                 baseline: BaselineName = "zero", background: float = 0.0, sigma: float = 5.0,
                 patch: int = 1, score: Score = "prob", seed: int = 0, max_batch: int = 256) -> Tensor:
    """Deletion AUC per sample ``(B,)``; lower is better (Petsiuk et al. 2018)."""
    return auc(*deletion_curve(model, x, target, saliency, steps=steps, baseline=baseline, background=background,
                               sigma=sigma, patch=patch, score=score, seed=seed, max_batch=max_batch))


def insertion_auc(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, steps: int = 50,
                  baseline: BaselineName = "blur", background: float = 0.0, sigma: float = 5.0,
                  patch: int = 1, score: Score = "prob", seed: int = 0, max_batch: int = 256) -> Tensor:
    """Insertion AUC per sample ``(B,)``; higher is better (Petsiuk et al. 2018)."""
    return auc(*insertion_curve(model, x, target, saliency, steps=steps, baseline=baseline, background=background,
                                sigma=sigma, patch=patch, score=score, seed=seed, max_batch=max_batch))


def abpc(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, steps: int = 50,
         deletion_baseline: BaselineName = "zero", insertion_baseline: BaselineName = "blur",
         background: float = 0.0, sigma: float = 5.0, patch: int = 1, score: Score = "prob", seed: int = 0,
         max_batch: int = 256) -> Tensor:
    """Area between the perturbation curves, insertion AUC - deletion AUC, per sample ``(B,)``;
    higher is better. Both curves use the same ranking (same seeded tie-break)."""
    kw = dict(steps=steps, background=background, sigma=sigma, patch=patch, score=score, seed=seed,
              max_batch=max_batch)
    return (insertion_auc(model, x, target, saliency, baseline=insertion_baseline, **kw)
            - deletion_auc(model, x, target, saliency, baseline=deletion_baseline, **kw))


# --- region perturbation (Samek et al. 2017) ------------------------------------------
def aopc_curve(predict: Predict, x: Tensor, target: Tensor, ranks: Tensor, replacement: Tensor, *,
               steps: int, patch: int, score: Score = "prob", max_batch: int = 256) -> tuple[Tensor, Tensor]:
    """f(x) - f(x^(k)) for k = 0..L, one p x p (x p) patch replaced per step in rank order:
    ``(B, L + 1)``, and each sample's fractions of the image replaced ``(B, L + 1)`` float64.

    ``ranks`` are per-pixel ranks of patches (as :func:`feature_ranks` with ``patch``);
    L = min(steps, number of patches). The first point is 0 by construction. Where ``patch`` does
    not tile the image, the patches cut by the border are smaller than p^d and each sample removes
    them at its own steps, so the fractions differ by sample (a held-out review: sample 0's were
    written for every sample, 0.00469 after step 1 where sample 1 had replaced 0.01276).
    """
    n_patches = int(ranks.flatten(1).max()) + 1
    n_steps = min(steps, n_patches)
    counts = torch.arange(n_steps + 1)
    curve, _ = perturbation_curve(predict, x, target, ranks, replacement, insertion=False, score=score,
                                  max_batch=max_batch, counts=counts)
    flat = ranks.flatten(1).cpu()
    sizes = torch.zeros((flat.shape[0], n_patches), dtype=torch.float64).scatter_add_(
        1, flat, torch.ones_like(flat, dtype=torch.float64))  # pixels/voxels of each sample's k-th patch
    replaced = torch.cat([torch.zeros((flat.shape[0], 1), dtype=torch.float64), sizes[:, :n_steps].cumsum(1)], dim=1)
    return curve[:, :1] - curve, replaced / flat.shape[1]


def aopc(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, order: Literal["morf", "lerf"] = "morf",
         steps: int = 100, patch: int = 8, baseline: BaselineName = "uniform", background: float = 0.0,
         sigma: float = 5.0, score: Score = "prob", seed: int = 0, max_batch: int = 256) -> Tensor:
    """Area over the perturbation curve (Samek et al. 2017) per sample ``(B,)``:

        AOPC = 1 / (L + 1) * sum_{k=0..L} (f(x) - f(x^(k))),

    where x^(k) has its k most (``morf``) or least (``lerf``) relevant p x p (x p) patches (ranked
    by summed saliency, seeded tie-break) replaced by the baseline. MoRF: higher is better;
    LeRF: lower is better.
    """
    if order not in ("morf", "lerf"):
        raise ValueError(f"unknown order {order!r}; expected morf or lerf")
    _check_saliency(x, saliency)
    signed = saliency if order == "morf" else -saliency
    ranks = feature_ranks(signed, patch=patch, generator=seeded_rows(seed, SALT_RANKS, x)).to(x.device)
    base = make_baseline(x, baseline, background=background, sigma=sigma,
                         generator=seeded_rows(seed, SALT_BASELINE, x))
    curve, _ = aopc_curve(model, x, target, ranks, base, steps=steps, patch=patch, score=score,
                          max_batch=max_batch)
    return curve.mean(dim=1)


# --- single deletions of named regions --------------------------------------------------
@torch.no_grad()
def region_deletion_deltas(predict: Predict, x: Tensor, target: Tensor, regions: Tensor, replacement: Tensor,
                           *, score: Score = "prob", max_batch: int = 256) -> Tensor:
    """Δ_r = score(x) - score(x with region r replaced): ``regions (B, R, *spatial)`` bool ->
    ``(B, R)``. An empty region gives NaN (and costs no forward pass)."""
    b, r = regions.shape[:2]
    present = regions.flatten(2).any(dim=2)
    base_score = score_logits(predict(x), target, score)
    pairs = present.nonzero()  # (P, 2): sample, region
    deltas = torch.full((b, r), float("nan"), dtype=torch.float64, device=x.device)
    for sl in _chunks(len(pairs), max_batch):
        sb, sr = pairs[sl, 0], pairs[sl, 1]
        images = torch.where(regions[sb, sr][:, None], replacement[sb], x[sb])
        deltas[sb, sr] = base_score[sb] - score_logits(predict(images), target[sb], score)
    return deltas


def region_deletion_correlation(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, regions: Tensor, *,
                                baseline: BaselineName = "zero", background: float = 0.0, sigma: float = 5.0,
                                score: Score = "prob", seed: int = 0, max_batch: int = 256) -> Tensor:
    """Per-sample Spearman ρ over named regions between I_r = Σ_{i in r} s_i and
    Δ_r = score(x) - score(x with r replaced by the baseline); ``regions (B, R, *spatial)``.

    Higher is better. NaN when a sample has fewer than 3 non-empty regions, or when I or Δ is
    constant over them (ρ undefined). Ties get average ranks. I grows with the region's area, so a
    constant map scores ρ(area, Δ), not 0: the metric class reports that as its ``chance``.
    """
    _check_saliency(x, saliency)
    if regions.shape[0] != x.shape[0] or regions.shape[2:] != x.shape[2:]:
        raise ValueError(f"expected regions of shape ({x.shape[0]}, R, {', '.join(map(str, x.shape[2:]))}), "
                         f"got {tuple(regions.shape)}")
    base = make_baseline(x, baseline, background=background, sigma=sigma,
                         generator=seeded_rows(seed, SALT_BASELINE, x))
    regions = regions.to(x.device).bool()
    deltas = region_deletion_deltas(model, x, target, regions, base, score=score, max_batch=max_batch)
    mass = (saliency.to(x.device)[:, None].float() * regions).flatten(2).sum(dim=2)
    present = regions.flatten(2).any(dim=2)
    return spearman(mass, deltas, valid=present, min_count=3)
