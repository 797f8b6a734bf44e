"""Smooth and efficient MPRT (Hedström et al. 2024, "Sanity checks revisited"): two repairs of
the model-parameter randomisation test (Adebayo et al. 2018). Formulas:
:mod:`faithbench.metrics.functional.mprt`; randomisation: that of ``mprt_cascading`` (the fully
randomised end state). Re-explanations use the cell's explainer with its own seed (common random
numbers: a model-independent map, the ``sobel`` control, scores smooth_mprt = 1 and
efficient_mprt = 0 and fails, as it must), counted into ``ctx.predict``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from faithbench.configurable import AT_LEAST_ONE, NON_NEGATIVE, Bound
from faithbench.metrics.base import EvalContext, MetricOutput
from faithbench.metrics.functional.mprt import SALT_SMOOTH, efficient_mprt, smooth_mprt, smoothing_noise
from faithbench.metrics.randomization import RandomizationMetric
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

_PAPER = ("Hedström et al. 2024, Sanity checks revisited: an exploration to repair the model parameter "
          "randomisation test")


@metrics.register("smooth_mprt")
class SmoothMPRT(RandomizationMetric):
    """Smooth MPRT (sMPRT; Hedström et al. 2024): denoise the explanation before comparing, so
    gradient noise shared by the original and the randomised model does not pass for similarity,

        sMPRT = ρ(ē(f, x), ē(f_rand, x)),  ē(f, x) = (1/N) Σ_n e(f, x + ε_n),

    ε_n ~ N(0, (σ (max x - min x))²) for n < N, ε_N = 0, ρ = ``similarity`` of the post-processed
    maps. Lower is better. Defaults: ``nr_samples: 50``, ``noise: 0.1`` (Quantus' defaults),
    ``similarity: spearman_abs``, postprocess ``abs``. Cost: 2 N explanations per batch."""

    # 3: in an nn.Sequential a conv/linear and its norm are one block (2: the norm its own step); 4: the noise drawn
    # per image (3: per batch, position i of every batch got the same noise)
    version = "4"

    info = MetricInfo("smooth_mprt", higher_is_better=False, category=Category.RANDOMIZATION, postprocess="abs",
                      requires=frozenset({"model", "explainer"}), paper=_PAPER)
    defaults: ClassVar[dict[str, Any]] = {"similarity": "spearman_abs", "nr_samples": 50, "noise": 0.1}
    bounds: ClassVar[dict[str, Bound]] = {"nr_samples": AT_LEAST_ONE, "noise": NON_NEGATIVE}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        offsets = smoothing_noise(ctx.x, self.nr_samples, self.noise, ctx.generators(SALT_SMOOTH))
        value = smooth_mprt(ctx.model, ctx.x, ctx.target, self.explain_fn(ctx), offsets, similarity=self.similarity,
                            postprocess=self.postprocess, seed=ctx.seed, watch=ctx.predict.watch)
        return MetricOutput(value=value.to(saliency.device))


@metrics.register("efficient_mprt")
class EfficientMPRT(RandomizationMetric):
    """Efficient MPRT (eMPRT; Hedström et al. 2024): the relative rise of the explanation's
    complexity when the model is fully randomised,

        eMPRT = (H(e(f_rand, x)) - H(e(f, x))) / H(e(f, x)),

    H = entropy of the histogram of the map's values over ``n_bins`` equal bins. Higher is better
    (0: the explanation did not notice). One re-explanation per batch. Defaults: ``n_bins: 100``
    (Quantus' default without a binning rule; at least 2: one bin gives H = 0 and NaN for every
    sample), postprocess ``none`` (Quantus: ``abs=False``). A nearly constant original map (H(e) near 0)
    gets a huge value, as the definition gives (a review: 297.6 for a Grad-CAM map bumped by 4e-6). A map
    that gets simpler under randomisation scores below 0, below the weight-blind controls' exact 0."""

    version = "3"  # 3: in an nn.Sequential a conv/linear and its norm are one block (2: the norm its own step)

    info = MetricInfo("efficient_mprt", higher_is_better=True, category=Category.RANDOMIZATION,
                      requires=frozenset({"model", "explainer"}), paper=_PAPER)
    defaults: ClassVar[dict[str, Any]] = {"n_bins": 100}
    bounds: ClassVar[dict[str, Bound]] = {"n_bins": Bound(2)}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        explain = self.explain_fn(ctx)

        def raw(model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
            return explain(model, x, target).detach().float()

        value = efficient_mprt(ctx.model, ctx.x, ctx.target, saliency, raw, n_bins=self.n_bins,
                               postprocess=self.postprocess, seed=ctx.seed, watch=ctx.predict.watch)
        return MetricOutput(value=value.to(saliency.device))
