"""More localisation metrics: attribution localisation (Kohlbrenner et al. 2020), top-k
intersection (Theiner et al. 2021), ROC AUC against the mask, and Focus (Arias-Duart et al. 2022;
mosaics built from the batch, no mask needed). Formulas: :mod:`faithbench.metrics.functional.
mask_overlap` and :mod:`faithbench.metrics.functional.focus`. Each reports its chance level.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from faithbench.configurable import FRACTION, NON_NEGATIVE, Bound, ParameterError
from faithbench.metrics.base import EvalContext, Metric, MetricOutput
from faithbench.metrics.base import postprocess as apply_postprocess
from faithbench.metrics.functional.focus import build_mosaic, focus, mosaic_plan
from faithbench.metrics.functional.localization import area_fraction
from faithbench.metrics.functional.mask_overlap import attribution_localisation, roc_auc, top_k_intersection
from faithbench.metrics.localization import LocalizationMetric
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

SALT_TOPK, SALT_MOSAIC = 41, 42


@metrics.register("attribution_localisation")
class AttributionLocalisation(LocalizationMetric):
    """Attribution localisation (Kohlbrenner et al. 2020): the share of the attribution inside
    the mask, μ = Σ_{i∈M} s_i / Σ_i s_i (after the postprocess; default ``abs``, Quantus' default),
    or with ``weighted: true`` μ_w = μ N / |M| (a uniform map scores 1). Chance: |M| / N (weighted:
    1). Higher is better. Defaults: ``mask: lesion``, ``weighted: false``, postprocess ``abs``.

    Quantus 0.6.0's ``weighted`` multiplies by |M| / size, not N / |M|, and takes the size from
    ``x_batch[2:].size`` (the samples from the third on, not the spatial axes), so its weighted
    values are not the paper's."""

    version: ClassVar[str] = "2"  # 2: NaN for a map with a negative value (postprocess none on a signed map)
    info = MetricInfo("attribution_localisation", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), postprocess="abs",
                      paper="Kohlbrenner et al. 2020, Towards best practice in explaining neural network "
                            "decisions with LRP")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "weighted": False}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        mask = self.region(ctx)
        chance = torch.ones(mask.shape[0]) if self.weighted else area_fraction(mask)
        return MetricOutput(value=attribution_localisation(saliency, mask, weighted=self.weighted), chance=chance)


@metrics.register("top_k_intersection")
class TopKIntersection(LocalizationMetric):
    """Top-k intersection (Theiner et al. 2021): |top_k(s) ∩ M| / k, the share of the k most
    salient features inside the mask; k = ``k`` features, or with ``k`` = 0 the fraction
    ``fraction`` of them (round, at least 1). Ties by a seeded permutation (Quantus: index order).
    Chance: |M| / N. Higher is better. Defaults: ``k: 0`` and ``fraction: 0.02``, i.e. 1004
    features on 224 x 224, where the paper and Quantus take k = 1000 (``k: 1000`` for parity),
    and defined on every image size (MedMNIST's 28 x 28 has 784 features); ``mask: lesion``,
    postprocess ``none``. Version 2: the tie-break drawn per image (1: per batch position; see
    :class:`~faithbench.metrics.localization.LocalizationMetric`)."""

    info = MetricInfo("top_k_intersection", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}),
                      paper="Theiner et al. 2021, Interpretable semantic photo geolocation")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "k": 0, "fraction": 0.02}
    bounds: ClassVar[dict[str, Bound]] = {"k": NON_NEGATIVE, "fraction": FRACTION}
    version: ClassVar[str] = "2"  # 2: the tie-break per image (1: per batch position)

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """``k`` above the features of a sample, or ``k`` (or ``fraction``) choosing all of them: the top N is
        every feature, |M| / N for every map, so every explainer would score the same (a fuzzing review:
        ``fraction: 1.0``, ``k: 1024`` on 32 x 32). Checked by ``faithbench validate`` and when computed."""
        n = math.prod(spatial_shape)
        shape = " x ".join(map(str, spatial_shape))
        if self.k > n:
            return (f"{self.name}: k = {self.k} is more than the {n} features per sample "
                    f"({shape}); set k < {n}, or k: 0 to take the fraction 'fraction' of them")
        if self.k == n or (self.k == 0 and max(1, round(self.fraction * n)) >= n > 1):
            which = f"k = {self.k}" if self.k else f"fraction = {self.fraction:g} (k = round(fraction N))"
            return (f"{self.name}: {which} takes all {n} features per sample ({shape}), so every explainer "
                    f"would score |M| / N; expected k < {n}, or a fraction with round(fraction N) < {n}")
        return None

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        mask = self.region(ctx)
        n = mask[0].numel()
        k = self.k if self.k > 0 else max(1, round(self.fraction * n))
        value = top_k_intersection(saliency, mask, k, generator=ctx.generators(SALT_TOPK))
        return MetricOutput(value=value, chance=area_fraction(mask))


