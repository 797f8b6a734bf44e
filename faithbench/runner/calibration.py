"""Calibration on the validation split: metrics that tune a setting before they score the test split.

A metric whose :attr:`~faithbench.metrics.base.Metric.needs_calibration` is true (CheXlocalize's
``threshold: val`` and ``gate: val``: per-class values tuned on validation maps, Saporta et al.
2022, "Benchmarking saliency methods for chest X-ray interpretation") is tuned per cell, before
the cell's first test batch: the cell's explainer explains the first ``calibration_samples``
samples of the validation split (with the suite's ``target`` and ``subset``, as the test split;
a multi-label sample gives a unit per explained class, as on the test split),
each calibrating metric reads :meth:`~faithbench.metrics.base.Metric.calibration_inputs` of every
batch, and :meth:`~faithbench.metrics.base.Metric.calibrate` tunes it on their concatenation.

Caching: validation maps are stored like test maps (keyed on the validation split's fingerprint,
the checkpoint, the explainer and the seed), so a rerun explains nothing again; the calibration
itself is recomputed on every run, and what it tuned enters the metric's spec, hence its score
keys: cached test scores are reused only for the same tuned values.

Failures: an explainer that raises on the validation split fails its cell (stage ``explain``, as on
the test split); a metric whose calibration raises fails that metric in that cell (stage
``metric``). Bad input (an empty validation split) raises :class:`InputDataError`.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from faithbench.datasets.base import BaseDataset
from faithbench.runner.batches import iter_batches
from faithbench.runner.cell import CellRun
from faithbench.runner.plan import Group
from faithbench.runner.settings import RunSettings

CALIBRATION_COLUMNS = ["dataset", "model", "seed", "explainer", "metric", "class", "threshold", "gate", "n_val",
                       "n_finding", "note"]

__all__ = ["CALIBRATION_COLUMNS", "calibrate_runs"]


def calibrate_runs(runs: list[CellRun], val: BaseDataset, group: Group,
                   settings: RunSettings) -> tuple[list[dict[str, Any]], list[str]]:
    """Calibrate every calibrating metric of every cell of a group on ``val`` (see the module
    docstring). Returns the rows of ``calibration.csv`` (:data:`CALIBRATION_COLUMNS`) and one log
    line per (metric, class) that fell back (with the explainers concerned)."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        rows += calibrate_run(run, val, group, settings)
    fallbacks: dict[tuple[str, str, str], list[str]] = {}
    for row in rows:
        if row["note"]:
            fallbacks.setdefault((row["metric"], row["class"], row["note"]), []).append(row["explainer"])
    notes = [f"calibration of {metric} on {group.dataset.label}/{group.model.label} (seed {group.seed}), "
             f"class {cls!r}: {note} ({', '.join(explainers)})" for (metric, cls, note), explainers in fallbacks.items()]
    return rows, notes


def calibrate_run(run: CellRun, val: BaseDataset, group: Group, settings: RunSettings) -> list[dict[str, Any]]:
    """Calibrate one cell's calibrating metrics; sets ``run.calibrate_cost`` (the ``calibrate``
    row of ``cost.csv``). A cell whose explainer does not support the model is left alone (the
    test split's first batch skips it)."""
    wanted = [(spec, metric) for spec, metric in run.active if metric.needs_calibration]
    if run.stopped or run.explainer is None or not wanted:
        return []
    n_val = max(metric.calibration_samples for _, metric in wanted)
    parts: dict[str, list[dict[str, Tensor]]] = {spec.label: [] for spec, _ in wanted}
    ordinals: list[Tensor] = []  # each unit's sample, 0, 1, ... in order (a multi-label sample has a unit per class)
    seen: dict[str, int] = {}
    cost = {"samples": 0, "seconds": 0.0, "passes": 0}
    fingerprint, first = val.fingerprint(), True
    for batch, target in iter_batches(val, f"{group.dataset.label} (validation)", n_val, settings.batch_size,
                                      run.data.model, settings.target, settings.subset, settings.device):
        if first:
            first = False
            if run.explainer.unsupported_reason(run.data.model, batch.x):
                return []
            wanted = [(s, m) for s, m in wanted if m.applicability(set(batch.masks), batch.x.ndim - 2)[0] is None]
            if not wanted:
                return []
        try:
            _, saliency = run._saliency(batch, target, fingerprint, cost)
        except Exception as exc:
            run._fail("explain", exc)
            return []
        cost["samples"] += len(batch)
        ordinals.append(torch.tensor([seen.setdefault(sid, len(seen)) for sid in batch.ids]))
        ctx = run._context(batch, target, saliency)
        start = time.perf_counter()
        for spec, metric in list(wanted):
            try:
                parts[spec.label].append(metric.calibration_inputs(ctx))
            except Exception as exc:
                run._fail_metric(spec, exc)
                wanted.remove((spec, metric))
        cost["seconds"] += time.perf_counter() - start
        cost["passes"] += ctx.predict.passes
    rows = []
    for spec, metric in wanted:
        start = time.perf_counter()
        first_samples = torch.cat(ordinals) < metric.calibration_samples  # the metric's own number of samples
        try:
            inputs = {k: torch.cat([p[k] for p in parts[spec.label]])[first_samples] for k in parts[spec.label][0]}
            tuned = metric.calibrate(inputs, run.data.classes)
        except Exception as exc:
            run._fail_metric(spec, exc)
            continue
        cost["seconds"] += time.perf_counter() - start
        cell = run.cell
        rows += [{"dataset": cell.dataset.label, "model": cell.model.label, "seed": cell.seed,
                  "explainer": cell.explainer.label, "metric": spec.label, **row} for row in tuned]
    run.calibrate_cost = cost
    return rows
