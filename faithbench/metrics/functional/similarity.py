"""Similarity of two saliency maps, for the randomisation checks (Adebayo et al. 2018).

Each function maps two batches ``(B, *spatial)`` (2D or 3D) to ``(B,)`` (the ``_matrix`` ones to ``(A, B)``):

- ``spearman_abs``: Spearman rank correlation of |a| and |b| over all pixels/voxels (ties get
  average ranks). A map that is constant has no ranking; by convention two constant maps are
  identical (1.0) and a constant map against a varying one shares no ranking (0.0), so a
  constant map never silently drops out as NaN (repeatability); :func:`similarity`, which the
  randomisation checks call, gives NaN for such a pair instead.
- ``spearman``: the same of the signed maps (no absolute value: Adebayo et al.'s variant "without
  absolute values", where a sign flip of the map counts), same constant-map convention.
- ``ssim``: structural similarity (Wang et al. 2004) of the per-sample min-max normalised maps;
  Gaussian window sigma 1.5 truncated at 3.5 sigma (11 taps), K1 = 0.01, K2 = 0.03, data range
  1, population (not sample) covariances, mean over the positions where the window fits (as
  ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``). 2D and 3D; a map smaller than 11 along an axis
  gets a narrower window (radius (size - 1) // 2).
- ``spearman_abs_matrix``, ``ssim_matrix``: the same two of every map of one stack ``(A, *spatial)``
  against every map of another ``(B, *spatial)``, an ``(A, B)`` matrix (the repeatability baseline).
- ``hog_pearson``: Pearson correlation of HOG features (Dalal & Triggs 2005;
  ``skimage.feature.hog`` with 9 orientations, 8 x 8 cells, 2 x 2 blocks) of the min-max
  normalised maps. 3D volumes: HOG of every slice along the first spatial axis, concatenated.
  Needs scikit-image; runs on the CPU.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

Similarity = Literal["spearman_abs", "spearman", "ssim", "hog_pearson"]
SIMILARITIES = ("spearman_abs", "spearman", "ssim", "hog_pearson")


def rankdata(values: Tensor) -> Tensor:
    """1-based ranks along the last axis of ``(B, N)``, ties given their average rank
    (``scipy.stats.rankdata(method="average")`` row by row)."""
    b, n = values.shape
    sorted_v, order = values.sort(dim=1, stable=True)
    new = torch.ones_like(sorted_v, dtype=torch.bool)
    new[:, 1:] = sorted_v[:, 1:] != sorted_v[:, :-1]
    group = new.long().cumsum(dim=1) - 1
    pos = torch.arange(n, device=values.device, dtype=torch.float64).expand(b, n)
    first = torch.full((b, n), float(n), dtype=torch.float64, device=values.device)
    first = first.scatter_reduce(1, group, pos, reduce="amin")
    last = torch.zeros((b, n), dtype=torch.float64, device=values.device).scatter_reduce(1, group, pos, reduce="amax")
    avg = (first + last) / 2 + 1
    ranks = torch.empty((b, n), dtype=torch.float64, device=values.device)
    ranks.scatter_(1, order, avg.gather(1, group))
    return ranks


def pearson(a: Tensor, b: Tensor, *, valid: Tensor | None = None) -> Tensor:
    """Pearson correlation along the last axis of ``(B, N)`` over the ``valid`` entries;
    NaN where either side is constant."""
    a, b = a.double(), b.double()
    w = torch.ones_like(a) if valid is None else valid.double()
    a, b = torch.where(w > 0, a, 0.0), torch.where(w > 0, b, 0.0)
    n = w.sum(dim=1, keepdim=True)
    da = (a - (a * w).sum(1, keepdim=True) / n) * w
    db = (b - (b * w).sum(1, keepdim=True) / n) * w
    num = (da * db).sum(1)
    den = (da.square().sum(1) * db.square().sum(1)).sqrt()
    tol = 1e-12 * (a.abs().amax(1) * b.abs().amax(1) + 1e-300) * n[:, 0]
    return torch.where(den > tol, num / den, torch.full_like(num, float("nan"))).clamp(-1, 1)


def spearman(a: Tensor, b: Tensor, *, valid: Tensor | None = None, min_count: int = 2) -> Tensor:
    """Spearman ρ along the last axis of ``(B, N)`` over the ``valid`` entries (average ranks for
    ties); NaN where fewer than ``min_count`` entries are valid or either side is constant."""
    a, b = a.double(), b.double()
    if valid is not None:
        valid = valid.bool() & torch.isfinite(a) & torch.isfinite(b)
        # invalid entries rank last, so the valid ones keep ranks 1..n_valid among themselves
        a = torch.where(valid, a, torch.inf)
        b = torch.where(valid, b, torch.inf)
    rho = pearson(rankdata(a), rankdata(b), valid=valid)
    if valid is not None:
        rho = torch.where(valid.sum(1) >= min_count, rho, torch.full_like(rho, float("nan")))
    return rho


def _constant(x: Tensor) -> Tensor:
    flat = x.flatten(1)
    return flat.amax(1) == flat.amin(1)


def _constant_convention(value: Tensor, a: Tensor, b: Tensor) -> Tensor:
    ca, cb = _constant(a), _constant(b)
    value = torch.where(ca & cb, torch.ones_like(value), value)
    return torch.where(ca ^ cb, torch.zeros_like(value), value)


def spearman_abs(a: Tensor, b: Tensor) -> Tensor:
    """Spearman ρ of |a| and |b| per sample (constant maps: see the module docstring)."""
    _check_pair(a, b)
    fa, fb = a.abs().flatten(1), b.abs().flatten(1)
    return _constant_convention(spearman(fa, fb), fa, fb).float()


def spearman_signed(a: Tensor, b: Tensor) -> Tensor:
    """Spearman ρ of the signed maps a and b per sample (constant maps: see the module docstring)."""
    _check_pair(a, b)
    fa, fb = a.flatten(1), b.flatten(1)
    return _constant_convention(spearman(fa, fb), fa, fb).float()


def spearman_abs_matrix(a: Tensor, b: Tensor) -> Tensor:
    """``(A, B)`` matrix of :func:`spearman_abs` of every map of ``a`` ``(A, *spatial)`` against every map of
    ``b`` ``(B, *spatial)`` (float64; each map ranked once, the correlations one matrix product)."""
    _check_stacks(a, b)
    fa, fb = a.abs().flatten(1).double(), b.abs().flatten(1).double()

    def standardised(flat: Tensor) -> Tensor:  # centred ranks of unit norm; a constant map all zeros
        ranks = rankdata(flat)
        centred = ranks - ranks.mean(1, keepdim=True)
        norm = centred.norm(dim=1, keepdim=True)
        return torch.where(norm > 0, centred / torch.where(norm > 0, norm, 1.0), 0.0)

    value = (standardised(fa) @ standardised(fb).T).clamp(-1, 1)
    ca, cb = _constant(fa), _constant(fb)
    return torch.where(ca[:, None] & cb[None], 1.0, value)  # a constant map against a varying one: 0 already


def ssim_matrix(a: Tensor, b: Tensor, *, sigma: float = 1.5, truncate: float = 3.5, data_range: float = 1.0,
                k1: float = 0.01, k2: float = 0.03) -> Tensor:
    """``(A, B)`` matrix of :func:`ssim` (min-max normalised) of every map of ``a`` against every map of ``b``
    (float64). Each map's local mean and variance are filtered once; only the local covariance is filtered
    per pair (a fifth of the filtering of :func:`ssim` on every pair)."""
    _check_stacks(a, b)
    a, b = minmax(a).double()[:, None], minmax(b).double()[:, None]
    radius = _radius(a.shape[2:], sigma, truncate)
    (mu_a, var_a), (mu_b, var_b) = _moments(a, radius, sigma), _moments(b, radius, sigma)
    out = torch.empty(a.shape[0], b.shape[0], dtype=torch.float64)
    for i in range(a.shape[0]):
        cov = _gaussian_valid(a[i:i + 1] * b, radius, sigma) - mu_a[i:i + 1] * mu_b
        index = _ssim_index(mu_a[i:i + 1], mu_b, var_a[i:i + 1], var_b, cov, k1 * data_range, k2 * data_range)
        out[i] = index.flatten(1).mean(1).cpu()
    return out


def _check_stacks(a: Tensor, b: Tensor) -> None:
    if a.shape[1:] != b.shape[1:] or a.ndim not in (3, 4):
        raise ValueError(f"expected two stacks of maps (N, H, W) or (N, D, H, W) of one spatial shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def _radius(spatial: tuple[int, ...], sigma: float, truncate: float) -> tuple[int, ...]:
    """The Gaussian window's radius per axis: skimage's int(truncate * sigma + 0.5), narrower on a short axis."""
    r0 = int(truncate * sigma + 0.5)
    return tuple(min(r0, (s - 1) // 2) for s in spatial)


def _moments(x: Tensor, radius: tuple[int, ...], sigma: float) -> tuple[Tensor, Tensor]:
    """Local mean and variance of ``(B, 1, *spatial)`` under the Gaussian window."""
    mu = _gaussian_valid(x, radius, sigma)
    return mu, _gaussian_valid(x * x, radius, sigma) - mu**2


def _ssim_index(mu_a: Tensor, mu_b: Tensor, var_a: Tensor, var_b: Tensor, cov: Tensor, l1: float,
                l2: float) -> Tensor:
    """The local SSIM index from the moments, C1 = l1², C2 = l2² (K1 L and K2 L)."""
    c1, c2 = l1**2, l2**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def minmax(saliency: Tensor) -> Tensor:
    """Per-sample min-max normalisation to [0, 1]; a constant map becomes all zeros."""
    flat = saliency.flatten(1).double()
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return ((flat - lo) / span).reshape(saliency.shape)


def _gaussian_valid(x: Tensor, radius: tuple[int, ...], sigma: float) -> Tensor:
    """Separable Gaussian filter of ``(B, 1, *spatial)`` keeping only fully covered positions: along each
    axis a weighted sum of the 2r + 1 shifted views (an order faster than ``conv1d`` with one channel on
    small maps, which the repeatability baseline filters ~1000 times a pair of checkpoints)."""
    out = x
    for axis, r in enumerate(radius):
        t = torch.arange(-r, r + 1, dtype=torch.float64)
        weights = torch.exp(-(t**2) / (2 * sigma**2))
        weights = (weights / weights.sum()).tolist()
        dim, size = 2 + axis, out.shape[2 + axis] - 2 * r
        acc = out.narrow(dim, 0, size) * weights[0]
        for shift in range(1, 2 * r + 1):
            acc.add_(out.narrow(dim, shift, size), alpha=weights[shift])
        out = acc
    return out


def ssim(a: Tensor, b: Tensor, *, sigma: float = 1.5, truncate: float = 3.5, data_range: float = 1.0,
         k1: float = 0.01, k2: float = 0.03, normalise: bool = True) -> Tensor:
    """Mean SSIM per sample (Wang et al. 2004), 2D or 3D; see the module docstring.

    SSIM = (2 μa μb + C1)(2 σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2)),
    C1 = (K1 L)², C2 = (K2 L)², local moments under a Gaussian window.
    """
    _check_pair(a, b)
    if normalise:
        a, b = minmax(a), minmax(b)
    a, b = a.double()[:, None], b.double()[:, None]
    radius = _radius(a.shape[2:], sigma, truncate)
    (mu_a, var_a), (mu_b, var_b) = _moments(a, radius, sigma), _moments(b, radius, sigma)
    cov = _gaussian_valid(a * b, radius, sigma) - mu_a * mu_b
    return _ssim_index(mu_a, mu_b, var_a, var_b, cov, k1 * data_range, k2 * data_range).flatten(1).mean(1).float()


def hog_features(saliency: Tensor, *, orientations: int = 9, pixels_per_cell: int = 8,
                 cells_per_block: int = 2) -> np.ndarray:
    """HOG feature vectors ``(B, F)`` of the min-max normalised maps (3D: per first-axis slice)."""
    try:
        from skimage.feature import hog
    except ImportError as exc:  # pragma: no cover - scikit-image comes with quantus
        raise ImportError("hog_pearson needs scikit-image (pip install scikit-image)") from exc
    maps = minmax(saliency).cpu().numpy()
    kw = dict(orientations=orientations, pixels_per_cell=(pixels_per_cell,) * 2,
              cells_per_block=(cells_per_block,) * 2, feature_vector=True)
    if maps.ndim == 3:
        return np.stack([hog(m, **kw) for m in maps])
    return np.stack([np.concatenate([hog(s, **kw) for s in m]) for m in maps])


def hog_pearson(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of the HOG features of a and b per sample (constant maps: as
    ``spearman_abs``)."""
    _check_pair(a, b)
    if min(a.shape[-2:]) < 16:
        raise ValueError(f"hog_pearson needs maps of at least 16 x 16 (two 8 x 8 cells), got {tuple(a.shape[1:])}")
    fa, fb = torch.from_numpy(hog_features(a)), torch.from_numpy(hog_features(b))
    value = pearson(fa, fb)
    value = _constant_convention(value, a.flatten(1).cpu(), b.flatten(1).cpu())
    # a constant HOG vector (e.g. a linear ramp) has no correlation to speak of
    return torch.nan_to_num(value, nan=0.0).float().to(a.device)


