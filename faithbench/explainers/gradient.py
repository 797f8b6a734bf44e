"""Gradient-based explainers through captum (Kokhlikyan et al. 2020).

Channel reduction (documented per method, since saliency is one value per pixel/voxel):
``saliency`` takes the max over channels of |gradient| (Simonyan et al. 2014); signed
attributions (``integrated_gradients``) are summed over channels, which keeps completeness.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from captum.attr import IntegratedGradients, Saliency
from torch import Tensor, nn

from faithbench.explainers.base import Explainer
from faithbench.registry import explainers


@explainers.register("saliency")
class SaliencyExplainer(Explainer):
    """Vanilla gradient: max over channels of |d score_target / d x| (Simonyan et al. 2014)."""

    family = "gradient"
    paper = "Simonyan et al. 2014, Deep Inside Convolutional Networks"
    description = "vanilla gradient magnitude (captum Saliency), max over channels"
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        attr = Saliency(model).attribute(x, target=target, abs=True)
        return attr.amax(dim=1)


@explainers.register("integrated_gradients")
class IntegratedGradientsExplainer(Explainer):
    """Integrated gradients (Sundararajan et al. 2017), summed over channels:

    IG_i(x) = (x_i - x'_i) * mean_{k=1..n} d score / d x_i at x' + (k - 0.5)/n (x - x')
    (captum's Gauss-Legendre rule by default). ``baseline`` is a constant x' in model input
    space (0.0: the phantoms' background); ``n_steps`` = 50; ``internal_batch_size`` bounds
    memory.
    """

    family = "gradient"
    paper = "Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks"
    description = "path integral of gradients from a constant baseline (captum)"
    defaults: ClassVar[dict[str, Any]] = {"n_steps": 50, "baseline": 0.0, "method": "gausslegendre",
                                          "internal_batch_size": 256}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        baseline = torch.full_like(x, float(self.baseline))
        attr = IntegratedGradients(model).attribute(
            x, baselines=baseline, target=target, n_steps=self.n_steps, method=self.method,
            internal_batch_size=self.internal_batch_size)
        return attr.sum(dim=1)
