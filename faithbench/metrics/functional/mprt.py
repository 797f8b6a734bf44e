"""Model-parameter randomisation revisited (Hedström et al. 2024, "Sanity checks revisited: an
exploration to repair the model parameter randomisation test"): smooth MPRT and efficient MPRT.

Both compare the explanation of the model with that of its fully randomised copy: every block of
:func:`~faithbench.metrics.functional.randomization.parameter_blocks` re-initialised as in the
cascading MPRT (seeded N(mean, std²) of its own values; the end state of the cascade, built in
one go). Shapes: ``x (B, C, *spatial)``, maps ``(B, *spatial)``, 2D or 3D; results ``(B,)``.

``explain(model, x, target) -> (B, *spatial)`` is the caller's (counted) explainer.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor, nn

from faithbench.metrics.base import postprocess as apply_postprocess
from faithbench.metrics.functional.perturbation import seeded
from faithbench.metrics.functional.randomization import SALT_BLOCKS, Watch, parameter_blocks, randomize_block
from faithbench.metrics.functional.similarity import Similarity, similarity as compare
from faithbench.seeds import Generators, draw_rows

Explain = Callable[[nn.Module, Tensor, Tensor], Tensor]


def randomized_copy(model: nn.Module, x: Tensor, seed: int = 0, *, watch: Watch | None = None) -> nn.Module:
    """A deep copy of ``model`` with every block randomised (the last state of the cascading MPRT
    for the same seed). ``watch``: counts the block trace (:func:`parameter_blocks`)."""
    work = copy.deepcopy(model)
    for index, (_name, params) in enumerate(parameter_blocks(work, x, watch=watch)):
        randomize_block(params, seeded(seed, SALT_BLOCKS + index))
    return work


def smoothing_noise(x: Tensor, nr_samples: int, noise: float, generator: Generators = None) -> Tensor:
    """The ``nr_samples`` input offsets of the smoothed explanation ``(nr_samples, *x.shape)``: the
    first nr_samples - 1 are N(0, σ_b²) with σ_b = ``noise`` (max x_b - min x_b) per sample, the last
    is zero (the unperturbed input), as Quantus' ``SmoothMPRT`` draws them. One ``generator`` draws the
    whole batch; B of them sample b's offsets from the b-th (:func:`~faithbench.seeds.draw_rows`)."""
    b = x.shape[0]
    span = (x.reshape(b, -1).amax(1) - x.reshape(b, -1).amin(1)).reshape(b, *[1] * (x.ndim - 1))
    eps = draw_rows(generator, b, lambda g, rows: torch.randn((nr_samples, rows, *x.shape[1:]), generator=g), dim=1)
    eps = eps.to(device=x.device, dtype=x.dtype)
    eps = eps * (noise * span)[None]
    eps[-1] = 0
    return eps


def smooth_explain(explain: Explain, model: nn.Module, x: Tensor, target: Tensor, offsets: Tensor) -> Tensor:
    """SmoothGrad-style denoised explanation: (1/N) Σ_n explain(model, x + offsets_n, target)."""
    total = None
    for eps in offsets:
        maps = explain(model, x + eps, target).double()
        total = maps if total is None else total + maps
    return (total / offsets.shape[0]).float()


def smooth_mprt(model: nn.Module, x: Tensor, target: Tensor, explain: Explain, offsets: Tensor, *,
                similarity: Similarity = "spearman_abs", postprocess: str = "abs", seed: int = 0,
                watch: Watch | None = None) -> Tensor:
    """Smooth MPRT (Hedström et al. 2024): similarity between the denoised explanations (over the
    noisy copies x + ``offsets``, from :func:`smoothing_noise` with the generators
    ``seeded_rows(seed, SALT_SMOOTH, x)``, one per image, in the metric) of the model and of its fully randomised copy
    (randomised with ``seed``). The same noise serves both, so a model-independent map scores
    exactly 1. Lower is better."""
    original = smooth_explain(explain, model, x, target, offsets)
    randomized = smooth_explain(explain, randomized_copy(model, x, seed, watch=watch), x, target, offsets)
    return compare(apply_postprocess(original, postprocess),
                   apply_postprocess(randomized.to(original.device), postprocess), similarity)


def discrete_entropy(saliency: Tensor, n_bins: int = 100) -> Tensor:
    """Entropy of the histogram of each map's values ``(B,)``: ``n_bins`` equal bins from the
    map's minimum to its maximum (the last bin closed; a constant map: one bin), p_k = count_k / N,
    H = -Σ_k p_k ln p_k: ``scipy.stats.entropy(np.histogram(a, bins=n_bins)[0])`` of the map in
    float64. ``np.histogram`` of the float32 map (what Quantus bins) may put values that lie on bin
    edges in the neighbouring bin: a review measured up to 0.33 nats apart for values on multiples
    of 1/100 of the range, 1.2e-7 on continuous maps."""
    a = saliency.flatten(1).double()
    lo, hi = a.amin(1), a.amax(1)
    same = hi == lo
    lo, hi = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
    step = (hi - lo) / n_bins
    edges = lo[:, None] + torch.arange(n_bins + 1, dtype=a.dtype, device=a.device)[None] * step[:, None]
    edges[:, -1] = hi
    index = (torch.searchsorted(edges.contiguous(), a.contiguous(), right=True) - 1).clamp(0, n_bins - 1)
    counts = torch.zeros((a.shape[0], n_bins), dtype=a.dtype, device=a.device)
    counts.scatter_add_(1, index, torch.ones_like(a))
    p = counts / counts.sum(1, keepdim=True)
    return -(p * p.clamp(min=1e-300).log()).sum(1).float()


def efficient_mprt(model: nn.Module, x: Tensor, target: Tensor, saliency: Tensor, explain: Explain, *,
                   n_bins: int = 100, postprocess: str = "none", seed: int = 0, watch: Watch | None = None) -> Tensor:
    """Efficient MPRT (Hedström et al. 2024): the relative rise of the explanation's complexity
    (histogram entropy, :func:`discrete_entropy`) from the model to its fully randomised copy,
    (H(e_random) - H(e)) / H(e); NaN where H(e) = 0 or H(e_random) = 0 (a constant map: an empty
    re-explanation scored -1, the worst value, where the similarity checks give NaN; a review). Higher
    is better: 0 = the explanation did not notice that the weights were destroyed."""
    randomized = explain(randomized_copy(model, x, seed, watch=watch), x, target).to(saliency.device)
    h0 = discrete_entropy(apply_postprocess(saliency, postprocess), n_bins).double()
    h1 = discrete_entropy(apply_postprocess(randomized, postprocess), n_bins).double()
    return torch.where((h0 > 0) & (h1 > 0), (h1 - h0) / h0, torch.full_like(h0, float("nan"))).float()


SALT_SMOOTH = 31

__all__ = ["discrete_entropy", "efficient_mprt", "randomized_copy", "smooth_explain", "smooth_mprt",
           "smoothing_noise"]
