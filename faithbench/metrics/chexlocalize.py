"""The CheXlocalize localisation protocol as two registered metrics (Saporta et al. 2022).

``chexlocalize_iou``: the per-sample IoU (its mean over samples is the paper's mIoU) of the map
binarised by Otsu's threshold (default) or a fixed threshold on the min-max normalised map, with
optional probability gating. ``chexlocalize_hit``: the hit rate (the map's maximum in the mask).
The math is in :mod:`faithbench.metrics.functional.chexlocalize`.

Parameters: ``mask`` (default ``lesion``); ``threshold`` ``"otsu"`` (default) or a float in
[0, 1] (e.g. from :func:`~faithbench.metrics.functional.chexlocalize.tune_threshold` on
validation maps); ``gate`` null (default: no gating) or a float in [0, 1] (e.g. from
:func:`~faithbench.metrics.functional.chexlocalize.tune_gate`): a map whose target probability is
not above it becomes empty (IoU 0 unless the mask is empty; hit 0). The target probability is the
softmax of the target logit (sigmoid on a multi-label model), from one counted forward pass.
Default postprocess ``none`` (the raw map is min-max normalised, as CheXlocalize does).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from faithbench.configurable import ParameterError
from faithbench.metrics.base import EvalContext
from faithbench.metrics.functional.chexlocalize import chexlocalize_hit, iou, random_iou_chance, segment
from faithbench.metrics.functional.localization import area_fraction
from faithbench.metrics.functional.perturbation import score_logits
from faithbench.metrics.localization import LocalizationMetric
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

__all__ = ["CheXlocalizeHit", "CheXlocalizeIoU", "target_probability"]

SALT_HIT = 11
PAPER = ("Saporta et al. 2022, Benchmarking saliency methods for chest X-ray interpretation, "
         "Nature Machine Intelligence")


def target_probability(ctx: EvalContext) -> Tensor:
    """Softmax (sigmoid when multi-label) probability of each sample's explained target ``(B,)``,
    memoised per batch in ``ctx.memo`` (one counted forward pass for both metrics)."""
    key = ("target_probability", ctx.multilabel)
    if key not in ctx.memo:
        logits = ctx.predict(ctx.x)
        ctx.memo[key] = score_logits(logits, ctx.target.to(logits.device), "sigmoid" if ctx.multilabel else "prob")
    return ctx.memo[key]


class CheXlocalizeMetric(LocalizationMetric):
    """Validates ``threshold`` ("otsu" or a float in [0, 1], where the metric has one) and ``gate``
    (None or a float in [0, 1]); the Configurable type check cannot express "a str or a float"."""

    def __init__(self, **params: Any) -> None:
        has_threshold = "threshold" in self.defaults
        threshold = params.pop("threshold", "otsu") if has_threshold else None
        gate = params.pop("gate", None)
        super().__init__(**params)
        name = self.name
        if has_threshold:
            if isinstance(threshold, bool) or not (threshold == "otsu" or isinstance(threshold, (int, float))):
                raise ParameterError(f"{name}: parameter 'threshold' expects 'otsu' or a float in [0, 1], "
                                     f"got {threshold!r}")
            if not isinstance(threshold, str) and not 0.0 <= float(threshold) <= 1.0:
                raise ParameterError(f"{name}: parameter 'threshold' expects a float in [0, 1], got {threshold!r}")
            threshold = threshold if isinstance(threshold, str) else float(threshold)
            self.params["threshold"] = self.threshold = threshold
        if gate is not None and (isinstance(gate, bool) or not isinstance(gate, (int, float))
                                 or not 0.0 <= float(gate) <= 1.0):
            raise ParameterError(f"{name}: parameter 'gate' expects null or a float in [0, 1], got {gate!r}")
        self.params["gate"] = self.gate = None if gate is None else float(gate)

    def probability(self, ctx: EvalContext) -> Tensor | None:
        return None if self.gate is None else target_probability(ctx)


@metrics.register("chexlocalize_iou")
class CheXlocalizeIoU(CheXlocalizeMetric):
    """CheXlocalize IoU (Saporta et al. 2022): IoU of (minmax(s) > t, emptied if p <= gate) with
    the mask; t = Otsu per map by default. NaN for an empty mask. Chance: the expected IoU of a
    random segmentation of the same size. Defaults: ``mask: lesion``, ``threshold: otsu``,
    ``gate: null``, postprocess ``none``."""

    info = MetricInfo("chexlocalize_iou", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper=PAPER)
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "threshold": "otsu", "gate": None}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        seg = segment(saliency, self.threshold, self.probability(ctx), self.gate)
        return {"value": iou(seg, mask), "chance": random_iou_chance(seg, mask)}


@metrics.register("chexlocalize_hit")
class CheXlocalizeHit(CheXlocalizeMetric):
    """CheXlocalize hit rate (Saporta et al. 2022): 1 if the map's maximum lies in the mask (ties
    by the seeded draw), 0 if not or if the map is gated (p <= gate). NaN for an empty mask.
    Chance: the mask's area fraction. Defaults: ``mask: lesion``, ``gate: null``, postprocess
    ``none`` (no ``threshold``: the hit reads the map's maximum, not a segmentation)."""

    info = MetricInfo("chexlocalize_hit", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper=PAPER)
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "gate": None}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        value = chexlocalize_hit(saliency, mask, prob=self.probability(ctx), gate=self.gate,
                                 generator=ctx.generator(SALT_HIT))
        return {"value": value, "chance": area_fraction(mask)}
