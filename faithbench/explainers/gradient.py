"""Gradient-based explainers through captum (Kokhlikyan et al. 2020).

Channel reduction (documented per method, since saliency is one value per pixel/voxel):
magnitude methods (``saliency``, ``smoothgrad``) take the max over channels of |.| (Simonyan et
al. 2014); signed attributions (``integrated_gradients``, ``input_x_gradient``, ``gradient_shap``,
``deeplift``, ``guided_backprop``, ``guided_gradcam``) are summed over channels, which keeps
completeness where the method has it.

captum's guided backprop and DeepLift attach hooks to ReLU modules for the call and remove them;
tests check that a model gives the same outputs, and holds no hooks, afterwards.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from captum.attr import (GradientShap, GuidedBackprop, GuidedGradCam, InputXGradient,
                         IntegratedGradients, NoiseTunnel, Saliency)
from torch import Tensor, nn

from faithbench.configurable import AT_LEAST_ONE, NON_NEGATIVE, Bound
from faithbench.explainers.base import Explainer
from faithbench.explainers.deeplift_hooks import AdjacentSafeDeepLift
from faithbench.explainers.graph import (added_attributes_removed, foreign_nonlinear_leaves, leaf_modules,
                                         trace_leaves)
from faithbench.explainers.layers import checked_layer, find_target_layer, min_grid_problem, resolve_module
from faithbench.explainers.module_lists import (DEEPLIFT_STATEFUL_LEAVES, by_type, deeplift_unruled_leaves,
                                                unguided_leaves)
from faithbench.registry import explainers

# captum's integration rules (captum.attr._utils.approximation_methods.SUPPORTED_METHODS; a test compares)
IG_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def input_range(x: Tensor) -> Tensor:
    """max - min of each sample, (B,): the unit of noise levels (Smilkov et al. 2017)."""
    flat = x.flatten(1)
    return flat.amax(1) - flat.amin(1)


@contextlib.contextmanager
def hook_notices_silenced() -> Iterator[None]:
    """Around a captum call that hooks the activations by design (guided backprop, DeepLIFT): captum
    warns "Setting backward hooks on ReLU activations" / "Setting forward, backward hooks and attributes
    on non-linear activations" on every call, which a run printed raw, with a site-packages path, into
    its log (a review). Only these two notices, only for the call: every other warning still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Setting (forward, )?backward hooks", category=UserWarning)
        yield


def is_timm_activation(module: nn.Module) -> bool:
    """timm's own activation module (its GELU, QuickGELU, Sigmoid, Tanh, Swish... subclass none of torch.nn's;
    a held-out review: deeplift on timm's ConvNeXt returned input x gradient)."""
    return type(module).__module__.startswith("timm.layers.activations")


def _unruled_modules(model: nn.Module) -> list[str]:
    """'Type (path)' of the leaves DeepLIFT has no rule for: torch.nn's on no allow-list
    (:func:`~faithbench.explainers.module_lists.deeplift_unruled_leaves`) and timm's activations."""
    timm = [(type(m).__name__, n) for n, m in model.named_modules() if is_timm_activation(m)]
    return by_type(deeplift_unruled_leaves(model) + timm)



# activations guided backpropagation would leave unguided, functional in the forward or inside a leaf of one's
# own (the operations; a gate's Mul does not count, its sigmoid does)
GUIDED_OPS = frozenset({"Relu", "Threshold", "Gelu", "Silu", "Hardswish", "Hardsigmoid", "Hardtanh", "Elu",
                        "LeakyRelu", "Softplus", "Mish", "Prelu", "Sigmoid", "Tanh",
                        # a ReLU as h.clamp(min=0), torch.maximum(h, 0), torch.where(h > 0, h, 0) (a review:
                        # hybrid maps, correlation 0.40 with the guided one), and abs, exp
                        "Clamp", "ClampMin", "ClampMax", "Maximum", "Minimum", "Where", "Abs", "Exp"})
