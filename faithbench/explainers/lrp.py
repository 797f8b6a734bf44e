"""Layer-wise relevance propagation through captum (Bach et al. 2015; Montavon et al. 2019).

LRP redistributes the target logit backwards, layer by layer. The epsilon rule:
R_i = sum_j (x_i w_ij / (z_j + eps * sign(z_j))) R_j,  z_j = sum_i x_i w_ij + b_j;
the z+ rule (:class:`faithbench.explainers.lrp_rules.ZPlusRule`) keeps only positive contributions.
The relevance of the input is summed over channels (signed; the total is the logit minus what biases
and epsilon absorb).

Two rule sets (composites), each a registered explainer:

- ``lrp`` (LRP-epsilon): the epsilon rule on ``Linear``, ``Conv2d``/``3d``, ``BatchNorm2d``/``3d``
  (eval mode: an affine map), ``MaxPool2d``/``3d``, ``AvgPool2d``/``3d``, ``AdaptiveAvgPool2d``/``3d``,
  ``AdaptiveMaxPool2d``/``3d`` (as zennit's ``MaxPool`` type; winner takes all);
- ``lrp_epsilon_zplus`` (LRP-epsilon-z+, zennit's ``EpsilonPlus`` composite): epsilon on ``Linear``,
  z+ on convolutions, BatchNorm passes relevance unchanged, average pooling gets epsilon 1e-6 (zennit's
  ``Norm``), max pooling epsilon 1e-6 (winner takes all);
- in both, ``Flatten`` passes relevance through unchanged (a reshape has nothing to absorb: epsilon
  there would scale each feature by x / (x + eps)), and ``ReLU``, ``Dropout``, ``Tanh`` pass it
  through (captum's non-linear layers), and so do ``Identity`` and ``Dropout1d``/``2d``/``3d`` (identities in
  eval mode, :class:`~faithbench.explainers.lrp_rules.NoOpRule`).

Tested against zennit on identical models and inputs (``tests/explainers/test_lrp_zennit.py``).
Any other leaf layer makes :meth:`LRPExplainer.unsupported_reason` say so, and so does any operation
the forward applies outside the layers other than a reshape, a copy or a ReLU
(:mod:`faithbench.explainers.graph`, one traced forward pass of one sample): captum cannot see it, so
relevance would leak silently. That refuses residual networks (a skip connection is a functional
addition: timm's, torchvision's and MONAI's ResNets, faithbench's ``resnet18_3d``), DenseNets
(concatenations; torchvision's also pools with ``F.adaptive_avg_pool2d``) and ViTs (attention products,
LayerNorm and GELU have no rule). A held-out review measured relevance of 1e18-1e24 for logits below 1
on MONAI's ResNet and DenseNet, which only the block class names had been checked against before. We
attach the rules to each supported layer for the call (captum removes them) and delete the
``activations`` attribute captum leaves on every layer. Each module must be used once per forward pass.
"""

from __future__ import annotations

from typing import Any, ClassVar

from captum.attr import LRP
from captum.attr._utils.lrp_rules import EpsilonRule, PropagationRule
from torch import Tensor, nn

from faithbench.configurable import POSITIVE, Bound
from faithbench.explainers.base import Explainer
from faithbench.explainers.graph import VIEW_OPS, added_attributes_removed, leaf_modules, trace_leaves
from faithbench.explainers.lrp_rules import NoOpRule, PassRule, ZPlusRule
from faithbench.registry import explainers

CONV_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Conv3d)
NORM_LAYERS: tuple[type[nn.Module], ...] = (nn.BatchNorm2d, nn.BatchNorm3d)
POOL_LAYERS: tuple[type[nn.Module], ...] = (nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool2d, nn.AvgPool3d,
                                            nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d,
                                            nn.AdaptiveMaxPool3d)  # zennit's MaxPool type holds the adaptive ones
