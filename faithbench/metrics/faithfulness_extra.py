"""Faithfulness metrics of Quantus/LATEC breadth (issue 15): thin classes over
``functional/faithfulness_extra.py``, ``functional/faithfulness_regions.py`` and
``functional/road.py``.

Options shared with the other perturbation metrics: ``patch`` (feature unit: 1 = pixel/voxel,
p = p x p (x p) patches, 2D and 3D), ``baseline`` (``zero`` = the dataset's background, ``blur``,
``mean``, ``noise``, ``uniform``), ``sigma`` (blur), ``score`` (``prob``, ``logit``, ``correct``;
sigmoid counterparts on a multi-label model) and ``max_batch`` (perturbed images per forward chunk:
bounds memory, not the result). Every forward goes through ``ctx.predict``; every random draw from
``ctx.generators(salt)``, a generator per image, so a sample's value does not depend on its batch.
A feature is a pixel/voxel (or patch) with all its channels: the map is ``(B, *spatial)`` and removing a
feature replaces every channel. Quantus 0.6.0 broadcasts the map
over the channels and treats each channel of a pixel as its own feature, so where a docstring
states agreement with Quantus it holds for 1-channel inputs. Default scores and saliency
post-processing follow Quantus 0.6.0's defaults for each metric (logits for faithfulness
correlation/estimate and infidelity, softmax elsewhere; ``abs`` for monotonicity, monotonicity
correlation and sufficiency), but where the paper differs the paper wins: sensitivity-n explains
the logit, as Ancona et al. Infidelity's class is in ``infidelity.py``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from faithbench.configurable import AT_LEAST_ONE, NON_NEGATIVE, Bound
from faithbench.metrics.base import EvalContext, Metric, MetricOutput
from faithbench.metrics.faithfulness import PerturbationMetric, few_whole_features
from faithbench.metrics.functional import faithfulness_extra as fx
from faithbench.metrics.functional import faithfulness_regions as fr
from faithbench.metrics.functional.perturbation import SALT_RANKS, make_baseline
from faithbench.metrics.functional.road import road_score
from faithbench.registry import metrics
from faithbench.scores import same_prediction
from faithbench.types import Category, MetricInfo

# salts of the random draws (SALT_RANKS = 1 and SALT_BASELINE = 2 are the perturbation module's)
SALT_SUBSETS, SALT_DRAWS, SALT_NOISE = 101, 102, 103

_BASE: dict[str, Any] = {"baseline": "zero", "sigma": 5.0, "score": "prob", "max_batch": 256}


def _info(name: str, higher: bool, paper: str, postprocess: str = "none") -> MetricInfo:
    return MetricInfo(name, higher_is_better=higher, category=Category.FAITHFULNESS, requires=frozenset({"model"}),
                      postprocess=postprocess, paper=paper)  # type: ignore[arg-type]


class ExtraFaithfulness(PerturbationMetric):
    """Shared: the scorer and the baseline image of this metric's options."""

    # 2: scores in float64 (score_logits); subclasses that rank patches say more; 3: random baselines and subsets
    # drawn per image (ctx.generators; 2: per batch, so position i of every batch had the same draw)
    version: ClassVar[str] = "3"

    def scorer(self, ctx: EvalContext) -> fx.Scorer:
        return fx.Scorer(ctx.predict, self.score_for(ctx), self.max_batch)  # type: ignore[arg-type]

    def replacement(self, ctx: EvalContext) -> Tensor:
        return self.baseline_image(ctx, self.baseline)