@metrics.register("roc_auc")
class ROCAUC(LocalizationMetric):
    """ROC AUC of the saliency as a per-pixel score for the mask: P(s_in > s_out), ties one half
    (= ``sklearn.metrics.roc_auc_score``, Quantus' ``AUC``; Fawcett 2006, "An introduction to ROC
    analysis", Pattern Recognition Letters). Chance 0.5. Higher is better.
    Defaults: ``mask: lesion``, postprocess ``none``."""

    info = MetricInfo("roc_auc", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper="Fawcett 2006, An introduction to ROC analysis "
                                                                 "(as a localisation score: Quantus' AUC)")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion"}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        mask = self.region(ctx)
        return MetricOutput(value=roc_auc(saliency, mask), chance=torch.full((mask.shape[0],), 0.5))


@metrics.register("focus")
class Focus(Metric):
    """Focus (Arias-Duart et al. 2022, "Focus! Rating XAI methods and finding biases"): explain a
    2 x 2 mosaic (two samples of its target class, x_i among them unless mispredicted, and two of
    other classes, never x_i: a mispredicted x_i as a distractor would be a tile the model reads as
    the target class (version 2; 1 put it there); drawn from the batch, seeded; on a multi-label batch,
    a row per (sample, class), the other tiles are samples other than x_i, each at most once: version 3,
    2 could tile x_i's own other class rows) for the target class and take the share of positive
    relevance on the two target-class tiles. Chance 0.5. Higher is better. NaN where the batch lacks two
    target-class samples or two others. The model must accept inputs of twice the height and width
    (CNNs with global pooling do; a ViT with a fixed input size does not). Defaults: postprocess
    ``relu``. Tiles along the last two spatial axes, so 2D and 3D (depth kept) share the code;
    Quantus 0.6.0 hard-codes axes 1 and 2 of a (C, H, W) image when it builds the mosaic and axes 2
    and 3 of (B, C, H, W) maps when it scores: right for channel-first 2D only (a channel-last
    image is tiled along its channels, a volume is split along its depth)."""

    info = MetricInfo("focus", higher_is_better=True, category=Category.LOCALIZATION, postprocess="relu",
                      requires=frozenset({"model", "explainer"}),
                      paper="Arias-Duart et al. 2022, Focus! Rating XAI methods and finding biases")
    defaults: ClassVar[dict[str, Any]] = {}
    version = "3"  # 2: a mispredicted x_i is left out of its own mosaic (1: a distractor tile, a held-out review);
    # 3: no sample fills two tiles (multi-label class rows of one image, a held-out review)
    needs_other_class = True  # validate warns where subset: positive leaves a two-class batch one class
    min_batch = 4  # two target-class tiles and two others

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        if ctx.explainer is None:
            raise ValueError(f"{self.name}: needs the cell's explainer in EvalContext.explainer to explain mosaics")
        target = ctx.target.cpu()
        if ctx.multilabel and ctx.labels is not None:
            member = ctx.labels.cpu()[:, target].T > 0  # member[i, j]: sample j has class target[i]
        else:
            member = target[:, None] == ctx.label.cpu()[None, :]
        tiles, is_target, valid = mosaic_plan(member, ctx.generator(SALT_MOSAIC), ctx.same_sample())
        if not valid.any():  # no mosaic to score: none is explained (a review: 512 IG passes for NaN)
            nan = torch.full((len(target),), float("nan"), device=saliency.device)
            return MetricOutput(value=nan, chance=torch.full_like(nan, 0.5))
        mosaics = build_mosaic(ctx.x, tiles)
        try:
            with ctx.predict.watch(ctx.model):
                maps = ctx.explainer(ctx.model, mosaics, ctx.target)
        except RuntimeError as exc:
            raise ParameterError(f"{self.name}: the model failed on 2 x 2 mosaics of shape {tuple(mosaics.shape)} "
                                 f"(inputs {tuple(ctx.x.shape)}): {exc}") from exc
        maps = apply_postprocess(maps.detach().float().to(saliency.device), self.postprocess)
        value = focus(maps, is_target.to(saliency.device))
        value = torch.where(valid.to(value.device), value, torch.full_like(value, float("nan")))
        return MetricOutput(value=value, chance=torch.full_like(value, 0.5))
