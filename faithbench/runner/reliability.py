"""Metric reliability in a run: each metric re-scored under a minor and a disruptive perturbation.

The idea of MetaQuantus (Hedström et al. 2023): a reliable metric keeps the explainers' ranking
when the model or input changes a little (noise resilience) and changes it when the model is
destroyed (adversary reactivity). With the suite's ``reliability: N``, each group's first ``N``
explained samples are explained again by every cell's explainer under each condition of
:func:`~faithbench.metrics.reliability.perturbed_conditions` (the original; the weights plus small
Gaussian noise; fully re-initialised weights) and scored by every metric of the cell, on the
run's device. The tidy rows go to :func:`~faithbench.stats.reliability.metric_reliability`, which
writes ``reliability.csv`` and the leaderboard's footnote. Nothing here is cached: it costs about
three extra explanations and scorings of ``N`` samples per cell.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.reliability import perturbed_conditions
from faithbench.runner.cell import CellRun, GroupData
from faithbench.runner.plan import Group
from faithbench.types import Batch


def reliability_rows(group: Group, data: GroupData, runs: list[CellRun], first: tuple[Batch, Tensor],
                     samples: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Tidy rows (dataset, model, seed, explainer, metric, sample_id, condition, value,
    higher_is_better) of the first ``samples`` samples of ``first`` under each condition, and log
    lines for the (metric, condition) pairs that failed (left out of the check)."""
    batch, target = first
    k = min(samples, len(batch))
    x, t = batch.x[:k], target[:k]
    masks = {name: m[:k] for name, m in batch.masks.items()}
    labels = None if batch.labels is None else batch.labels[:k]
    rows: list[dict[str, Any]] = []
    log: list[str] = []
    for condition, (model, xc) in perturbed_conditions(data.model, x, seed=group.seed).items():
        for run in runs:
            if run.stopped or run.explainer is None:
                continue
            try:
                saliency = run.explainer(model, xc, t)
            except Exception as exc:
                log.append(f"reliability: {run.cell.name} under {condition}: explainer failed: {exc}")
                continue
            for spec, metric in run.active:
                if spec.label in run.per_region or "permuted_model" in metric.info.requires:
                    continue
                ctx = EvalContext(model=model, x=xc, target=t, label=batch.label[:k], saliency=saliency, masks=masks,
                                  predict=ForwardCounter(model), explainer=run.explainer, background=data.background,
                                  seed=group.seed, multilabel=data.multilabel, labels=labels, classes=data.classes,
                                  mask_roles=data.mask_roles)
                try:
                    values = metric(ctx).value.double().cpu().tolist()
                except Exception as exc:
                    log.append(f"reliability: {spec.label} in {run.cell.name} under {condition} failed: {exc}")
                    continue
                rows += [{"dataset": group.dataset.label, "model": group.model.label, "seed": group.seed,
                          "explainer": run.cell.explainer.label, "metric": spec.label, "sample_id": sid,
                          "condition": condition, "value": value, "higher_is_better": metric.higher_is_better}
                         for sid, value in zip(batch.ids[:k], values)]
    return rows, log