@metrics.register("faithfulness_correlation")
class FaithfulnessCorrelation(ExtraFaithfulness):
    """Faithfulness correlation (Bhatt et al. 2020): Pearson ρ over ``runs`` random subsets S of
    ``subset_size`` pixels/voxels between Σ_{i in S} s_i and f(x) - f(x_{S <- baseline}).
    Higher is better. Defaults (Quantus 0.6.0's): 100 runs, |S| = 224, ``zero`` baseline, target
    logit. ``subset_size`` must be below the number of pixels/voxels (Quantus clips it; every
    subset would then be the whole image, and the correlation undefined); ``runs`` >= 3 (one run
    gives no correlation, two give ±1). Cost: B (runs + 1)
    forwards. Quantus' ``FaithfulnessCorrelation`` on the same subsets agrees to 1e-4
    (tests/metrics/test_quantus_faithfulness_extra.py)."""

    info = _info("faithfulness_correlation", True, "Bhatt et al. 2020, Evaluating and aggregating "
                 "feature-based model explanations")
    defaults: ClassVar[dict[str, Any]] = {**_BASE, "runs": 100, "subset_size": 224, "score": "logit"}
    # ρ over 1 run is undefined and over 2 runs always ±1, as for sensitivity_n
    bounds: ClassVar[dict[str, Bound]] = {"runs": Bound(3), "subset_size": AT_LEAST_ONE}

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """``subset_size`` below the pixels/voxels of a sample (``faithbench validate`` checks it per
        dataset; refused when computed too): a subset of all of them is the same in every run."""
        n = math.prod(spatial_shape)
        if self.subset_size >= n:
            return (f"{self.name}: parameter 'subset_size' = {self.subset_size} is not below the {n} features "
                    f"({' x '.join(map(str, spatial_shape))}), so every subset is the whole image and the "
                    f"correlation is undefined; use a subset_size below {n}")
        return None

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        value = fx.faithfulness_correlation(self.scorer(ctx), ctx.x, ctx.target, saliency, self.replacement(ctx),
                                            runs=self.runs, subset_size=self.subset_size,
                                            generator=ctx.generators(SALT_SUBSETS))  # per image
        return MetricOutput(value=value)


@metrics.register("faithfulness_estimate")
class FaithfulnessEstimate(ExtraFaithfulness):
    """Faithfulness estimate (Alvarez-Melis & Jaakkola 2018): Pearson ρ over features j (p x p
    (x p) patches) between s_j and f(x) - f(x_{j <- baseline}), each removed alone. Higher is
    better. Defaults: ``patch: 8`` (Quantus removes single pixels: ``patch: 1``), ``zero``
    baseline, target logit. Cost: B (n_patches + 1) forwards.

    A feature is a pixel/voxel (patch) with all its channels; patches cut by the border are left out
    (by their sums a constant map scored 0.97 on 16 x 20 images, a held-out review; version 2), and
    fewer than 3 whole ones are refused. On 1-channel inputs with ``patch: 1``
    Quantus' ``FaithfulnessEstimate(features_in_step=1)`` agrees to 1e-4; on C > 1 channels they
    differ: Quantus broadcasts the map over the channels and removes and correlates each
    channel-pixel as its own feature (C N features, each with the pixel's saliency)."""

    info = _info("faithfulness_estimate", True, "Alvarez-Melis & Jaakkola 2018, Towards robust "
                 "interpretability with self-explaining neural networks")
    # 2: patches cut by the border left out; 3: scores in float64; 4: noise/uniform baselines per image
    version: ClassVar[str] = "4"
    defaults: ClassVar[dict[str, Any]] = {**_BASE, "patch": 8, "score": "logit"}

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        return few_whole_features(self.name, self.patch, spatial_shape)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        value = fx.faithfulness_estimate(self.scorer(ctx), ctx.x, ctx.target, saliency, self.replacement(ctx),
                                         patch=self.patch)
        return MetricOutput(value=value)


@metrics.register("monotonicity")
class Monotonicity(ExtraFaithfulness):
    """Monotonicity (Arya et al. 2019): starting from the baseline, restore features (p x p (x p)
    patches) of x in increasing order of relevance, c_k = round(k / steps * n) after step
    k = 1..steps; value 1 if the target score never decreases along the way, else 0. Higher is
    better. Defaults: ``patch: 8``, ``steps: 100`` (clipped to the number of patches), ``zero``
    baseline, softmax probability, ``postprocess: abs`` (Quantus'). ``curve``: the scores. One step,
    or one patch, leaves a curve of one point (every map scores 1): ``steps`` >= 2, ``patch`` below
    the largest side.

    Differs from Quantus 0.6.0 on purpose: Quantus' ``Monotonicity`` "restores" each feature by
    applying its ``perturb_func`` (baseline replacement) to the baseline image, i.e. replaces the
    baseline by the baseline; its curve is flat and every map scores True. With a perturb_func that
    inserts x's values Quantus agrees with ours (the test shows both)."""

    info = _info("monotonicity", True, "Arya et al. 2019, One explanation does not fit all (AIX360)", "abs")
    # 2: an edge patch cut by the border ranked by its mean; 3: scores in float64; 4: patch sums in float64
    # (feature_ranks): equal sums tie (seeded), not by a float32 rounding bit; 5: tie-breaks per image; 6: the
    # noise/uniform baselines per image (5: per batch)
    version: ClassVar[str] = "6"
    defaults: ClassVar[dict[str, Any]] = {**_BASE, "patch": 8, "steps": 100}
    bounds: ClassVar[dict[str, Bound]] = {"steps": Bound(2, why="with 1 step the curve is one point, every feature "
                                                               "restored, so every map scores 1")}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        ranks = self.ranks(ctx, saliency, patch=self.patch, ascending=True)
        curve = fx.monotonicity_curve(self.scorer(ctx), ctx.x, ctx.target, ranks, self.replacement(ctx),
                                      steps=self.steps)
        fractions = torch.linspace(0, 1, curve.shape[1] + 1)[1:]
        return MetricOutput(value=fx.monotonicity(curve), curve=curve, fractions=fractions)


