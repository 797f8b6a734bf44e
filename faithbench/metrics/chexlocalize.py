"""The CheXlocalize localisation protocol as two registered metrics (Saporta et al. 2022).

``chexlocalize_iou``: the per-sample IoU (its mean over samples is the paper's mIoU) of the map
binarised by Otsu's threshold (default) or a fixed threshold on the min-max normalised map, with
optional probability gating. ``chexlocalize_hit``: the hit rate (the map's maximum in the mask).
The math is in :mod:`faithbench.metrics.functional.chexlocalize`.

Parameters: ``mask`` (default ``lesion``); ``threshold`` ``"otsu"`` (default), a float in [0, 1),
or ``"val"``: per class, the grid value (0.2, ..., 0.8) that maximises that class's validation mIoU
on the true-positive slice (:func:`~faithbench.metrics.functional.chexlocalize.tune_threshold`, as
CheXlocalize's ``tune_heatmap_threshold.py``, one per pathology); ``gate`` null (default: no gating),
a float in [0, 1), or ``"val"``: per class,
:func:`~faithbench.metrics.functional.chexlocalize.tune_gate` on the validation probabilities (the
criterion of CheXlocalize's ``tune_probability_threshold.py``, which tunes the cutoff on Otsu
segmentations; here on the segmentations at the class's threshold, the one the gate is applied
with). A map whose target probability is not above its gate becomes empty (IoU 0 unless the mask is
empty; hit 0). ``full_dataset`` (false): score the samples without the finding (an empty mask) too:
IoU 0 when the (gated) segmentation is non-empty, NaN when it is empty, as CheXlocalize's full-dataset
evaluation (``calculate_iou(..., true_pos_only=False)``), the one its paper reports gated
segmentations with; the hit rate, which has no gate there, scores a kept map 0 and a gated one NaN.
False leaves them out (NaN), as its ``eval.py`` default (``--true_pos_only True``); then a gate can
only empty maps of samples that count, and so only lower the score. The target probability is the
softmax of the target logit (sigmoid on a multi-label model), from one counted forward pass.
``val_samples`` (64): the validation samples the runner explains with the cell's explainer to tune
the ``"val"`` settings, counted as the suite's ``samples`` (:mod:`faithbench.runner.calibration`; a
class without a validation unit whose mask is non-empty falls back to Otsu and no gate). Default
postprocess ``none`` (the raw map is min-max normalised, as CheXlocalize does).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import torch
from torch import Tensor

from faithbench.configurable import ParameterError
from faithbench.metrics.base import EvalContext
from faithbench.metrics.functional.chexlocalize import (binarize, chexlocalize_hit, hit_chance, iou,
                                                        otsu_threshold, random_iou_chance, segment, tune_gate,
                                                        tune_threshold)
from faithbench.metrics.localization import LocalizationMetric
from faithbench.registry import metrics
from faithbench.scores import target_score
from faithbench.types import Category, MetricInfo

__all__ = ["CheXlocalizeHit", "CheXlocalizeIoU", "target_probability"]

SALT_HIT = 11
OTSU, VAL = "otsu", "val"
DEFAULT_VAL_SAMPLES = 64  # validation samples explained to tune the "val" settings
PAPER = ("Saporta et al. 2022, Benchmarking saliency methods for chest X-ray interpretation, "
         "Nature Machine Intelligence")


def target_probability(ctx: EvalContext) -> Tensor:
    """Softmax (sigmoid when multi-label) probability of each sample's explained target ``(B,)``,
    memoised per batch in ``ctx.memo`` (one counted forward pass for both metrics)."""
    key = ("target_probability", ctx.multilabel)
    if key not in ctx.memo:
        logits = ctx.predict(ctx.x)
        # in the logits' dtype (float32), not the perturbation metrics' float64: the gate compares it with
        # thresholds tuned on the same float32 probabilities, and cached values stay as they were
        ctx.memo[key] = target_score(logits, ctx.target.to(logits.device), "sigmoid" if ctx.multilabel else "prob")
    return ctx.memo[key]


class CheXlocalizeMetric(LocalizationMetric):
    """Validates ``threshold`` ("otsu", "val" or a float in [0, 1), where the metric has one),
    ``gate`` (None, "val" or a float in [0, 1); 1 would empty or gate every map) and ``val_samples``
    (>= 1); the Configurable type check cannot express "a str or a float".

    ``"val"``: tuned per class on the validation split (Saporta et al. 2022). The runner explains
    the first ``val_samples`` validation samples with the cell's explainer and calls
    :meth:`calibrate` with :meth:`calibration_inputs` of each batch; ``tuned`` then maps each class
    index to its (threshold, gate), and :meth:`spec` (hashed into the score keys) includes it. A
    class without a validation unit whose mask is non-empty falls back to Otsu and no gate, with a
    note in its row of ``calibration.csv``."""

    tuned: dict[int, tuple[str | float | None, float | None]] | None = None
    # 2: gate tuned with CheXlocalize's criterion (a gated negative NaN, a kept one 0; it was 1 and 0),
    # threshold grid 0.2 .. 0.8 and the true-positive slice (tune_heatmap_threshold.py), full_dataset
    version: ClassVar[str] = "2"

    def __init__(self, **params: Any) -> None:
        has_threshold = "threshold" in self.defaults
        threshold = params.pop("threshold", "otsu") if has_threshold else None
        gate = params.pop("gate", None)
        super().__init__(**params)
        name = self.name
        if has_threshold:
            if isinstance(threshold, bool) or not (threshold in (OTSU, VAL) or isinstance(threshold, numbers.Real)):
                raise ParameterError(f"{name}: parameter 'threshold' expects 'otsu', 'val' or a float in [0, 1), "
                                     f"got {threshold!r}")
            if not isinstance(threshold, str) and not 0.0 <= float(threshold) < 1.0:
                raise ParameterError(f"{name}: parameter 'threshold' expects a float in [0, 1) (no min-max normalised "
                                     f"map exceeds 1, so every segmentation would be empty and every explainer "
                                     f"would score the same), got {threshold!r}")
            threshold = threshold if isinstance(threshold, str) else float(threshold)
            self.params["threshold"] = self.threshold = threshold
        if gate is not None and gate != VAL and (isinstance(gate, bool) or not isinstance(gate, numbers.Real)
                                                 or not 0.0 <= float(gate) < 1.0):
            raise ParameterError(f"{name}: parameter 'gate' expects null, 'val' or a float in [0, 1) (a probability "
                                 f"is never above 1, so at 1 every map would be gated and every explainer would "
                                 f"score the same), got {gate!r}")
        self.params["gate"] = self.gate = gate if gate in (None, VAL) else float(gate)
        if self.val_samples < 1:
            raise ParameterError(f"{name}: parameter 'val_samples' expects an int >= 1, got {self.val_samples}")

    # -- calibration ------------------------------------------------------------------------------
    @property
    def needs_calibration(self) -> bool:
        return self.params.get("threshold") == VAL or self.gate == VAL

    @property
    def calibration_samples(self) -> int:
        return self.val_samples if self.needs_calibration else 0

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        if not self.needs_calibration:
            return spec
        tuned = None if self.tuned is None else {str(c): list(v) for c, v in sorted(self.tuned.items())}
        return {**spec, "calibration": tuned}

    def calibration_inputs(self, ctx: EvalContext) -> dict[str, Tensor]:
        mask = self.region(ctx)
        out = {"target": ctx.target.cpu(), "has": mask.flatten(1).any(1).cpu()}
        if self.gate == VAL:
            out["prob"] = target_probability(ctx).cpu()
        return {**out, **self._inputs(ctx, self.prepare(ctx), mask)}

    def calibrate(self, inputs: dict[str, Tensor], classes: tuple[str, ...]) -> list[dict[str, Any]]:
        """Per class (the explained target): the threshold (``threshold: val``: the grid value of
        :func:`tune_threshold` that maximises the class's validation mIoU) and the gate (``gate:
        val``: :func:`tune_gate` on the class's target probabilities, each finding scoring its
        value at the tuned threshold, each unit without one 0 if its kept map is non-empty and NaN
        otherwise). Fixed settings are recorded as they are."""
        target = inputs["target"]
        n_classes = max(len(classes), int(target.max()) + 1 if target.numel() else 0)
        self.tuned, rows = {}, []
        for c in range(n_classes):
            sel = target == c
            part = {k: v[sel] for k, v in inputs.items()}
            name = classes[c] if c < len(classes) else str(c)
            n, found = int(sel.sum()), int(part["has"].sum())
            note = ""
            if found:
                threshold, gate, note = self._tune(part)
                self.tuned[c] = (threshold, gate)
            else:
                self.tuned[c] = (OTSU if self.params.get("threshold") == VAL else self.params.get("threshold"),
                                 None if self.gate == VAL else self.gate)
                instead = [x for x, tuned in (("Otsu", self.params.get("threshold") == VAL),
                                              ("no gate", self.gate == VAL)) if tuned]
                note = (f"no validation unit of class {name!r} with a non-empty {self.params['mask']!r} mask "
                        f"(of {n}): {', '.join(instead)}")
            threshold, gate = self.tuned[c]
            rows.append({"class": name, "threshold": threshold, "gate": gate, "n_val": n, "n_finding": found,
                         "note": note})
        return rows

    def _inputs(self, ctx: EvalContext, saliency: Tensor, mask: Tensor) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _tune(self, part: dict[str, Tensor]) -> tuple[str | float | None, float | None, str]:  # pragma: no cover
        """(threshold, gate, note) of one class from its validation ``part``."""
        raise NotImplementedError

    def _gate_on(self, part: dict[str, Tensor], value: Tensor | None,
                 nonempty: Tensor | None = None) -> float | None:
        """The class's gate: tuned on its validation probabilities when ``gate: val``, where a
        finding scores ``value`` if kept and a unit without one 0 if kept with a non-empty
        ``nonempty`` segmentation (:func:`tune_gate`), else the fixed one."""
        if self.gate != VAL:
            return self.gate
        return tune_gate(part["prob"], part["has"], val_iou=value, val_nonempty=nonempty)

    def settings(self, ctx: EvalContext, saliency: Tensor) -> tuple[str | float | Tensor | None, float | Tensor | None]:
        """The threshold and gate of each map of the batch: the parameters, or with ``val`` the
        tuned values of each map's target class as ``(B,)`` tensors (-inf: no gate)."""
        threshold, gate = self.params.get("threshold"), self.gate
        if not self.needs_calibration:
            return threshold, gate
        if self.tuned is None:
            raise ValueError(f"{self.name}: 'val' settings are tuned on the validation split before scoring "
                             f"(the runner calls calibrate()); this metric was not calibrated")
        per = [self.tuned.get(int(t), (OTSU, None)) for t in ctx.target.tolist()]
        if threshold == VAL:
            otsu = otsu_threshold(saliency) if any(t == OTSU for t, _ in per) else None
            threshold = torch.tensor([float(otsu[i]) if t == OTSU else float(t) for i, (t, _) in enumerate(per)],
                                     dtype=torch.float64)
        if gate == VAL:
            gates = [-math.inf if g is None else float(g) for _, g in per]
            gate = None if all(g == -math.inf for g in gates) else torch.tensor(gates, dtype=torch.float64)
        return threshold, gate

    def probability(self, ctx: EvalContext, gate: float | Tensor | None) -> Tensor | None:
        return None if gate is None else target_probability(ctx)


