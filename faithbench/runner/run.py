"""Suite -> cells -> tidy tables in the output folder, on the local or the Ray executor.

Exit status of a run (see :attr:`RunResult.status`): every cell ok, or *partial* when some
cells failed (``failures.csv`` lists them; the other cells' results are complete). Bad input
(:class:`~faithbench.runner.errors.InputDataError`, a checkpoint that does not fit its dataset)
stops the run; what was computed before it is in the cache, so a rerun resumes.

Only this process writes the output folder (it holds ``<out>/.lock``) and the cache: the
local executor writes cache entries as it computes them; Ray tasks return theirs and the
driver writes them (:mod:`faithbench.runner.ray_executor`).
"""

from __future__ import annotations

import json
import re
import platform
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from faithbench.config import PluginSpec, Suite
from faithbench.datasets.base import BaseDataset
from faithbench.datasets.paths import DataError
from faithbench.models.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from faithbench.models.reliance import can_intervene, measure_reliance
from faithbench.registry import datasets, explainers, metrics, models
from faithbench.store import Cache, atomic_write_bytes
from faithbench.runner.errors import InputDataError, UsageError
from faithbench.runner.execute import (
    FAILURE_COLUMNS,
    REGION_COLUMNS,
    CellResult,
    CellRun,
    GroupData,
    failure_row,
    iter_batches,
)
from faithbench.runner.lock import lock_output
from faithbench.runner.plan import Group, plan

Log = Callable[[str], None]


EXECUTORS = ("local", "ray")


@dataclass
class RunResult:
    out_dir: Path
    results: pd.DataFrame
    curves: pd.DataFrame
    models: pd.DataFrame
    cost: pd.DataFrame
    skipped: pd.DataFrame
    computed: dict[str, int] = field(default_factory=dict)
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))
    regions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REGION_COLUMNS))

    @property
    def status(self) -> str:
        """``"ok"`` (every cell ran or was skipped as unsupported) or ``"partial"`` (some failed)."""
        return "partial" if not self.failures.empty else "ok"


def build_dataset(name: str, split: str, params: dict[str, Any]) -> BaseDataset:
    return datasets.get(name)(split=split, **params)


def build_splits(spec: PluginSpec) -> tuple[BaseDataset, BaseDataset, BaseDataset]:
    """train, val and test of a dataset entry; a dataset that cannot be built (missing files, a
    data root that does not exist) raises :class:`InputDataError` naming the entry and split."""
    splits = []
    for split in ("train", "val", "test"):
        try:
            splits.append(build_dataset(spec.name, split, spec.params))
        except (ValueError, OSError) as exc:
            raise InputDataError(f"dataset {spec.label!r} ({split} split): {exc}") from exc
    return splits[0], splits[1], splits[2]


def preflight(suite: Suite) -> dict[str, str]:
    """Check every dataset before anything is computed: it builds, its test split is not empty,
    and its train split is not empty where a model is trained on it.

    Returns ``{label: reason}`` for the ``optional`` datasets whose data cannot be had here (a
    :class:`~faithbench.datasets.paths.DataError`: no data root, a missing file that cannot be
    downloaded); the run skips them. Any other problem raises :class:`InputDataError`.
    """
    trains = any(m.weights is None for m in suite.models)
    unavailable: dict[str, str] = {}
    for spec in suite.datasets:
        try:
            train, _val, test = build_splits(spec)
        except InputDataError as exc:
            if spec.optional and isinstance(exc.__cause__, DataError):
                unavailable[spec.label] = f"optional dataset not available: {exc.__cause__}"
                continue
            raise
        if len(test) == 0:
            raise InputDataError(f"dataset {spec.label!r}: the test split is empty")
        if trains and len(train) == 0:
            raise InputDataError(f"dataset {spec.label!r}: the train split is empty, and a model is "
                                 f"trained on it")
    return unavailable


