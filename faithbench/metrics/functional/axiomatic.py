"""Axiomatic properties of an explanation (Sundararajan et al. 2017; Nguyen & Martinez 2020;
Kindermans et al. 2017). Shapes: ``x (B, C, *spatial)``, ``saliency (B, *spatial)``, 2D or 3D;
each function returns ``(B,)``.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from faithbench.metrics.functional.faithfulness_extra import Scorer, feature_ids, subset_deltas
from faithbench.metrics.functional.perturbation import pool_features


def completeness_gap(saliency: Tensor, score_x: Tensor, score_baseline: Tensor) -> Tensor:
    """Completeness (Sundararajan et al. 2017, "Axiomatic attribution for deep networks"): the
    attributions should sum to the change of the output between the baseline x̄ and x,
    Σ_i s_i = f(x) - f(x̄). Returns the gap |Σ_i s_i - (f(x) - f(x̄))| ``(B,)``; 0 = complete."""
    total = saliency.flatten(1).double().sum(1)
    return (total - (score_x.double() - score_baseline.double())).abs().float()


def non_sensitivity(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, baseline: Tensor, *,
                    eps: float = 1e-5, patch: int = 1) -> Tensor:
    """Non-sensitivity (Nguyen & Martinez 2020, "On quantitative aspects of model
    interpretability"): a feature without attribution should not move the output, and a feature
    that does not move the output should have no attribution. With features i (pixels, or
    patch^d blocks), a_i = Σ |s| over the feature and Δ_i = |f(x) - f(x with feature i replaced
    by ``baseline``)| (:func:`~faithbench.metrics.functional.faithfulness_extra.subset_deltas`
    with one feature per subset; B (F + 1) forward passes), the share of features that break the
    rule,

        |{i : a_i < eps} Δ {i : Δ_i < eps}| / F    (Δ: symmetric difference).

    Lower is better. ``saliency`` should be divided by its maximum first, so ``eps`` is relative.
    A feature is a pixel/voxel (or patch) with all its channels. Quantus 0.6.0's ``NonSensitivity``
    returns the count (F times ours) on 1-channel inputs; on C > 1 channels it broadcasts the map
    over the channels and counts over the C N channel-pixels, each replaced alone."""
    _, n = feature_ids(tuple(x.shape[2:]), patch, x.device)
    attribution = pool_features(saliency.abs(), patch).flatten(1) if patch > 1 else saliency.abs().flatten(1)
    singles = torch.arange(n, device=x.device).view(1, n, 1).expand(x.shape[0], n, 1)
    deltas = subset_deltas(scorer, x, target, singles, baseline, patch=patch).abs()
    violations = (attribution.to(x.device) < eps) ^ (deltas < eps)
    return violations.double().mean(1).float()


def shifted_model(model: nn.Module, shift: float, x: Tensor | None = None) -> nn.Module:
    """A copy of ``model`` that sees its input minus ``shift``: f2(z) = f1(z - shift), so
    f2(x + shift) = f1(x) (Kindermans et al. 2017 move the shift into the first layer's bias; a
    forward pre-hook does the same without the zero-padding error at the borders). In float32
    (x + c) - c is not x: a held-out review found 1977 of a phantom's 4096 pixels an ulp off, which
    flipped ReLUs and moved the gradient map by 1.7e-3 of its maximum, so the gradient, invariant in
    theory, failed. Given ``x``, an input equal to ``x + shift`` (as the metric computes it, the whole
    batch) reaches the model as ``x`` itself, its gradient that of z - shift (straight through);
    other inputs (an explainer's noisy, masked or path copies) are shifted back in float32, within
    rounding of the same copies of x."""
    work = copy.deepcopy(model)
    exact = None if x is None else (x.detach(), (x + shift).detach())

    def hook(_m: nn.Module, args: tuple) -> tuple:
        z = args[0]
        if (exact is not None and isinstance(z, Tensor) and z.shape == exact[1].shape and z.dtype == exact[1].dtype
                and z.device == exact[1].device and torch.equal(z.detach(), exact[1])):
            return (exact[0] + (z - z.detach()), *args[1:])
        return (z - shift, *args[1:])

    work.register_forward_pre_hook(hook)
    return work


def input_invariance(saliency: Tensor, shifted: Tensor, *, atol: float = 1e-4) -> Tensor:
    """Input invariance (Kindermans et al. 2017, "The (un)reliability of saliency methods"): 1.0
    if the explanation of the shifted model at x + c equals the original everywhere,
    max_i |s_i - s'_i| <= atol max_i |s_i|, else 0.0 ``(B,)``."""
    a, b = saliency.flatten(1).double(), shifted.flatten(1).double()
    scale = a.abs().amax(1)
    return ((a - b).abs().amax(1) <= atol * scale.clamp(min=1e-300)).float()


__all__ = ["completeness_gap", "input_invariance", "non_sensitivity", "shifted_model"]
