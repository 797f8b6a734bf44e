"""Localisation metrics: does the saliency sit on the region that decides the label?

Each reports its chance level for the mask (its expected value for a map in random order: the
mask's area fraction for most, the dilated mask's for the pointing game with a tolerance, the
expected AP for auprc, E|A ∩ M| / E|A ∪ M| for iou_top* (|M| / N with ``bbox: true``)), so a reader
can see that the random control lands near it. ``mask`` names the sample mask to use (``lesion``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from torch import Tensor

from faithbench.configurable import NON_NEGATIVE, Bound
from faithbench.metrics.base import EvalContext, Metric
from faithbench.metrics.functional.localization import (area_fraction, auprc, auprc_chance, dilate, iou_chance,
                                                         iou_top_k, pointing_game, relevance_mass, relevance_rank)
from faithbench.registry import metrics
from faithbench.types import Category, MaskRole, MetricInfo, masks_with_role


# generator salts: one per random draw, so metrics never share a stream by accident
SALT_POINTING, SALT_TOP = 3, 4


class LocalizationMetric(Metric):
    """A metric against a sample mask (``mask``: its name).

    Tie-breaks (a map's equal values: a constant map, a Grad-CAM's zeros) draw from a generator per image,
    seeded from the cell's seed, the metric's salt and the image's bytes (``EvalContext.generators``), so a
    sample's value does not depend on its batch, its position there or the batch size, and a constant map
    scores at chance over the samples. Until the versions that say so, one generator per batch gave position
    i of every batch the same draw (a held-out review: 64 all-zero 16^3 maps against organ masks of area
    0.135 scored 0.0 to 0.47 on the pointing game and 0.0 to 0.75 on ``chexlocalize_hit``, seed by seed, at
    batch size 1)."""

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
    """Hit (1) if the saliency maximum lies in the mask or closer than ``tolerance`` pixels
    (Euclidean) to it (Zhang et al. 2018, who use 15 px at 224 px; the acceptance region of their
    benchmark code in TorchRay, strict: tolerance 1 is 0); ties among maxima broken by the seeded
    permutation. The tolerance counts voxels whatever the spacing (on a 0.78 x 0.78 x 6.5 mm MRI, 4
    is 3 mm in-plane and 26 mm through-plane). On a sequence (``(B, T, H, W)`` with a validity
    mask) it grows the mask within each visit, not across time: a maximum in a visit without the
    region is no hit. Version 2: a disk, not the (2t + 1)^d square of version 1; version 3: per visit
    on sequences (2 grew the mask into the neighbouring visits, a held-out review); version 4: the
    tie-break drawn per image (:class:`LocalizationMetric`)."""

    info = MetricInfo("pointing_game", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper="Zhang et al. 2018, Top-down neural attention")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "tolerance": 0}
    bounds: ClassVar[dict[str, Bound]] = {"tolerance": NON_NEGATIVE}
    # 2: the tolerance a Euclidean disk (1: a square); 3: per visit on sequences; 4: the tie-break per image
    version: ClassVar[str] = "4"

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """A ``tolerance`` above the largest distance between two pixels, sqrt(sum (side - 1)^2): the grown
        mask covers the image, so every map hits (a fuzzing review: ``tolerance: 1e9``; refused by
        ``faithbench validate`` and when computed)."""
        reach = math.sqrt(sum((int(s) - 1) ** 2 for s in spatial_shape))
        if spatial_shape and self.tolerance > reach:
            return (f"{self.name}: parameter 'tolerance' = {self.tolerance:g} is above {reach:.2f}, the largest "
                    f"distance between two pixels of the {' x '.join(map(str, spatial_shape))} images, so every "
                    f"map would hit and every explainer would score the same; expected tolerance <= "
                    f"{math.floor(reach)}")
        return None

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        if ctx.x.ndim == 5 and masks_with_role(ctx.mask_roles, ctx.masks, MaskRole.VALIDITY):  # visits over time
            grown = dilate(mask.flatten(0, 1), self.tolerance).reshape(mask.shape)
        else:
            grown = dilate(mask, self.tolerance)
        value = pointing_game(saliency, grown, generator=ctx.generators(SALT_POINTING))
        return {"value": value, "chance": area_fraction(grown)}


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


@metrics.register("relevance_rank")
class RelevanceRank(LocalizationMetric):
    """Relevance rank accuracy (Arras et al. 2022): with K = |M|, the share of the K most salient
    features that lie in M, |top_K(s) ∩ M| / K. Ties by the seeded permutation (Quantus breaks
    them by index order). Chance: the mask's area fraction. Default postprocess ``none``. Version 2: the
    tie-break drawn per image (:class:`LocalizationMetric`)."""

    info = MetricInfo("relevance_rank", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper="Arras et al. 2022, CLEVR-XAI")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion"}
    version: ClassVar[str] = "2"  # 2: the tie-break per image (1: per batch position)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        value = relevance_rank(saliency, mask, generator=ctx.generators(SALT_TOP))
        return {"value": value, "chance": area_fraction(mask)}


class IoUTopK(LocalizationMetric):
    """IoU of the top-k% saliency with the mask: binarise the round(k% N) most salient features
    (ties by the seeded permutation), then |A ∩ M| / |A ∪ M|. With ``bbox: true`` A is first
    replaced by the bounding box of all its components (the attention-map study's protocol; box IoU
    as in Zhou et al. 2016, "Learning deep features for discriminative localization", CVPR, who box
    the largest connected component of the CAM thresholded at 20 % of its maximum).
    Chance: E|A ∩ M| / E|A ∪ M| for k% features drawn at random (``iou_chance``, a ratio of
    expectations); with ``bbox: true`` the area fraction |M| / N, since the box of k% features
    scattered at random is the whole image (exact in the limit of many features; on small images
    with small k a random map's mean strays from it). Version 2: the ``bbox: true`` chance is |M| / N
    (1: the no-box figure, 0.286 for a half-image mask that a random map scores 0.5 on, a held-out review);
    version 3: the tie-break drawn per image (:class:`LocalizationMetric`)."""

    # 2: chance with bbox: true = |M| / N (1: the no-box E|A ∩ M| / E|A ∪ M|); 3: the tie-break per image
    version: ClassVar[str] = "3"
    percent: ClassVar[float]

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        value = iou_top_k(saliency, mask, percent=self.percent, bbox=self.bbox,
                          generator=ctx.generators(SALT_TOP))
        return {"value": value, "chance": iou_chance(mask, self.percent, bbox=self.bbox)}


def _iou_info(percent: int) -> MetricInfo:
    return MetricInfo(f"iou_top{percent}", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}),
                      paper="Zhou et al. 2016, Learning deep features for discriminative localization "
                            "(box IoU; top-k% here)")


@metrics.register("iou_top5")
class IoUTop5(IoUTopK):
    __doc__ = IoUTopK.__doc__ + "\n\n    k = 5%. Defaults: ``mask: lesion``, ``bbox: false``."
    info = _iou_info(5)
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "bbox": False}
    percent = 5.0


@metrics.register("iou_top10")
class IoUTop10(IoUTopK):
    __doc__ = IoUTopK.__doc__ + "\n\n    k = 10%. Defaults: ``mask: lesion``, ``bbox: false``."
    info = _iou_info(10)
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "bbox": False}
    percent = 10.0


@metrics.register("iou_top20")
class IoUTop20(IoUTopK):
    __doc__ = IoUTopK.__doc__ + "\n\n    k = 20%. Defaults: ``mask: lesion``, ``bbox: false``."
    info = _iou_info(20)
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "bbox": False}
    percent = 20.0


@metrics.register("iou_top40")
class IoUTop40(IoUTopK):
    __doc__ = IoUTopK.__doc__ + "\n\n    k = 40%. Defaults: ``mask: lesion``, ``bbox: false``."
    info = _iou_info(40)
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "bbox": False}
    percent = 40.0


@metrics.register("auprc")
class AUPRC(LocalizationMetric):
    """Area under the precision-recall curve of the saliency as a per-pixel score for the mask
    (Arun et al. 2021), computed as average precision AP = Σ_n (R_n - R_{n-1}) P_n over the
    distinct saliency values (= sklearn's ``average_precision_score``; tied values enter
    together, no tie-break). Chance: the expected AP of a map in random order, a little above the
    prevalence |M| / N (:func:`~faithbench.metrics.functional.localization.auprc_chance`; version 2, 1:
    the prevalence, 15-27 % below it for the phantoms' small lesions). Default postprocess ``none``."""

    version: ClassVar[str] = "2"  # 2: chance = the expected AP of a random map (1: the prevalence)
    info = MetricInfo("auprc", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper="Arun et al. 2021, Assessing the "
                      "trustworthiness of saliency maps for localizing abnormalities in medical imaging")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion"}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        return {"value": auprc(saliency, mask), "chance": auprc_chance(mask)}
