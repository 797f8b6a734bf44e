"""The local executor: suite -> cells -> tidy tables in the output folder."""

from __future__ import annotations

import json
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

from faithbench.config import Suite
from faithbench.datasets.base import BaseDataset
from faithbench.models.checkpoint import load_checkpoint
from faithbench.models.training import predict_logits
from faithbench.registry import datasets, explainers, metrics, models
from faithbench.runner.cache import Cache, atomic_write_bytes
from faithbench.runner.execute import CellResult, GroupData, run_cell
from faithbench.runner.plan import plan
from faithbench.types import Batch

Log = Callable[[str], None]


@dataclass
class RunResult:
    out_dir: Path
    results: pd.DataFrame
    curves: pd.DataFrame
    models: pd.DataFrame
    cost: pd.DataFrame
    skipped: pd.DataFrame
    computed: dict[str, int] = field(default_factory=dict)


def build_dataset(name: str, split: str, params: dict[str, Any]) -> BaseDataset:
    return datasets.get(name)(split=split, **params)


def load_group(dataset: BaseDataset, model: torch.nn.Module, n_samples: int, batch_size: int,
               target_mode: str) -> tuple[list[Batch], list[torch.Tensor]]:
    """The first ``n_samples`` test samples in batches, and the explained target per batch."""
    n = min(n_samples, len(dataset))
    if n == 0:
        raise ValueError(f"dataset {dataset.spec()['name']!r} split {dataset.split!r} is empty")
    batches, targets = [], []
    for start in range(0, n, batch_size):
        batch = Batch.collate([dataset[i] for i in range(start, min(n, start + batch_size))])
        if target_mode == "label":
            target = batch.label
        else:
            target = predict_logits(model, batch.x).argmax(-1)
        batches.append(batch)
        targets.append(target)
    return batches, targets


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("faithbench", "torch", "torchvision", "timm", "captum", "grad-cam", "quantus", "numpy",
                 "scipy", "pandas", "scikit-posthocs"):
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
              progress: bool = True, log: Log = print) -> RunResult:
    """Run every cell of ``suite`` and write the tables of the output folder.

    ``limit`` caps the samples per dataset (below ``suite.samples``).
    """
    cache = cache or Cache()
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    n_samples = min(suite.samples, limit) if limit else suite.samples
    groups = plan(suite)
    needs_permuted = any("permuted_model" in metrics.get(m.name).info.requires for m in suite.metrics)
    n_cells = sum(len(g.cells) for g in groups)
    computed = {"checkpoints": 0, "saliency": 0, "scores": 0}
    cell_results: list[CellResult] = []
    model_rows: list[dict[str, Any]] = []
    cell_info: dict[str, Any] = {}
    bar = tqdm(total=n_cells, desc=f"suite {suite.name}", unit="cell", disable=not progress)
    for group in groups:
        dspec, mspec, seed = group.dataset, group.model, group.seed
        train = build_dataset(dspec.name, "train", dspec.params)
        val = build_dataset(dspec.name, "val", dspec.params)
        test = build_dataset(dspec.name, "test", dspec.params)
        bar.set_postfix_str(f"model {mspec.label} on {dspec.label}")
        ckpt = load_checkpoint(mspec, train, val, test, seed, cache)
        if ckpt.origin == "trained":
            computed["checkpoints"] += 1
            log(f"trained {mspec.label} on {dspec.label} (seed {seed}): test accuracy "
                f"{ckpt.metrics['accuracy']:.3f}, AUC {ckpt.metrics['auc']:.3f}")
        model_rows.append({"model": mspec.label, "dataset": dspec.label, "seed": seed, **ckpt.metrics,
                           "architecture": mspec.name, "checkpoint": ckpt.key, "origin": ckpt.origin,
                           "parameters": ckpt.info.get("parameters")})
        batches, targets = load_group(test, ckpt.model, n_samples, suite.batch_size, suite.target)
        data = GroupData(ckpt.model, ckpt.key, test.fingerprint(), batches, targets, test.background)
        if needs_permuted:
            twin = load_checkpoint(mspec, train, val, test, seed, cache, permute_labels=True)
            computed["checkpoints"] += twin.origin == "trained"
            data.permuted_model, data.permuted_key = twin.model, twin.key
        for cell in group.cells:
            bar.set_postfix_str(cell.name)
            result = run_cell(cell, data, suite.metrics, cache)
            for key, value in result.computed.items():
                computed[key] += value
            cell_results.append(result)
            if result.info:
                cell_info[cell.name] = result.info
            bar.update(1)
    bar.close()

    results = pd.DataFrame([r for c in cell_results for r in c.rows])
    curves = pd.DataFrame([r for c in cell_results for r in c.curves])
    cost = pd.DataFrame([r for c in cell_results for r in c.cost])
    skipped = pd.DataFrame([{"cell": c.cell.name, "reason": c.skipped} for c in cell_results if c.skipped],
                           columns=["cell", "reason"])
    model_df = pd.DataFrame(model_rows)
    manifest = {
        "suite": suite.model_dump(mode="json"),
        "versions": versions(),
        "git": git_hash(),
        "plugins": plugin_origins(suite),
        "seeds": suite.seeds,
        "samples_per_dataset": n_samples,
        "cells": n_cells,
        "cell_info": cell_info,
        "computed": computed,
        "cache": str(cache.root),
        "seconds": round(time.time() - started, 2),
        "device": str(next(ckpt.model.parameters()).device) if groups else "cpu",
        "torch_threads": torch.get_num_threads(),
    }
    from faithbench.reports.writer import write_outputs

    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str).encode())
    write_outputs(out_dir, results, curves, model_df, cost, skipped)  # the report reads the manifest
    return RunResult(out_dir, results, curves, model_df, cost, skipped, computed)
