"""Axiomatic metrics (category ``axiomatic``): does the explanation satisfy a property every
attribution should have? Formulas: :mod:`faithbench.metrics.functional.axiomatic`.

Scores of the target class follow the perturbation metrics (``prob`` = softmax, ``logit``; on a
multi-label model the sigmoid of the target logit); baselines are those of
:func:`~faithbench.metrics.functional.perturbation.make_baseline` (``zero`` = the dataset's
background value in model input space).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any, ClassVar

import torch
from torch import Tensor

from faithbench.configurable import AT_LEAST_ONE, NON_NEGATIVE, Bound, ParameterError
from faithbench.metrics.base import EvalContext, Metric, MetricOutput, one_feature
from faithbench.metrics.base import postprocess as apply_postprocess
from faithbench.metrics.functional.axiomatic import completeness_gap, input_invariance, non_sensitivity, shifted_model
from faithbench.metrics.functional.faithfulness_extra import Scorer
from faithbench.metrics.functional.perturbation import BASELINES, MULTILABEL_SCORE, SALT_BASELINE, make_baseline
from faithbench.metrics.functional.robustness import normalise_by_max
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

FLOAT32_EPS = torch.finfo(torch.float32).eps  # float32's spacing at 1: shifts this small are within the rounding of pixels


class AxiomaticMetric(Metric):
    # 2: scores in float64 (score_logits); 3: noise/uniform baselines drawn per image (2: per batch position)
    version: ClassVar[str] = "3"
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"baseline": BASELINES}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if "score" in self.params and self.score not in ("prob", "logit"):
            raise ParameterError(f"{self.name}: parameter 'score' expects prob or logit, got {self.score!r}")

    def scorer(self, ctx: EvalContext) -> Scorer:
        """The counted target score (``score``; its sigmoid counterpart on a multi-label model)."""
        return Scorer(ctx.predict, MULTILABEL_SCORE[self.score] if ctx.multilabel else self.score,
                      self.params.get("max_batch", 256))

    def baseline_image(self, ctx: EvalContext) -> Tensor:
        return make_baseline(ctx.x, self.baseline, background=ctx.background, sigma=5.0,
                             generator=ctx.generators(SALT_BASELINE))  # per image: the same in any batch


@metrics.register("completeness")
class Completeness(AxiomaticMetric):
    """Completeness (Sundararajan et al. 2017, "Axiomatic attribution for deep networks"): the
    gap |Σ_i s_i - (f(x) - f(x̄))| between the sum of the attributions and the change of the
    target score from the baseline x̄ to x; 0 for a complete method (integrated gradients with
    enough steps and the same baseline). Lower is better. Defaults: ``baseline: zero`` (the
    dataset's background), ``score: logit``, postprocess ``none`` (signed attributions).

    Quantus 0.6.0 returns the exact float equality Σ s == f(x) - f(x̄) (almost always False) and
    normalises the map by its maximum first (``normalise=True``), which breaks the sum; we report
    the gap of the raw map."""

    info = MetricInfo("completeness", higher_is_better=False, category=Category.AXIOMATIC,
                      requires=frozenset({"model"}),
                      paper="Sundararajan et al. 2017, Axiomatic attribution for deep networks")
    defaults: ClassVar[dict[str, Any]] = {"baseline": "zero", "score": "logit"}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        scorer = self.scorer(ctx)
        score_x, score_base = scorer(ctx.x, ctx.target), scorer(self.baseline_image(ctx), ctx.target)
        return MetricOutput(value=completeness_gap(saliency, score_x.to(saliency.device),
                                                   score_base.to(saliency.device)))


@metrics.register("non_sensitivity")
class NonSensitivity(AxiomaticMetric):
    """Non-sensitivity (Nguyen & Martinez 2020): the share of features that either carry no
    attribution but move the output, or carry attribution but do not,

        |{i : a_i < eps} Δ {i : |f(x) - f(x_{-i})| < eps}| / F,

    with a_i the feature's |saliency| over its maximum (summed over a patch), x_{-i} = x with
    feature i replaced by the baseline. F + 1 forward passes per sample (``patch`` p: F = N / p^d).
    Lower is better. Defaults: ``eps: 1e-5``, ``patch: 1``, ``baseline: zero``, ``score: prob``,
    postprocess ``abs``. A feature is a pixel/voxel (patch) with all its channels. On 1-channel
    inputs Quantus 0.6.0 returns the count (ours x F); on C > 1 channels it differs: it broadcasts
    the map over the channels and counts channel-pixels, each replaced alone, as features. Its
    ``features_in_step`` > 1 fails (a per-step array against a per-feature one)."""

    info = MetricInfo("non_sensitivity", higher_is_better=False, category=Category.AXIOMATIC,
                      requires=frozenset({"model"}), postprocess="abs",
                      paper="Nguyen & Martinez 2020, On quantitative aspects of model interpretability")
    defaults: ClassVar[dict[str, Any]] = {"eps": 1e-5, "patch": 1, "baseline": "zero", "score": "prob",
                                          "max_batch": 256}
    bounds: ClassVar[dict[str, Bound]] = {"eps": NON_NEGATIVE, "patch": AT_LEAST_ONE, "max_batch": AT_LEAST_ONE}

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """One feature (``patch`` >= the largest side): its attribution is the map's maximum, so only an
        all-zero map scores otherwise (refused by ``faithbench validate`` and when computed). ``eps`` above
        the largest a_i, the cells of a patch (each at most 1 after division by the maximum): every a_i < eps
        whatever the map, so every explainer would score the same (a fuzzing review: ``eps: 1e9``)."""
        cells = math.prod(min(self.patch, int(s)) for s in spatial_shape)
        if spatial_shape and self.eps > cells:
            return (f"{self.name}: parameter 'eps' = {self.eps:g} is above {cells}, the largest attribution a feature "
                    f"can have (patch {self.patch} on {' x '.join(map(str, spatial_shape))}, |s| / max |s| summed "
                    f"over it), so every feature counts as unattributed and every explainer would score the same; "
                    f"expected eps <= {cells}")
        return one_feature(self.name, self.patch, spatial_shape)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        value = non_sensitivity(self.scorer(ctx), ctx.x, ctx.target.to(ctx.x.device),
                                normalise_by_max(saliency).to(ctx.x.device), self.baseline_image(ctx),
                                eps=self.eps, patch=self.patch)
        return MetricOutput(value=value.to(saliency.device))


@metrics.register("input_invariance")
class InputInvariance(Metric):
    """Input invariance (Kindermans et al. 2017, "The (un)reliability of saliency methods"): shift
    the input by a constant c and give the model the compensating shift, f2(x + c) = f1(x) (the
    same function); a reliable explanation does not change. 1.0 if
    max_i |s_i(f1, x) - s_i(f2, x + c)| <= atol max_i |s_i(f1, x)|, else 0.0. Higher is better.
    Defaults: ``shift: -1.0`` (Quantus' ``input_shift``), ``atol: 1e-4`` (relative to the map's
    maximum; Quantus: absolute), postprocess ``none``.

    The re-explanation keeps the explainer's seed (unlike the robustness metrics, which re-seed
    each re-explanation), and an explainer that draws per image (``smoothgrad``, ``gradient_shap``,
    ``lime``, ``kernel_shap``: :meth:`~faithbench.explainers.base.Explainer.reseed`) draws for x + c
    what it drew for x (:meth:`~faithbench.explainers.base.Explainer.draws_of`), so a stochastic
    explainer is compared at the same noise and only the shift can move its map (version 1 seeded
    x + c from its own bytes: SmoothGrad, exactly invariant at equal noise, scored 0 on every sample);
    the ``random`` control draws its noise from the image's bytes directly, so the shifted input
    gets other noise and it fails (version 1 of the control passed trivially).

    f2 is a copy of the model behind a forward pre-hook that subtracts c, exact at the zero-padded
    borders too; x + c itself reaches the model as x, bit for bit
    (:func:`~faithbench.metrics.functional.shifted_model`: in float32 (x + c) - c is not x, and a
    review saw the gradient fail on an ulp's ReLU flip); an explainer's own copies of x + c (noise,
    masks, paths) are shifted back within float32 rounding.
    Quantus 0.6.0 moves c into the first convolution's bias instead, from the smallest value of
    the convolved constant image (``torch.unique(fw[i])[0]``): with zero padding that value comes
    from a border position, so its f2 differs from f1 (an explainer that is invariant can fail);
    and its ``perturb_batch`` passes ``indices[i][1:]``, so the first feature of every sample is
    not shifted: f2(x + c) then differs from f1(x) at that feature, and even a gradient map can
    fail (whether it does depends on the network's activations). Given a shift of every feature
    and an unpadded first layer, Quantus agrees with us (tests/metrics/test_complexity_axiomatic.py)."""

    info = MetricInfo("input_invariance", higher_is_better=True, category=Category.AXIOMATIC,
                      requires=frozenset({"model", "explainer"}),
                      paper="Kindermans et al. 2017, The (un)reliability of saliency methods")
    defaults: ClassVar[dict[str, Any]] = {"shift": -1.0, "atol": 1e-4}
    bounds: ClassVar[dict[str, Bound]] = {"atol": NON_NEGATIVE}
    version = "3"  # 2: x + c drawn at x's per-image noise; 3: x + c seen as x exactly

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        problem = self._no_shift()
        if problem:  # refused by validate and run (exit 2), not scored 1 in every cell
            raise ParameterError(problem)

    def _no_shift(self) -> str | None:
        """The problem with ``shift``, or None. ``shift: 0``: x + c is x bit for bit and f2 is f1, so
        every explainer, the ``random`` control too, would score 1, the best value (a review). 0 <
        |shift| <= max(atol, FLOAT32_EPS): on inputs in [0, 1] input x gradient's map moves by
        max|c ∇f| <= atol max|∇f|, which may be within atol max|x ∇f|, so the metric cannot fail it (a
        held-out review: 1e-9 and 1e-7 passed it, and 1e-30, below float32's resolution, passed the
        random control too); above atol it always fails, as it must (Kindermans et al.)."""
        if self.shift == 0:
            return (f"{self.name}: parameter 'shift' must not be 0 (x + 0 is x and the shifted model is the model, "
                    f"so every explainer, the random control too, would score 1), got {self.shift!r}")
        floor = max(float(self.atol), FLOAT32_EPS)
        if abs(self.shift) > floor:
            return None
        return (f"{self.name}: parameter 'shift' must be above max(atol, 1.2e-07) = {floor:.3g} in magnitude (a "
                f"smaller shift of inputs in [0, 1] moves input x gradient's map by no more than atol allows, so "
                f"it would pass as invariant), got {self.shift!r}")

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """A ``shift`` of 0 or too small (set after construction), refused when computed as on construction."""
        return self._no_shift()

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        if ctx.explainer is None:
            raise ValueError(f"{self.name}: needs the cell's explainer in EvalContext.explainer to re-explain")
        model, x = shifted_model(ctx.model, self.shift, ctx.x), ctx.x + self.shift
        same_draws = getattr(ctx.explainer, "draws_of", None)
        with ctx.predict.watch(model), same_draws(x, ctx.x) if same_draws else nullcontext():
            shifted = ctx.explainer(model, x, ctx.target)
        shifted = apply_postprocess(shifted.detach().float().to(saliency.device), self.postprocess)
        return MetricOutput(value=input_invariance(saliency, shifted, atol=self.atol))