@metrics.register("monotonicity_correlation")
class MonotonicityCorrelation(ExtraFaithfulness):
    """Monotonicity correlation (Nguyen & Martínez 2020): Spearman ρ over features j (patches)
    between s_j and v_j = mean_d (f(x_{j <- r_d}) - f(x))^2 / f(x)^2 over ``draws`` replacements
    r_d. Higher is better. Defaults: ``patch: 8``, ``draws: 10`` (Quantus: 100 draws of single
    pixels), ``uniform`` baseline (fresh seeded noise per draw), eps 1e-5, softmax probability,
    ``postprocess: abs``. Cost: B (draws n_patches + 1) forwards.

    A feature is a pixel/voxel (patch) with all its channels; patches cut by the border are left out
    (version 2, as ``faithfulness_estimate``). On 1-channel inputs with ``patch: 1``, one draw and a
    fixed baseline, Quantus' ``MonotonicityCorrelation`` agrees to 1e-4 (Quantus' ``uniform`` draws
    one U(0, 1) value per sample from np.random; ours per pixel, seeded, between x's min and max); on
    C > 1 channels they differ: Quantus broadcasts the map over the channels and perturbs and ranks
    each channel-pixel as its own feature."""

    info = _info("monotonicity_correlation", True, "Nguyen & Martínez 2020, On quantitative aspects of model "
                 "interpretability", "abs")
    defaults: ClassVar[dict[str, Any]] = {**_BASE, "baseline": "uniform", "patch": 8, "draws": 10, "eps": 1e-5}
    bounds: ClassVar[dict[str, Bound]] = {"draws": AT_LEAST_ONE, "eps": NON_NEGATIVE}
    # 2: patches cut by the border left out; 3: scores in float64; 4: the draws per image (3: per batch)
    version: ClassVar[str] = "4"

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        return few_whole_features(self.name, self.patch, spatial_shape)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        gen = ctx.generators(SALT_DRAWS)  # sample i's draws, one after another, from its own generator
        replacements = torch.stack([make_baseline(ctx.x, self.baseline, background=ctx.background, sigma=self.sigma,
                                                  generator=gen) for _ in range(self.draws)])
        value = fx.monotonicity_correlation(self.scorer(ctx), ctx.x, ctx.target, saliency, replacements,
                                            patch=self.patch, eps=self.eps)
        return MetricOutput(value=value)