@metrics.register("chexlocalize_iou")
class CheXlocalizeIoU(CheXlocalizeMetric):
    """CheXlocalize IoU (Saporta et al. 2022): IoU of (minmax(s) > t, emptied if p <= gate) with
    the mask; t = Otsu per map by default, or per class tuned on the validation split
    (``threshold: val``). NaN for an empty mask (``full_dataset: true``: 0 if the segmentation is
    non-empty). Chance: E|A ∩ M| / E|A ∪ M| for a random segmentation A of the same size, a ratio of
    expectations that approximates the expected IoU from a little below on small sets (a 50-voxel
    segmentation, a 20-voxel mask, 8 x 16 x 16: 0.00702 against the exact 0.00712; see
    :func:`~faithbench.metrics.functional.chexlocalize.random_iou_chance`). Defaults: ``mask: lesion``,
    ``threshold: otsu``, ``gate: null``, ``full_dataset: false``, ``val_samples: 64``, postprocess ``none``."""

    info = MetricInfo("chexlocalize_iou", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper=PAPER)
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "threshold": "otsu", "gate": None,
                                          "full_dataset": False, "val_samples": DEFAULT_VAL_SAMPLES}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        threshold, gate = self.settings(ctx, saliency)
        seg = segment(saliency, threshold, self.probability(ctx, gate), gate)
        full = self.full_dataset
        return {"value": iou(seg, mask, full_dataset=full), "chance": random_iou_chance(seg, mask, full_dataset=full)}

    def _inputs(self, ctx: EvalContext, saliency: Tensor, mask: Tensor) -> dict[str, Tensor]:
        return {"maps": saliency.detach().float().cpu(), "masks": mask.bool().cpu()}

    def _tune(self, part: dict[str, Tensor]) -> tuple[str | float | None, float | None, str]:
        threshold, note = self.threshold, ""
        if threshold == VAL:
            threshold = tune_threshold(part["maps"], part["masks"])
            if math.isnan(threshold):  # a review: the smallest grid value was recorded as tuned
                threshold, note = OTSU, ("no threshold of the grid segments any validation map of the class with a "
                                         "finding (constant maps): Otsu")
        if self.gate != VAL:
            return threshold, self.gate, note
        seg = binarize(part["maps"], threshold)
        return threshold, self._gate_on(part, iou(seg, part["masks"]), seg.flatten(1).any(1)), note


