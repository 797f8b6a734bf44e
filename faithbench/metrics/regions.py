"""Region-based saliency as a registered metric: per-region scores of each map.

The suite's ``regions:`` block (:class:`~faithbench.config.RegionSpec`) becomes this metric;
its per-sample, per-region scores travel in :attr:`MetricOutput.regions` and are written to
``regions.csv`` (one row per sample and region), never to ``results.csv``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

import torch
from torch import Tensor

from faithbench.configurable import ParameterError
from faithbench.metrics.base import EvalContext, Metric, MetricOutput
from faithbench.metrics.functional.regions import REGION_SCORES, region_scores, stack_regions
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo

__all__ = ["RegionSaliency", "REGION_OUTPUTS"]

REGION_OUTPUTS = (*REGION_SCORES, "area")  # the columns of regions.csv after the row's identity


@metrics.register("regions")
class RegionSaliency(Metric):
    """How a map's mass is spread over named regions (Kim et al., region-based saliency).

    For each sample and region r: ``mean``, ``sum``, ``max`` of the post-processed saliency in r,
    ``share`` = Σ_{i∈r} max(s_i, 0) / Σ_i max(s_i, 0), and ``area`` = |r| / n, the chance level of
    ``share`` (:func:`~faithbench.metrics.functional.regions.region_scores`).

    masks: the dataset's masks used as regions (a list), or ``"all"``; grid: ``[rows, cols]`` or
    ``[depth, rows, cols]`` cells of a regular grid; postprocess: ``relu`` by default. Masks the
    dataset lacks, and a grid of the wrong dimension, are left out with a note in ``skipped.csv``;
    with nothing left the metric is skipped. No forward pass.
    """

    info: ClassVar[MetricInfo] = MetricInfo("regions", higher_is_better=True, category=Category.LOCALIZATION,
                                            postprocess="relu", paper="Kim et al., region-based saliency")
    defaults: ClassVar[dict[str, Any]] = {"masks": None, "grid": None}

    def __init__(self, **params: Any) -> None:  # a fuzzing review: masks: 5, grid: 5 failed every cell
        super().__init__(**params)
        masks, grid = self.params["masks"], self.params["grid"]
        names = isinstance(masks, (list, tuple)) and all(isinstance(m, str) for m in masks)
        if not (masks is None or masks == "all" or names):
            raise ParameterError(f"{self.name}: parameter 'masks' expects a list of mask names or 'all', got {masks!r}")
        if grid is not None and not (isinstance(grid, (list, tuple)) and len(grid) in (2, 3)
                                     and all(isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in grid)):
            raise ParameterError(f"{self.name}: parameter 'grid' expects [rows, cols] or [depth, rows, cols] of "
                                 f"integers >= 1, got {grid!r}")

    def applicability(self, masks: Collection[str], spatial_dims: int) -> tuple[str | None, list[str]]:
        have = ", ".join(sorted(masks)) or "none"
        notes: list[str] = []
        if self.params["masks"] == "all":
            self._names = sorted(masks)
        else:
            wanted = list(self.params["masks"] or [])
            self._names = [m for m in wanted if m in masks]
            notes += [f"region {m!r}: the dataset has no mask {m!r} (masks: {have})" for m in wanted if m not in masks]
        grid = self.params["grid"]
        self._grid = None
        if grid is not None and len(grid) != spatial_dims:
            notes.append(f"grid {list(grid)}: has {len(grid)} sizes, the dataset is {spatial_dims}D")
        elif grid is not None:
            self._grid = [int(g) for g in grid]
        if not self._names and self._grid is None:
            return "no region of the regions: block fits this dataset", notes
        return None, notes

    def spec(self) -> dict[str, Any]:  # the resolved regions are part of the cache identity
        return {**super().spec(), "resolved": {"masks": getattr(self, "_names", None),
                                               "grid": getattr(self, "_grid", None)}}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        if not hasattr(self, "_names"):
            self.applicability(ctx.masks.keys(), ctx.x.ndim - 2)
        names, masks = stack_regions(ctx.masks, self._names, grid=self._grid, batch_shape=tuple(saliency.shape))
        scores = region_scores(saliency, masks.to(saliency.device))
        return MetricOutput(value=torch.full((saliency.shape[0],), float("nan"), dtype=torch.float64),
                            regions={k: scores[k] for k in REGION_OUTPUTS}, region_names=tuple(names))
