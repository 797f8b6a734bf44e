"""Perturbation curves: deletion and insertion (Petsiuk et al. 2018, RISE).

Features (pixels/voxels, or p x p (x p) patches) are ranked by saliency, descending, with ties
broken by a seeded random permutation (never index order, which biases toward the top-left
corner). For k = 0..steps the top ``round(k/steps * n)`` features are replaced:

- deletion starts from x and replaces features by the deletion baseline;
- insertion starts from the insertion baseline and restores features of x.

Score at each step: softmax probability of the target (``prob``), the target logit (``logit``)
or 1/0 whether the argmax is the target (``correct``). AUC is the trapezoid over the fraction
of features replaced, in [0, 1]. Every perturbed image is built on the model's device, batched
across samples and steps in chunks of ``max_batch`` images.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Predict = Callable[[Tensor], Tensor]
Score = Literal["prob", "logit", "correct"]
BaselineName = Literal["zero", "blur", "mean", "noise"]


# --- baselines ------------------------------------------------------------------------
def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur over the spatial axes of ``(B, C, *spatial)`` (2D or 3D).

    Kernel radius ceil(3 sigma) (capped at each axis' size - 1), reflect padding.
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
                  generator: torch.Generator | None = None) -> Tensor:
    """The replacement image for ``x (B, C, *spatial)``.

    zero: the dataset's background value in model input space (not 0 after normalisation);
    blur: Gaussian blur with ``sigma`` pixels; mean: each sample's per-channel mean;
    noise: Gaussian noise with each sample's per-channel mean and std (seeded).
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
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return mean + std * noise
    raise ValueError(f"unknown baseline {name!r}; expected one of zero, blur, mean, noise")


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


def feature_ranks(saliency: Tensor, *, patch: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Rank of every feature, 0 = most salient: ``(B, *spatial)`` -> ``(B, *spatial)`` long.

    Ties are broken by a random permutation drawn from ``generator`` (seeded), per sample.
    With ``patch > 1`` every pixel of a patch carries its patch's rank.
    """
    if not torch.isfinite(saliency).all():
        raise ValueError("saliency contains NaN or Inf; cannot rank features")
    spatial = saliency.shape[1:]
    grid = pool_features(saliency, patch)
    flat = grid.flatten(1)
    b, n = flat.shape
    shuffle = torch.rand((b, n), generator=generator).argsort(dim=1).to(flat.device)
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
def _score(logits: Tensor, target: Tensor, score: Score) -> Tensor:
    picked = logits.gather(1, target[:, None])[:, 0]
    if score == "logit":
        return picked
    if score == "prob":
        return logits.softmax(-1).gather(1, target[:, None])[:, 0]
    if score == "correct":
        return (logits.argmax(-1) == target).to(logits.dtype)
    raise ValueError(f"unknown score {score!r}; expected prob, logit or correct")


def _chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(total, start + size))


def perturbation_curve(predict: Predict, x: Tensor, target: Tensor, ranks: Tensor, replacement: Tensor,
                       *, steps: int, insertion: bool, score: Score = "prob",
                       max_batch: int = 256) -> tuple[Tensor, Tensor]:
    """Scores after each step: ``(B, steps + 1)``, and the fractions replaced ``(steps + 1,)``.

    Deletion (``insertion=False``): step k shows x with its top-c_k features set to
    ``replacement``. Insertion: step k shows ``replacement`` with the top-c_k features of x.
    """
    b = x.shape[0]
    n_features = int(ranks.flatten(1).max()) + 1
    counts = step_counts(n_features, steps).to(x.device)
    src, dst = (replacement, x) if insertion else (x, replacement)
    # every (sample, step) pair, flattened sample-major
    pairs = torch.cartesian_prod(torch.arange(b, device=x.device), torch.arange(steps + 1, device=x.device))
    scores = torch.empty(b * (steps + 1), device=x.device)
    view = (-1, 1) + (1,) * (x.ndim - 2)
    for sl in _chunks(len(pairs), max_batch):
        sb, sk = pairs[sl, 0], pairs[sl, 1]
        replaced = (ranks[sb] < counts[sk].view(-1, *[1] * (ranks.ndim - 1)))[:, None]
        images = torch.where(replaced, dst[sb], src[sb])
        scores[sl] = _score(predict(images), target[sb], score).float()
        del replaced, images
    fractions = counts.double().cpu() / n_features
    return scores.view(b, steps + 1), fractions.float()


def auc(curve: Tensor, fractions: Tensor) -> Tensor:
    """Trapezoid area under ``curve (B, K)`` over ``fractions (K,)`` in [0, 1]."""
    return torch.trapezoid(curve, fractions.to(curve.device), dim=-1)


def deletion_auc(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, steps: int = 50,
                 baseline: BaselineName = "zero", background: float = 0.0, sigma: float = 5.0,
                 patch: int = 1, score: Score = "prob", seed: int = 0, max_batch: int = 256) -> Tensor:
    """Deletion AUC per sample ``(B,)``; lower is better (Petsiuk et al. 2018)."""
    gen = torch.Generator().manual_seed(seed)
    ranks = feature_ranks(saliency, patch=patch, generator=gen)
    base = make_baseline(x, baseline, background=background, sigma=sigma, generator=gen)
    curve, fr = perturbation_curve(model, x, target, ranks, base, steps=steps, insertion=False,
                                   score=score, max_batch=max_batch)
    return auc(curve, fr)


def insertion_auc(model: Predict, x: Tensor, target: Tensor, saliency: Tensor, *, steps: int = 50,
                  baseline: BaselineName = "blur", background: float = 0.0, sigma: float = 5.0,
                  patch: int = 1, score: Score = "prob", seed: int = 0, max_batch: int = 256) -> Tensor:
    """Insertion AUC per sample ``(B,)``; higher is better (Petsiuk et al. 2018)."""
    gen = torch.Generator().manual_seed(seed)
    ranks = feature_ranks(saliency, patch=patch, generator=gen)
    base = make_baseline(x, baseline, background=background, sigma=sigma, generator=gen)
    curve, fr = perturbation_curve(model, x, target, ranks, base, steps=steps, insertion=True,
                                   score=score, max_batch=max_batch)
    return auc(curve, fr)
