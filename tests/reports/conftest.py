"""A small synthetic run folder, written as the runner would, with hostile names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = "<script>alert(1)</script>"
ALIAS = "cxr \"&<>' v1"
METRIC_UP = "hit_rate&co"  # higher is better; `_` and `&` for LaTeX
METRIC_DOWN = "deletion_auc"  # lower is better
EXPLAINERS = ["good", "random", SCRIPT, "weak"]
# Per explainer: mean of METRIC_UP and of METRIC_DOWN. "good" is best on both.
MEANS = {"good": (0.9, 0.2), "random": (0.5, 0.5), SCRIPT: (0.6, 0.45), "weak": (0.45, 0.55)}
# what a run writes before its report (results with rows: samples.csv too; writer.read_inputs)
INPUTS = ["results.parquet", "curves.parquet", "models.csv", "cost.csv", "skipped.csv", "manifest.json", "samples.csv"]


def synthetic_tables(seeds=(0, 1), n=8, mprt: bool = True) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    rows, curves, cost = [], [], []
    for seed in seeds:
        for explainer in EXPLAINERS:
            for metric, hib, column in ((METRIC_UP, True, 0), (METRIC_DOWN, False, 1)):
                for i in range(n):
                    rows.append({
                        "dataset": ALIAS, "model": "cnn", "explainer": explainer, "metric": metric, "seed": seed,
                        "sample_id": f"test-{i:03d}", "value": MEANS[explainer][column] + rng.normal(0, 0.03),
                        "chance": 0.3 if metric == METRIC_UP else np.nan, "higher_is_better": hib,
                        "category": "localisation" if hib else "faithfulness", "label": i % 2, "target": i % 2,
                    })
                cost.append({"dataset": ALIAS, "model": "cnn", "explainer": explainer, "seed": seed, "samples": n,
                             "stage": "metric", "metric": metric, "seconds": 0.5, "passes": 10 * n})
            cost.append({"dataset": ALIAS, "model": "cnn", "explainer": explainer, "seed": seed, "samples": n,
                         "stage": "explain", "metric": None, "seconds": 1.0 + EXPLAINERS.index(explainer),
                         "passes": n})
            names = [METRIC_DOWN] + (["mprt_similarity"] if mprt else [])
            for metric in names:
                for i in range(n):
                    for step, fraction in enumerate(np.linspace(0, 1, 5)):
                        curves.append({"dataset": ALIAS, "model": "cnn", "explainer": explainer, "metric": metric,
                                       "seed": seed, "sample_id": f"test-{i:03d}", "step": step,
                                       "fraction": fraction,
                                       "score": float(np.exp(-3 * fraction * MEANS[explainer][0])
                                                      + rng.normal(0, 0.02))})
    models = pd.DataFrame([{"model": "cnn", "dataset": ALIAS, "seed": s, "accuracy": 0.9 + 0.01 * s,
                            "f1": 0.88 + 0.01 * s, "auc": 0.95, "loss": 0.3, "architecture": "small_cnn",
                            "checkpoint": f"abc{s}", "origin": "trained", "parameters": 1000} for s in seeds])
    skipped = pd.DataFrame([{"cell": f"{ALIAS}/cnn/{SCRIPT}/seed0", "reason": "needs a <ViT> & 3D"}])
    return {"results": pd.DataFrame(rows), "curves": pd.DataFrame(curves), "models": models,
            "cost": pd.DataFrame(cost), "skipped": skipped}


def samples_table(results: pd.DataFrame) -> pd.DataFrame:
    """The runner's samples.csv for ``results``: one row per explained (sample, target) of each checkpoint."""
    keys = ["dataset", "model", "seed", "sample_id", "target"]
    samples = results[keys + ["label"]].drop_duplicates(keys).copy()
    samples["confidence"], samples["correct"], samples["lesion_area"] = 0.8, True, np.nan
    return samples


def complete_run_folder(path: Path, manifest: dict | None = None) -> Path:
    """Give a folder holding ``results.parquet`` the other inputs a run writes (empty tables, as a
    run without them would; ``manifest``, default ``{}``, when there is none), so its report builds."""
    from faithbench.reports.writer import CURVE_COLUMNS

    results = pd.read_parquet(path / "results.parquet")
    if not (path / "curves.parquet").exists():
        pd.DataFrame(columns=CURVE_COLUMNS).to_parquet(path / "curves.parquet", index=False)
    for name in ("models.csv", "cost.csv", "skipped.csv"):
        if not (path / name).exists():
            (path / name).write_text("\n")  # an empty DataFrame's to_csv
    if not (path / "manifest.json").exists():
        (path / "manifest.json").write_text(json.dumps(manifest or {}))
    if not results.empty and not (path / "samples.csv").exists():
        samples_table(results).to_csv(path / "samples.csv", index=False)
    return path


