"""Run cells: explain a group's samples with one explainer per cell and score every metric.

Samples stream: :func:`iter_batches` reads ``batch_size`` samples at a time from the dataset,
so memory does not grow with the number of samples. A :class:`CellRun` is fed one batch at a
time; the local executor feeds every cell of a group the same batch (each batch is read once
per group), a Ray task feeds its one cell.

Saliency maps and scores are stored per (cell, batch) under content keys, so a killed run loses
at most the batch in flight and a rerun recomputes nothing it already has. Where they are
stored is the ``store``: the :class:`~faithbench.store.Cache` itself (local executor),
or a :class:`DeferredCache` that reads the shared cache and holds new entries until the driver
writes them (Ray tasks never write).

Failure isolation: an explainer that raises, returns NaN/Inf saliency or runs out of memory
fails its cell (no rows; one row in ``failures.csv``); a metric that raises or returns Inf
fails that metric in that cell (its rows are dropped, the cell's other metrics stay). A metric
value of NaN means "undefined for this sample" (e.g. an empty mask) and gives no row, as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from faithbench.config import PluginSpec, RegionSpec
from faithbench.explainers.base import Explainer
from faithbench.metrics.base import EvalContext, ForwardCounter, Metric, postprocess
from faithbench.metrics.functional.regions import REGION_SCORES, region_scores, stack_regions
from faithbench.models.training import predict_logits
from faithbench.registry import explainers, metrics
from faithbench.store import Cache, make_key
from faithbench.runner.errors import InputDataError, error_summary, is_out_of_memory, release_memory
from faithbench.runner.plan import Cell
from faithbench.types import Batch

FAILURE_COLUMNS = ["cell", "dataset", "model", "explainer", "seed", "stage", "metric", "error_type", "message"]
REGION_COLUMNS = ["dataset", "model", "explainer", "seed", "sample_id", "label", "target", "region",
                  *REGION_SCORES, "area"]


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
    # cache entries computed by a task that does not write: (kind, key, "tensors" | "json", payload)
    pending: list[tuple[str, str, str, Any]] = field(default_factory=list)
    # bad input met inside a task (the driver turns it into InputDataError, exit code 2)
    input_error: str | None = None
    regions: list[dict[str, Any]] = field(default_factory=list)  # rows of regions.csv (REGION_COLUMNS)


def failure_row(cell: Cell, stage: str, exc: BaseException, metric: str = "") -> dict[str, Any]:
    """One row of ``failures.csv``; ``stage`` is ``checkpoint``, ``explain``, ``metric`` or ``task``."""
    error_type, message = error_summary(exc)
    return {"cell": cell.name, "dataset": cell.dataset.label, "model": cell.model.label,
            "explainer": cell.explainer.label, "seed": cell.seed, "stage": stage, "metric": metric,
            "error_type": error_type, "message": message}


class DeferredCache(Cache):
    """Reads through to the cache at ``root``; holds writes in :attr:`pending` for the driver.

    A Ray task computes with one of these and returns ``pending`` with its rows; the driver
    writes the entries with :func:`commit`, so exactly one process writes the cache.
    """

    def __init__(self, root: Any) -> None:
        super().__init__(root)
        self.pending: list[tuple[str, str, str, Any]] = []
        self._held: dict[tuple[str, str, str], Any] = {}

    def get_tensors(self, kind: str, key: str) -> dict[str, Tensor] | None:
        held = self._held.get((kind, key, "tensors"))
        return held if held is not None else super().get_tensors(kind, key)

    def put_tensors(self, kind: str, key: str, tensors: dict[str, Tensor]) -> Any:
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        self._held[(kind, key, "tensors")] = tensors
        self.pending.append((kind, key, "tensors", tensors))
        return self.path(kind, key, "safetensors")

    def get_json(self, kind: str, key: str) -> Any | None:
        held = self._held.get((kind, key, "json"))
        return held if held is not None else super().get_json(kind, key)

    def put_json(self, kind: str, key: str, payload: Any) -> Any:
        self._held[(kind, key, "json")] = payload
        self.pending.append((kind, key, "json", payload))
        return self.path(kind, key, "json")


def commit(cache: Cache, pending: list[tuple[str, str, str, Any]]) -> None:
    """Write the entries a task computed (atomically, one file each)."""
    for kind, key, fmt, payload in pending:
        if fmt == "tensors":
            cache.put_tensors(kind, key, payload)
        else:
            cache.put_json(kind, key, payload)


def iter_batches(dataset: Any, label: str, n_samples: int, batch_size: int, model: nn.Module,
                 target_mode: str, subset: str = "all") -> Iterator[tuple[Batch, Tensor]]:
    """The first ``n_samples`` samples of ``dataset`` in batches, with the explained target.
    ``subset="positive"`` keeps only samples whose label is not 0 (the abnormal cases: an
    explanation of "normal" has no finding to point at, and a blurred insertion baseline
    already looks normal), still the first ``n_samples`` of them in index order. A multi-label
    dataset yields one row per (sample, explained class) of ``target_mode``
    (:mod:`faithbench.runner.targets`); ``positive`` then means any class present.

    Streams: one batch is in memory at a time. A sample that cannot be read or collated (a
    mask whose shape does not match its image, a missing file) raises :class:`InputDataError`
    naming the dataset, the split and the sample.
    """
    split = getattr(dataset, "split", "test")
    if len(dataset) == 0:
        raise InputDataError(f"dataset {label!r}: the {split} split is empty")

    def read(i: int) -> Any:
        try:
            return dataset[i]
        except (ValueError, OSError, KeyError, IndexError) as exc:
            raise InputDataError(f"dataset {label!r} ({split} split), sample {i}: {exc}") from exc

    def batches() -> Iterator[list[Any]]:
        taken, samples = 0, []
        for i in range(len(dataset)):
            if taken == n_samples:
                break
            sample = read(i)
            if subset == "positive" and not _is_positive(sample):
                continue
            samples.append(sample)
            taken += 1
            if len(samples) == batch_size:
                yield samples
                samples = []
        if samples:
            yield samples
        if taken == 0:
            raise InputDataError(f"dataset {label!r} ({split} split): no sample with a positive label")

    if getattr(dataset, "multilabel", False):  # one row per (sample, explained class)
        yield from _class_batches(batches(), target_mode, tuple(dataset.classes), batch_size, label, split)
        return
    for samples in batches():
        try:
            batch = Batch.collate(samples)
        except (ValueError, RuntimeError) as exc:
            raise InputDataError(f"dataset {label!r} ({split} split): {exc}") from exc
        if target_mode == "label":
            target = batch.label
        else:
            with torch.no_grad():
                target = predict_logits(model, batch.x).argmax(-1)
        yield batch, target


def _is_positive(sample: Any) -> bool:
    """A non-zero label; a multi-label sample: any class present."""
    labels = getattr(sample, "labels", None)
    if labels is not None:
        return bool(labels.any())
    return int(sample.label) != 0


def _class_batches(sample_lists: Iterator[list[Any]], target_mode: Any, classes: tuple[str, ...], batch_size: int,
                   label: str, split: str) -> Iterator[tuple[Batch, Tensor]]:
    """A multi-label dataset's (sample, class) units (:mod:`faithbench.runner.targets`)."""
    from faithbench.runner.targets import class_batches

    if target_mode in ("predicted", "label"):
        raise InputDataError(f"dataset {label!r} is multi-label: target {target_mode!r} explains one class per "
                             f"sample; use each_positive or {{classes: [...]}}")
    units = 0
    try:
        for batch, target in class_batches((s for samples in sample_lists for s in samples), target_mode, classes,
                                           batch_size):
            units += len(batch)
            yield batch, target
    except (ValueError, RuntimeError) as exc:
        raise InputDataError(f"dataset {label!r} ({split} split): {exc}") from exc
    if units == 0:
        raise InputDataError(f"dataset {label!r} ({split} split): no (sample, class) pair to explain for "
                             f"target {target_mode!r}")


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


