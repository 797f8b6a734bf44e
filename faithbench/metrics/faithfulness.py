"""Faithfulness by perturbation: deletion and insertion AUC (Petsiuk et al. 2018, RISE).

Defaults follow RISE: deletion replaces by the ``zero`` baseline (the dataset's background),
insertion starts from a ``blur`` baseline (sigma 5 px); 50 steps; pixel features; softmax
probability of the target. Deletion and insertion of one cell share a single ranking (the
same seeded tie-break), memoised in the context.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from faithbench.metrics.base import EvalContext, Metric
from faithbench.metrics.functional.perturbation import (auc, feature_ranks, make_baseline,
                                                        perturbation_curve)
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

_PERTURBATION_DEFAULTS: dict[str, Any] = {"steps": 50, "sigma": 5.0, "patch": 1, "score": "prob",
                                          "max_batch": 256}


class PerturbationMetric(Metric):
    insertion: ClassVar[bool] = False

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        rank_key = ("ranks", self.patch, self.postprocess, id(ctx.saliency))
        if rank_key not in ctx.memo:
            ctx.memo[rank_key] = feature_ranks(saliency, patch=self.patch, generator=ctx.generator(1))
        ranks = ctx.memo[rank_key].to(ctx.x.device)
        base = make_baseline(ctx.x, self.baseline, background=ctx.background, sigma=self.sigma,
                             generator=ctx.generator(2))
        curve, fractions = perturbation_curve(ctx.predict, ctx.x, ctx.target, ranks, base, steps=self.steps,
                                              insertion=self.insertion, score=self.score,
                                              max_batch=self.max_batch)
        return {"value": auc(curve, fractions), "curve": curve, "fractions": fractions}


@metrics.register("deletion_auc")
class DeletionAUC(PerturbationMetric):
    """Deletion AUC: area under the target score as the most salient features are replaced
    by the baseline, over the fraction replaced in [0, 1]. Lower is better."""

    info = MetricInfo("deletion_auc", higher_is_better=False, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Petsiuk et al. 2018, RISE")
    defaults: ClassVar[dict[str, Any]] = {**_PERTURBATION_DEFAULTS, "baseline": "zero"}
    insertion = False


@metrics.register("insertion_auc")
class InsertionAUC(PerturbationMetric):
    """Insertion AUC: area under the target score as the most salient features of x are
    restored into the baseline. Higher is better."""

    info = MetricInfo("insertion_auc", higher_is_better=True, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Petsiuk et al. 2018, RISE")
    defaults: ClassVar[dict[str, Any]] = {**_PERTURBATION_DEFAULTS, "baseline": "blur"}
    insertion = True
