"""Robustness metrics: does the explanation stay put when the input barely changes?

Every metric here but ``consistency`` re-explains perturbed copies of x with the cell's explainer
(``ctx.explainer``), seeded noise from ``ctx.generators(salt)``, a generator per image (so a sample's noise does not
depend on its batch or position in it); the explainer's forward passes are
counted into ``ctx.predict`` (so they land in cost.csv). Re-explanations get the metric's
post-processing, like the original saliency. A stochastic explainer (``random``, RISE, SmoothGrad)
is re-seeded for every call from its seed and the call's index: each re-explanation is an
independent call, as each ``explain_func`` call is in Quantus, and the ``random`` control then
scores as the chance level it stands for (its noise is not the same map for every input).

Shared parameters: ``nr_samples`` (perturbed copies per sample; Quantus defaults to 200, we to 10
for cost), ``draws_per_call`` (copies re-explained per explainer call: bounds memory; a
deterministic explainer gives the same values for any setting, a stochastic one other values, as its
calls are seeded per call, not per draw: keep it fixed across compared runs), ``nan_if_prediction_changes``
(leave out copies whose predicted class differs from x's, on a multi-label model those whose decision on
the row's explained class k differs, [logit_k(x') > 0] != [logit_k(x) > 0]; NaN if none is left).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, ClassVar

from torch import Tensor

from faithbench.configurable import AT_LEAST_ONE, POSITIVE, Bound, ParameterError
from faithbench.metrics.base import EvalContext, Metric, MetricOutput
from faithbench.metrics.base import postprocess as apply_postprocess
from faithbench.metrics.functional.robustness import (argmax_cell, consistency, continuity_ratio, explain_perturbed,
                                                       gaussian_noise, lipschitz_ratio, normalise_by_max,
                                                       prediction_changed, reduce_draws, sensitivity, translations,
                                                       uniform_noise)
from faithbench.registry import metrics
from faithbench.scores import same_prediction
from faithbench.types import Category, MetricInfo

SALT_NOISE = 21  # generator salt of the input noise
_CALL_SEED = 7919  # re-explanation call k of an explainer seeded s runs with seed s * 1_000_003 + 7919 (k + 1)

_SHARED: dict[str, Any] = {"nr_samples": 10, "draws_per_call": 1, "nan_if_prediction_changes": False}


def reexplainer(ctx: EvalContext, postprocess: str) -> Callable[[Tensor, Tensor, int], Tensor]:
    """``explain(xs, target, call)`` for :func:`explain_perturbed`: the cell's explainer on
    ``ctx.model``, re-seeded per call, counted into ``ctx.predict``, post-processed."""
    if ctx.explainer is None:
        raise ValueError("robustness metrics re-explain perturbed inputs: EvalContext.explainer is None")

    def explain(xs: Tensor, target: Tensor, call: int) -> Tensor:
        explainer = ctx.explainer
        if isinstance(getattr(explainer, "seed", None), int):
            explainer = copy.copy(explainer)
            explainer.seed = ctx.explainer.seed * 1_000_003 + _CALL_SEED * (call + 1)
        with ctx.predict.watch(ctx.model):
            maps = explainer(ctx.model, xs, target)
        return apply_postprocess(maps.detach().float(), postprocess)
    return explain


class RobustnessMetric(Metric):
    """Shared machinery: validated parameters, perturbed copies and their re-explanations."""

    bounds: ClassVar[dict[str, Bound]] = {"nr_samples": AT_LEAST_ONE, "draws_per_call": AT_LEAST_ONE}

    def noise_key(self, ctx: EvalContext) -> tuple:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def make_noisy(self, ctx: EvalContext) -> Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    # -- memoised in ctx.memo under everything they depend on, so metrics with the same noise
    #    parameters on one batch (max/avg sensitivity; RIS/RRS/ROS) perturb and re-explain once
    def noisy(self, ctx: EvalContext) -> Tensor:
        key = ("robust_x", self.noise_key(ctx))
        if key not in ctx.memo:
            ctx.memo[key] = self.make_noisy(ctx)
        return ctx.memo[key]

    def reexplain(self, ctx: EvalContext, x_perturbed: Tensor) -> Tensor:
        key = ("robust_maps", self.noise_key(ctx), self.draws_per_call, self.postprocess, id(ctx.saliency))
        if key not in ctx.memo:
            maps = explain_perturbed(reexplainer(ctx, self.postprocess), x_perturbed, ctx.target,
                                     draws_per_call=self.draws_per_call)
            ctx.memo[key] = maps.to(ctx.saliency.device)
        return ctx.memo[key]

    def perturbed_logits(self, ctx: EvalContext, x_perturbed: Tensor) -> Tensor:
        """Logits of the perturbed copies ``(S, B, K)`` (one counted forward each, memoised)."""
        key = ("robust_logits", self.noise_key(ctx))
        if key not in ctx.memo:
            s, b = x_perturbed.shape[:2]
            ctx.memo[key] = ctx.predict(x_perturbed.reshape(s * b, *x_perturbed.shape[2:])).reshape(s, b, -1)
        return ctx.memo[key]

    def original_logits(self, ctx: EvalContext) -> Tensor:
        """Logits of the batch's originals ``(B, K)`` (one counted forward, memoised: the prediction
        check and ROS share it)."""
        if "robust_logits_x" not in ctx.memo:
            ctx.memo["robust_logits_x"] = ctx.predict(ctx.x)
        return ctx.memo["robust_logits_x"]

    def changed(self, ctx: EvalContext, x_perturbed: Tensor) -> Tensor | None:
        if not self.nan_if_prediction_changes:
            return None
        return prediction_changed(self.original_logits(ctx), self.perturbed_logits(ctx, x_perturbed),
                                  ctx.target if ctx.multilabel else None)


@metrics.register("max_sensitivity")
class MaxSensitivity(RobustnessMetric):
    """Max-sensitivity (Yeh et al. 2019, "On the (in)fidelity and sensitivity of explanations"),
    normalised as in Quantus:

        SENS_max = max_{x' = x + u, u ~ U(-r, r)^d} ||Φ(x) - Φ(x')||_F / ||Φ(x)||_F

    over ``nr_samples`` seeded draws. Lower is better. Defaults: ``radius: 0.02`` (Captum's
    ``sensitivity_max``; Quantus' ``lower_bound`` is 0.2: pass ``radius: 0.2`` for its number), 10
    draws, postprocess ``none``.

    The radius is absolute, in dataset space (images in [0, 1]: a fraction of the range). The
    definition is a *small* perturbation: the sensitivity of an explainer continuous in x goes to 0
    with the radius, that of an independent random map (the ``random`` control) stays at
    sqrt(1/2) ≈ 0.71 at every radius. At 0.2 (noise of std 0.115, ~4x phantom_cxr's own pixel
    noise) the suite's small_cnn changed its prediction on half of the draws and Grad-CAM scored
    1.23 against the random control's 0.72; at 0.02, 4 % of the draws changed the prediction and
    Grad-CAM scored 0.14 (measured on 32 test images, docs/results.md)."""

    info = MetricInfo("max_sensitivity", higher_is_better=False, category=Category.ROBUSTNESS,
                      requires=frozenset({"model", "explainer"}),
                      paper="Yeh et al. 2019, On the (in)fidelity and sensitivity of explanations")
    defaults: ClassVar[dict[str, Any]] = {**_SHARED, "radius": 0.02}
    bounds: ClassVar[dict[str, Bound]] = {"radius": POSITIVE}
    reduction: ClassVar[str] = "max"
    # 2: nan_if_prediction_changes on a multi-label model compares the decision on the row's class k, not the argmax;
    # 3: the noise drawn per image (2: per batch, position i of every batch got the same noise)
    version: ClassVar[str] = "3"

    def noise_key(self, ctx: EvalContext) -> tuple:
        return ("uniform", self.nr_samples, float(self.radius))

    def make_noisy(self, ctx: EvalContext) -> Tensor:
        return uniform_noise(ctx.x, self.nr_samples, self.radius, ctx.generators(SALT_NOISE))

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        x_perturbed = self.noisy(ctx)
        values = sensitivity(saliency, self.reexplain(ctx, x_perturbed))
        return MetricOutput(value=reduce_draws(values, self.reduction, self.changed(ctx, x_perturbed)))


@metrics.register("avg_sensitivity")
class AvgSensitivity(MaxSensitivity):
    """Average sensitivity (Yeh et al. 2019): as ``max_sensitivity`` with the mean over the draws,

        SENS_avg = E_{u ~ U(-r, r)^d} ||Φ(x) - Φ(x + u)||_F / ||Φ(x)||_F.

    Lower is better. Defaults: ``radius: 0.02``, 10 draws, postprocess ``none``."""

    info = MetricInfo("avg_sensitivity", higher_is_better=False, category=Category.ROBUSTNESS,
                      requires=frozenset({"model", "explainer"}),
                      paper="Yeh et al. 2019, On the (in)fidelity and sensitivity of explanations")
    reduction = "mean"


@metrics.register("local_lipschitz")
class LocalLipschitz(RobustnessMetric):
    """Local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018, "On the robustness of
    interpretability methods"):

        L(x) = max_{x' = x + ε, ε ~ N(0, σ²)^d} ||Φ(x) - Φ(x')||_2 / (||x - x'||_2 + 1e-10)

    over ``nr_samples`` seeded draws; with ``normalise`` each map is first divided by its max |value|
    (per sample). Lower is better. Defaults: ``std: 0.01`` (the noise of ``max_sensitivity``'s
    radius 0.02 has std 0.0115; Quantus' ``perturb_std`` is 0.1: pass ``std: 0.1`` for its number),
    10 draws, ``normalise: true``, postprocess ``none``. A small perturbation, as for
    max-sensitivity: the ratio of an independent random map grows as 1 / std, that of an explainer
    Lipschitz in x does not (on the metrics suite's small_cnn, 32 images: Grad-CAM 2.6 / 2.3, the
    random control 4.2 / 41.9 at std 0.1 / 0.01)."""

    info = MetricInfo("local_lipschitz", higher_is_better=False, category=Category.ROBUSTNESS,
                      requires=frozenset({"model", "explainer"}),
                      paper="Alvarez-Melis & Jaakkola 2018, On the robustness of interpretability methods")
    defaults: ClassVar[dict[str, Any]] = {**_SHARED, "std": 0.01, "normalise": True}
    bounds: ClassVar[dict[str, Bound]] = {"std": POSITIVE}
    # 2: nan_if_prediction_changes on a multi-label model compares the decision on the row's class k, not the argmax;
    # 3: the noise drawn per image (2: per batch, position i of every batch got the same noise)
    version: ClassVar[str] = "3"

    def noise_key(self, ctx: EvalContext) -> tuple:
        return ("gaussian", self.nr_samples, float(self.std))

    def make_noisy(self, ctx: EvalContext) -> Tensor:
        return gaussian_noise(ctx.x, self.nr_samples, self.std, ctx.generators(SALT_NOISE))

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        x_perturbed = self.noisy(ctx)
        perturbed = self.reexplain(ctx, x_perturbed)
        if self.normalise:
            saliency, perturbed = normalise_by_max(saliency), normalise_by_max(perturbed, 2)
        values = lipschitz_ratio(saliency, perturbed, ctx.x.to(saliency.device), x_perturbed.to(saliency.device))
        return MetricOutput(value=reduce_draws(values, "max", self.changed(ctx, x_perturbed)))


@metrics.register("continuity")
class Continuity(RobustnessMetric):
    """Continuity (Montavon et al. 2018, "Methods for interpreting and understanding deep neural
    networks"), on translated copies as in Quantus 0.6.0:

        C(x) = max_k ||R(x) - R(x'_k)||_1 / (||x - x'_k||_2 + 1e-9)

    with x'_k = x shifted by -W + k dx pixels along the width (dx = (2W + 1) // steps, k = 1..steps;
    see :func:`~faithbench.metrics.functional.robustness.translations`); the uncovered columns
    take ``fill``: ``min`` (the sample's minimum, Quantus' "black") or ``background`` (the
    dataset's). A copy equal to x (the shift 0, or a constant row) is left out: it is no neighbour
    (Quantus keeps it, and scores ~1e9 for an explainer whose re-explanation differs). With
    ``normalise`` each map is divided by its max |value| per sample. Lower is
    better. Defaults: ``steps: 28``, ``fill: min``, ``normalise: true``, postprocess ``abs``."""

    info = MetricInfo("continuity", higher_is_better=False, category=Category.ROBUSTNESS,
                      requires=frozenset({"model", "explainer"}), postprocess="abs",
                      paper="Montavon et al. 2018, Methods for interpreting and understanding deep neural networks")
    defaults: ClassVar[dict[str, Any]] = {"steps": 28, "fill": "min", "normalise": True, "draws_per_call": 1,
                                          "nan_if_prediction_changes": False}
    bounds: ClassVar[dict[str, Bound]] = {"steps": AT_LEAST_ONE}
    # 2: nan_if_prediction_changes on a multi-label model compares the decision on the row's class k, not the argmax
    version: ClassVar[str] = "2"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.fill not in ("min", "background"):
            raise ParameterError(f"{self.name}: parameter 'fill' expects min or background, got {self.fill!r}")

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """At most 2W + 1 shifts of the width W (``faithbench validate`` checks it per dataset)."""
        most = 2 * spatial_shape[-1] + 1
        if self.steps > most:
            return (f"{self.name}: parameter 'steps' = {self.steps} is more than the 2W + 1 = {most} shifts of the "
                    f"image width W = {spatial_shape[-1]}; set steps <= {most}")
        return None

    def noise_key(self, ctx: EvalContext) -> tuple:
        return ("shift", self.steps, self.fill, float(ctx.background))

    def make_noisy(self, ctx: EvalContext) -> Tensor:
        return translations(ctx.x, self.steps, "min" if self.fill == "min" else float(ctx.background))

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        x_shifted = self.noisy(ctx)
        perturbed = self.reexplain(ctx, x_shifted)
        if self.normalise:
            saliency, perturbed = normalise_by_max(saliency), normalise_by_max(perturbed, 2)
        values = continuity_ratio(saliency, perturbed, ctx.x.to(saliency.device), x_shifted.to(saliency.device))
        return MetricOutput(value=reduce_draws(values, "max", self.changed(ctx, x_shifted)))


@metrics.register("consistency")
class Consistency(Metric):
    """Consistency (Dasgupta et al. 2022, "Framework for evaluating faithfulness of local
    explanations"): explanations that agree should come with predictions that agree,

        C(x_i) = P(f(x_j) = f(x_i) | e(x_j) = e(x_i), j ≠ i)

    over the other samples j of the batch (on a multi-label batch, a row per (sample, class), the rows of
    other samples: version 3; 2 counted a sample's other class rows, which class-blind maps matched, a
    held-out review). f is the decision row i's map explains, read on x_i and on x_j
    (:func:`faithbench.scores.same_prediction`): the predicted class (arg-max) on a single-label model;
    on a multi-label one, the presence of row i's explained class k (logit_k > 0, sigmoid > 0.5), so
    f(x_j) = f(x_i) is [logit_k(x_j) > 0] = [logit_k(x_i) > 0] whatever class row j explains (version 4;
    3 took the arg-max of the K sigmoid logits, which never read the explained class, a held-out
    review). The discrete explanation e(x) = the cell of a ``grid``-per-axis partition with the largest
    mean saliency (:func:`~faithbench.metrics.functional.argmax_cell`: along a side of n pixels cell j covers
    [floor(j n / grid), floor((j+1) n / grid)), the ``regions:`` grid's split, so cells tile the image and differ
    in size by at most one per axis; version 5: until 4, adaptive pooling overlapped neighbouring cells by a row
    where ``grid`` does not divide the side, so a peak on a shared row tied two cells and took a label no
    single-cell map shared, a held-out review; where ``grid`` divides every side the values are unchanged).
    NaN where no other sample of the batch shares e(x_i), and where every cell has the same mean (an all-zero
    map: version 2; version 1 took the first cell, so all-zero maps agreed and scored 1, a held-out review;
    cells that tie for the most, a patch-wise map's best patch, are one explanation): the value depends on the
    batch (the batch is the sample of the data distribution the definition needs). Higher is better.
    Defaults: ``grid: 4`` (at least 2: one cell is every map's top cell, every value NaN), postprocess
    ``abs``. Quantus' ``Consistency`` has no grid: its ``discretise_func`` maps each flattened map to a hash, by
    default ``top_n_sign``, the signs of the first 5 entries of the flattened map, not the 5 largest: after
    ``abs`` every map gets the same label; given ``argmax_cell`` as its ``discretise_func`` it computes the same
    values, but 0 where we give NaN."""

    info = MetricInfo("consistency", higher_is_better=True, category=Category.ROBUSTNESS,
                      requires=frozenset({"model"}), postprocess="abs",
                      paper="Dasgupta et al. 2022, Framework for evaluating faithfulness of local explanations")
    defaults: ClassVar[dict[str, Any]] = {"grid": 4}
    # a review: grid 1 gave every sample NaN (one cell holds every map's mass: no explanation singles it out)
    bounds: ClassVar[dict[str, Bound]] = {"grid": Bound(2, why="with 1 cell every map has all its mass in it, which "
                                                             "singles out no cell, so every value would be NaN")}
    min_batch = 2
    # 2: tied top cells are one explanation, all cells tied none (NaN); 3: other samples; 4: multi-label f = the
    # decision on the row's explained class; 5: cells partition the image where grid does not divide a side
    version: ClassVar[str] = "5"

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """At most one cell per pixel along each axis: above the smallest side a cell would be empty. An image
        with a side of 1 (a 1-pixel row, a depth-1 volume) has no grid of 2 or more cells along it."""
        side = min(spatial_shape)
        if side == 1:
            return (f"{self.name}: expected an image with every side >= 2 (its grid needs at least 2 cells along "
                    f"every axis), got shape {tuple(spatial_shape)}")
        if self.grid > side:
            return (f"{self.name}: parameter 'grid' = {self.grid} is more than the smallest image side "
                    f"{side} (shape {tuple(spatial_shape)}); set grid <= {side}")
        return None

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        same = same_prediction(ctx.predict(ctx.x), ctx.target if ctx.multilabel else None).to(saliency.device)
        return MetricOutput(value=consistency(argmax_cell(saliency, self.grid), same, ctx.same_sample()))