class CellRun:
    """One cell, fed batch by batch. Never raises for a failing explainer or metric: the failure
    is recorded in ``result.failures`` and the cell (or that metric) stops."""

    def __init__(self, cell: Cell, data: GroupData, metric_specs: list[PluginSpec], store: Cache,
                 regions: RegionSpec | None = None) -> None:
        self.cell, self.data, self.store = cell, data, store
        self.regions = regions
        self.region_masks: list[str] = []  # the requested masks this dataset has
        self.region_grid: list[int] | None = None  # the grid, if it fits the dataset's dimensions
        self.result = CellResult(cell)
        self.explainer: Explainer | None = None
        self.active: list[tuple[PluginSpec, Metric]] = []
        self.stopped = False  # skipped or failed: nothing more to do
        self.checked = False
        self.samples = 0
        self.preview: Tensor | None = None  # the first batch's saliency, for the report's gallery
        self.explain_cost = {"seconds": 0.0, "passes": 0}
        self.metric_cost: dict[str, dict[str, float]] = {}
        try:
            self.explainer = explainers.get(cell.explainer.name)(seed=cell.seed, **cell.explainer.params)
            self.active = build_metrics(metric_specs)
        except Exception as exc:
            self._fail("explain", exc)
            return
        self.metric_cost = {spec.label: {"seconds": 0.0, "passes": 0} for spec, _ in self.active}

    # -- failures ---------------------------------------------------------------------------
    def _fail(self, stage: str, exc: BaseException, metric: str = "") -> None:
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
        self.active = [(s, m) for s, m in self.active if s.label != spec.label]
        self.metric_cost.pop(spec.label, None)
        self.result.rows = [r for r in self.result.rows if r["metric"] != spec.label]
        self.result.curves = [r for r in self.result.curves if r["metric"] != spec.label]

    # -- one batch --------------------------------------------------------------------------
    def feed(self, batch: Batch, target: Tensor) -> None:
        if self.stopped:
            return
        assert self.explainer is not None
        try:
            if not self.checked:
                self.checked = True
                reason = self.explainer.unsupported_reason(self.data.model, batch.x)
                if reason:
                    self.result.skipped = reason
                    self.stopped = True
                    return
                self._skip_metrics_without_masks(batch)
                self._resolve_regions(batch)
            sal_key, saliency = self._saliency(batch, target)
        except Exception as exc:
            self._fail("explain", exc)
            return
        self.samples += len(batch)
        if self.preview is None:
            self.preview = saliency[:4].cpu()
        ctx: EvalContext | None = None
        for spec, metric in list(self.active):
            try:
                score_key = make_key("scores", sal_key, metric.spec(),
                                     self.data.permuted_key if "permuted_model" in metric.info.requires else None)
                payload = self.store.get_json("scores", score_key)
                if payload is None:
                    if ctx is None:
                        ctx = EvalContext(model=self.data.model, x=batch.x, target=target, label=batch.label,
                                          saliency=saliency, masks=batch.masks,
                                          predict=ForwardCounter(self.data.model), explainer=self.explainer,
                                          background=self.data.background, seed=self.cell.seed,
                                          permuted_model=self.data.permuted_model,
                                          multilabel=self.data.multilabel, labels=batch.labels,
                                          classes=self.data.classes)
                    payload = self._score(metric, ctx, batch)
                    self.store.put_json("scores", score_key, payload)
                    self.result.computed["scores"] += 1
            except Exception as exc:
                self._fail_metric(spec, exc)
                continue
            self.metric_cost[spec.label]["seconds"] += payload["seconds"]
            self.metric_cost[spec.label]["passes"] += payload["passes"]
            _append_rows(self.result, self.cell, spec, metric, batch, target, payload,
                         self.data.classes if self.data.multilabel else None)
        if self.regions is not None:
            try:
                self._region_rows(sal_key, saliency, batch, target)
            except Exception as exc:
                self._fail("regions", exc)
                self.regions = None
                self.result.regions.clear()

    # -- region-based saliency (no forward pass: a function of the cell's saliency and masks) ---
    def _resolve_regions(self, batch: Batch) -> None:
        """The suite's regions that this dataset has; the others are skipped with the reason."""
        spec = self.regions
        if spec is None:
            return
        have = ", ".join(sorted(batch.masks)) or "none"
        if spec.masks == "all":
            self.region_masks = sorted(batch.masks)
        else:
            self.region_masks = [m for m in spec.masks if m in batch.masks]
            for m in spec.masks:
                if m not in batch.masks:
                    self.result.skipped_metrics.append(
                        ("regions", f"region {m!r}: the dataset has no mask {m!r} (masks: {have})"))
        spatial = batch.x.ndim - 2
        if spec.grid is not None and len(spec.grid) != spatial:
            self.result.skipped_metrics.append(
                ("regions", f"grid {spec.grid}: has {len(spec.grid)} sizes, the dataset is {spatial}D"))
        elif spec.grid is not None:
            self.region_grid = list(spec.grid)
        if not self.region_masks and self.region_grid is None:
            self.regions = None

    def _region_rows(self, sal_key: str, saliency: Tensor, batch: Batch, target: Tensor) -> None:
        assert self.regions is not None
        spec = {"masks": self.region_masks, "grid": self.region_grid, "postprocess": self.regions.postprocess}
        key = make_key("regions", sal_key, spec)
        payload = self.store.get_json("regions", key)
        if payload is None:
            names, masks = stack_regions(batch.masks, self.region_masks, grid=self.region_grid,
                                         batch_shape=tuple(saliency.shape))
            scores = region_scores(postprocess(saliency.cpu(), self.regions.postprocess), masks)
            payload = {"regions": names, **{k: v.tolist() for k, v in scores.items()}}
            self.store.put_json("regions", key, payload)
            self.result.computed["regions"] = self.result.computed.get("regions", 0) + 1
        cell = self.cell
        for i, sample_id in enumerate(batch.ids):
            for j, region in enumerate(payload["regions"]):
                self.result.regions.append({
                    "dataset": cell.dataset.label, "model": cell.model.label, "explainer": cell.explainer.label,
                    "seed": cell.seed, "sample_id": sample_id, "label": int(batch.label[i]),
                    "target": int(target[i]), "region": region,
                    **{k: float(payload[k][i][j]) for k in (*REGION_SCORES, "area")}})

    def _skip_metrics_without_masks(self, batch: Batch) -> None:
        """A metric that needs a mask this dataset does not have (``marker`` on a phantom
        without a shortcut, ``lesion`` on MedMNIST) is skipped for the cell, with the reason."""
        keep = []
        for spec, metric in self.active:
            missing = [m for m in metric.required_masks() if m not in batch.masks]
            if missing:
                have = ", ".join(sorted(batch.masks)) or "none"
                self.result.skipped_metrics.append(
                    (spec.label, f"the dataset has no mask {missing[0]!r} (masks: {have})"))
                self.metric_cost.pop(spec.label, None)
            else:
                keep.append((spec, metric))
        self.active = keep

    def _saliency(self, batch: Batch, target: Tensor) -> tuple[str, Tensor]:
        assert self.explainer is not None
        data, cell = self.data, self.cell
        sal_key = make_key("saliency", data.dataset_fingerprint, data.checkpoint_key, self.explainer.spec(),
                           cell.seed, batch.ids, target.tolist())
        cached = self.store.get_tensors("saliency", sal_key)
        if cached is not None:
            self.explain_cost["seconds"] += float(cached["seconds"])
            self.explain_cost["passes"] += int(cached["passes"])
            # what the explainer recorded (e.g. the CAM layer and grid): the manifest of a rerun has it too
            self.result.info.update(self.store.get_json("saliency_info", sal_key) or {})
            return sal_key, cached["saliency"]
        start = time.perf_counter()
        with PassCounter(data.model) as counter:
            saliency = self.explainer(data.model, batch.x, target)
        seconds = time.perf_counter() - start
        if not torch.isfinite(saliency).all():
            raise FloatingPointError(f"{self.explainer.name} returned NaN or Inf saliency for the batch "
                                     f"starting at sample {batch.ids[0]!r}")
        self.store.put_tensors("saliency", sal_key, {
            "saliency": saliency, "seconds": torch.tensor(seconds, dtype=torch.float64),
            "passes": torch.tensor(counter.passes)})
        if self.explainer.last_info:
            self.store.put_json("saliency_info", sal_key, self.explainer.last_info)
            self.result.info.update(self.explainer.last_info)
        self.result.computed["saliency"] += 1
        self.explain_cost["seconds"] += seconds
        self.explain_cost["passes"] += counter.passes
        return sal_key, saliency

    @staticmethod
    def _score(metric: Metric, ctx: EvalContext, batch: Batch) -> dict[str, Any]:
        before_passes, start = ctx.predict.passes, time.perf_counter()
        out = metric(ctx)
        value = out.value.double()
        if torch.isinf(value).any():
            i = int(torch.isinf(value).nonzero()[0, 0])
            raise FloatingPointError(f"{metric.name} returned Inf for sample {batch.ids[i]!r}")
        return {
            "value": value.tolist(),
            "chance": out.chance.double().tolist() if out.chance is not None else None,
            "curve": out.curve.double().tolist() if out.curve is not None else None,
            "fractions": out.fractions.double().tolist() if out.fractions is not None else None,
            "seconds": time.perf_counter() - start,
            "passes": ctx.predict.passes - before_passes,
        }

    # -- the end ----------------------------------------------------------------------------
    def finish(self) -> CellResult:
        result, cell = self.result, self.cell
        if self.stopped or not self.checked:
            return result
        base = {"dataset": cell.dataset.label, "model": cell.model.label, "explainer": cell.explainer.label,
                "seed": cell.seed, "samples": self.samples}
        result.cost.append({**base, "stage": "explain", "metric": "", **self.explain_cost})
        for label, cost in self.metric_cost.items():
            result.cost.append({**base, "stage": "metric", "metric": label, **cost})
        return result