def open_group(group: Group, splits: tuple[BaseDataset, BaseDataset, BaseDataset], cache: Cache,
               needs_permuted: bool) -> tuple[GroupData, Checkpoint, Checkpoint | None]:
    """Train or load the group's checkpoint (and its permuted-label twin when a metric needs it)."""
    train, val, test = splits
    ckpt = load_checkpoint(group.model, train, val, test, group.seed, cache)
    data = GroupData(ckpt.model, ckpt.key, test.fingerprint(), test.background, classes=tuple(test.classes),
                     multilabel=bool(test.multilabel))
    twin = None
    if needs_permuted:
        twin = load_checkpoint(group.model, train, val, test, group.seed, cache, permute_labels=True)
        data.permuted_model, data.permuted_key = twin.model, twin.key
    return data, ckpt, twin


def write_galleries(plots_dir: Path, galleries: list[tuple[str, str, Any, dict[str, Any]]], k: int = 4) -> None:
    """Saliency galleries of the first ``k`` explained samples per (dataset, model): the image,
    then each explainer's raw map, with the lesion outline when the dataset has one."""
    from faithbench.reports.plots import plot_saliency_gallery, safe_name

    for dataset, model, batch, previews in galleries:
        if not previews:
            continue
        mask = batch.masks.get("lesion", batch.masks.get("target"))  # multi-label: the explained class's
        plot_saliency_gallery(batch.x[:k], {name: sal[:k] for name, sal in previews.items()},
                              None if mask is None else mask[:k],
                              plots_dir / f"gallery_{safe_name(dataset)}_{safe_name(model)}.png",
                              time_axis="valid" in batch.masks and batch.x.ndim == 5)  # sequences: a row per visit