GATE_OPS = frozenset({"Sigmoid", "Hardsigmoid"})  # functional, a gate's (not refused: not told from x * sigmoid(x))


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

    IG_i(x) = (x_i - x'_i) * integral_0^1 d score / d x_i at x' + a (x - x') da
            ~ (x_i - x'_i) * sum_{k=1..n} w_k d score / d x_i at x' + a_k (x - x'),
    with ``method`` "gausslegendre" (the default, captum's): the n Gauss-Legendre nodes and weights moved to
    [0, 1], a_k = (t_k + 1) / 2, w_k = v_k / 2 for numpy's ``leggauss(n)`` = (t, v): nodes denser near 0
    and 1, weights not equal (not a midpoint mean); "riemann_middle": a_k = (k - 0.5) / n, w_k = 1 / n;
    "riemann_left", "riemann_right", "riemann_trapezoid" as captum. ``baseline`` is a constant x' in model
    input space (0.0: the phantoms' background); ``n_steps`` = 50; ``internal_batch_size`` bounds memory.
    """

    family = "gradient"
    paper = "Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks"
    description = "path integral of gradients from a constant baseline (captum)"
    defaults: ClassVar[dict[str, Any]] = {"n_steps": 50, "baseline": 0.0, "method": "gausslegendre",
                                          "internal_batch_size": 256}
    bounds: ClassVar[dict[str, Bound]] = {"n_steps": AT_LEAST_ONE, "internal_batch_size": AT_LEAST_ONE}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"method": IG_METHODS}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        baseline = torch.full_like(x, float(self.baseline))
        attr = IntegratedGradients(model).attribute(
            x, baselines=baseline, target=target, n_steps=self.n_steps, method=self.method,
            internal_batch_size=self.internal_batch_size)
        return attr.sum(dim=1)


@explainers.register("input_x_gradient")
class InputXGradientExplainer(Explainer):
    """Input x gradient: sum_c x_c * d score / d x_c (Shrikumar et al. 2016), summed over channels.
    Equals x . w for a linear model (exact completeness with a zero baseline)."""

    family = "gradient"
    paper = "Shrikumar et al. 2016, Not Just a Black Box"
    description = "input times gradient (captum), summed over channels"
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        return InputXGradient(model).attribute(x, target=target).sum(dim=1)


def _noise_draws_on(self: Any, device: torch.device) -> str | None:
    """:meth:`Explainer.draws_on` of SmoothGrad and GradientSHAP: with ``noise_level`` > 0, captum draws
    the noise on the input's device (``torch.normal`` in ``NoiseTunnel`` and ``GradientShap``)."""
    return device.type if device.type != "cpu" and self.noise_level > 0 else None


@explainers.register("smoothgrad")
class SmoothGradExplainer(Explainer):
    """SmoothGrad (Smilkov et al. 2017): max over channels of
    mean_{k=1..n} |d score / d x| at x + N(0, sigma^2),  sigma = noise_level * (max x - min x) per sample.

    captum ``NoiseTunnel(Saliency)``; |.| per noisy sample (captum's default, as the paper's figures).
    Defaults: ``n_samples`` 50, ``noise_level`` 0.15 (the paper's 10-20 %), ``batch_size`` 50 noisy
    copies per pass. Noise is drawn from torch's generator, re-seeded before each sample from
    ``seed`` and the image (:meth:`Explainer.reseed`), so an image's map does not depend on the
    batch it is explained in, and different images get different noise.
    """

    family = "gradient"
    paper = "Smilkov et al. 2017, SmoothGrad: removing noise by adding noise"
    description = "gradient magnitude averaged over Gaussian-noised copies (captum NoiseTunnel)"
    defaults: ClassVar[dict[str, Any]] = {"n_samples": 50, "noise_level": 0.15, "batch_size": 50}
    bounds: ClassVar[dict[str, Bound]] = {"n_samples": AT_LEAST_ONE, "noise_level": NON_NEGATIVE,
                                          "batch_size": AT_LEAST_ONE}
    version = "2"  # 2: noise re-seeded per image (1: one stream per batch, so a map depended on the batch)

    draws_on = _noise_draws_on

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        tunnel = NoiseTunnel(Saliency(model))
        sigma = self.noise_level * input_range(x.detach())  # a number, not part of the graph
        rows = []
        for i in range(x.shape[0]):  # one call per sample: sigma is per sample
            self.reseed(x[i])  # this image's noise, whatever the batch
            rows.append(tunnel.attribute(x[i:i + 1], nt_type="smoothgrad", nt_samples=self.n_samples,
                                         nt_samples_batch_size=self.batch_size, stdevs=float(sigma[i]),
                                         target=target[i:i + 1], abs=True))
        return torch.cat(rows).amax(dim=1)


@explainers.register("gradient_shap")
class GradientSHAPExplainer(Explainer):
    """GradientSHAP (Lundberg & Lee 2017; captum): E over k of (x~ - x'_k) * d score / d x at
    x'_k + a_k (x~ - x'_k), a_k ~ U(0, 1), x~ = x + N(0, sigma^2), summed over channels.

    References x' are one constant image ``baseline`` (0.0), so without noise this is a Monte-Carlo
    integrated gradients; sigma = ``noise_level`` (0.0) * (max x - min x). ``n_samples`` 20.
    captum draws the path points a_k from NumPy and the noise from torch; both are re-seeded before
    each sample from ``seed`` and the image (:meth:`Explainer.reseed`), so an image's map does not
    depend on the batch it is explained in, and different images get different draws.
    """

    family = "gradient"
    paper = "Lundberg & Lee 2017, A Unified Approach to Interpreting Model Predictions"
    description = "expected gradients from a constant reference with random path points (captum)"
    defaults: ClassVar[dict[str, Any]] = {"n_samples": 20, "baseline": 0.0, "noise_level": 0.0}
    bounds: ClassVar[dict[str, Bound]] = {"n_samples": AT_LEAST_ONE, "noise_level": NON_NEGATIVE}
    version = "2"  # 2: re-seeded per image (1: one stream per batch, so a map depended on the batch)

    draws_on = _noise_draws_on

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        shap = GradientShap(model)
        sigma = self.noise_level * input_range(x.detach())  # a number, not part of the graph
        rows = []
        for i in range(x.shape[0]):  # one call per sample: sigma is per sample
            self.reseed(x[i])  # this image's path points and noise, whatever the batch
            rows.append(shap.attribute(x[i:i + 1], baselines=torch.full_like(x[i:i + 1], float(self.baseline)),
                                       n_samples=self.n_samples, stdevs=float(sigma[i]), target=target[i:i + 1]))
        return torch.cat(rows).sum(dim=1)


@explainers.register("deeplift")
class DeepLiftExplainer(Explainer):
    """DeepLIFT, Rescale rule (Shrikumar et al. 2017; captum), from a constant ``baseline`` (0.0),
    summed over channels: sum_i attr_i = score(x) - score(x') (summation-to-delta).

    CNNs only: the rule is applied at activation modules captum knows (ReLU, ELU, LeakyReLU,
    Sigmoid, Tanh, Softplus, MaxPool whose windows do not overlap; an overlapping max-pool, every ResNet's
    stem, passes its plain gradient: :func:`~faithbench.explainers.deeplift_hooks.overlapping_max_pool`);
    a ViT's GELU and its functional softmax get plain gradients, which is not DeepLIFT. Refused
    (:mod:`faithbench.explainers.graph`, one traced forward pass): a non-linear operation applied outside
    modules (torchvision's DenseNet calls ``F.relu``: sums of -1.58 for a score change of +3.97, found by a
    held-out review), a product of two input-dependent tensors (a squeeze-excitation gate), an activation or
    pooling module called more than once (torchvision's ResNet reuses one ReLU per block; captum fails on it), and a
    leaf module from outside torch.nn that applies a non-linear operation (MONAI's Swish: captum's
    rules take exact torch.nn types; :func:`~faithbench.explainers.graph.foreign_nonlinear_leaves`).
    Known captum limits (0.9): its max-pool rule falls back to the FIRST example's gradient where
    the pooled input equals the baseline's (captum issue #1276), so we attribute one sample at a
    time; and a rule module that feeds another directly (ReLU -> max-pool, as ``small_cnn``; ReLU ->
    ReLU) read the plain gradient instead of the next one's multiplier (captum issue #1104, fixed after
    0.9 by captum PR #1843): :class:`~faithbench.explainers.deeplift_hooks.AdjacentSafeDeepLift` hooks
    tensors of each module's own, and summation-to-delta is exact to float rounding there (version 2;
    version 1 was 54 % off on ReLU -> ReLU, 5 % on ReLU -> max-pool). Also refused: ``nn.Softmax``,
    ``Softmin`` and ``LogSoftmax`` modules (captum's rule is approximate), and every other torch.nn leaf
    module that is neither linear nor under a captum rule, named with its path (an allow-list,
    :mod:`faithbench.explainers.module_lists`: Hardtanh, Softsign, Threshold, LogSigmoid, RReLU, Hardshrink,
    Tanhshrink, GELU, SiLU, per-sample norms, an ``AdaptiveMaxPool`` to more than one cell, ``LPPool``,
    ``FractionalMaxPool``: their plain gradients, 3-580 % off summation-to-delta, a held-out review). A global
    ``AdaptiveMaxPool`` (``small_cnn`` with ``pool: max``) gets captum's max-pool rule with one window over the
    grid (version 3; version 2 passed its plain gradient, 5-27 % off in 3D, 40-469 % in 2D).
    """

    # 3: a global adaptive max-pool (small_cnn's pool: max) gets captum's max-pool rule (2: its plain gradient, 5-469 %
    # off); 2: rule modules in a row get their consumers' multipliers (1: captum #1104's plain gradient)
    version = "3"

    family = "gradient"
    architectures = frozenset({"cnn"})
    paper = "Shrikumar et al. 2017, Learning Important Features Through Propagating Activation Differences"
    description = "DeepLIFT rescale rule from a constant baseline (captum), summed over channels"
    defaults: ClassVar[dict[str, Any]] = {"baseline": 0.0}
    # not nn.Softmax: captum's rule for it is approximate, and across channels it moves the map by half its sum
    # (a review: 51 % off with it after a conv, 141 % after a ReLU once the rules before it read their multipliers)
    # every other torch.nn leaf must be linear or under a captum rule (module_lists: an allow-list; a review found
    # Hardtanh 37 %, Tanhshrink 580 %, small_cnn's AdaptiveMaxPool3d 5-27 % off with the plain gradient passed)

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        reason = super().unsupported_reason(model, x)
        bad = _unruled_modules(model)
        if reason is None and (soft := sorted({type(m).__name__ for m in model.modules()
                                               if isinstance(m, (nn.Softmax, nn.Softmin, nn.LogSoftmax))})):
            reason = (f"deeplift (captum): its rule for {', '.join(soft)} is approximate (summation-to-delta 51-141 % "
                      "off inside a CNN); end the model with logits")
        elif reason is None and bad:
            reason = (f"deeplift (captum) has no rule for activation, pooling or per-sample norm module(s) "
                      f"{', '.join(bad)}, whose plain gradients would pass")
        if reason is None and (trace := trace_leaves(model, x)) is not None:
            if ops := trace.nonlinear():
                reason = (f"deeplift: the forward applies {', '.join(ops)} outside modules, where captum's "
                          "DeepLIFT has no rule (its rules sit on activation modules)")
            elif reused := trace.reused(DEEPLIFT_STATEFUL_LEAVES, model):
                reason = f"deeplift (captum) needs each activation module called once per forward; {', '.join(reused)}"
            elif foreign := foreign_nonlinear_leaves(model, x, trace):
                reason = (f"deeplift (captum) has rules for torch.nn's own activation modules only; "
                          f"{', '.join(foreign)} would pass plain gradients")
        return reason

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        # captum's pre-hook on the wrapper, before the model's input transform; rule hooks of our own (captum #1104)
        deeplift = AdjacentSafeDeepLift(_Forward(model))
        # captum leaves each module's input and output behind when it fails (a held-out review)
        try:
            with added_attributes_removed(leaf_modules(model), ("input", "output")), hook_notices_silenced():
                rows = [deeplift.attribute(x[i:i + 1], baselines=torch.full_like(x[i:i + 1], float(self.baseline)),
                                           target=target[i:i + 1])
                        for i in range(x.shape[0])]  # one sample at a time: captum #1276 mixes the batch
        except RuntimeError as exc:  # a review: a direct call on a ResNet gave captum's text, not the reason
            reason = self.unsupported_reason(model, x.detach())
            if reason is None:
                raise
            raise ValueError(reason) from exc
        return torch.cat(rows).sum(dim=1)


class _Forward(nn.Module):
    """``model`` as a child: captum's DeepLift concatenates inputs and baselines in a forward pre-hook on
    the module it is given, which must run before the model's own input transform (a pre-hook too; a
    held-out review: every model with one failed, 'tuple' object has no attribute 'shape')."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _relu_reason(name: str, model: nn.Module, x: Tensor) -> str | None:
    """Why guided backpropagation would not guide every activation of ``model``: it changes the
    backward pass of nn.ReLU modules only, so other activation modules (MobileNetV3's Hardswish) and
    functional activations (torchvision's DenseNet's F.relu, an F.gelu) would pass plain gradients (held-out
    reviews: a hybrid)."""
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        return f"{name} modifies the backward pass of nn.ReLU modules; the model has none"
    others = unguided_leaves(model) + Counter(type(m).__name__ for m in model.modules() if is_timm_activation(m))
    if others:
        listed = ", ".join(f"{k} ({n})" for k, n in sorted(others.items()))
        return f"{name} guides nn.ReLU modules only; the model also has {listed}, whose gradients would pass unguided"
    trace = trace_leaves(model, x)
    # every functional activation, not only ReLUs (a held-out review: an F.gelu, F.silu, torch.tanh or F.relu6 in
    # a ReLU network's forward gave a hybrid map, which deeplift and lrp refused); not a sigmoid, the gate of a
    # squeeze-excitation or CBAM block (a diff review: telling a gate from x * sigmoid(x) by the Mul's operands
    # let an F.relu feeding a gate through and refused an SE gate behind a view)
    ops = [] if trace is None else [op for op in trace.nonlinear() if op in GUIDED_OPS - GATE_OPS]
    if ops:
        return (f"{name} guides nn.ReLU modules only; the forward also applies {', '.join(ops)} functionally, "
                "whose gradients would pass unguided")
    if trace is not None and (foreign := foreign_nonlinear_leaves(model, x, trace, (nn.ReLU,), GUIDED_OPS)):
        return f"{name} guides nn.ReLU modules only; {', '.join(foreign)} would pass plain gradients"
    return None


@explainers.register("guided_backprop")
class GuidedBackpropExplainer(Explainer):
    """Guided backpropagation (Springenberg et al. 2015; captum): the gradient with negative
    gradients zeroed at every nn.ReLU module, summed over channels (signed).

    CNNs whose activations are all nn.ReLU modules: a functional ReLU, GELU, SiLU, tanh or sigmoid, or a GELU
    or Hardswish module, would not be guided, so such models are refused (:func:`_relu_reason`).
    """

    family = "gradient"
    architectures = frozenset({"cnn"})
    paper = "Springenberg et al. 2015, Striving for Simplicity: The All Convolutional Net"
    description = "gradient with ReLU backward clamped to positive (captum), summed over channels"
    defaults: ClassVar[dict[str, Any]] = {}

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        return super().unsupported_reason(model, x) or _relu_reason(self.name, model, x)

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        with hook_notices_silenced():
            return GuidedBackprop(model).attribute(x, target=target).sum(dim=1)


@explainers.register("guided_gradcam")
class GuidedGradCAMExplainer(Explainer):
    """Guided Grad-CAM (Selvaraju et al. 2017; captum): guided backprop * relu(Grad-CAM), the CAM
    upsampled (bi/tri)linearly to the input, summed over channels (signed).

    The layer is chosen as for ``gradcam`` (``target_layer``, else the last top-level stage with a
    grid of at least ``min_grid``, or inside a block that holds every stage); it is in
    ``last_info``. CNNs with nn.ReLU modules only. A layer of one cell or called twice is refused, as for the
    CAMs (:func:`~faithbench.explainers.layers.checked_layer`).
    """

    version = "5"  # 5, 4, 3 and 2: the layer as gradcam's 10, 7, 4 and 3 find it (1: top-level stages only)
    family = "gradient"
    architectures = frozenset({"cnn"})
    paper = "Selvaraju et al. 2017, Grad-CAM"
    description = "guided backprop times ReLU'd Grad-CAM (captum), summed over channels"
    defaults: ClassVar[dict[str, Any]] = {"target_layer": None, "min_grid": 4}
    bounds: ClassVar[dict[str, Bound]] = {"min_grid": AT_LEAST_ONE}

    def check_input(self, shape: tuple[int, ...]) -> str | None:
        """``min_grid`` no larger than the input, as every CAM (a fuzzing review: 1e9 silently took the
        default's layer)."""
        return min_grid_problem(self.name, self.min_grid, self.target_layer, shape)

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        return super().unsupported_reason(model, x) or _relu_reason(self.name, model, x)

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        if self.target_layer:
            name, layer = self.target_layer, resolve_module(model, self.target_layer)
        else:
            name, _ = find_target_layer(model, x, self.min_grid)
            layer = model.get_submodule(name)
        self.last_info = {"target_layer": name}
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        with hook_notices_silenced(), checked_layer(model, name, f"{self.name}: target_layer",
                                                           found=not self.target_layer):  # as the CAMs'
            attr = GuidedGradCam(model, layer).attribute(x, target=target, interpolate_mode=mode)
        return attr.sum(dim=1)
