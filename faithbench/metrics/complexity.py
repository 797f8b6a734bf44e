"""Complexity metrics (category ``complexity``): how concentrated, or simple, is the saliency?
Formulas: :mod:`faithbench.metrics.functional.complexity`. They read the saliency alone (no
model), after the default postprocess ``abs`` (Quantus' default ``abs=True``). Quantus also
divides by the maximum first (``normalise=True``); the Gini index and the entropy do not change
under scaling, so only ``effective_complexity`` (whose threshold is relative) does it here too, by
each map's own maximum where Quantus takes one maximum over the batch (see its docstring).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from faithbench.configurable import Bound
from faithbench.metrics.base import EvalContext, Metric, MetricOutput
from faithbench.metrics.functional.complexity import complexity, effective_complexity, sparseness
from faithbench.metrics.functional.robustness import normalise_by_max
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo


@metrics.register("sparseness")
class Sparseness(Metric):
    """Sparseness (Chalasani et al. 2020): the Gini index of |saliency|,
    G = Σ_i (2i - n - 1) a_(i) / (n Σ a) over the sorted values, in [0, (n - 1) / n].
    Higher is better (a concise explanation). Defaults: postprocess ``abs`` (or ``relu``; ``none`` is
    refused: a signed map is no distribution). Quantus adds 1e-7 to
    every value first, which moves G by about 1e-7 n / Σ a."""

    info = MetricInfo("sparseness", higher_is_better=True, category=Category.COMPLEXITY, postprocess="abs",
                      paper="Chalasani et al. 2020, Concise explanations of neural networks using adversarial "
                            "training")
    defaults: ClassVar[dict[str, Any]] = {}
    needs_nonnegative = True  # the Gini index of a distribution: postprocess none refused by validate

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        return MetricOutput(value=sparseness(saliency))


@metrics.register("complexity")
class Complexity(Metric):
    """Complexity (Bhatt et al. 2020): the entropy of the fractional contributions,
    H = -Σ_i p_i ln p_i with p_i = |s_i| / Σ_j |s_j|, in [0, ln n]. Lower is better.
    Defaults: postprocess ``abs`` (or ``relu``; ``none`` is refused: a signed map is no distribution)."""

    info = MetricInfo("complexity", higher_is_better=False, category=Category.COMPLEXITY, postprocess="abs",
                      paper="Bhatt et al. 2020, Evaluating and aggregating feature-based model explanations")
    defaults: ClassVar[dict[str, Any]] = {}
    needs_nonnegative = True  # the entropy of a distribution: postprocess none refused by validate

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        return MetricOutput(value=complexity(saliency))


@metrics.register("effective_complexity")
class EffectiveComplexity(Metric):
    """Effective complexity (Nguyen & Martinez 2020): the number of features whose |saliency|,
    divided by the map's maximum, exceeds ``eps``: |{i : |s_i| / max_j |s_j| > eps}|. Lower is
    better. Defaults: ``eps: 1e-5``, postprocess ``abs``. (A count: it grows with the image size.)

    Differs from Quantus 0.6.0: each map is divided by its own maximum, as Nguyen & Martinez define
    the threshold per explanation. Quantus' ``EffectiveComplexity`` (``normalise=True``) divides by one
    maximum over the whole batch, so a sample's count depends on its batchmates: with ``eps: 0.5``
    and one peaked map in the batch the others count 0 (tests/metrics/test_complexity_axiomatic.py).
    Quantus given one sample per call, or maps that share their maximum, agrees with ours."""

    info = MetricInfo("effective_complexity", higher_is_better=False, category=Category.COMPLEXITY,
                      postprocess="abs", paper="Nguyen & Martinez 2020, On quantitative aspects of model "
                                               "interpretability")
    defaults: ClassVar[dict[str, Any]] = {"eps": 1e-5}
    bounds: ClassVar[dict[str, Bound]] = {"eps": Bound(0, 1, high_open=True, why=(
        "|s| / max |s| is at most 1, so at 1 or more no feature counts and every explainer would score 0"))}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        return MetricOutput(value=effective_complexity(normalise_by_max(saliency), self.eps))