def run_cell(cell: Cell, data: GroupData, metric_specs: list[PluginSpec], store: Cache,
             batches: Iterator[tuple[Batch, Tensor]], regions: RegionSpec | None = None) -> CellResult:
    """Feed one cell every ``(batch, target)`` of ``batches`` and return its result."""
    run = CellRun(cell, data, metric_specs, store, regions)
    for batch, target in batches:
        run.feed(batch, target)
        if run.stopped:
            break
    return run.finish()


def _append_rows(result: CellResult, cell: Cell, spec: PluginSpec, metric: Metric, batch: Batch,
                 target: Tensor, payload: dict[str, Any], classes: tuple[str, ...] | None = None) -> None:
    """Tidy rows of one metric on one batch; ``classes`` (multi-label datasets) adds the column
    ``class``, the explained class's name (``label`` is then whether that class is present)."""
    for i, sample_id in enumerate(batch.ids):
        value = payload["value"][i]
        chance = payload["chance"][i] if payload["chance"] is not None else math.nan
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # undefined for this sample (e.g. an empty mask): no row
        row = {"dataset": cell.dataset.label, "model": cell.model.label, "explainer": cell.explainer.label,
               "metric": spec.label, "seed": cell.seed, "sample_id": sample_id, "value": float(value),
               "chance": float(chance), "higher_is_better": metric.higher_is_better,
               "category": metric.category.value, "label": int(batch.label[i]), "target": int(target[i])}
        if classes is not None:
            row["class"] = classes[int(target[i])]
        result.rows.append(row)
        if payload["curve"] is not None:
            for k, (frac, score) in enumerate(zip(payload["fractions"], payload["curve"][i])):
                point = {"dataset": row["dataset"], "model": row["model"], "explainer": row["explainer"],
                         "metric": spec.label, "seed": cell.seed, "sample_id": sample_id, "step": k,
                         "fraction": frac, "score": score}
                if classes is not None:  # one curve per (sample, explained class)
                    point["class"] = row["class"]
                result.curves.append(point)