def write_run_folder(path: Path, **kwargs) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    tables = synthetic_tables(**kwargs)
    tables["results"].to_parquet(path / "results.parquet", index=False)
    tables["curves"].to_parquet(path / "curves.parquet", index=False)
    for name in ("models", "cost", "skipped"):
        tables[name].to_csv(path / f"{name}.csv", index=False)
    samples_table(tables["results"]).to_csv(path / "samples.csv", index=False)
    suite = {"name": "synthetic <b>suite</b>", "description": f"made for tests {SCRIPT}", "seeds": [0, 1],
             "samples": 8, "target": "predicted",
             "datasets": [{"name": "phantom_cxr", "alias": ALIAS, "params": {}}],
             "models": [{"name": "small_cnn", "alias": "cnn", "params": {}}],
             "explainers": [{"name": e, "alias": None, "params": {}} for e in EXPLAINERS],
             "metrics": [{"name": METRIC_UP, "alias": None}, {"name": METRIC_DOWN, "alias": None}]}
    manifest = {"suite": suite, "seeds": [0, 1], "samples_per_dataset": 8, "cells": 8, "git": None,
                "versions": {"python": "3.11"}, "device": "cpu", "seconds": 1.0, "outputs": sorted(INPUTS)}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def copy_inputs(src: Path, dst: Path) -> Path:
    """Only the tidy inputs of a run folder: a report must rebuild everything else from them."""
    dst.mkdir(parents=True)
    for name in INPUTS:
        shutil.copy(src / name, dst / name)
    return dst


def folder_files(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of ``folder`` with its mtime and bytes, but ``.lock`` (a report holds it as a run does: it records
    the holder's pid): what a refused report must leave as it was."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture
def run(built: Path, tmp_path: Path) -> Path:
    """A copy of the synthetic run folder with its report built (derived tables and plots there)."""
    return Path(shutil.copytree(built, tmp_path / "run"))


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run_folder(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="session")
def built(run_folder: Path) -> Path:
    """The synthetic run folder with its report built once (all formats)."""
    from faithbench.reports import build_report

    build_report(run_folder)
    return run_folder


@pytest.fixture
def make_run():
    """``make_run(path, mprt=True)`` writes a fresh synthetic run folder (tidy inputs only)."""
    return write_run_folder


@pytest.fixture
def names() -> dict:
    return {"script": SCRIPT, "alias": ALIAS, "up": METRIC_UP, "down": METRIC_DOWN, "explainers": EXPLAINERS,
            "inputs": INPUTS, "copy_inputs": copy_inputs, "complete": complete_run_folder}


QUICK_EXPLAINERS = ["gradcam", "saliency", "integrated_gradients", "random", "sobel"]
QUICK_MODELS = ["small_cnn", "resnet18", "vit_tiny"]
QUICK_METRICS = {"deletion_auc": False, "insertion_auc": True, "pointing_game": True, "pointing_game_t4": True,
                 "relevance_mass": True, "mass_on_marker": True}


def quick_leaderboard(n: int = 32) -> pd.DataFrame:
    """A leaderboard of the quick suite's shape (5 explainers x 3 models x 6 metrics on one dataset),
    with the widest values that suite gives (three decimals, CIs on both sides), its categories
    (two faithfulness metrics, four localisation ones) and a chance level for the localisation ones."""
    rng = np.random.default_rng(0)
    rows = []
    for model in QUICK_MODELS:
        for metric, hib in QUICK_METRICS.items():
            means = rng.uniform(0.1, 0.9, len(QUICK_EXPLAINERS))
            order = (-means if hib else means).argsort().argsort() + 1
            perturbation = metric.endswith("_auc")  # the quick suite's faithfulness metrics
            for explainer, mean, rank in zip(QUICK_EXPLAINERS, means, order):
                rows.append({"dataset": "phantom_cxr", "model": model, "metric": metric, "explainer": explainer,
                             "mean": mean, "ci_low": mean - 0.081, "ci_high": mean + 0.079, "median": mean,
                             "n": n, "chance": np.nan if perturbation else 0.042, "rank": float(rank),
                             "higher_is_better": hib, "category": "faithfulness" if perturbation else "localization",
                             "p_vs_random": 0.001 if explainer != "random" else np.nan,
                             "beats_random": explainer != "random"})
    return pd.DataFrame(rows)


@pytest.fixture
def quick_board():
    """``quick_board(n=32)``: :func:`quick_leaderboard`."""
    return quick_leaderboard