RULE_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, *CONV_LAYERS, *NORM_LAYERS, *POOL_LAYERS, nn.Flatten)
PASS_THROUGH_LAYERS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.Dropout, nn.Tanh)  # captum's list, exact types
# identities in eval mode that captum does not list: no rule, no hook (a review: refused before)
NO_OP_LAYERS: tuple[type[nn.Module], ...] = (nn.Identity, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
RESIDUAL_BLOCKS: tuple[str, ...] = ("BasicBlock", "Bottleneck")  # timm / torchvision ResNet blocks
# between layers, operations LRP passes exactly: reshapes and copies (a copy's relevance is summed back),
# and ReLU (captum passes relevance through its module unchanged, so a functional one changes nothing)
LRP_FUNCTIONAL_OPS = VIEW_OPS | {"Relu", "Threshold"}


def lrp_unsupported_layers(model: nn.Module) -> list[str]:
    """Type names of the layers LRP-epsilon cannot handle here (empty if the model is supported)."""
    bad = {type(m).__name__ for m in model.modules() if type(m).__name__ in RESIDUAL_BLOCKS}
    known = {kind.__name__ for kind in (*RULE_LAYERS, *PASS_THROUGH_LAYERS, *NO_OP_LAYERS)}
    for m in leaf_modules(model):
        if type(m) not in (*RULE_LAYERS, *PASS_THROUGH_LAYERS, *NO_OP_LAYERS):
            name = type(m).__name__  # a subclass of a supported layer (timm's Linear): by its full path
            bad.add(f"{type(m).__module__}.{name} (a subclass; rules fit exact types)" if name in known else name)
    return sorted(bad)


def epsilon_rule(module: nn.Module, epsilon: float) -> PropagationRule:
    """``lrp``: epsilon everywhere except ``Flatten``, which passes relevance unchanged."""
    return PassRule() if type(module) is nn.Flatten else EpsilonRule(epsilon=epsilon)


def epsilon_zplus_rule(module: nn.Module, epsilon: float) -> PropagationRule:
    """``lrp_epsilon_zplus`` (zennit's ``EpsilonPlus``): z+ on convolutions, epsilon on ``Linear``,
    BatchNorm and ``Flatten`` pass, pooling epsilon 1e-6."""
    kind = type(module)
    if kind in CONV_LAYERS:
        return ZPlusRule()
    if kind is nn.Linear:
        return EpsilonRule(epsilon=epsilon)
    if kind in NORM_LAYERS or kind is nn.Flatten:
        return PassRule()
    return EpsilonRule(epsilon=1e-6)


@explainers.register("lrp")
class LRPExplainer(Explainer):
    """LRP-epsilon (Bach et al. 2015; captum ``LRP``): the epsilon rule on every layer with weights or
    pooling, relevance passed unchanged through ``Flatten`` and activations, summed over channels.
    ``epsilon`` default 1e-9 (captum's; close to LRP-0, which equals input x gradient on bias-free ReLU
    networks); it must be > 0: with 0 a zero pre-activation divides 0 by 0 and the map is NaN. See the
    module docstring for supported layers."""

    family = "gradient"
    architectures = frozenset({"cnn"})
    paper = "Bach et al. 2015, On Pixel-Wise Explanations by Layer-Wise Relevance Propagation"
    description = "layer-wise relevance propagation, epsilon rule (captum), summed over channels"
    defaults: ClassVar[dict[str, Any]] = {"epsilon": 1e-9}
    bounds: ClassVar[dict[str, Bound]] = {"epsilon": POSITIVE}  # also lrp_epsilon_zplus's (bounds are inherited)
    version = "2"  # 2: Flatten passes relevance (1 applied epsilon there); cached maps of 1 are stale
    rule_for = staticmethod(epsilon_rule)

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        """Every reason at once (a held-out review: torchvision's DenseNet was told of its input transform
        only, and after ``preprocess: none`` of its concatenations): the layers without a rule, the operations
        the traced forward applies outside the layers, the layers called more than once. ``preprocess: none``
        is named only where the input transform is all that stands in the way."""
        reason = super().unsupported_reason(model, x)
        if reason is not None:
            return reason
        problems = []
        bad = lrp_unsupported_layers(model)
        if bad:
            problems.append(f"no propagation rule for {', '.join(bad)} (supported layers are listed in "
                            "faithbench.explainers.lrp)")
        trace = trace_leaves(model, x)
        ops = trace.outside(LRP_FUNCTIONAL_OPS) if trace is not None else []
        reused = trace.reused(RULE_LAYERS, model) if trace is not None else []
        if ops:
            problems.append(f"the forward applies {', '.join(ops)} outside its layers (functionally, as a skip "
                            "connection, a concatenation or F.adaptive_avg_pool2d), where captum's LRP has no rule, "
                            "so relevance would leak")
        if reused:
            problems.append(f"each layer must be called once per forward pass; {', '.join(reused)}")
        if not problems:
            return None
        hint = ("; the input transform (channel replication, resize, normalisation) goes with `preprocess: none` "
                "in the model entry, where the data fit the network as they are"
                if bad == ["InputTransform"] and not ops and not reused else "")  # where it alone would do
        return f"{self.name}: " + "; and ".join(problems) + hint

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        bad = lrp_unsupported_layers(model)
        if bad:
            raise ValueError(f"{self.name}: unsupported layers {', '.join(bad)}")
        leaves = leaf_modules(model)
        for m in leaves:
            if type(m) in RULE_LAYERS:
                m.rule = self.rule_for(m, self.epsilon)
            elif type(m) in NO_OP_LAYERS:
                m.rule = NoOpRule()
        try:
            with added_attributes_removed(leaves, ("activations",)):
                attr = LRP(model).attribute(x, target=target)
        finally:
            for m in leaves:
                m.__dict__.pop("rule", None)  # captum removes them too, except when it fails early
        return attr.sum(dim=1)


@explainers.register("lrp_epsilon_zplus")
class LRPEpsilonZPlusExplainer(LRPExplainer):
    """LRP-epsilon-z+ (Montavon et al. 2019; zennit's ``EpsilonPlus`` composite, Anders et al. 2021): z+
    on convolutions (positive contributions x+ w+ + x- w-, positive bias), epsilon on ``Linear``,
    BatchNorm passes relevance unchanged, summed over channels. ``epsilon`` default 1e-6 (zennit's).
    With BatchNorm's scale gamma > 0, passing BatchNorm equals z+ on the convolution merged with it."""

    paper = "Montavon et al. 2019, Layer-Wise Relevance Propagation: An Overview"
    description = "layer-wise relevance propagation, epsilon on dense and z+ on conv layers, summed over channels"
    defaults: ClassVar[dict[str, Any]] = {"epsilon": 1e-6}
    version = "3"  # 3: a ReLU right before a z+ convolution or a BatchNorm passed the gradient, not the relevance
    rule_for = staticmethod(epsilon_zplus_rule)
