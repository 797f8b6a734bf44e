"""Temporal metrics for longitudinal datasets (sequences ``(B, C, T, H, W)``, saliency
``(B, T, H, W)``); the math is in :mod:`faithbench.metrics.functional.temporal`.

Padding frames are left out through the dataset's validity mask (role ``validity``: ``valid``) when it has one
(every visit counts otherwise). The padding frame used to remove a visit is the dataset's background value
(``ctx.background``), which is what the longitudinal datasets pad with.

The metrics that compare the visits of a sequence (``min_visits`` 2: the temporal curves and ``visit_pointing``)
refuse sequences of one visit (``seq_len: 1``; validate, and :meth:`Metric.refuse_unfit` when computed) and give
NaN for a sample that no map can score otherwise (one real visit; for ``visit_pointing``, a mask on every real
visit); ``mask: valid`` (the validity mask, set on every real visit) is refused on construction.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

from torch import Tensor

from faithbench.configurable import AT_LEAST_ONE, NON_NEGATIVE, Bound, ParameterError
from faithbench.metrics.base import EvalContext, Metric
from faithbench.metrics.functional.temporal import (REMOVAL_MODES, single_visit, temporal_curve, undefine,
                                                    visit_importance, visit_pointing, visit_pointing_game, visit_ranks,
                                                    visit_relevance_mass, visits_valid)
from faithbench.metrics.functional.perturbation import auc
from faithbench.registry import metrics
from faithbench.types import DEFAULT_MASK_ROLES, Category, MaskRole, MetricInfo

# generator salts, distinct from the other metrics'
SALT_VISIT_RANKS, SALT_VISIT_POINTING, SALT_VISIT_PG = 21, 22, 23


class TemporalMetric(Metric):
    """Shared: the sequence check and the validity of each visit. On a dataset that is not a
    sequence (2D images) the metric is skipped for the cell, with the reason in ``skipped.csv``
    (:meth:`applicability`; ``faithbench validate`` warns), as for a missing mask.

    ``min_visits``: the visits a sequence needs for a map to change the value (2 where the metric compares
    visits): fewer are refused (:meth:`check_dataset`; validate also refuses a dataset whose sequences hold
    fewer real visits, ``most_visits``)."""

    min_visits: ClassVar[int] = 1

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        mask = self.params.get("mask")
        if isinstance(mask, str) and DEFAULT_MASK_ROLES.get(mask) == MaskRole.VALIDITY:  # a review: 1.000 = chance
            raise ParameterError(f"{self.name}: parameter 'mask' = {mask!r} is the validity mask, set on every real "
                                 "visit, so every map would score the same; expected a mask of the finding "
                                 "(change, lesion)")

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """Sequences ``(T, H, W)`` of fewer than :attr:`min_visits` visits: every map ranks the one visit first
        (a review: seq_len 1 gave every explainer 0.546, visit_pointing 1.000 at chance 1.000)."""
        if len(spatial_shape) == 3 and spatial_shape[0] < self.min_visits:
            return (f"{self.name} compares the visits of a sequence, and sequences of {spatial_shape[0]} visit "
                    f"(seq_len {spatial_shape[0]}) leave every map the same value; expected seq_len >= "
                    f"{self.min_visits}")
        return None

    @property
    def undefined_hint(self) -> str:
        if self.min_visits < 2:
            return ""
        if "mask" in self.params:
            return (f"a sequence whose mask {self.params['mask']!r} is set on no real visit or on every one, "
                    "one real visit included, where every map scores the same")
        return "a sequence of one real visit, where every map scores the same"

    def applicability(self, masks: Collection[str], spatial_dims: int) -> tuple[str | None, list[str]]:
        # not a sequence first: a missing 'change' mask on 2D images would point at the wrong fix (a review)
        if spatial_dims != 3:
            return (f"a temporal metric needs sequences of visits (T, H, W) from a longitudinal dataset; "
                    f"the dataset is {spatial_dims}D"), []
        if not any(DEFAULT_MASK_ROLES.get(m) == MaskRole.VALIDITY for m in masks):
            # a 3D volume (D, H, W) is not a sequence: its depth slices are not visits
            return ("a temporal metric needs sequences of visits (T, H, W) with the mask 'valid' of a longitudinal "
                    "dataset (real visits vs padding); the dataset is 3D without it (a volume?)"), []
        return super().applicability(masks, spatial_dims)

    def check(self, ctx: EvalContext) -> None:
        if ctx.x.ndim != 5:
            raise ValueError(f"{self.name}: expected a sequence batch (B, C, T, H, W) from a longitudinal dataset, "
                             f"got x of shape {tuple(ctx.x.shape)}")

    def valid(self, ctx: EvalContext) -> Tensor:
        return visits_valid(ctx.mask_with(MaskRole.VALIDITY), ctx.x.shape[0], ctx.x.shape[2], ctx.x.device)

    def region(self, ctx: EvalContext) -> Tensor:
        name = self.params["mask"]
        if name not in ctx.masks:
            raise ValueError(f"{self.name}: the dataset has no mask {name!r}; "
                             f"available: {', '.join(sorted(ctx.masks)) or '(none)'}")
        mask, shape = ctx.masks[name], (ctx.x.shape[0], *ctx.x.shape[2:])
        if tuple(mask.shape) != tuple(shape):  # a review: a wrong T blamed "a validity mask"
            raise ValueError(f"{self.name}: expected mask {name!r} of the sequence's shape {tuple(shape)} "
                             f"(B, T, H, W), got {tuple(mask.shape)}")
        return mask.to(ctx.x.device)

    def required_masks(self) -> list[str]:
        return [self.params["mask"]] if "mask" in self.params else []


# 2: visit importance summed in float64 (a near-tie of float32 sums can order otherwise), padding ranked last by a
# lexicographic key; the ranks of equal importances are unchanged
_RANKS_VERSION = "2"


class TemporalPerturbation(TemporalMetric):
    insertion: ClassVar[bool] = False
    # the curve's abscissa (the report's plots): k / T visits, padding slots included, not a share of features
    curve_xlabel: ClassVar[str] = "fraction of visits perturbed (k / T, padding slots included)"
    # _RANKS_VERSION's 2; 3: scores in float64 (score_logits); 4: NaN for a sequence of one real visit;
    # 5: the tie-break per sequence (EvalContext.generators), not per batch position
    version: ClassVar[str] = "5"
    min_visits: ClassVar[int] = 2

    bounds: ClassVar[dict[str, Bound]] = {"max_batch": AT_LEAST_ONE}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"score": ("prob", "logit", "correct"), "mode": REMOVAL_MODES}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        self.check(ctx)
        key = ("visit_ranks", self.postprocess)
        if key not in ctx.memo:
            ctx.memo[key] = visit_ranks(visit_importance(saliency.to(ctx.x.device)), self.valid(ctx),
                                        generator=ctx.generators(SALT_VISIT_RANKS))
        curve, fractions = temporal_curve(ctx.predict, ctx.x, ctx.target, ctx.memo[key], pad_value=ctx.background,
                                          insertion=self.insertion, score=self.score, max_batch=self.max_batch,
                                          mode=self.mode)
        value = undefine(auc(curve, fractions), single_visit(self.valid(ctx)))
        return {"value": value, "curve": curve, "fractions": fractions}


_TEMPORAL_DEFAULTS: dict[str, Any] = {"mode": "replace", "score": "prob", "max_batch": 256}


@metrics.register("temporal_deletion")
class TemporalDeletion(TemporalPerturbation):
    """Temporal deletion AUC: rank the real visits by importance (the sum of their saliency over
    space; seeded tie-break), take the top k = 0..T out, AUC of the target's score over k / T
    (Petsiuk et al. 2018's deletion with visits as the features); NaN for a sequence of one real
    visit (every map gives it the same curve). Lower is better. ``mode``:
    ``replace`` (default: the padding frame in place of the visit) or ``remove`` (the visit leaves
    the sequence, which is padded again at the beginning: a shorter history, as in training).
    Defaults: softmax probability, postprocess ``none`` (a visit's signed net contribution)."""

    info = MetricInfo("temporal_deletion", higher_is_better=False, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Petsiuk et al. 2018, RISE (deletion over visits)")
    defaults: ClassVar[dict[str, Any]] = dict(_TEMPORAL_DEFAULTS)
    insertion = False


@metrics.register("temporal_insertion")
class TemporalInsertion(TemporalPerturbation):
    """Temporal insertion AUC: from an all-padding sequence, restore the real visits in order of
    importance; AUC of the target's score over k / T. Higher is better. Same defaults and the same
    ranking as ``temporal_deletion``."""

    info = MetricInfo("temporal_insertion", higher_is_better=True, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Petsiuk et al. 2018, RISE (insertion over visits)")
    defaults: ClassVar[dict[str, Any]] = dict(_TEMPORAL_DEFAULTS)
    insertion = True


@metrics.register("visit_pointing")
class VisitPointing(TemporalMetric):
    """Visit pointing: 1 if the most important real visit (the largest sum of saliency over space;
    ties by the seeded permutation) holds the deciding change (a non-empty ``mask``, default
    ``change``), else 0. Chance: (#real visits with the change) / (#real visits), 1/3 for a single
    change among 3 visits. NaN where no real visit or every one holds the mask (every map would
    hit: one real visit, an anatomy mask). Postprocess ``none`` by default (a visit's signed net
    contribution)."""

    info = MetricInfo("visit_pointing", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:change"}), paper="visit-level pointing game (this benchmark)")
    defaults: ClassVar[dict[str, Any]] = {"mask": "change"}
    # _RANKS_VERSION's 2; 3: NaN where the mask is on every real visit (chance 1); 4: the tie-break per sequence
    version: ClassVar[str] = "4"
    min_visits: ClassVar[int] = 2

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        self.check(ctx)
        value, chance = visit_pointing(visit_importance(saliency.to(ctx.x.device)), self.region(ctx), self.valid(ctx),
                                       generator=ctx.generators(SALT_VISIT_POINTING))
        return {"value": value, "chance": chance}


@metrics.register("visit_pointing_game")
class VisitPointingGame(TemporalMetric):
    """Pointing game per visit (Zhang et al. 2018): in every visit whose ``mask`` (``lesion``) is
    not empty, a hit if that visit's saliency maximum lies in the mask or closer than ``tolerance``
    pixels to it (Euclidean, strict, as ``pointing_game``; version 2, 1: a square);
    averaged over those visits. It asks where in the right visit the map points, whatever visit it
    ranks first (``pointing_game`` over the whole (T, H, W) sequence asks both). Chance: the mean
    dilated area fraction."""

    info = MetricInfo("visit_pointing_game", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper="Zhang et al. 2018, per visit")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "tolerance": 0}
    bounds: ClassVar[dict[str, Bound]] = {"tolerance": NON_NEGATIVE}
    version: ClassVar[str] = "3"  # 2: the tolerance a disk (1: a square); 3: the tie-break per sequence

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """``pointing_game``'s bound on a visit's ``(H, W)`` (spatial shape ``(T, H, W)``): a ``tolerance`` above the
        largest distance between two of its pixels grows every mask over the visit, so every map hits (a fuzzing
        review: ``tolerance: 1e12``, every explainer scored 1)."""
        from faithbench.metrics.localization import PointingGame

        return PointingGame.check_dataset(self, tuple(spatial_shape)[1:]) if len(spatial_shape) > 1 else None

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        self.check(ctx)
        value, chance = visit_pointing_game(saliency.to(ctx.x.device), self.region(ctx), tolerance=self.tolerance,
                                            generator=ctx.generators(SALT_VISIT_PG))
        return {"value": value, "chance": chance}


@metrics.register("visit_relevance_mass")
class VisitRelevanceMass(TemporalMetric):
    """Relevance mass per visit (Arras et al. 2022): in every visit whose ``mask`` (``lesion``) is
    not empty, the share of that visit's positive saliency inside the mask; averaged over those
    visits. Postprocess ``relu``. Chance: the mean area fraction."""

    info = MetricInfo("visit_relevance_mass", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), postprocess="relu", paper="Arras et al. 2022, per visit")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion"}
    version: ClassVar[str] = "2"  # 2: the chance over the visits the value averages (those with positive saliency)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        self.check(ctx)
        value, chance = visit_relevance_mass(saliency.to(ctx.x.device).float(), self.region(ctx))
        return {"value": value, "chance": chance}


__all__ = ["TemporalDeletion", "TemporalInsertion", "TemporalMetric", "VisitPointing", "VisitPointingGame",
           "VisitRelevanceMass"]