def similarity(a: Tensor, b: Tensor, name: Similarity = "spearman_abs") -> Tensor:
    """Dispatch to ``spearman_abs``, ``spearman`` (signed), ``ssim`` or ``hog_pearson``: ``(B, *spatial)`` x 2 ->
    ``(B,)``;
    NaN for a pair with a NaN or Inf value (a re-explanation that failed: spearman_abs ranked it to about
    0 and hog_pearson to 0, the best value of a randomisation check; a held-out review), and for a pair
    in which either map is constant (an all-zero Grad-CAM: nothing to compare, as Quantus refuses
    such maps; a review found empty maps scored 0, the best value, bold and starred, under the
    convention of :func:`spearman_abs`, which the randomisation checks no longer use)."""
    if name not in SIMILARITIES:
        raise ValueError(f"unknown similarity {name!r}; expected one of {', '.join(SIMILARITIES)}")
    finite = torch.isfinite(a).flatten(1).all(dim=1) & torch.isfinite(b).flatten(1).all(dim=1)
    compared = (a.abs(), b.abs()) if name == "spearman_abs" else (a, b)
    finite &= ~(_constant(compared[0]) | _constant(compared[1]))
    a, b = (torch.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0) for m in (a, b))
    value = {"spearman_abs": spearman_abs, "spearman": spearman_signed, "ssim": ssim, "hog_pearson": hog_pearson}[
        name](a, b)
    return torch.where(finite.to(value.device), value, torch.full_like(value, float("nan")))


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"expected two saliency maps of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim not in (3, 4):
        raise ValueError(f"expected saliency of shape (B, H, W) or (B, D, H, W), got {tuple(a.shape)}")


__all__ = ["SIMILARITIES", "hog_features", "hog_pearson", "minmax", "pearson", "rankdata", "similarity", "spearman",
           "spearman_abs", "spearman_abs_matrix", "spearman_signed", "ssim", "ssim_matrix"]
