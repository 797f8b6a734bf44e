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
from faithbench.explainers.base import call_dataset_reason
from faithbench.runner.batches import iter_batches
from faithbench.runner.cell import CellRun
from faithbench.runner.plan import Group
from faithbench.runner.settings import RunSettings
from faithbench.runner.targets import class_indices
from faithbench.types import Batch

CALIBRATION_COLUMNS = ["dataset", "model", "seed", "explainer", "metric", "class", "threshold", "gate", "n_val",
                       "n_finding", "note"]

__all__ = ["CALIBRATION_COLUMNS", "calibrate_runs"]


def calibrate_runs(runs: list[CellRun], val: BaseDataset, group: Group,
                   settings: RunSettings) -> tuple[list[dict[str, Any]], list[str]]:
    """Calibrate every calibrating metric of every cell of a group on ``val`` (see the module
    docstring); the validation batches are read once and fed to every cell. Returns the rows of
    ``calibration.csv`` (:data:`CALIBRATION_COLUMNS`) and one log line per (metric, class) that
    fell back (with the explainers concerned)."""
    states = [_CellCalibration(run) for run in runs]
    states = [state for state in states if state.wanted]
    if states:
        fingerprint = val.fingerprint()
        n_val = max(state.n_val for state in states)
        for batch, target in iter_batches(val, f"{group.dataset.label} (validation)", n_val, settings.batch_size,
                                          states[0].run.data.model, settings.target, settings.subset,
                                          settings.device):
            for state in states:
                state.feed(batch, target, fingerprint)
    rows = [row for state in states for row in state.finish()]
    if states and states[0].run.data.multilabel:  # a review: a class the suite never explains got fallback rows
        explained = {val.classes[c] for c in class_indices(settings.target, val.classes)}
        rows = [row for row in rows if row["class"] in explained]
    fallbacks: dict[tuple[str, str, str], list[str]] = {}
    for row in rows:
        if row["note"]:
            fallbacks.setdefault((row["metric"], row["class"], row["note"]), []).append(row["explainer"])
    notes = [f"calibration of {metric} on {group.dataset.label}/{group.model.label} (seed {group.seed}), "
             f"class {cls!r}: {note} ({', '.join(explainers)})" for (metric, cls, note), explainers in fallbacks.items()]
    return rows, notes


class _CellCalibration:
    """One cell's calibrating metrics, fed the validation batches; :meth:`finish` tunes them and
    sets ``run.calibrate_cost`` (the ``calibrate`` row of ``cost.csv``). A cell whose explainer
    does not support the model is left alone (the test split's first batch skips it)."""

    def __init__(self, run: CellRun) -> None:
        self.run = run
        self.wanted = [] if run.stopped or run.explainer is None else [
            (spec, metric) for spec, metric in run.active if metric.needs_calibration]
        self.n_val = max((metric.calibration_samples for _, metric in self.wanted), default=0)
        self.parts: dict[str, list[dict[str, Tensor]]] = {spec.label: [] for spec, _ in self.wanted}
        self.ordinals: list[Tensor] = []  # each unit's sample, 0, 1, ... (a multi-label sample has a unit per class)
        self.seen: dict[str, int] = {}
        self.cost = {"samples": 0, "seconds": 0.0, "passes": 0}
        self.first = True

    def feed(self, batch: Batch, target: Tensor, fingerprint: str) -> None:
        run = self.run
        if not self.wanted or len(self.seen) >= self.n_val:
            return
        if self.first:
            self.first = False
            if (run.explainer.unsupported_reason(run.data.model, batch.x)
                    or call_dataset_reason(run.explainer, set(batch.masks), batch.x.ndim - 2, run.data.mask_roles)):
                self.wanted = []
                return
            run.explainer.vetted = True  # checked here: not again in each call
            self.wanted = [(s, m) for s, m in self.wanted
                           if m.applicability(set(batch.masks), batch.x.ndim - 2)[0] is None]
            if not self.wanted:
                return
        try:
            _, saliency = run._saliency(batch, target, fingerprint, self.cost)
        except Exception as exc:
            run._fail("explain", exc)
            self.wanted, self.ordinals = [], []  # the cell failed: no rows, no calibrate cost
            return
        self.cost["samples"] += len(batch)
        self.ordinals.append(torch.tensor([self.seen.setdefault(sid, len(self.seen)) for sid in batch.ids]))
        ctx = run._context(batch, target, saliency)
        inputs = run.inputs(batch, target, saliency)
        start = time.perf_counter()
        for spec, metric in list(self.wanted):
            try:
                with run.data.guarded(f"metric {spec.label!r}", inputs, ctx):
                    part = metric.calibration_inputs(ctx)
                self.parts[spec.label].append(part)
            except Exception as exc:
                run._fail_metric(spec, exc)
                self.wanted.remove((spec, metric))
        self.cost["seconds"] += time.perf_counter() - start
        self.cost["passes"] += ctx.predict.passes

    def finish(self) -> list[dict[str, Any]]:
        run, rows = self.run, []
        if not self.ordinals:  # nothing explained: unsupported, failed, or every metric inapplicable
            return rows
        for spec, metric in self.wanted:
            start = time.perf_counter()
            first_samples = torch.cat(self.ordinals) < metric.calibration_samples  # the metric's own count
            try:
                inputs = {k: torch.cat([p[k] for p in self.parts[spec.label]])[first_samples]
                          for k in self.parts[spec.label][0]}
                tuned = metric.calibrate(inputs, run.data.classes)
            except Exception as exc:
                run._fail_metric(spec, exc)
                continue
            self.cost["seconds"] += time.perf_counter() - start
            cell = run.cell
            rows += [{"dataset": cell.dataset.label, "model": cell.model.label, "seed": cell.seed,
                      "explainer": cell.explainer.label, "metric": spec.label, **row} for row in tuned]
        run.calibrate_cost = self.cost
        return rows
