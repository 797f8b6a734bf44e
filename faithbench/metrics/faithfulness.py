"""Faithfulness by perturbation: deletion, insertion and the area between them (Petsiuk et al.
2018, RISE), MoRF/LeRF AOPC (Samek et al. 2017), and region deletion correlation.

Shared options (every perturbation metric): ``steps``; ``patch`` (feature unit: 1 = pixel/voxel,
p = p x p (x p) patches ranked by summed saliency, an edge patch cut by the border by its mean);
``baseline`` (``zero`` = the dataset's background, ``blur`` (Gaussian, ``sigma`` px), ``mean``, ``noise``,
``uniform``; see :func:`~faithbench.metrics.functional.perturbation.make_baseline`); ``score`` (``prob``,
``logit``, ``correct``; on a multi-label dataset ``prob`` is the sigmoid of the target logit and
``correct`` whether the target logit is > 0); ``max_batch``  (perturbed images per forward chunk: bounds memory, not
the result).

Sharing within a cell: rankings, baselines and whole perturbation curves are memoised in
``ctx.memo`` under everything that determines them, so deletion_auc, insertion_auc and abpc with
the same parameters on one batch rank once and run each curve once (abpc then costs no forward
pass).

The protocol of the 3D Score-CAM study (Al-Fahsi, "Visualizing 3D ResNet for Medical Image
Classification With Score-CAM"; Score-CAM: Wang et al. 2020) is ``deletion_auc``/``insertion_auc``
with ``steps: 128`` (129 points) and ``score: correct``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Collection

import torch
from torch import Tensor

from faithbench.configurable import AT_LEAST_ONE, POSITIVE, Bound, ParameterError
from faithbench.metrics.base import EvalContext, Metric, one_feature
from faithbench.metrics.functional.perturbation import (BASELINES, MULTILABEL_SCORE, SALT_BASELINE, SALT_RANKS,
                                                        aopc_curve, auc, feature_ranks, make_baseline,
                                                        perturbation_curve, region_deletion_deltas)
from faithbench.metrics.functional.faithfulness_extra import whole_features
from faithbench.metrics.functional.similarity import spearman
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

_PERTURBATION_DEFAULTS: dict[str, Any] = {"steps": 50, "sigma": 5.0, "patch": 1, "score": "prob",
                                          "max_batch": 256}
_SCORES = ("prob", "logit", "correct")
# a curve of its two end points, x and the baseline, is the same whatever the ranking (a fuzzing review: three
# explainers tied at 0.5504 with deletion_auc steps: 1, ranked 1/2/3)
CURVE_STEPS = Bound(2, why="with 1 step the curve is its two end points, nothing and every feature replaced, "
                           "which no map changes, so every explainer would score the same")


def few_whole_features(name: str, patch: int, spatial_shape: tuple[int, ...]) -> str | None:
    """Fewer than 3 whole features (:func:`~faithbench.metrics.functional.whole_features`): no correlation."""
    n = len(whole_features(tuple(spatial_shape), patch))
    if n >= 3:
        return None
    return (f"{name}: parameter 'patch' = {patch} leaves {n} whole feature{'s' * (n != 1)} on "
            f"{' x '.join(map(str, spatial_shape))} images (patches cut by the border are left out), and a "
            "correlation needs at least 3; use a smaller patch")


class PerturbationMetric(Metric):
    """Shared machinery: validated options and the memoised ranking, baseline and curve."""

    insertion: ClassVar[bool] = False
    # 2: an edge patch cut by the border ranked by its mean (feature_ranks); 3: scores in float64 (score_logits);
    # 4: patch sums in float64 (feature_ranks), so equal sums tie (seeded), not by a float32 rounding bit;
    # 5: tie-breaks drawn per image (EvalContext.generators), not per batch position (tied maps only);
    # 6: the noise/uniform baselines drawn per image too (5: per batch, position i of every batch the same draw)
    version: ClassVar[str] = "6"
    bounds: ClassVar[dict[str, Bound]] = {"steps": AT_LEAST_ONE, "patch": AT_LEAST_ONE, "max_batch": AT_LEAST_ONE,
                                          "sigma": POSITIVE}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"score": _SCORES, "baseline": BASELINES,
                                                     "deletion_baseline": BASELINES, "insertion_baseline": BASELINES}

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """A ``patch`` that leaves one feature to rank (:func:`~faithbench.metrics.base.one_feature`), and for a
        curve of ``steps`` + 1 points (deletion, insertion, abpc) more steps than the image has pixels: every count
        of features replaced is a step at one step per pixel, a further one only repeats an image (a fuzzing review:
        ``steps: 1e12`` asked for 8 TB in every cell). Refused by ``faithbench validate`` and when computed."""
        problem = one_feature(self.name, self.params.get("patch"), spatial_shape)
        pixels, steps = math.prod(int(s) for s in spatial_shape), self.params.get("steps")
        if problem or type(self).bounds.get("steps") is not CURVE_STEPS or not isinstance(steps, int) \
                or steps <= pixels or not spatial_shape:
            return problem
        return (f"{self.name}: parameter 'steps' = {steps} is more than the {pixels} pixels of the "
                f"{' x '.join(map(str, spatial_shape))} images: beyond one step per pixel a step only repeats an "
                f"image; expected steps <= {pixels}")

    def score_for(self, ctx: EvalContext) -> str:
        """The ``score`` parameter as applied: its sigmoid counterpart on a multi-label model."""
        return MULTILABEL_SCORE[self.score] if ctx.multilabel else self.score

    # -- memoised pieces (keys hold everything the value depends on) -----------------------
    def ranks(self, ctx: EvalContext, saliency: Tensor, *, patch: int, ascending: bool = False) -> Tensor:
        key = ("ranks", patch, ascending, self.postprocess, id(ctx.saliency))
        if key not in ctx.memo:
            signed = -saliency if ascending else saliency
            ranks = feature_ranks(signed, patch=patch, generator=ctx.generators(SALT_RANKS))  # per image
            ctx.memo[key] = ranks.to(ctx.x.device)
        return ctx.memo[key]

    def baseline_image(self, ctx: EvalContext, name: str) -> Tensor:
        key = ("baseline", name, float(self.sigma), float(ctx.background))
        if key not in ctx.memo:
            ctx.memo[key] = make_baseline(ctx.x, name, background=ctx.background, sigma=self.sigma,
                                          generator=ctx.generators(SALT_BASELINE))  # per image
        return ctx.memo[key]

    def curve(self, ctx: EvalContext, saliency: Tensor, *, insertion: bool, baseline: str) -> tuple[Tensor, Tensor]:
        key = ("curve", insertion, baseline, float(self.sigma), self.steps, self.patch, self.score,
               self.postprocess, id(ctx.saliency))
        if key not in ctx.memo:
            ranks = self.ranks(ctx, saliency, patch=self.patch)
            ctx.memo[key] = perturbation_curve(ctx.predict, ctx.x, ctx.target, ranks,
                                               self.baseline_image(ctx, baseline), steps=self.steps,
                                               insertion=insertion, score=self.score_for(ctx),
                                               max_batch=self.max_batch)
        return ctx.memo[key]

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        curve, fractions = self.curve(ctx, saliency, insertion=self.insertion, baseline=self.baseline)
        return {"value": auc(curve, fractions), "curve": curve, "fractions": fractions}


@metrics.register("deletion_auc")
class DeletionAUC(PerturbationMetric):
    """Deletion AUC (Petsiuk et al. 2018): area under the target score as the most salient
    features are replaced by the baseline, over the fraction of features replaced in [0, 1]:

        AUC = trapezoid_k (f(x with the top c_k features replaced), c_k / N),  c_k = round(k/n N),  k = 0..n.

    The N features are pixels, or patches with ``patch`` > 1; the x axis is the fraction of
    features actually replaced, which is k/n when n divides N (also the ``fraction`` column of
    ``curves.parquet``). With more steps than features (n > N, e.g. large patches) some steps
    repeat an image; their forward passes are made and counted all the same. ``steps`` >= 2 and at
    least 2 features (``patch`` below the largest side): one step, or one feature, gives only the two
    end points, the same for every map. Lower is better. Defaults: 50 steps, pixel features, ``zero``
    baseline, softmax probability."""

    info = MetricInfo("deletion_auc", higher_is_better=False, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Petsiuk et al. 2018, RISE")
    bounds: ClassVar[dict[str, Bound]] = {"steps": CURVE_STEPS}
    defaults: ClassVar[dict[str, Any]] = {**_PERTURBATION_DEFAULTS, "baseline": "zero"}
    insertion = False


@metrics.register("insertion_auc")
class InsertionAUC(PerturbationMetric):
    """Insertion AUC (Petsiuk et al. 2018): area under the target score as the most salient
    features of x are restored into the baseline. Higher is better. Defaults: 50 steps, pixel
    features, ``blur`` baseline (sigma 5 px), softmax probability. The blur is a Gaussian of sigma 5
    px (radius 15, reflect padding), as the paper describes; RISE's reference code
    (``evaluation.py``: ``gkern(11, 5)``) truncates it to an 11 x 11 kernel, nearly flat (centre /
    corner 1.14), with zero padding, which darkens the border: insertion AUCs are not numerically
    those of that code."""

    info = MetricInfo("insertion_auc", higher_is_better=True, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Petsiuk et al. 2018, RISE")
    bounds: ClassVar[dict[str, Bound]] = {"steps": CURVE_STEPS}
    defaults: ClassVar[dict[str, Any]] = {**_PERTURBATION_DEFAULTS, "baseline": "blur"}
    insertion = True


@metrics.register("abpc")
class ABPC(PerturbationMetric):
    """Area between the perturbation curves: insertion AUC - deletion AUC, both over the same
    ranking (Petsiuk et al. 2018, "RISE: Randomized Input Sampling for Explanation of Black-box
    Models", BMVC). Higher is better.

    ``curve`` is insertion(k) - deletion(k). Defaults as deletion_auc/insertion_auc
    (``deletion_baseline: zero``, ``insertion_baseline: blur``), so in a cell that also runs those
    two with the same options both curves come from the memo and abpc costs no forward pass."""

    info = MetricInfo("abpc", higher_is_better=True, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Petsiuk et al. 2018, RISE (area between curves)")
    bounds: ClassVar[dict[str, Bound]] = {"steps": CURVE_STEPS}
    defaults: ClassVar[dict[str, Any]] = {**_PERTURBATION_DEFAULTS, "deletion_baseline": "zero",
                                          "insertion_baseline": "blur"}
    curve_ylabel: ClassVar[str] = "insertion − deletion (target score)"  # the report's curves (plots_curves)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        deletion, fractions = self.curve(ctx, saliency, insertion=False, baseline=self.deletion_baseline)
        insertion, _ = self.curve(ctx, saliency, insertion=True, baseline=self.insertion_baseline)
        between = insertion - deletion
        return {"value": auc(between, fractions), "curve": between, "fractions": fractions}


class AOPC(PerturbationMetric):
    """Shared body of MoRF and LeRF AOPC."""

    ascending: ClassVar[bool] = False
    curve_ylabel: ClassVar[str] = "score drop f(x) − f(x^(k))"  # the report's curves (plots_curves)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        ranks = self.ranks(ctx, saliency, patch=self.patch, ascending=self.ascending)
        curve, fractions = aopc_curve(ctx.predict, ctx.x, ctx.target, ranks, self.baseline_image(ctx, self.baseline),
                                      steps=self.steps, patch=self.patch, score=self.score_for(ctx),
                                      max_batch=self.max_batch)
        return {"value": curve.mean(dim=1), "curve": curve, "fractions": fractions}


_AOPC_DEFAULTS: dict[str, Any] = {**_PERTURBATION_DEFAULTS, "steps": 100, "patch": 8, "baseline": "uniform"}


@metrics.register("morf_aopc")
class MoRFAOPC(AOPC):
    """MoRF AOPC (Samek et al. 2017, region perturbation): rank non-overlapping p x p (x p)
    patches by summed saliency (an edge patch by its mean), most relevant first (seeded tie-break),
    replace one more patch per step by the baseline, and average the score drop,

        AOPC = 1 / (L + 1) * sum_{k=0..L} (f(x) - f(x_MoRF^(k))),  L = min(steps, #patches).

    Higher is better. Defaults: ``patch: 8`` in 2D and 3D (a 64 x 64 image has 64 patches, a 28^3
    volume 64; use 4 for a finer 3D grid), ``steps: 100``, ``baseline: uniform`` (Samek et al.
    draw U(0, 1) in [0, 1] pixel space; we draw uniformly between each sample's per-channel min
    and max, the same idea in model input space), softmax probability. ``curve`` is
    f(x) - f(x^(k)), ``fractions (B, L + 1)`` each sample's share of the image replaced."""

    info = MetricInfo("morf_aopc", higher_is_better=True, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Samek et al. 2017, Evaluating the visualization "
                      "of what a deep neural network has learned")
    defaults: ClassVar[dict[str, Any]] = dict(_AOPC_DEFAULTS)
    ascending = False


@metrics.register("lerf_aopc")
class LeRFAOPC(AOPC):
    """LeRF AOPC (Samek et al. 2017): as ``morf_aopc`` but the least relevant patches go first;
    a faithful map barely moves the score, so lower is better. Same defaults as ``morf_aopc``."""

    info = MetricInfo("lerf_aopc", higher_is_better=False, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Samek et al. 2017, Evaluating the visualization "
                      "of what a deep neural network has learned")
    defaults: ClassVar[dict[str, Any]] = dict(_AOPC_DEFAULTS)
    ascending = True


@metrics.register("region_deletion_correlation")
class RegionDeletionCorrelation(PerturbationMetric):
    """Region deletion correlation (a single-deletion check in the spirit of FunnyBirds, Hesse et
    al. 2023): for each named region r of a sample,

        Δ_r = f(x) - f(x with r replaced by the baseline),  I_r = Σ_{i in r} s_i,

    and value = Spearman ρ(I, Δ) over the sample's non-empty regions (average ranks for ties).
    Higher is better. NaN (dropped by the runner) with fewer than 3 non-empty regions or a
    constant I or Δ.

    I_r sums the map over the region (FunnyBirds' part importance), so the region's AREA enters
    it: a larger region holds more mass and, replaced, drops the score more, and a map that carries
    no information scores well above 0 (a held-out review: an all-ones map 0.866 on three regions,
    random maps about as high as saliency on ``phantom_cxr``). ``chance`` (version 3) is therefore
    Spearman ρ(|r|, Δ) over the same regions, what a constant map scores (no extra forward
    passes): read the value against it, not against 0.

    ``regions``: mask names; ``[]`` (default) = every mask of the dataset not in ``exclude``.
    ``exclude`` default ``[lesion, marker, body, lung_lesion_side, lung_contralateral, target,
    change, valid]``: the lesion and the shortcut marker are the
    ground truth of the localisation and shortcut analyses, and ``body`` contains every other
    region, so its largest mass and largest drop would inflate ρ by containment alone;
    ``lung_lesion_side`` and ``lung_contralateral`` (``phantom_cxr``) repeat the two lungs; ``target``
    (the explained class's mask), ``change`` (the lesion at a sequence's visit of change) and, on
    multi-label datasets, the masks named after classes are ground truth too, and ``valid`` (the real
    visits of a sequence) contains every other region. Defaults:
    ``baseline: zero``, softmax probability. No ranking, so no ``steps``/``patch``."""

    # ranks nothing (PerturbationMetric's 2 did not change it); 2: scores in float64; 3: chance = ρ(area, Δ);
    # 4: the noise/uniform baselines drawn per image (3: per batch)
    version: ClassVar[str] = "4"
    info = MetricInfo("region_deletion_correlation", higher_is_better=True, category=Category.FAITHFULNESS,
                      requires=frozenset({"model"}), paper="Hesse et al. 2023, FunnyBirds (single deletion)")
    defaults: ClassVar[dict[str, Any]] = {"regions": [], "exclude": ["lesion", "marker", "body", "lung_lesion_side",
                                                                     "lung_contralateral", "target", "change",
                                                                     "valid"],
                                          "baseline": "zero", "sigma": 5.0, "score": "prob", "max_batch": 256}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        for key in ("regions", "exclude"):  # a fuzzing review: exclude [null] excluded nothing, silently
            wrong = [v for v in self.params[key] if not isinstance(v, str) or not v]
            if wrong:
                got = "an empty string" if wrong[0] == "" else ("null" if wrong[0] is None else
                                                               f"{type(wrong[0]).__name__} {wrong[0]!r}")
                raise ParameterError(f"{self.name}: parameter {key!r} expects a list of mask names (str), got {got} "
                                     f"in {self.params[key]!r}")
        repeated = sorted({r for r in self.regions if self.regions.count(r) > 1})
        if repeated:  # a fuzzing review: [heart, heart, spine] passed the 3-region gate, every ρ ±1
            raise ParameterError(f"{self.name}: parameter 'regions' repeats {repeated[0]!r}; expected distinct names")
        if 0 < len(self.regions) < 3:  # ρ over fewer than 3 regions: NaN for every sample
            raise ParameterError(f"{self.name}: parameter 'regions' names {len(self.regions)} region"
                                 f"{'s' if len(self.regions) > 1 else ''}; expected at least 3 (a rank correlation "
                                 "over fewer is undefined), or [] for every mask of the dataset")

    def region_names(self, ctx: EvalContext) -> list[str]:
        if self.regions:
            missing = [r for r in self.regions if r not in ctx.masks]
            if missing:
                raise ValueError(f"{self.name}: the dataset has no mask {missing[0]!r}; "
                                 f"available: {', '.join(sorted(ctx.masks)) or '(none)'}")
            return list(self.regions)
        exclude = set(self.exclude)
        if ctx.multilabel:  # a mask named after a class is that class's finding: ground truth
            exclude |= set(ctx.classes)
        return sorted(m for m in ctx.masks if m not in exclude)

    def required_masks(self) -> list[str]:
        return list(self.regions)

    def applicability(self, masks: Collection[str], spatial_dims: int) -> tuple[str | None, list[str]]:
        """Skipped where the dataset has fewer than 3 masks outside ``exclude`` (``regions: []``): every value
        would be NaN (a review: validate said ok, the run's rows were all undefined). A multi-label dataset's
        class masks are left out when computed, not here (the classes are not known here): such a dataset with
        fewer than 3 other masks passes and is undefined everywhere (a diff review)."""
        reason, notes = super().applicability(masks, spatial_dims)
        kept = sorted(set(masks) - set(self.exclude))
        if reason is None and not self.regions and len(kept) < 3:
            reason = (f"{len(kept)} of the dataset's masks are regions ({', '.join(kept) or 'none'}; the others are "
                      "in 'exclude'): a rank correlation needs at least 3")
        return reason, notes

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        names = self.region_names(ctx)
        b = ctx.x.shape[0]
        if len(names) < 3:
            nan = torch.full((b,), float("nan"), device=ctx.x.device)
            return {"value": nan, "chance": nan}
        regions = torch.stack([ctx.masks[n].to(ctx.x.device).bool() for n in names], dim=1)
        deltas = region_deletion_deltas(ctx.predict, ctx.x, ctx.target, regions,
                                        self.baseline_image(ctx, self.baseline), score=self.score_for(ctx),
                                        max_batch=self.max_batch)
        mass = (saliency.to(ctx.x.device)[:, None].float() * regions).flatten(2).sum(dim=2)
        area = regions.flatten(2).sum(dim=2)
        present = area > 0
        return {"value": spearman(mass, deltas, valid=present, min_count=3).float(),
                "chance": spearman(area, deltas, valid=present, min_count=3).float()}
