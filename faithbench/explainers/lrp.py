"""Layer-wise relevance propagation, epsilon rule, through captum (Bach et al. 2015).

LRP-epsilon redistributes the target logit backwards, layer by layer:
R_i = sum_j (x_i w_ij / (z_j + eps * sign(z_j))) R_j,  z_j = sum_i x_i w_ij + b_j,
and returns the relevance of the input, summed over channels (signed; the total is the logit
minus what biases and epsilon absorb).

Supported leaf layers (anything else makes :meth:`LRPExplainer.unsupported_reason` say so):

- epsilon rule: ``Linear``, ``Conv2d``, ``Conv3d``, ``BatchNorm2d``/``3d`` (eval mode: an affine
  map), ``MaxPool2d``/``3d``, ``AvgPool2d``/``3d``, ``AdaptiveAvgPool2d``/``3d``, ``Flatten``;
- passed through unchanged: ``ReLU``, ``Dropout``, ``Tanh`` (captum's non-linear layers).

captum itself has rules only for the 2D subset and for no ``Flatten``; we attach
``EpsilonRule(epsilon)`` to each supported layer for the call (captum removes the rules) and
delete the ``activations`` attribute captum leaves on every layer. Not supported: ViTs (attention
products, LayerNorm and GELU have no rule), and residual networks such as timm's ResNet, whose skip
connections are functional additions that captum cannot see, so relevance would leak silently.
Each module must be used once per forward pass.
"""

from __future__ import annotations

from typing import Any, ClassVar

from captum.attr import LRP
from captum.attr._utils.lrp_rules import EpsilonRule
from torch import Tensor, nn

from faithbench.explainers.base import Explainer
from faithbench.registry import explainers

EPSILON_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv2d, nn.Conv3d, nn.BatchNorm2d, nn.BatchNorm3d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Flatten)
PASS_THROUGH_LAYERS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.Dropout, nn.Tanh)  # captum's list, exact types
RESIDUAL_BLOCKS: tuple[str, ...] = ("BasicBlock", "Bottleneck")  # timm / torchvision ResNet blocks


def leaf_modules(model: nn.Module) -> list[nn.Module]:
    """The leaves captum's LRP visits (modules without children)."""
    return [m for m in model.modules() if not list(m.children())]


def lrp_unsupported_layers(model: nn.Module) -> list[str]:
    """Type names of the layers LRP-epsilon cannot handle here (empty if the model is supported)."""
    bad = {type(m).__name__ for m in model.modules() if type(m).__name__ in RESIDUAL_BLOCKS}
    for m in leaf_modules(model):
        if type(m) not in EPSILON_LAYERS and type(m) not in PASS_THROUGH_LAYERS:
            bad.add(type(m).__name__)
    return sorted(bad)


@explainers.register("lrp")
class LRPExplainer(Explainer):
    """LRP-epsilon (Bach et al. 2015; captum ``LRP``) with ``EpsilonRule(epsilon)`` on every layer,
    summed over channels. ``epsilon`` default 1e-9 (captum's; close to LRP-0, which equals
    input x gradient on bias-free ReLU networks). See the module docstring for supported layers."""

    family = "gradient"
    architectures = frozenset({"cnn"})
    paper = "Bach et al. 2015, On Pixel-Wise Explanations by Layer-Wise Relevance Propagation"
    description = "layer-wise relevance propagation, epsilon rule (captum), summed over channels"
    defaults: ClassVar[dict[str, Any]] = {"epsilon": 1e-9}

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        reason = super().unsupported_reason(model, x)
        if reason is None:
            bad = lrp_unsupported_layers(model)
            if bad:
                reason = (f"lrp has no propagation rule for {', '.join(bad)} (residual blocks add "
                          "their skip connection functionally; supported layers are listed in "
                          "faithbench.explainers.lrp)")
        return reason

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        bad = lrp_unsupported_layers(model)
        if bad:
            raise ValueError(f"lrp: unsupported layers {', '.join(bad)}")
        leaves = leaf_modules(model)
        had_activations = {id(m) for m in leaves if "activations" in m.__dict__}
        for m in leaves:
            if type(m) in EPSILON_LAYERS:
                m.rule = EpsilonRule(epsilon=self.epsilon)
        try:
            attr = LRP(model).attribute(x, target=target)
        finally:
            for m in leaves:
                m.__dict__.pop("rule", None)  # captum removes them too, except when it fails early
                if id(m) not in had_activations:
                    m.__dict__.pop("activations", None)
        return attr.sum(dim=1)
