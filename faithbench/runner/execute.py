"""Run one cell: explain a dataset's samples with one explainer and score every metric.

Saliency maps and scores are cached per (cell, batch) under content keys, so a killed run
loses at most the batch in flight and a rerun recomputes nothing it already has.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from faithbench.config import PluginSpec
from faithbench.explainers.base import Explainer
from faithbench.metrics.base import EvalContext, ForwardCounter, Metric
from faithbench.registry import explainers, metrics
from faithbench.runner.cache import Cache, make_key
from faithbench.runner.plan import Cell
from faithbench.types import Batch


@dataclass
class GroupData:
    """What every cell of a group shares: the checkpoint and the explained samples."""

    model: nn.Module
    checkpoint_key: str
    dataset_fingerprint: str
    batches: list[Batch]
    targets: list[Tensor]
    background: float
    permuted_model: nn.Module | None = None  # same recipe on permuted labels (data randomisation)
    permuted_key: str | None = None


@dataclass
class CellResult:
    cell: Cell
    rows: list[dict[str, Any]] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    cost: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=lambda: {"saliency": 0, "scores": 0})


class PassCounter:
    """Counts the images the model sees (forward pre-hook) while an explainer runs."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.passes = model, 0

    def __enter__(self) -> "PassCounter":
        def hook(_m: nn.Module, args: tuple[Any, ...]) -> None:
            if args and isinstance(args[0], Tensor):
                self.passes += int(args[0].shape[0])
        self._handle = self.model.register_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.remove()


def build_metrics(specs: list[PluginSpec]) -> list[tuple[PluginSpec, Metric]]:
    return [(spec, metrics.get(spec.name)(**spec.params)) for spec in specs]


def run_cell(cell: Cell, data: GroupData, metric_specs: list[PluginSpec], cache: Cache) -> CellResult:
    result = CellResult(cell)
    explainer: Explainer = explainers.get(cell.explainer.name)(seed=cell.seed, **cell.explainer.params)
    reason = explainer.unsupported_reason(data.model, data.batches[0].x)
    if reason:
        result.skipped = reason
        return result
    metric_objs = build_metrics(metric_specs)
    explain_cost = {"seconds": 0.0, "passes": 0}
    metric_cost = {spec.label: {"seconds": 0.0, "passes": 0} for spec, _ in metric_objs}
    for batch, target in zip(data.batches, data.targets):
        sal_key = make_key("saliency", data.dataset_fingerprint, data.checkpoint_key, explainer.spec(),
                           cell.seed, batch.ids, target.tolist())
        cached = cache.get_tensors("saliency", sal_key)
        if cached is not None:
            saliency = cached["saliency"]
            explain_cost["seconds"] += float(cached["seconds"])
            explain_cost["passes"] += int(cached["passes"])
        else:
            start = time.perf_counter()
            with PassCounter(data.model) as counter:
                saliency = explainer(data.model, batch.x, target)
            seconds = time.perf_counter() - start
            if not torch.isfinite(saliency).all():
                raise FloatingPointError(f"{explainer.name} returned NaN or Inf saliency for batch "
                                         f"starting at sample {batch.ids[0]!r}")
            cache.put_tensors("saliency", sal_key, {
                "saliency": saliency, "seconds": torch.tensor(seconds, dtype=torch.float64),
                "passes": torch.tensor(counter.passes)})
            result.computed["saliency"] += 1
            explain_cost["seconds"] += seconds
            explain_cost["passes"] += counter.passes
        if explainer.last_info:
            result.info.update(explainer.last_info)

        ctx: EvalContext | None = None
        for spec, metric in metric_objs:
            score_key = make_key("scores", sal_key, metric.spec(),
                                 data.permuted_key if "permuted_model" in metric.info.requires else None)
            payload = cache.get_json("scores", score_key)
            if payload is None:
                if ctx is None:
                    predict = ForwardCounter(data.model)
                    ctx = EvalContext(model=data.model, x=batch.x, target=target, label=batch.label,
                                      saliency=saliency, masks=batch.masks, predict=predict,
                                      explainer=explainer, background=data.background, seed=cell.seed,
                                      permuted_model=data.permuted_model)
                before_passes, start = ctx.predict.passes, time.perf_counter()
                out = metric(ctx)
                payload = {
                    "value": out["value"].double().tolist(),
                    "chance": out["chance"].double().tolist() if "chance" in out else None,
                    "curve": out["curve"].double().tolist() if "curve" in out else None,
                    "fractions": out["fractions"].double().tolist() if "fractions" in out else None,
                    "seconds": time.perf_counter() - start,
                    "passes": ctx.predict.passes - before_passes,
                }
                cache.put_json("scores", score_key, payload)
                result.computed["scores"] += 1
            metric_cost[spec.label]["seconds"] += payload["seconds"]
            metric_cost[spec.label]["passes"] += payload["passes"]
            _append_rows(result, cell, spec, metric, batch, target, payload)

    base = {"dataset": cell.dataset.label, "model": cell.model.label, "explainer": cell.explainer.label,
            "seed": cell.seed, "samples": sum(len(b) for b in data.batches)}
    result.cost.append({**base, "stage": "explain", "metric": "", **explain_cost})
    for label, cost in metric_cost.items():
        result.cost.append({**base, "stage": "metric", "metric": label, **cost})
    return result


def _append_rows(result: CellResult, cell: Cell, spec: PluginSpec, metric: Metric, batch: Batch,
                 target: Tensor, payload: dict[str, Any]) -> None:
    for i, sample_id in enumerate(batch.ids):
        value = payload["value"][i]
        chance = payload["chance"][i] if payload["chance"] is not None else math.nan
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # undefined for this sample (e.g. an empty mask): no row
        row = {"dataset": cell.dataset.label, "model": cell.model.label, "explainer": cell.explainer.label,
               "metric": spec.label, "seed": cell.seed, "sample_id": sample_id, "value": float(value),
               "chance": float(chance), "higher_is_better": metric.higher_is_better,
               "category": metric.category.value, "label": int(batch.label[i]), "target": int(target[i])}
        result.rows.append(row)
        if payload["curve"] is not None:
            for k, (frac, score) in enumerate(zip(payload["fractions"], payload["curve"][i])):
                result.curves.append({"dataset": row["dataset"], "model": row["model"],
                                      "explainer": row["explainer"], "metric": spec.label, "seed": cell.seed,
                                      "sample_id": sample_id, "step": k, "fraction": frac, "score": score})