@metrics.register("sensitivity_n")
class SensitivityN(ExtraFaithfulness):
    """Sensitivity-n (Ancona et al. 2018): for each subset size n = round(f N) (f in ``fractions``
    of the N patches), Pearson ρ_n over ``runs`` random subsets S, |S| = n, between Σ_{i in S} s_i
    and f(x) - f(x_{S <- baseline}); value = mean_n ρ_n, ``curve`` = ρ_n. Higher is better.
    Defaults: ``patch: 8``, fractions [0.05, 0.1, 0.2, 0.4, 0.8], 20 runs, ``zero`` baseline,
    target logit (version 3; the softmax probability before). Ancona et al. explain the pre-softmax
    output: on a model linear in x, gradient x input satisfies sensitivity-n for every n and scores
    exactly 1 on the logit, while the softmax bends the output (a held-out review: 0.64-0.86 for
    that map under ``score: prob``, still available). Patches cut by the border are left out
    (version 2, as ``faithfulness_estimate``). Cost: B (runs + 1) forwards per size. ``runs`` >= 3
    (one run gives no correlation, two give ±1) and each fraction in (0, 1): a subset of every patch is the same
    subset in every run, so ρ_n is undefined; a fraction that rounds to all N patches on the input
    at hand is refused when computed.

    Differs from Quantus 0.6.0 on purpose: Quantus' ``SensitivityN`` correlates across the samples
    of a batch, for each n, the drop after removing the top-n features cumulatively with the
    attribution of the n-th group alone (Quantus issue #354); the test rebuilds Quantus' number with
    our engine to show it. Ours is Ancona et al.'s per-sample correlation over random subsets."""

    info = _info("sensitivity_n", True, "Ancona et al. 2018, Towards better understanding of gradient-based "
                 "attribution methods for deep neural networks")
    defaults: ClassVar[dict[str, Any]] = {**_BASE, "patch": 8, "runs": 20, "fractions": [0.05, 0.1, 0.2, 0.4, 0.8],
                                          "score": "logit"}
    bounds: ClassVar[dict[str, Bound]] = {"runs": Bound(3), "fractions": Bound(0, 1, low_open=True, high_open=True)}
    # 2: patches cut by the border left out; 3: score logit by default (Ancona et al.); 4: scores in float64;
    # 5: subsets (and noise/uniform baselines) drawn per image (4: per batch)
    version: ClassVar[str] = "5"
    curve_ylabel: ClassVar[str] = "correlation ρ_n (Σ saliency vs score drop)"  # the report's curves

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """Fewer than 3 whole patches, or a fraction that rounds to all of them (``faithbench validate``
        checks it per dataset)."""
        n = len(fx.whole_features(tuple(spatial_shape), self.patch))
        whole = [f for f in self.fractions if max(1, round(f * n)) >= n]
        if n < 3 or not whole:  # a diff review: 2 whole patches gave ±1 whatever the map
            return few_whole_features(self.name, self.patch, spatial_shape)
        return (f"{self.name}: fraction {whole[0]} of the {n} whole features (patch {self.patch} on "
                f"{' x '.join(map(str, spatial_shape))}) is all of them, so every subset is the whole image "
                f"and the correlation is undefined; use fractions below {1 - 0.5 / n:.3g} or a smaller patch")

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        whole = fx.whole_features(tuple(ctx.x.shape[2:]), self.patch)
        n = len(whole)
        sizes = [max(1, round(f * n)) for f in self.fractions]
        subsets = [whole[s] for s in fx.random_subsets_by_size(ctx.x.shape[0], self.runs, n, sizes,
                                                                ctx.generators(SALT_SUBSETS))]
        curve = fx.sensitivity_n(self.scorer(ctx), ctx.x, ctx.target, saliency, self.replacement(ctx),
                                 subsets=subsets, patch=self.patch)
        return MetricOutput(value=curve.nanmean(dim=1), curve=curve,
                            fractions=torch.tensor(sizes, dtype=torch.float32) / n)


@metrics.register("irof")
class IROF(ExtraFaithfulness):
    """IROF (Rieger & Hansen 2020): remove p x p (x p) segments one more at a time in descending
    order of mean saliency; value = 1 - AUC of f(x^(k)) / f(x) over the fraction of segments
    removed. Higher is better. Defaults: ``patch: 8`` (a regular grid instead of Quantus' SLIC
    superpixels, for 2D and 3D alike), ``mean`` baseline (each sample's per-channel mean of x),
    softmax probability. ``score`` is ``prob`` only (sigmoid on a multi-label model), as Rieger &
    Hansen and Quantus: the ratio needs f(x) > 0, and a negative logit would reverse the ranking
    (a held-out review: the exact map of a linear model scored below its reverse with every logit
    shifted by -6), ``correct`` is 0/0 for a mispredicted target.

    Quantus 0.6.0's ``IROF`` with our grid and a fixed baseline agrees to 1e-4 on the curve; its
    value is L - Σ_trapezoid over steps 1..L (ours takes the trapezoid over the fraction of segments
    in [0, 1]; the value is not bounded below: a score that rises as segments go gives values < 0).
    Its ``mean`` baseline is the mean of the whole, already perturbed, batch recomputed at every step
    (it mixes samples), so ``baseline: mean`` does not match it. Quantus 0.6.0's IROF also fails on images with
    more than one channel (a 1-channel segment mask for a C-channel array: AssertionError)."""

    info = _info("irof", True, "Rieger & Hansen 2020, IROF: a low resource evaluation metric for explanation methods")
    # 2: patches of exactly equal saliency tie (seeded), not by float noise (up to 0.0066); 3: scores in float64;
    # 4: whole patches too (their sums in float64, feature_ranks; float32 pooling split ties by a rounding bit);
    # 5: tie-breaks drawn per image (EvalContext.generators), not per batch position; 6: noise/uniform baselines
    # per image too (5: per batch)
    version: ClassVar[str] = "6"
    defaults: ClassVar[dict[str, Any]] = {**_BASE, "patch": 8, "baseline": "mean"}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {**ExtraFaithfulness.choices, "score": ("prob",)}
    curve_ylabel: ClassVar[str] = "normalised score f(x^(k)) / f(x)"  # the report's curves (plots_curves)

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        value, curve = fr.irof(self.scorer(ctx), ctx.x, ctx.target, saliency, self.replacement(ctx),
                               patch=self.patch, generator=ctx.generators(SALT_RANKS))
        return MetricOutput(value=value, curve=curve, fractions=torch.linspace(0, 1, curve.shape[1]))


