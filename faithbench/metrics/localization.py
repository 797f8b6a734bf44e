"""Localisation metrics: does the saliency sit on the region that decides the label?

Each reports its chance level for the mask (the mask's area fraction), so a reader can see
that the random control lands near it. ``mask`` names the sample mask to use (``lesion``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from faithbench.metrics.base import EvalContext, Metric
from faithbench.metrics.functional.localization import (area_fraction, dilate, pointing_game,
                                                         relevance_mass)
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo


class LocalizationMetric(Metric):
    def region(self, ctx: EvalContext) -> Tensor:
        try:
            return ctx.masks[self.params["mask"]]
        except KeyError:
            raise ValueError(f"{self.name}: the dataset has no mask {self.params['mask']!r}; "
                             f"available: {', '.join(sorted(ctx.masks)) or '(none)'}") from None

    def required_masks(self) -> list[str]:
        return [self.params["mask"]]


@metrics.register("pointing_game")
class PointingGame(LocalizationMetric):
    """Hit (1) if the saliency maximum lies in the mask dilated by ``tolerance`` pixels
    (Zhang et al. 2018); ties among maxima broken by the seeded permutation."""

    info = MetricInfo("pointing_game", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper="Zhang et al. 2018, Top-down neural attention")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "tolerance": 0}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        value = pointing_game(saliency, mask, tolerance=self.tolerance, generator=ctx.generator(3))
        return {"value": value, "chance": area_fraction(dilate(mask, self.tolerance))}


@metrics.register("relevance_mass")
class RelevanceMass(LocalizationMetric):
    """Share of positive saliency inside the mask (Arras et al. 2022; Wang et al. 2020)."""

    info = MetricInfo("relevance_mass", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), postprocess="relu",
                      paper="Arras et al. 2022, CLEVR-XAI")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion"}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        return {"value": relevance_mass(saliency, mask), "chance": area_fraction(mask)}