def safe_label(text: str) -> str:
    """A folder-name-safe version of a suite name (never a path: no separators, no leading dot)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip(".") or "_"


def default_out_dir(suite: Suite) -> Path:
    """``reports/<suite name>``, the name made safe so it cannot point outside ``reports/``."""
    return Path("reports") / safe_label(suite.name)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("faithbench", "torch", "torchvision", "timm", "captum", "grad-cam", "quantus", "numpy",
                 "scipy", "pandas", "scikit-posthocs", "ray"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def plugin_origins(suite: Suite) -> dict[str, dict[str, str]]:
    return {
        "datasets": {s.name: datasets.origin(s.name) for s in suite.datasets},
        "models": {s.name: models.origin(s.name) for s in suite.models},
        "explainers": {s.name: explainers.origin(s.name) for s in suite.explainers},
        "metrics": {s.name: metrics.origin(s.name) for s in suite.metrics},
    }


def run_suite(suite: Suite, out_dir: Path, *, cache: Cache | None = None, limit: int | None = None,
              progress: bool = True, log: Log = print, executor: str | None = None,
              ray_address: str | None = None, ray_cpus: int | None = None, cpus_per_task: float = 1.0,
              gpus_per_task: float = 0.0, report: bool = True) -> RunResult:
    """Run every cell of ``suite`` and write the tables of the output folder (and, with
    ``report``, the derived tables, plots and HTML page: ``faithbench report`` can build them later).

    ``limit`` caps the samples per dataset (below ``suite.samples``). ``executor`` (default:
    the suite's) is ``local`` (in this process) or ``ray`` (each cell a Ray task needing
    ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs; ``ray_address`` joins a cluster, else a
    local Ray instance with ``ray_cpus`` CPUs is started, or the one already initialised is used).

    A cell whose explainer or metric fails is recorded in ``failures.csv`` and the sweep goes on
    (``RunResult.status == "partial"``). Raises :class:`InputDataError` or
    :class:`~faithbench.models.checkpoint.CheckpointError` for bad input and
    :class:`~faithbench.runner.errors.OutputInUseError` when another run holds ``out_dir``.
    """
    executor = executor or suite.executor
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    cache = cache or Cache()
    with lock_output(out_dir):
        return _run_locked(suite, out_dir, cache, limit, progress, log, executor,
                           dict(address=ray_address, num_cpus=ray_cpus, cpus_per_task=cpus_per_task,
                                gpus_per_task=gpus_per_task), report)


def _run_locked(suite: Suite, out_dir: Path, cache: Cache, limit: int | None, progress: bool, log: Log,
                executor: str, ray_options: dict[str, Any], report: bool = True) -> RunResult:
    started = time.time()
    n_samples = min(suite.samples, limit) if limit else suite.samples
    unavailable = preflight(suite)  # bad data is reported before anything is trained
    for label, reason in unavailable.items():
        log(f"skipped dataset {label!r}: {reason}")
    resolved = suite  # the manifest records the suite as written
    suite = suite.model_copy(update={"datasets": [d for d in suite.datasets if d.label not in unavailable]})
    groups = plan(suite)
    needs_permuted = any("permuted_model" in metrics.get(m.name).info.requires for m in suite.metrics)
    n_cells = sum(len(g.cells) for g in groups)
    computed = {"checkpoints": 0, "saliency": 0, "scores": 0}
    results_by_cell: dict[str, CellResult] = {}
    model_rows: list[dict[str, Any]] = []
    reliance_rows: list[dict[str, Any]] = []
    galleries: list[tuple[str, str, Any, dict[str, Any]]] = []
    bar = tqdm(total=n_cells, desc=f"suite {suite.name}", unit="cell", disable=not progress)
    try:
        device = _run_groups(groups, suite, cache, n_samples, needs_permuted, executor, ray_options, log, bar,
                             results_by_cell, model_rows, computed, reliance_rows, galleries)
    except (InputDataError, CheckpointError) as exc:
        if results_by_cell or computed["checkpoints"]:
            raise type(exc)(f"{exc} (finished cells are cached; a rerun resumes)") from exc
        raise
    finally:
        bar.close()

    # plan order, whatever order the cells finished in: the tables do not depend on the executor
    cell_results = [results_by_cell[c.name] for g in groups for c in g.cells if c.name in results_by_cell]
    for result in cell_results:
        for key, value in result.computed.items():
            computed[key] = computed.get(key, 0) + value
    results = pd.DataFrame([r for c in cell_results for r in c.rows])
    curves = pd.DataFrame([r for c in cell_results for r in c.curves])
    cost = pd.DataFrame([r for c in cell_results for r in c.cost])
    skipped = pd.DataFrame([{"cell": label, "metric": "", "reason": reason} for label, reason in unavailable.items()]
                           + [{"cell": c.cell.name, "metric": "", "reason": c.skipped} for c in cell_results if c.skipped]
                           + [{"cell": c.cell.name, "metric": m, "reason": r} for c in cell_results
                              for m, r in c.skipped_metrics],
                           columns=["cell", "metric", "reason"])
    failures = pd.DataFrame([f for c in cell_results for f in c.failures], columns=FAILURE_COLUMNS)
    regions = pd.DataFrame([r for c in cell_results for r in c.regions], columns=REGION_COLUMNS)
    model_df = pd.DataFrame(model_rows)
    manifest = {
        "suite": resolved.model_dump(mode="json"),
        "unavailable_datasets": unavailable,
        "versions": versions(),
        "git": git_hash(),
        "plugins": plugin_origins(suite),
        "seeds": suite.seeds,
        "samples_per_dataset": n_samples,
        "cells": n_cells,
        "status": "partial" if not failures.empty else "ok",
        "failed_cells": int(failures["cell"].nunique()) if not failures.empty else 0,
        "executor": executor,
        "cell_info": {c.cell.name: c.info for c in cell_results if c.info},
        "computed": computed,
        "cache": str(cache.root),
        "seconds": round(time.time() - started, 2),
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    from faithbench.reports.writer import write_outputs

    # failures.csv exists only when something failed; a clean rerun removes a stale one
    if failures.empty:
        (out_dir / "failures.csv").unlink(missing_ok=True)
    else:
        atomic_write_bytes(out_dir / "failures.csv", failures.to_csv(index=False).encode())
    if reliance_rows:
        atomic_write_bytes(out_dir / "reliance.csv", pd.DataFrame(reliance_rows).to_csv(index=False).encode())
    if suite.regions is not None:  # before the report, which reads it
        atomic_write_bytes(out_dir / "regions.csv", regions.to_csv(index=False).encode())
    else:
        (out_dir / "regions.csv").unlink(missing_ok=True)
    write_galleries(out_dir / "plots", galleries)
    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str).encode())
    write_outputs(out_dir, results, curves, model_df, cost, skipped, report=report)  # reads the manifest
    return RunResult(out_dir, results, curves, model_df, cost, skipped, computed, failures, regions)


def _run_groups(groups: list[Group], suite: Suite, cache: Cache, n_samples: int, needs_permuted: bool,
                executor: str, ray_options: dict[str, Any], log: Log, bar: Any,
                results_by_cell: dict[str, CellResult], model_rows: list[dict[str, Any]],
                computed: dict[str, int], reliance_rows: list[dict[str, Any]],
                galleries: list[tuple[str, str, Any, dict[str, Any]]]) -> str:
    """Train or load each group's checkpoint, then run its cells (locally, group by group, each
    batch read once for all the group's cells; or on Ray, once every checkpoint exists).
    Returns the device the models ran on."""
    device = "cpu"
    ready: list[Group] = []  # groups whose checkpoint exists (the Ray executor dispatches their cells)
    splits_of: tuple[str, tuple[BaseDataset, BaseDataset, BaseDataset]] | None = None
    for group in groups:
        dspec, mspec, seed = group.dataset, group.model, group.seed
        if splits_of is None or splits_of[0] != dspec.label:
            splits_of = (dspec.label, build_splits(dspec))
        splits = splits_of[1]
        bar.set_postfix_str(f"model {mspec.label} on {dspec.label}")
        try:
            data, ckpt, twin = open_group(group, splits, cache, needs_permuted)
        except (CheckpointError, InputDataError):
            raise
        except FileNotFoundError as exc:  # a sample file went missing: bad input, not a failing cell
            raise InputDataError(f"dataset {dspec.label!r}: {exc}") from exc
        except Exception as exc:  # training ran out of memory, diverged, ...: the group's cells fail
            log(f"checkpoint {mspec.label} on {dspec.label} (seed {seed}) failed: {type(exc).__name__}: {exc}")
            for cell in group.cells:
                results_by_cell[cell.name] = CellResult(cell, failures=[failure_row(cell, "checkpoint", exc)])
            bar.update(len(group.cells))
            continue
        computed["checkpoints"] += (ckpt.origin == "trained") + (twin is not None and twin.origin == "trained")
        if ckpt.origin == "trained":
            log(f"trained {mspec.label} on {dspec.label} (seed {seed}): test accuracy "
                f"{ckpt.metrics['accuracy']:.3f}, AUC {ckpt.metrics['auc']:.3f}")
        model_rows.append({"model": mspec.label, "dataset": dspec.label, "seed": seed, **ckpt.metrics,
                           "architecture": mspec.name, "checkpoint": ckpt.key, "origin": ckpt.origin,
                           "parameters": ckpt.info.get("parameters")})
        device = str(next(ckpt.model.parameters()).device)
        if executor == "ray":
            ready.append(group)  # checkpoints first, on the driver; cells after, as tasks
            continue
        if can_intervene(splits[2]):
            reliance_rows += [{"dataset": dspec.label, "model": mspec.label, "seed": seed, **row}
                              for row in measure_reliance(ckpt.model, splits[2], n_samples)]
        runs = [CellRun(cell, data, suite.metrics, cache, suite.regions) for cell in group.cells]
        first: Any = None
        for batch, target in iter_batches(splits[2], dspec.label, n_samples, suite.batch_size, ckpt.model,
                                          suite.target, suite.subset):
            for run in runs:
                bar.set_postfix_str(run.cell.name)
                run.feed(batch, target)
            first = first if first is not None else batch
            if all(run.stopped for run in runs):
                break
        for run in runs:
            results_by_cell[run.cell.name] = run.finish()
        if first is not None and seed == suite.seeds[0]:
            galleries.append((dspec.label, mspec.label, first,
                              {run.cell.explainer.label: run.preview for run in runs if run.preview is not None}))
        bar.update(len(group.cells))
    if ready:
        from faithbench.runner.ray_executor import run_cells_on_ray

        cells = [cell for group in ready for cell in group.cells]
        for result in run_cells_on_ray(cells, suite, cache, n_samples, needs_permuted, bar=bar, **ray_options):
            results_by_cell[result.cell.name] = result
    return device