@metrics.register("selectivity")
class Selectivity(ExtraFaithfulness):
    """Selectivity (Montavon et al. 2018): remove p x p (x p) patches one more at a time in
    descending order of summed saliency (an edge patch by its mean); value = AUC of f(x^(k)) over the
    fraction of patches removed. Lower is better. Defaults: ``patch: 8`` (Quantus'), ``zero`` baseline, softmax
    probability. Where ``patch`` divides every side of the image, Quantus 0.6.0's ``Selectivity`` gives the
    same curve (without f(x) at k = 0) to 1e-4 (a held-out review: <= 4.4e-8, patch 2 and 4 on 16 x 16); where
    it does not, Quantus pads the image on both sides to a multiple of the patch, so its grid is shifted and
    cut at both borders and the curves differ (the review: up to 0.105 with patch 3 on 16 x 16, baseline 0;
    0.056 at baseline 0.3). Its AUC is np.trapz with dx = 1 over the steps, ours over the fraction in [0, 1]."""

    # 2: an edge patch cut by the border ranked by its mean; 3: scores in float64; 4: patch sums in float64
    # (feature_ranks): equal sums tie (seeded), not by a float32 rounding bit; 5: tie-breaks per image; 6: the
    # noise/uniform baselines per image (5: per batch)
    version: ClassVar[str] = "6"

    info = _info("selectivity", False, "Montavon et al. 2018, Methods for interpreting and understanding deep "
                 "neural networks")
    defaults: ClassVar[dict[str, Any]] = {**_BASE, "patch": 8}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        ranks = self.ranks(ctx, saliency, patch=self.patch)
        curve = fr.patch_removal_curve(self.scorer(ctx), ctx.x, ctx.target, ranks, self.replacement(ctx))
        fractions = torch.linspace(0, 1, curve.shape[1])
        return MetricOutput(value=torch.trapezoid(curve, fractions.to(curve.device), dim=1), curve=curve,
                            fractions=fractions)


class ROAD(ExtraFaithfulness):
    """Shared body of ROAD MoRF and LeRF."""

    bounds: ClassVar[dict[str, Bound]] = {"percentages": Bound(0, 100, high_open=True), "noise": NON_NEGATIVE}
    ascending: ClassVar[bool] = False
    version: ClassVar[str] = "7"  # 2: exact coarsest grid; 3: Jacobi damping 0.85 (imputed values move < 1e-4);
    # 4: each system stops at its own tolerance (imputed values move < 3e-4); 5: scores in float64; 6: tie-breaks
    # of the ranking per image; 7: the imputation noise per image too (6: per batch position)

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """Levels that all remove no pixel/voxel (int(N p / 100) = 0): every point is f(x), whatever the map."""
        n = math.prod(spatial_shape)
        if any(int(n * p / 100) for p in self.percentages):
            return None
        return (f"{self.name}: parameter 'percentages' = {list(self.percentages)} removes no pixel of the {n} of "
                f"{' x '.join(map(str, spatial_shape))} images, so every explainer would score the same; expected "
                f"a percentage that removes one (p >= 100 / {n})")

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        ranks = self.ranks(ctx, saliency, patch=1, ascending=self.ascending)
        seed = int(torch.randint(2**31 - 1, (1,), generator=ctx.generator(SALT_NOISE)))
        value, curve = road_score(self.scorer(ctx), ctx.x, ctx.target, ranks, percentages=list(self.percentages),
                                  noise=self.noise, seed=seed)
        return MetricOutput(value=value, curve=curve,
                            fractions=torch.tensor(self.percentages, dtype=torch.float32) / 100)


