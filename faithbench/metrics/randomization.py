"""Randomisation sanity checks (Adebayo et al. 2018; Sixt et al. 2020): does the saliency change
when what the model learned is destroyed? Lower similarity is better; a model-independent map
(the ``sobel`` control) scores 1 and fails, which is the check of the check.

Every check re-explains with the cell's explainer (``ctx.explainer``) on a deep copy of the model
(``ctx.model`` is never modified) and compares with the original saliency after the metric's
post-processing (default ``abs``, as Adebayo et al. visualise |saliency|) by ``similarity``:
``spearman_abs`` (default), ``ssim`` (Wang et al. 2004, on min-max normalised maps) or
``hog_pearson`` (Pearson of HOG features). Blocks and re-initialisation: see
:mod:`faithbench.metrics.functional.randomization`. Forward passes of the re-explanations are
counted into ``ctx.predict`` (they run with gradients, outside its no-grad helper).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from faithbench.configurable import ParameterError
from faithbench.metrics.base import EvalContext, Metric
from faithbench.metrics.base import postprocess as apply_postprocess
from faithbench.metrics.functional.randomization import (SALT_LOGIT, cascading_randomization_curve,
                                                          independent_randomization_curve, random_other_class)
from faithbench.metrics.functional.similarity import SIMILARITIES, similarity as compare
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

_DEFAULTS: dict[str, Any] = {"similarity": "spearman_abs"}


class RandomizationMetric(Metric):
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"similarity": SIMILARITIES}
    version = "2"  # 2: NaN where a map compared is constant (1: 0 against a varying map, 1 for two: a review)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        similarity, mode = self.params.get("similarity"), self.params.get("postprocess")
        if similarity == "spearman_abs" and mode == "none":
            # a held-out review: postprocess none gave the values of abs, the absolute maps compared all the same
            raise ParameterError(f"{self.name}: parameter 'postprocess' = 'none' has no effect with similarity "
                                 f"'spearman_abs', which ranks the absolute maps; expected similarity: spearman "
                                 f"to compare the signed maps (Adebayo et al.'s variant without absolute values), "
                                 f"or postprocess abs or relu")
        if similarity == "spearman" and mode != "none":  # the mirror case (a diff review): abs/relu maps are unsigned
            raise ParameterError(f"{self.name}: similarity 'spearman' compares signed maps, but postprocess {mode!r} "
                                 f"leaves none (the values of spearman_abs); expected postprocess: none")

    def explain_fn(self, ctx: EvalContext):  # noqa: ANN201
        if ctx.explainer is None:
            raise ValueError(f"{self.name}: needs the cell's explainer in EvalContext.explainer to re-explain")

        def explain(model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
            with ctx.predict.watch(model):
                return ctx.explainer(model, x, target)
        return explain

    def similar(self, saliency: Tensor, other: Tensor) -> Tensor:
        return compare(saliency, apply_postprocess(other.to(saliency.device), self.postprocess), self.similarity)


_INFO = dict(category=Category.RANDOMIZATION, higher_is_better=False, postprocess="abs")


@metrics.register("mprt_cascading")
class MPRTCascading(RandomizationMetric):
    """Cascading model-parameter randomisation (Adebayo et al. 2018): from the output toward the
    input, re-initialise one more block at a time (seeded), re-explain, and compare with the
    original saliency. value = similarity at full randomisation; ``curve`` = similarity after
    0, 1, .., K randomised blocks (K + 1 points, the first 1.0), ``fractions`` = k / K.
    Lower is better. Defaults: ``similarity: spearman_abs``, postprocess ``abs``."""

    version = "3"  # 3: in an nn.Sequential a conv/linear and its norm are one block (2: the norm its own step)

    info = MetricInfo("mprt_cascading", requires=frozenset({"model", "explainer"}),
                      paper="Adebayo et al. 2018, Sanity checks for saliency maps", **_INFO)
    defaults: ClassVar[dict[str, Any]] = dict(_DEFAULTS)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        curve, _ = cascading_randomization_curve(
            ctx.model, ctx.x, ctx.target, saliency, self.explain_fn(ctx), similarity=self.similarity,
            postprocess=self.postprocess, seed=ctx.seed, watch=ctx.predict.watch)
        k = curve.shape[1] - 1
        return {"value": curve[:, -1], "curve": curve, "fractions": torch.arange(k + 1, dtype=torch.float32) / k}


@metrics.register("mprt_independent")
class MPRTIndependent(RandomizationMetric):
    """Independent model-parameter randomisation (Adebayo et al. 2018): re-initialise one block at
    a time, the rest intact, re-explain, compare. value = mean similarity over the K blocks (those
    whose comparison is defined);
    ``curve`` = similarity per block from the output toward the input, ``fractions`` = k / K,
    k = 1..K. Lower is better. Defaults: ``similarity: spearman_abs``, postprocess ``abs``."""

    version = "3"  # 3: in an nn.Sequential a conv/linear and its norm are one block (2: the norm its own step)

    info = MetricInfo("mprt_independent", requires=frozenset({"model", "explainer"}),
                      paper="Adebayo et al. 2018, Sanity checks for saliency maps", **_INFO)
    defaults: ClassVar[dict[str, Any]] = dict(_DEFAULTS)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        curve, _ = independent_randomization_curve(
            ctx.model, ctx.x, ctx.target, saliency, self.explain_fn(ctx), similarity=self.similarity,
            postprocess=self.postprocess, seed=ctx.seed, watch=ctx.predict.watch)
        k = curve.shape[1]  # the blocks whose re-explanation is constant (NaN) are left out of the mean
        return {"value": curve.nanmean(dim=1), "curve": curve,
                "fractions": torch.arange(1, k + 1, dtype=torch.float32) / k}


@metrics.register("random_logit")
class RandomLogit(RandomizationMetric):
    """Random-logit check (Sixt et al. 2020): similarity between the saliency for the target and
    for a class drawn uniformly (seeded per image) from the other classes. Lower is better. The number of
    classes comes from one forward pass of the first sample. Defaults: ``similarity:
    spearman_abs``, postprocess ``abs``."""

    info = MetricInfo("random_logit", requires=frozenset({"model", "explainer"}),
                      paper="Sixt et al. 2020, When explanations lie", **_INFO)
    defaults: ClassVar[dict[str, Any]] = dict(_DEFAULTS)
    version = "3"  # 2: NaN for a constant map (the base class's); 3: the other class drawn per image (2: per batch)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        num_classes = int(ctx.predict(ctx.x[:1]).shape[-1])
        other = random_other_class(ctx.target, num_classes, ctx.generators(SALT_LOGIT))  # per image
        return {"value": self.similar(saliency, self.explain_fn(ctx)(ctx.model, ctx.x, other))}


@metrics.register("data_randomization")
class DataRandomization(RandomizationMetric):
    """Data randomisation (Adebayo et al. 2018): similarity between the saliency of the model and
    of ``ctx.permuted_model``, the same recipe trained on permuted labels from its own seed, for the same target.
    Lower is better. Defaults: ``similarity: spearman_abs``, postprocess ``abs``."""

    info = MetricInfo("data_randomization", requires=frozenset({"model", "explainer", "permuted_model"}),
                      paper="Adebayo et al. 2018, Sanity checks for saliency maps", **_INFO)
    defaults: ClassVar[dict[str, Any]] = dict(_DEFAULTS)
    version = "3"  # 3: the twin from its own seed (2: from the model's init and shuffles, a review)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        if ctx.permuted_model is None:
            raise ValueError(f"{self.name}: EvalContext.permuted_model is None; this check needs the model "
                             "trained by the same recipe on permuted labels (the runner must train or load it "
                             "and pass it as EvalContext(permuted_model=...))")
        return {"value": self.similar(saliency, self.explain_fn(ctx)(ctx.permuted_model, ctx.x, ctx.target))}
