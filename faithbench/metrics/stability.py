"""Relative stability metrics (Agarwal et al. 2022): the change of the explanation relative to
the change of the input (RIS), of an internal representation (RRS) or of the logits (ROS), at
the worst of ``nr_samples`` uniformly perturbed copies. Formulas:
:mod:`faithbench.metrics.functional.stability`. Shared machinery (re-explaining, re-seeding,
counting): :mod:`faithbench.metrics.robustness`.

Defaults: U(-0.02, 0.02) noise (``radius``; Quantus 0.6.0 adds U(0.02, 0.2), a positive shift of
up to 0.2, unless given a ``perturb_func``), ε_min = 1e-6 (Quantus'), copies whose predicted class
changed are left out (``nan_if_prediction_changes: true``, as in Quantus; on a multi-label model, those whose
decision on the row's explained class k changed, logit_k > 0), postprocess ``none``,
10 draws instead of Quantus' 200, and ``zeros: nan``: the relative change (a - a') / a is not
defined where a divisor entry is 0 (or subnormal, below 1.2e-38), so a sample whose e_x (or x for RIS, L_x for RRS) has
one gets NaN (counted as a missing value, not a score); ``zeros: skip`` takes each relative change
over the entries where it is defined (the ``metrics`` suite's choice: phantoms have a black
background); ``zeros: eps_min`` divides by ε_min there instead, as Quantus does (see
:mod:`faithbench.metrics.functional.stability`). Which explainers
this leaves out is a property of the maps: Grad-CAM (ReLU) and Sobel (flat background) maps have
exact zeros, gradients and the ``random`` control almost never.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from faithbench.configurable import POSITIVE, Bound, ParameterError
from faithbench.metrics.base import EvalContext, MetricOutput
from faithbench.metrics.functional.robustness import reduce_draws, uniform_noise
from faithbench.metrics.functional.stability import (ZEROS, relative_input_stability, relative_output_stability,
                                                      relative_representation_stability, representation_reader)
from faithbench.metrics.robustness import SALT_NOISE, RobustnessMetric
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

_PAPER = "Agarwal et al. 2022, Rethinking stability for attribution-based explanations"
_DEFAULTS: dict[str, Any] = {"nr_samples": 10, "radius": 0.02, "eps_min": 1e-6, "draws_per_call": 1,
                             "nan_if_prediction_changes": True, "zeros": "nan"}


class RelativeStability(RobustnessMetric):
    bounds: ClassVar[dict[str, Bound]] = {"radius": POSITIVE, "eps_min": POSITIVE}
    # 2: denominator max(norm, eps_min) as the paper (1: eps_min only for a zero norm); 3: a subnormal
    # divisor entry is a zero under zeros nan and skip; 4: nan_if_prediction_changes on a multi-label model compares
    # the decision on the row's explained class k (logit_k > 0), not the argmax of the K logits; 5: the noise drawn
    # per image (4: per batch, position i of every batch got the same noise)
    version: ClassVar[str] = "5"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.zeros not in ZEROS:
            raise ParameterError(f"{self.name}: parameter 'zeros' expects {' or '.join(ZEROS)}, got {self.zeros!r}")

    def noise_key(self, ctx: EvalContext) -> tuple:
        return ("uniform", self.nr_samples, float(self.radius))

    def make_noisy(self, ctx: EvalContext) -> Tensor:
        return uniform_noise(ctx.x, self.nr_samples, self.radius, ctx.generators(SALT_NOISE))

    def ratios(self, ctx: EvalContext, saliency: Tensor, x_perturbed: Tensor, perturbed: Tensor) -> Tensor:
        raise NotImplementedError  # pragma: no cover

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        x_perturbed = self.noisy(ctx)
        perturbed = self.reexplain(ctx, x_perturbed)
        values = self.ratios(ctx, saliency, x_perturbed, perturbed)
        return MetricOutput(value=reduce_draws(values, "max", self.changed(ctx, x_perturbed)))


@metrics.register("relative_input_stability")
class RelativeInputStability(RelativeStability):
    """Relative input stability (Agarwal et al. 2022):

        RIS(x) = max_{x'} ||(e_x - e_x') / e_x||_2 / max(||(x - x') / x||_2, ε_min)

    over x' = x + U(-r, r)^d. Lower is better. Defaults: ``radius: 0.02``, 10 draws, ``eps_min:
    1e-6``, ``nan_if_prediction_changes: true``, ``zeros: nan`` (NaN where e_x or x has an exact zero),
    postprocess ``none``."""

    info = MetricInfo("relative_input_stability", higher_is_better=False, category=Category.ROBUSTNESS,
                      requires=frozenset({"model", "explainer"}), paper=_PAPER)
    defaults: ClassVar[dict[str, Any]] = dict(_DEFAULTS)

    def ratios(self, ctx: EvalContext, saliency: Tensor, x_perturbed: Tensor, perturbed: Tensor) -> Tensor:
        return relative_input_stability(ctx.x.to(saliency.device), x_perturbed.to(saliency.device), saliency,
                                        perturbed, eps_min=self.eps_min, zeros=self.zeros)


@metrics.register("relative_representation_stability")
class RelativeRepresentationStability(RelativeStability):
    """Relative representation stability (Agarwal et al. 2022):

        RRS(x) = max_{x'} ||(e_x - e_x') / e_x||_2 / max(||(L_x - L_x') / L_x||_2, ε_min)

    with L_x the representation read at ``layer``: by default (``null``) the input of the last
    ``nn.Linear`` of the forward pass, the pre-logit features (a timm ResNet's pooled features
    before ``fc``, a timm ViT's pooled token before ``head``, ``small_cnn``'s pooled features
    before ``head``); or the output of the named module (a key of ``model.named_modules()``).
    Lower is better. Defaults: ``layer: null``, ``radius: 0.02``, 10 draws, ``eps_min: 1e-6``,
    ``nan_if_prediction_changes: true``, ``zeros: nan`` (NaN where e_x or L_x has an exact zero),
    postprocess ``none``."""

    info = MetricInfo("relative_representation_stability", higher_is_better=False, category=Category.ROBUSTNESS,
                      requires=frozenset({"model", "explainer"}), paper=_PAPER)
    defaults: ClassVar[dict[str, Any]] = {**_DEFAULTS, "layer": None}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.layer is not None and not isinstance(self.layer, str):
            raise ParameterError(f"{self.name}: parameter 'layer' expects a module name (str) or null, "
                                 f"got {type(self.layer).__name__} {self.layer!r}")
        if self.layer == "":  # a fuzzing review: '' named the whole model, its output read as the representation
            raise ParameterError(f"{self.name}: parameter 'layer' expects a dotted module name, got an empty string "
                                 f"(null reads the input of the last nn.Linear)")

    def check_model(self, model: nn.Module) -> str | None:
        """``layer`` must name a module of ``model`` (``faithbench validate`` checks it on each model,
        built on the meta device); the default needs an ``nn.Linear`` to read the input of."""
        modules = dict(model.named_modules())
        if self.layer is None:
            if any(isinstance(m, nn.Linear) for m in modules.values()):
                return None
            return (f"{self.name}: parameter 'layer' is null (the input of the last nn.Linear), but the model has "
                    f"no nn.Linear; name the representation layer")
        if self.layer in modules:
            return None
        top = [n for n in modules if n and "." not in n][:12]
        return (f"{self.name}: parameter 'layer' = {self.layer!r} is not a module of the model; its top-level "
                f"modules: {', '.join(top) or '(none)'}")

    def ratios(self, ctx: EvalContext, saliency: Tensor, x_perturbed: Tensor, perturbed: Tensor) -> Tensor:
        read = representation_reader(ctx.model, ctx.x, self.layer, ctx.predict)
        s, b = x_perturbed.shape[:2]
        features = read(ctx.predict, ctx.x)
        flat = x_perturbed.reshape(s * b, *x_perturbed.shape[2:])
        perturbed_features = read(ctx.predict, flat).reshape(s, b, -1)
        return relative_representation_stability(features.to(saliency.device),
                                                 perturbed_features.to(saliency.device), saliency, perturbed,
                                                 eps_min=self.eps_min, zeros=self.zeros)


@metrics.register("relative_output_stability")
class RelativeOutputStability(RelativeStability):
    """Relative output stability (Agarwal et al. 2022):

        ROS(x) = max_{x'} ||(e_x - e_x') / e_x||_2 / max(||h(x) - h(x')||_2, ε_min)

    with h the logits. Lower is better. Defaults: ``radius: 0.02``, 10 draws, ``eps_min: 1e-6``,
    ``nan_if_prediction_changes: true``, ``zeros: nan`` (NaN where e_x has an exact zero),
    postprocess ``none``."""

    info = MetricInfo("relative_output_stability", higher_is_better=False, category=Category.ROBUSTNESS,
                      requires=frozenset({"model", "explainer"}), paper=_PAPER)
    defaults: ClassVar[dict[str, Any]] = dict(_DEFAULTS)

    def ratios(self, ctx: EvalContext, saliency: Tensor, x_perturbed: Tensor, perturbed: Tensor) -> Tensor:
        logits = self.original_logits(ctx)
        perturbed_logits = self.perturbed_logits(ctx, x_perturbed)
        return relative_output_stability(logits.to(saliency.device), perturbed_logits.to(saliency.device), saliency,
                                         perturbed, eps_min=self.eps_min, zeros=self.zeros)