_ROAD: dict[str, Any] = {"percentages": [10, 20, 30, 40, 50, 60, 70, 80, 90], "noise": 0.01, "score": "correct",
                         "max_batch": 256}


@metrics.register("road_morf")
class ROADMoRF(ROAD):
    """ROAD, most relevant first (Rong et al. 2022): remove the top p% pixels/voxels (seeded
    tie-break) by noisy linear imputation (functional/road.py) for each p in ``percentages``;
    value = the mean score over the levels. Lower is better. Defaults: p = 10..90 step 10 (Rong
    et al.; Quantus: 1..99 step 2), ``noise: 0.01`` (std, input units), ``score: correct``: 1 where
    the argmax is the explained target. With the suite's default ``target: predicted`` that is the
    prediction unchanged (the unperturbed image scores 1, a misclassified one too); Rong et al.'s and
    Quantus' accuracy against the true label is ``target: label`` (which also explains the label's
    class). Quantus' ``ROAD`` (which averages over the batch) agrees
    per sample at ``noise: 0``; its imputation and ours differ by < 1e-4 on small images. Quantus
    0.6.0's ROAD fails on images with more than one channel and a 2D map (it indexes the
    channel-broadcast map as pixels: IndexError); ours imputes every channel."""

    info = _info("road_morf", False, "Rong et al. 2022, A consistent and efficient evaluation strategy for "
                 "attribution methods (ROAD)")
    defaults: ClassVar[dict[str, Any]] = dict(_ROAD)
    ascending = False


@metrics.register("road_lerf")
class ROADLeRF(ROAD):
    """ROAD, least relevant first (Rong et al. 2022): as ``road_morf`` with the least relevant
    pixels/voxels removed first. Higher is better. Same defaults."""

    info = _info("road_lerf", True, "Rong et al. 2022, A consistent and efficient evaluation strategy for "
                 "attribution methods (ROAD)")
    defaults: ClassVar[dict[str, Any]] = dict(_ROAD)
    ascending = True


@metrics.register("sufficiency")
class Sufficiency(Metric):
    """Sufficiency (Dasgupta et al. 2022): the share of a sample's explanation neighbours in the batch (standardised
    Euclidean distance over the batch, divided by the batch maximum, <= ``threshold``, in (0, 1): at 1 every sample
    is a neighbour, whatever the maps) that get the same prediction, f(x_j) = f(x_i), with f the decision row i's
    map explains (:func:`faithbench.scores.same_prediction`, shared with ``consistency``): the predicted class
    (arg-max) on a single-label model; on a multi-label one the presence of row i's explained class k, [logit_k(x_j)
    > 0] = [logit_k(x_i) > 0] (version 3; 2 compared the whole sets of present classes, a held-out review). Higher
    is better; NaN without neighbours.
    Depends on the batch (as the paper's and Quantus' definition). Defaults: ``threshold: 0.6``, ``postprocess:
    abs`` (Quantus'). Cost: B forwards. Quantus' ``Sufficiency`` agrees where a sample has neighbours (else 0 there,
    NaN here) and no pixel is equal in every map (tied maps: ours leaves such a pixel out, Quantus' distance is NaN
    and every sample 0). A sample's other class rows of a multi-label batch are not its neighbours (version 2)."""

    info = _info("sufficiency", True, "Dasgupta et al. 2022, Framework for evaluating faithfulness of local "
                 "explanations", "abs")
    defaults: ClassVar[dict[str, Any]] = {"threshold": 0.6}
    bounds: ClassVar[dict[str, Bound]] = {"threshold": Bound(0, 1, low_open=True, high_open=True, why=(
        "distances are divided by the batch's largest, so a threshold of 1 or more makes every other sample a "
        "neighbour and every explainer would score the same; at 0 only identical maps are, every value NaN"))}
    min_batch = 2
    # 2: a sample's other class rows (multi-label) are not its neighbours; 3: multi-label f = the explained class's
    # decision
    version: ClassVar[str] = "3"

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        same = same_prediction(ctx.predict(ctx.x), ctx.target if ctx.multilabel else None)
        value = fr.sufficiency(saliency.to(ctx.x.device), same.to(ctx.x.device), threshold=self.threshold,
                               same_sample=ctx.same_sample())
        return MetricOutput(value=value)