@metrics.register("chexlocalize_hit")
class CheXlocalizeHit(CheXlocalizeMetric):
    """CheXlocalize hit rate (Saporta et al. 2022): 1 if the map's maximum lies in the mask (ties
    by the seeded draw), 0 if not or if the map is gated (p <= gate). NaN for an empty mask
    (``full_dataset: true``: 0 if the map is kept). Chance: the mask's area fraction for a kept map,
    0 for a gated one (version 3; 2 wrote the area fraction for gated maps too; version 4: the tie-break
    drawn per image, :class:`~faithbench.metrics.localization.LocalizationMetric`). ``gate: val``
    tunes a gate per class on the validation split, a finding scoring its hit when kept, a unit
    without one 0 when kept. Defaults: ``mask: lesion``, ``gate: null``, ``full_dataset: false``,
    ``val_samples: 64``, postprocess ``none`` (no ``threshold``: the hit reads the map's maximum,
    not a segmentation)."""

    version: ClassVar[str] = "4"  # 3: a gated map's chance 0 (2: the area fraction; see the base class); 4: ties/image
    info = MetricInfo("chexlocalize_hit", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=frozenset({"mask:lesion"}), paper=PAPER)
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion", "gate": None, "full_dataset": False,
                                          "val_samples": DEFAULT_VAL_SAMPLES}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        mask = self.region(ctx)
        _, gate = self.settings(ctx, saliency)
        prob = self.probability(ctx, gate)
        value = chexlocalize_hit(saliency, mask, prob=prob, gate=gate, full_dataset=self.full_dataset,
                                 generator=ctx.generators(SALT_HIT))
        return {"value": value, "chance": hit_chance(mask, prob=prob, gate=gate).to(value.device)}

    def _inputs(self, ctx: EvalContext, saliency: Tensor, mask: Tensor) -> dict[str, Tensor]:
        return {"hit": chexlocalize_hit(saliency, mask, generator=ctx.generators(SALT_HIT)).cpu()}

    def _tune(self, part: dict[str, Tensor]) -> tuple[str | float | None, float | None, str]:
        return None, self._gate_on(part, part["hit"]), ""
