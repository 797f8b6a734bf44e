"""Class sensitivity: does the saliency change with the explained class? (multi-label data)

The random-logit check of Sixt et al. 2020 ("When Explanations Lie: Why Many Modified BP
Attributions Fail", ICML) asks whether the map for
the target class differs from the map for a random other class. On a multi-label image where two
findings are both present, the question is sharper: each class has its own evidence (its own
mask), so a faithful explainer's map for class A must differ from its map for class B where their
masks differ. An explainer that ignores the class (the ``sobel`` edge control) gives the same map
for every class: similarity 1, and it fails the check.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from faithbench.metrics.base import EvalContext
from faithbench.metrics.randomization import RandomizationMetric
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

OTHERS = ("positive", "all")


@metrics.register("class_sensitivity")
class ClassSensitivity(RandomizationMetric):
    """Class sensitivity by class pair (after Sixt et al. 2020, random-logit): for a row that
    explains class A of a sample, with s_c the saliency for class c,

        value = mean over B in others(A) of  sim(|s_A|, |s_B|),

    where ``others: positive`` (default) is the other classes present in the sample (images where
    both A and B are positive, whose masks differ: a row whose class A is absent from the image has no
    value, NaN, as ``target: {samples: all}`` gives; a review found class b scored on 19 images without
    it and 1 with it) and ``others: all`` every other class. The mean
    is over the B whose comparison is defined (a constant map of B, an empty Grad-CAM, is left out);
    the row has no value (NaN, no row) when the sample has no such B, or its own map is constant.
    Lower is better: the map depends on the class; a class-blind map (``sobel``) scores 1. ``sim`` is
    ``spearman_abs`` by default (Spearman ρ of |saliency|; also ``ssim``, ``hog_pearson``); postprocess
    ``abs``.

    Cost: one re-explanation per other class, of the rows that pair with it. ``others: positive``
    needs a multi-label batch (``ctx.labels``: refused on a single-label dataset by ``faithbench
    validate``); ``others: all`` works on any classifier (the number of classes from one forward pass).
    """

    info = MetricInfo("class_sensitivity", requires=frozenset({"model", "explainer"}),
                      category=Category.RANDOMIZATION, higher_is_better=False, postprocess="abs",
                      paper="Sixt et al. 2020, When explanations lie (random logit), by class pair")
    defaults: ClassVar[dict[str, Any]] = {"similarity": "spearman_abs", "others": "positive"}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"others": OTHERS}
    version = "3"  # 3: others: positive leaves out rows whose explained class is absent (2: scored them)

    @property
    def undefined_hint(self) -> str:
        if self.others == "positive":
            return "the explained class absent from the image, no other positive class in it, or a constant map"
        return "a constant map"

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """``others: positive`` pairs the classes present together in a sample: it needs a
        multi-label dataset (``faithbench validate`` refuses it on a single-label one)."""
        if self.others == "positive" and not multilabel:
            return (f"{self.name}: parameter 'others' is 'positive' (the default: the other classes present in "
                    f"a multi-label sample), but the dataset is single-label; set others: all")
        return None

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        b = ctx.x.shape[0]
        if self.others == "positive":
            if ctx.labels is None:
                raise ValueError(f"{self.name}: 'others: positive' needs the multi-label class vectors "
                                 f"(EvalContext.labels); use 'others: all' on a single-label dataset")
            eligible = ctx.labels.to(ctx.target.device).bool()
            present = eligible[torch.arange(b), ctx.target]  # (a copy) both A and B positive, or no value
            eligible &= present[:, None]
        else:
            k = int(ctx.predict(ctx.x[:1]).shape[-1])
            eligible = torch.ones((b, k), dtype=torch.bool, device=ctx.target.device)
        eligible[torch.arange(b), ctx.target] = False
        total = torch.zeros(b, dtype=torch.float64)
        count = torch.zeros(b, dtype=torch.float64)
        explain = self.explain_fn(ctx)
        for other in range(eligible.shape[1]):
            rows = eligible[:, other].nonzero()[:, 0]
            if len(rows) == 0:
                continue
            target = torch.full((len(rows),), other, dtype=torch.long, device=ctx.target.device)
            other_map = explain(ctx.model, ctx.x[rows], target)
            sim = self.similar(saliency[rows], other_map).double().cpu()
            defined = torch.isfinite(sim)  # a constant map of that class (an empty Grad-CAM): not compared
            total[rows.cpu()[defined]] += sim[defined]
            count[rows.cpu()[defined]] += 1
        value = torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))
        return {"value": value.float().to(ctx.x.device)}
