"""Run one cell: explain a group's samples with one explainer and score every metric.

A :class:`CellRun` is fed one batch at a time; :func:`~faithbench.runner.group.run_group` feeds
every cell of a group the same batch (each batch is read once per group).

Saliency maps and scores are stored per (cell, batch) under content keys, so a killed run loses
at most the batch in flight and a rerun recomputes nothing it already has. Where they are
stored is the ``store``: the :class:`~faithbench.store.Cache` itself (local executor), or a
:class:`~faithbench.runner.deferred.DeferredCache` that holds new entries for the driver (Ray).

Failure isolation: an explainer that raises, returns NaN/Inf saliency or runs out of memory
fails its cell (no rows; one row in ``failures.csv``); a metric that raises or returns Inf
fails that metric in that cell (its rows are dropped, the cell's other metrics stay). A metric
value of NaN means "undefined for this sample" (e.g. an empty mask): no row, and the count of
such samples per (cell, metric) is in ``skipped.csv`` with the reason.

Everything runs on the model's device: the batch arrives there, cached saliency is moved
there, and metrics compute there; only tidy rows and cache entries come back to the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from faithbench.config import PluginSpec
from faithbench.explainers.base import Explainer, call_dataset_reason
from faithbench.metrics.base import EvalContext, ForwardCounter, Metric
from faithbench.metrics.regions import REGION_OUTPUTS
from faithbench.registry import explainers, metrics
from faithbench.device import is_out_of_memory, release_memory
from faithbench.runner.errors import error_summary
from faithbench.runner.guard import InputGuard, ModelGuard
from faithbench.runner.plan import Cell
from faithbench.store import Cache, CacheWriteError, make_key
from faithbench.types import DEFAULT_MASK_ROLES, Batch, MaskRole, category_name, undefined_reason

FAILURE_COLUMNS = ["cell", "dataset", "model", "explainer", "seed", "stage", "metric", "error_type", "message"]
REGION_COLUMNS = ["dataset", "model", "explainer", "seed", "sample_id", "label", "target", "region", *REGION_OUTPUTS]


@dataclass
class GroupData:
    """What every cell of a group shares: the checkpoint and where its samples come from."""

    model: nn.Module
    checkpoint_key: str
    dataset_fingerprint: str
    background: float
    permuted_model: nn.Module | None = None  # same recipe on permuted labels (data randomisation)
    permuted_key: str | None = None
    classes: tuple[str, ...] = ()
    multilabel: bool = False  # one sigmoid per class; rows carry the explained class's name
    planes: tuple[str, ...] = ()  # the dataset's names of a volume's slices (the gallery's; () the default)
    mask_roles: dict[str, MaskRole] = field(default_factory=lambda: dict(DEFAULT_MASK_ROLES))
    guards: tuple[ModelGuard, ...] = ()  # of the model and the permuted twin: fail the cell that changed one

    def check_model(self, who: str, failing: BaseException | None = None) -> None:
        """After plugin code ran on the models: raise ModelModified (the model restored) if it changed
        one; with ``failing``, the error that code raised, only restore, and note it on that error."""
        for guard in self.guards:
            if failing is None:
                guard.check(who)
            elif guard.check(who, raise_error=False):
                failing.add_note(f"{who} also changed the model (ModelModified)")

    @contextmanager
    def guarded(self, who: str, inputs: InputGuard, ctx: EvalContext | None = None) -> Iterator[None]:
        """Around a call of plugin code: afterwards :meth:`check_model`, then the input
        (:meth:`InputGuard.check`), which is restored also when the model's check raises (a review: a
        plugin that changed both left the batch changed for the next cells); when the code raises,
        both are only restored and noted on its error, which propagates."""
        try:
            yield
        except Exception as exc:
            self.check_model(who, exc)
            inputs.check(who, exc, ctx)
            raise
        try:
            self.check_model(who)
        except Exception as exc:
            inputs.check(who, exc, ctx)
            raise
        inputs.check(who, ctx=ctx)


@dataclass
class CellResult:
    cell: Cell
    rows: list[dict[str, Any]] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    cost: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None
    skipped_metrics: list[tuple[str, str]] = field(default_factory=list)  # (metric, reason)
    failures: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=lambda: {"saliency": 0, "scores": 0})
    cached: dict[str, int] = field(default_factory=lambda: {"saliency": 0, "scores": 0})  # read from the cache
    regions: list[dict[str, Any]] = field(default_factory=list)  # rows of regions.csv (REGION_COLUMNS)


def failure_row(cell: Cell, stage: str, exc: BaseException, metric: str = "") -> dict[str, Any]:
    """One row of ``failures.csv``; ``stage`` is ``checkpoint``, ``explain``, ``metric`` or ``task``."""
    error_type, message = error_summary(exc)
    return {"cell": cell.name, "dataset": cell.dataset.label, "model": cell.model.label,
            "explainer": cell.explainer.label, "seed": cell.seed, "stage": stage, "metric": metric,
            "error_type": error_type, "message": message}


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


def build_metrics(specs: tuple[PluginSpec, ...] | list[PluginSpec]) -> list[tuple[PluginSpec, Metric]]:
    return [(spec, metrics.get(spec.name)(**spec.params)) for spec in specs]


class CellRun:
    """One cell, fed batch by batch. Never raises for a failing explainer or metric: the failure
    is recorded in ``result.failures`` and the cell (or that metric) stops."""

    def __init__(self, cell: Cell, data: GroupData, metric_specs: tuple[PluginSpec, ...] | list[PluginSpec],
                 store: Cache, *, keep_last: bool = False) -> None:
        self.cell, self.data, self.store = cell, data, store
        self.result = CellResult(cell)
        self.explainer: Explainer | None = None
        self.active: list[tuple[PluginSpec, Metric]] = []
        self.stopped = False  # skipped or failed: nothing more to do
        self.checked, self.samples = False, 0  # checked: the cell's support, once
        self.preview: Tensor | None = None  # the first batch's saliency, for the report's gallery
        self.preview_rows = 4  # its first rows kept (the group sets them: whole samples, group.GALLERY_ROWS)
        self.last: Tensor | None = None  # the last batch's saliency (raw), when keep_last
        self.keep_last, self.explain_cost = keep_last, {"seconds": 0.0, "passes": 0}
        self.metric_cost: dict[str, dict[str, float]] = {}
        self.undefined: dict[str, list[int]] = {}  # metric label -> [samples without a value, samples scored]
        self.per_region: set[str] = set()  # metrics whose scores go to regions.csv
        self.calibrate_cost: dict[str, float] | None = None  # samples, seconds, passes on the validation split
        try:
            self.explainer = explainers.get(cell.explainer.name)(seed=cell.seed, **cell.explainer.params)
            self.explainer.suite_label = cell.explainer.label  # its messages name the alias, as failures.csv
            self.active = build_metrics(metric_specs)
        except Exception as exc:
            self._fail("explain", exc)
            return
        self.metric_cost = {spec.label: {"seconds": 0.0, "passes": 0} for spec, _ in self.active}

    # -- failures ---------------------------------------------------------------------------
    def _fail(self, stage: str, exc: BaseException, metric: str = "") -> None:
        if isinstance(exc, CacheWriteError):  # a full or read-only cache: every later cell would fail too
            raise exc
        self.result.failures.append(failure_row(self.cell, stage, exc, metric))
        if is_out_of_memory(exc):
            release_memory()
        if stage == "explain":
            self.stopped = True
            self.result.rows.clear()
            self.result.curves.clear()
            self.result.regions.clear()

    def _fail_metric(self, spec: PluginSpec, exc: BaseException) -> None:
        self._fail("metric", exc, spec.label)
        self._drop(spec.label)
        self.result.rows = [r for r in self.result.rows if r["metric"] != spec.label]
        self.result.curves = [r for r in self.result.curves if r["metric"] != spec.label]
        if self.result.regions and spec.name == "regions":
            self.result.regions.clear()

    def _drop(self, label: str) -> None:
        self.active = [(s, m) for s, m in self.active if s.label != label]
        self.metric_cost.pop(label, None)
        self.undefined.pop(label, None)

    # -- one batch --------------------------------------------------------------------------
    def feed(self, batch: Batch, target: Tensor) -> None:
        if self.stopped:
            return
        assert self.explainer is not None
        try:
            if not self.checked:
                self.checked = self.explainer.vetted = True  # checked here, not again in each call
                reason = (self.explainer.unsupported_reason(self.data.model, batch.x)
                          or call_dataset_reason(self.explainer, set(batch.masks), batch.x.ndim - 2,
                                                 self.data.mask_roles))
                self.data.check_model(f"explainer {self.explainer.name!r}")
                if reason:
                    self.result.skipped = reason
                    self.stopped = True
                    return
                self._check_metrics(batch)
            sal_key, saliency = self._saliency(batch, target)
        except Exception as exc:
            self._fail("explain", exc)
            return
        self.samples += len(batch)
        self.last = saliency if self.keep_last else None
        self.preview = saliency[:self.preview_rows].cpu() if self.preview is None else self.preview
        ctx: EvalContext | None = None
        inputs: InputGuard | None = None
        for spec, metric in list(self.active):
            try:
                score_key = make_key("scores", sal_key, metric.spec(),
                                     self.data.permuted_key if "permuted_model" in metric.info.requires else None)
                payload = self.store.get_json("scores", score_key)
                if payload is not None:  # as computed below: scores or regions
                    kind = "scores" if payload.get("regions") is None else "regions"
                    self.result.cached[kind] = self.result.cached.get(kind, 0) + 1
                else:
                    if ctx is None:
                        ctx = self._context(batch, target, saliency)
                        inputs = self.inputs(batch, target, saliency)
                    assert inputs is not None
                    with self.data.guarded(f"metric {spec.label!r}", inputs, ctx):
                        payload = self._score(metric, ctx, batch)
                    if ctx.predict.halvings:  # out of device memory: smaller chunks, recorded
                        self.result.info["forward_chunk"] = ctx.predict.max_batch
                    self.store.put_json("scores", score_key, payload)
                    kind = "scores" if payload["regions"] is None else "regions"
                    self.result.computed[kind] = self.result.computed.get(kind, 0) + 1
            except Exception as exc:
                self._fail_metric(spec, exc)
                continue
            self.metric_cost[spec.label]["seconds"] += payload["seconds"]
            self.metric_cost[spec.label]["passes"] += payload["passes"]
            if payload.get("regions") is not None:  # to regions.csv; no rows in results or cost
                self._append_regions(batch, target, payload["regions"])
                self.per_region.add(spec.label)
                continue
            added = _append_rows(self.result, self.cell, spec, metric, batch, target, payload,
                                 self.data.classes if self.data.multilabel else None)
            counts = self.undefined.setdefault(spec.label, [0, 0])
            counts[0] += len(batch) - added
            counts[1] += len(batch)

    def _context(self, batch: Batch, target: Tensor, saliency: Tensor) -> EvalContext:
        data = self.data
        return EvalContext(model=data.model, x=batch.x, target=target, label=batch.label, saliency=saliency,
                           masks=batch.masks, predict=ForwardCounter(data.model), explainer=self.explainer,
                           background=data.background, seed=self.cell.seed, permuted_model=data.permuted_model,
                           multilabel=data.multilabel, labels=batch.labels, classes=data.classes,
                           mask_roles=data.mask_roles, ids=batch.ids)

    @staticmethod
    def inputs(batch: Batch, target: Tensor, saliency: Tensor | None = None) -> InputGuard:
        """A guard of what plugin code reads and must leave as it is: the batch, and the saliency."""
        guard = InputGuard(batch.masks, x=batch.x, target=target, label=batch.label, labels=batch.labels)
        if saliency is not None:
            guard.add("saliency", saliency)
        return guard

    def _check_metrics(self, batch: Batch) -> None:
        """Each metric's :meth:`~faithbench.metrics.base.Metric.applicability` to the dataset: a
        metric that needs a mask this dataset does not have is skipped for the cell, with the
        reason; notes on parts left out (a region the dataset lacks) go to ``skipped.csv`` too."""
        for spec, metric in list(self.active):
            reason, notes = metric.applicability(set(batch.masks), batch.x.ndim - 2)
            self.result.skipped_metrics += [(spec.label, note) for note in notes]
            if reason:
                self.result.skipped_metrics.append((spec.label, reason))
                self._drop(spec.label)

    def _saliency(self, batch: Batch, target: Tensor, fingerprint: str | None = None,
                  cost: dict[str, float] | None = None) -> tuple[str, Tensor]:
        """The batch's saliency, from the cache or computed; ``fingerprint``: the split's (default:
        the test split's), ``cost``: where seconds and passes add up (default: the explain cost)."""
        assert self.explainer is not None
        data, cell = self.data, self.cell
        cost = self.explain_cost if cost is None else cost
        rng = self.explainer.draws_on(batch.x.device)  # a GPU's generator draws otherwise (None: no key part)
        sal_key = make_key("saliency", fingerprint or data.dataset_fingerprint, data.checkpoint_key,
                           self.explainer.spec(), cell.seed, batch.ids, target.tolist(), *([rng] if rng else []))
        cached = self.store.get_tensors("saliency", sal_key)
        if cached is not None:
            cost["seconds"] += float(cached["seconds"])
            cost["passes"] += int(cached["passes"])
            # what the explainer recorded (e.g. the CAM layer and grid): the manifest of a rerun has it too
            self.result.info.update(self.store.get_json("saliency_info", sal_key) or {})
            self.result.cached["saliency"] += 1
            return sal_key, cached["saliency"].to(batch.x.device)
        start = time.perf_counter()
        who = f"explainer {self.explainer.name!r}"
        with data.guarded(who, self.inputs(batch, target)), PassCounter(data.model) as counter:
            saliency = self.explainer(data.model, batch.x, target)
        seconds = time.perf_counter() - start
        if not torch.isfinite(saliency).all():
            raise FloatingPointError(f"{self.explainer.shown_name} returned NaN or Inf saliency for the batch "
                                     f"starting at sample {batch.ids[0]!r}")
        if self.explainer.last_info:  # first: a run killed between the two writes recomputes both (a review)
            self.store.put_json("saliency_info", sal_key, self.explainer.last_info)
            self.result.info.update(self.explainer.last_info)
        self.store.put_tensors("saliency", sal_key, {
            "saliency": saliency, "seconds": torch.tensor(seconds, dtype=torch.float64),
            "passes": torch.tensor(counter.passes)})
        self.result.computed["saliency"] += 1
        cost["seconds"] += seconds
        cost["passes"] += counter.passes
        return sal_key, saliency

    @staticmethod
    def _score(metric: Metric, ctx: EvalContext, batch: Batch) -> dict[str, Any]:
        before_passes, start = ctx.predict.passes, time.perf_counter()
        out = metric(ctx)
        value = out.value.double()
        if torch.isinf(value).any():
            i = int(torch.isinf(value).nonzero()[0, 0])
            raise FloatingPointError(f"{metric.name} returned Inf for sample {batch.ids[i]!r}")

        def listed(t: Tensor | None) -> list[Any] | None:
            return None if t is None else t.double().tolist()

        return {
            "value": value.tolist(),
            "chance": listed(out.chance),
            "curve": listed(out.curve),
            "fractions": listed(out.fractions),
            "regions": None if out.regions is None else {
                "regions": list(out.region_names), **{k: listed(v) for k, v in out.regions.items()}},
            "seconds": time.perf_counter() - start,
            "passes": ctx.predict.passes - before_passes,
        }

    def _append_regions(self, batch: Batch, target: Tensor, regions: dict[str, Any]) -> None:
        """Rows of ``regions.csv``: one per (sample, region) with the region scores."""
        cell = self.cell
        for i, sample_id in enumerate(batch.ids):
            for j, region in enumerate(regions["regions"]):
                self.result.regions.append({
                    "dataset": cell.dataset.label, "model": cell.model.label, "explainer": cell.explainer.label,
                    "seed": cell.seed, "sample_id": sample_id, "label": int(batch.label[i]),
                    "target": int(target[i]), "region": region,
                    **{k: float(regions[k][i][j]) for k in REGION_OUTPUTS}})

    # -- the end ----------------------------------------------------------------------------
    def finish(self) -> CellResult:
        result, cell = self.result, self.cell
        if self.stopped or not self.checked:
            return result
        hints = {spec.label: metric.undefined_hint for spec, metric in self.active}
        result.skipped_metrics += [(label, undefined_reason(missing, scored, multilabel=self.data.multilabel,
                                                            hint=hints.get(label, "")))
                                   for label, (missing, scored) in self.undefined.items() if missing]
        base = {"dataset": cell.dataset.label, "model": cell.model.label, "explainer": cell.explainer.label,
                "seed": cell.seed, "samples": self.samples}
        result.cost.append({**base, "stage": "explain", "metric": "", **self.explain_cost})
        if self.calibrate_cost is not None:  # explaining and scoring the validation units
            result.cost.append({**base, "stage": "calibrate", "metric": "", **self.calibrate_cost})
        for label, cost in self.metric_cost.items():
            if label in self.per_region:
                continue
            result.cost.append({**base, "stage": "metric", "metric": label, **cost})
        return result


def _append_rows(result: CellResult, cell: Cell, spec: PluginSpec, metric: Metric, batch: Batch,
                 target: Tensor, payload: dict[str, Any], classes: tuple[str, ...] | None = None) -> int:
    """Tidy rows of one metric on one batch, returns how many (samples with a defined value); ``classes``
    (multi-label datasets) adds the column ``class``, the explained class's name (``label``: whether it is present)."""
    added = 0
    for i, sample_id in enumerate(batch.ids):
        value = payload["value"][i]
        chance = payload["chance"][i] if payload["chance"] is not None else math.nan
        row = {"dataset": cell.dataset.label, "model": cell.model.label, "explainer": cell.explainer.label,
               "metric": spec.label, "seed": cell.seed, "sample_id": sample_id,
               "value": math.nan if value is None else float(value), "chance": float(chance),
               "higher_is_better": metric.higher_is_better, "category": category_name(metric.category),
               "label": int(batch.label[i]), "target": int(target[i]), **({"class": classes[int(target[i])]}
                                                                         if classes is not None else {})}
        if defined := not math.isnan(row["value"]):  # undefined for this sample (e.g. an empty mask): no row
            result.rows.append(row)
            added += 1
        # the curve of an undefined value too where a point is defined (a review: an MPRT curve lost 6 of 7 steps)
        if payload["curve"] is not None and (defined or any(not math.isnan(p) for p in payload["curve"][i])):
            own = payload["fractions"][i] if isinstance(payload["fractions"][0], list) else payload["fractions"]
            for k, (frac, score) in enumerate(zip(own, payload["curve"][i])):  # fractions (B, K), or (K,) shared
                point = {"dataset": row["dataset"], "model": row["model"], "explainer": row["explainer"],
                         "metric": spec.label, "seed": cell.seed, "sample_id": sample_id, "step": k,
                         "fraction": frac, "score": score}
                if classes is not None:  # one curve per (sample, explained class)
                    point["class"] = row["class"]
                result.curves.append(point)
    return added
