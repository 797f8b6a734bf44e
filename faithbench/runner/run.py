"""Suite -> cells -> tidy tables in the output folder, on the local or the Ray executor.

Exit status of a run (see :attr:`RunResult.status`): every cell ok, *partial* when some cells failed
(``failures.csv`` lists them; the other cells' results are complete), or *failed* when cells failed and
no result row was computed. Bad input (:class:`~faithbench.runner.errors.InputDataError`, a checkpoint
that does not fit its dataset) stops the run; what was computed before it is in the cache, so a rerun resumes.

The run is :func:`~faithbench.runner.group.run_group` mapped over the suite's groups by an
executor (:mod:`faithbench.runner.executors`), then the tables, in plan order, whatever order
the groups finished in. Only this process writes the output folder (it holds ``<out>/.lock``)
and the cache: the local executor writes cache entries as it computes them; Ray tasks return
theirs and the driver writes them.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from faithbench.config import Suite
from faithbench.datasets.paths import DataError
from faithbench.device import caller_rng
from faithbench.models.checkpoint import CheckpointError
from faithbench.models.factory import check_pretrained_available
from faithbench.model_checks import trained_models, train_class_problem
from faithbench.reports.summaries import models_file
from faithbench.runner.calibration import CALIBRATION_COLUMNS
from faithbench.runner.cell import FAILURE_COLUMNS, REGION_COLUMNS
from faithbench.runner.errors import InputDataError, UsageError
from faithbench.runner.executors import EXECUTORS, RayOptions, run_groups
from faithbench.runner.group import GroupOutput, build_splits, forget_datasets, needed_splits
from faithbench.runner.lock import lock_output
from faithbench.runner.output import clear_owned, plugin_origins, plugin_packages, prepare_output, versions
from faithbench.runner.plan import plan
from faithbench.runner.result import RunResult, run_status
from faithbench.runner.reliability import reliability_summary
from faithbench.runner.settings import ReportSettings, RunSettings
from faithbench.names import safe_name
from faithbench.progress import bars_disabled, lines_through_bars, missing_glyphs_noted, outside_bars, quiet
from faithbench.store import Cache, atomic_write_bytes

Log = Callable[[str], None]


def preflight(suite: Suite, settings: RunSettings) -> dict[str, str]:
    """Check every model and dataset before anything is computed: pretrained weights can be had
    (:func:`~faithbench.models.factory.check_pretrained_available`), the splits its groups need build
    (:func:`~faithbench.runner.group.needed_splits`: only the test split when no model is trained on it),
    its test split is not empty, its train split is not empty where a model is trained on it, and its val
    split is not empty where a metric is calibrated on it.

    Returns ``{label: reason}`` for the ``optional`` datasets whose data cannot be had here (a
    :class:`~faithbench.datasets.paths.DataError`: no data root, a missing file that cannot be
    downloaded); the run skips them. Any other problem raises :class:`InputDataError`.
    """
    for model in suite.models:  # pretrained weights not to be had (offline, not cached): stop before any work
        check_pretrained_available(model)
    needs: dict[str, set[str]] = {}
    for group in plan(suite):
        needs.setdefault(group.dataset.label, set()).update(needed_splits(group, settings))
    unavailable: dict[str, str] = {}
    for i, spec in enumerate(suite.datasets):
        names = tuple(s for s in ("train", "val", "test") if s in needs.get(spec.label, {"test"}))
        try:
            splits = build_splits(spec, names)
        except InputDataError as exc:
            if spec.optional and isinstance(exc.__cause__, DataError):
                unavailable[spec.label] = f"optional dataset not available: {exc.__cause__}"
                continue
            raise
        if len(splits["test"]) == 0:
            raise InputDataError(f"dataset {spec.label!r}: the test split is empty")
        if "train" in splits and len(splits["train"]) == 0:
            raise InputDataError(f"dataset {spec.label!r}: the train split is empty, and a model is "
                                 f"trained on it")
        problem = "train" in splits and train_class_problem(  # as validate says where labels are cheap
            spec.label, trained_models(suite, spec, settings.needs_permuted), splits["train"])
        if problem:
            raise InputDataError(f"{suite.source}: datasets[{i}].params: {problem}")
        if settings.needs_validation and len(splits["val"]) == 0:
            raise InputDataError(f"dataset {spec.label!r}: the val split is empty, and a metric is "
                                 f"calibrated on it (threshold: val or gate: val)")
    return unavailable


def write_galleries(plots_dir: Path, outputs: list[GroupOutput], failures: pd.DataFrame | None = None,
                    seed: int | None = None) -> None:
    """Saliency galleries of the first explained samples per (dataset, model): the image, then
    each explainer's raw map, with the lesion outline when the dataset has one; each row names
    the sample's label and the predicted probability of the explained class. An explainer whose cell failed
    (``failures``, the run's failures table) after its first batch under ``seed`` (the galleries', the suite's
    first) has a column titled as failed."""
    from faithbench.reports.gallery import failed_explainers, gallery_stem, plot_saliency_gallery

    for out in outputs:
        gallery = out.gallery
        if gallery is None or not gallery.previews:
            continue
        plot_saliency_gallery(gallery.batch.x, gallery.previews, gallery.outline,
                              plots_dir / f"{gallery_stem(gallery.dataset, gallery.model)}.png",
                              time_axis=gallery.visits is not None, visits=gallery.visits,  # sequences: a row per visit
                              planes=gallery.planes or None, labels=gallery.labels, probs=gallery.probs,
                              ids=gallery.batch.ids,
                              failed=failed_explainers(failures, gallery.dataset, gallery.model, seed))


def default_out_dir(suite: Suite) -> Path:
    """``reports/<suite name>``, the name made safe so it cannot point outside ``reports/``."""
    return Path("reports") / safe_name(suite.name)  # never a path: no separators, no leading dot


def git_hash() -> str | None:
    """The commit of faithbench's source when it runs from a git checkout of it, with ``-dirty`` appended
    when its tracked files under the package differ from that commit (as ``git describe --dirty``); None
    outside a checkout, and for a copy installed inside another project's repository (its files untracked)."""
    package = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True, timeout=5)
        head = out.stdout.strip() if out.returncode == 0 else ""
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "--", "runner/run.py"], cwd=package,
                                 capture_output=True, text=True, timeout=5)
        if not head or tracked.returncode != 0:  # not a checkout, or faithbench installed inside another project's
            return None
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."], cwd=package,
                                 capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if changed.returncode == 0 and changed.stdout.strip() else "")


def computed_on(outputs: list[GroupOutput], default: str) -> str:
    """The device the groups computed on (``manifest.json``'s ``device``, ``RunResult.device``): a Ray task
    given a GPU computes on ``cuda`` whatever the driver's device (a review: the manifest named the driver's
    ``cpu``); ``mixed: cpu (1 group), cuda (3 groups)`` when they differ; ``default`` (the run's setting)
    when no group says."""
    counts: dict[str, int] = {}
    for out in outputs:
        if out.device:
            counts[out.device] = counts.get(out.device, 0) + 1
    if len(counts) <= 1:
        return next(iter(counts), default)
    return "mixed: " + ", ".join(f"{d} ({n} group{'s' if n > 1 else ''})" for d, n in sorted(counts.items()))


def run_suite(suite: Suite, out_dir: Path, *, cache: Cache | str | Path | None = None,
              executor: str | RayOptions | None = None, progress: bool = True, log: Log | None = None,
              report: bool = True, **settings: Any) -> RunResult:
    """Run every cell of ``suite`` and write the tables of the output folder (and, with
    ``report``, the derived tables, plots and HTML page: ``faithbench report`` can build them later).

    ``settings`` are those of :meth:`RunSettings.from_suite`: ``limit`` caps the samples per
    dataset (below ``suite.samples``); ``device`` (default: the suite's ``device``, ``auto``) is
    where models, explainers and metrics run. ``executor`` (default: the suite's) is ``local`` (in
    this process), ``ray`` (each group a Ray task on a local Ray instance or the one already
    initialised) or a :class:`~faithbench.runner.executors.RayOptions` (a cluster address, CPUs
    and GPUs per task).

    ``progress=False`` silences every bar, training bars included (:func:`faithbench.progress.quiet`), as
    ``FAITHBENCH_QUIET=1`` does whatever ``progress`` says.
    ``log`` takes each log line (None: ``print``), and faithbench's logged warnings (a model at chance)
    when given (else they go to stderr: :func:`~faithbench.progress.lines_through_bars`).
    A cell whose explainer or metric fails is recorded in ``failures.csv`` and the sweep goes on
    (``RunResult.status == "partial"``, ``"failed"`` when no cell gave a row). Raises :class:`InputDataError` or
    :class:`~faithbench.models.checkpoint.CheckpointError` for bad input and
    :class:`~faithbench.runner.errors.OutputInUseError` when another run holds ``out_dir``.
    """
    executor = executor if executor is not None else suite.executor  # '' is refused, not the suite's (a review)
    if not isinstance(executor, RayOptions) and executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    unknown = sorted(set(settings) - {"limit", "device"})
    if unknown:
        raise UsageError(f"run_suite: unknown setting {unknown[0]!r}; expected limit, device, cache, executor, "
                         "progress, log or report")
    run_settings = RunSettings.from_suite(suite, **settings)
    used = {"executor": "ray" if isinstance(executor, RayOptions) else executor,
            "device": run_settings.device if settings.get("device") is not None else None}  # as resolved: cuda:0
    overrides = {key: {"suite": getattr(suite, key), "run": value} for key, value in used.items()
                 if value not in (None, getattr(suite, key))}  # the manifest's suite stays as written (a review)
    cache = cache if isinstance(cache, Cache) else Cache(cache)  # a folder, as --cache (a review: a str failed)
    prepare_output(out_dir, cache.root)  # an unusable --out or cache: exit 2 before any work
    with lock_output(out_dir), quiet(not progress), lines_through_bars(log), \
            caller_rng(run_settings.device), missing_glyphs_noted():  # quiet: training bars too; glyphs: one line
        forget_datasets()
        try:
            return _run_locked(suite, out_dir, cache, run_settings, ReportSettings.from_suite(suite, build=report),
                               executor, overrides, log or print)  # log None: print; faithbench's warnings: stderr
        finally:
            forget_datasets()


def _run_locked(suite: Suite, out_dir: Path, cache: Cache, settings: RunSettings, report: ReportSettings,
                executor: str | RayOptions, overrides: dict[str, Any], log: Log) -> RunResult:
    started, commit = time.time(), git_hash()  # the code it starts with (a review: a commit landed mid-run was named)
    progress = not bars_disabled()  # run_suite's quiet(): progress=False, --quiet, or FAITHBENCH_QUIET=1 (a review)
    # bad data is reported before anything is trained; an optional dataset not here was warned of when the
    # suite was validated (one line: this log repeated it), and skipped.csv and the manifest keep its reason
    unavailable = preflight(suite, settings)
    resolved = suite  # the manifest records the suite as written
    suite = suite.model_copy(update={"datasets": [d for d in suite.datasets if d.label not in unavailable]})
    groups = plan(suite)
    n_cells = sum(len(g.cells) for g in groups)
    outputs: dict[int, GroupOutput] = {}
    bar = tqdm(total=n_cells, desc=f"suite {suite.name}", unit="cell", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}{postfix}]")

    def logged(line: str) -> None:
        with outside_bars():  # not glued to the bar's line in a redirected log (a review)
            log(line)

    try:
        run_groups(groups, settings, cache, executor, bar, logged, outputs)
        bar.update(n_cells - bar.n)  # every cell done: the fractions of batches summed to 1.9999999999999998 of 2
    except (InputDataError, CheckpointError) as exc:
        # bad data met while running (a soft mask, an unreadable sample) names the suite file, as validate's
        # sample checks do (review plugins5 F2)
        named = isinstance(exc, InputDataError) and suite.source not in ("<suite>", "<Suite>")
        if outputs or named:
            raise type(exc)((f"{suite.source}: " if named else "") + str(exc)
                            + (" (finished cells are cached; a rerun resumes)" if outputs else "")) from exc
        raise
    finally:
        bar.close()
    ordered = [outputs[i] for i in range(len(groups)) if i in outputs]  # plan order: tables do not
    tables = _tables(ordered, unavailable)                              # depend on the executor
    manifest = {
        "suite": resolved.model_dump(mode="json"),
        "overrides": overrides,  # executor, device: the suite's value and the run's, where the run replaced it
        "unavailable_datasets": unavailable,
        "versions": versions(),
        "git": commit,
        "plugins": plugin_origins(suite),
        "plugin_packages": plugin_packages(suite),
        "seeds": suite.seeds,
        "samples_per_dataset": settings.n_samples,
        "cells": n_cells,
        "status": run_status(tables["failures"], tables["results"]),
        "failed_cells": int(tables["failures"]["cell"].nunique()) if not tables["failures"].empty else 0,
        "executor": executor if isinstance(executor, str) else "ray",
        "cell_info": {c.cell.name: c.info for o in ordered for c in o.cells if c.info},
        "computed": tables["computed"],
        "cached": tables["cached"],
        "cache": str(Path(cache.root).resolve()),
        "seconds": round(time.time() - started, 2),
        "device": computed_on(ordered, settings.device),
        "model_inputs": {f"{o.group.dataset.label}/{o.group.model.label}": o.model_input
                         for o in ordered if o.model_row is not None},
        "control": report.control,
        "torch_threads": torch.get_num_threads(),
        "data_warnings": list(dict.fromkeys(w for o in ordered for w in o.warnings)),
    }
    try:
        _write_run(out_dir, suite, tables, ordered, manifest, report, progress)
    except OSError as exc:  # a full disk, a quota, a read-only folder: exit 2 naming it (a review: a raw exit 1)
        raise UsageError(_write_failure(out_dir, exc, written=False)) from None
    return RunResult(out_dir, tables["results"], tables["curves"], tables["models"], tables["cost"],
                     tables["skipped"], tables["computed"], tables["failures"], tables["regions"], tables["cached"],
                     manifest["device"])


def _tables(outputs: list[GroupOutput], unavailable: dict[str, str]) -> dict[str, Any]:
    """The tidy tables of the groups' outputs, in the order given."""
    cells = [c for o in outputs for c in o.cells]
    rel = [o.reliability.origin for o in outputs]  # groups whose reliability rows were re-scored or read
    computed = {"checkpoints": sum(o.trained for o in outputs), "saliency": 0, "scores": 0,
                "reliability": rel.count("computed")}
    cached = {"saliency": 0, "scores": 0, "reliability": rel.count("cached")}
    for result in cells:
        for key, value in result.computed.items():
            computed[key] = computed.get(key, 0) + value
        for key, value in result.cached.items():
            cached[key] = cached.get(key, 0) + value
    skipped = ([{"cell": label, "metric": "", "reason": reason} for label, reason in unavailable.items()]
               + [{"cell": c.cell.name, "metric": "", "reason": c.skipped} for c in cells if c.skipped]
               + [{"cell": c.cell.name, "metric": m, "reason": r} for c in cells for m, r in c.skipped_metrics])
    return {
        "results": pd.DataFrame([r for c in cells for r in c.rows]),
        "curves": pd.DataFrame([r for c in cells for r in c.curves]),
        "cost": pd.DataFrame([r for c in cells for r in c.cost]),
        "skipped": pd.DataFrame(skipped, columns=["cell", "metric", "reason"]),
        "failures": pd.DataFrame([f for c in cells for f in c.failures], columns=FAILURE_COLUMNS),
        "regions": pd.DataFrame([r for c in cells for r in c.regions], columns=REGION_COLUMNS),
        "models": models_file(pd.DataFrame([o.model_row for o in outputs if o.model_row is not None])),  # as written
        "reliance": [r for o in outputs for r in o.reliance],
        "drops": pd.DataFrame([r for o in outputs for r in o.drops]),
        "evidence_mass": pd.DataFrame([r for o in outputs for r in o.evidence_mass]),
        "samples": pd.DataFrame([r for o in outputs for r in o.samples]),
        "reliability": [o.reliability for o in outputs],
        "calibration": pd.DataFrame([r for o in outputs for r in o.calibration], columns=CALIBRATION_COLUMNS),
        "computed": computed,
        "cached": cached,
    }


def _write_samples(out_dir: Path, samples: pd.DataFrame, outputs: list[GroupOutput]) -> None:
    """``samples.csv`` (each explained sample's confidence, correctness and lesion area: the strata of the
    report) and ``repeatability.csv`` (saliency similarity across seeds and models, on the first maps of each
    cell; Arun et al. 2021; no seed pairs of a model without a recipe: every seed loads it unchanged)."""
    from faithbench.reports.medical import write_repeatability
    from faithbench.stats.repeatability import repeatability_table

    if not samples.empty:
        atomic_write_bytes(out_dir / "samples.csv", samples.to_csv(index=False).encode())
    maps = {(o.group.dataset.label, o.group.model.label, explainer, o.group.seed): kept
            for o in outputs for explainer, kept in o.maps.items()}
    fixed = {o.group.model.label for o in outputs if o.group.model.recipe is None}
    if maps and not (table := repeatability_table(maps, fixed_models=fixed)).empty:
        write_repeatability(out_dir, table)


def _write_failure(out_dir: Path, exc: OSError, *, written: bool) -> str:
    """The one line for a write into ``--out`` that failed: the tables, or (``written``) only the report
    after them (known from this run, not from the folder: an earlier run's manifest may still be there)."""
    what = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    if written:
        return (f"--out {out_dir}: the tables are written but not the report: {what}; rebuild it with `faithbench "
                f"report {out_dir}` once the folder can be written")
    return (f"--out {out_dir}: cannot write the run's tables: {what}; every result is cached: rerun `faithbench run` "
            "into a folder that can be written")


def _write_run(out_dir: Path, suite: Suite, tables: dict[str, Any], outputs: list[GroupOutput],
               manifest: dict[str, Any], report: ReportSettings, progress: bool = True) -> None:
    from faithbench.reports.integrity import row_counts
    from faithbench.reports.writer import (RUN_OUTPUTS, WRITING, build_report, log_model_warnings, read_optional_csv,
                                           write_outputs)

    clear_owned(out_dir)  # a reused --out keeps nothing of an earlier run; done after computing, so an
    # interrupted run leaves the previous results in place. One killed while writing leaves a manifest
    # that says so (report refuses the folder); the final manifest follows the tables, and the report
    # (rebuildable from them) comes last
    atomic_write_bytes(out_dir / "manifest.json", json.dumps({**manifest, "status": WRITING}, indent=2,
                                                             default=str).encode())
    failures = tables["failures"]
    if not failures.empty:
        atomic_write_bytes(out_dir / "failures.csv", failures.to_csv(index=False).encode())
    if tables["reliance"]:
        atomic_write_bytes(out_dir / "reliance.csv", pd.DataFrame(tables["reliance"]).to_csv(index=False).encode())
    if not tables["evidence_mass"].empty and not tables["drops"].empty:  # each explainer against the reliance
        from faithbench.reports.medical import write_reliance_saliency

        write_reliance_saliency(out_dir, tables["evidence_mass"], tables["drops"], report.control)
    if not tables["calibration"].empty:  # the thresholds and gates tuned on the validation split
        atomic_write_bytes(out_dir / "calibration.csv", tables["calibration"].to_csv(index=False).encode())
    if suite.regions is not None:  # before the report, which reads it
        atomic_write_bytes(out_dir / "regions.csv", tables["regions"].to_csv(index=False).encode())
    _write_samples(out_dir, tables["samples"], outputs)
    table, manifest["reliability"] = reliability_summary(suite.reliability, tables["reliability"])
    if table is not None:  # before the report, which adds the footnote
        from faithbench.reports.medical import write_reliability

        write_reliability(out_dir, table)
    write_galleries(out_dir / "plots", outputs, failures, suite.seeds[0])
    write_outputs(out_dir, tables["results"], tables["curves"], tables["models"], tables["cost"],
                  tables["skipped"], report=False)
    manifest["outputs"] = sorted(name for name in RUN_OUTPUTS if (out_dir / name).is_file())  # report requires them
    manifest["rows"] = row_counts({"results.parquet": tables["results"], "curves.parquet": tables["curves"],
                                   "models.csv": tables["models"], "samples.csv": tables["samples"]
                                   if (out_dir / "samples.csv").is_file() else None, "skipped.csv": tables["skipped"]})
    manifest["report"] = "pending" if report.build else "not built"  # build_report marks it complete
    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str).encode())
    if not report.build:  # the report logs them where it is built: once either way (a held-out review: none)
        log_model_warnings(*(read_optional_csv(out_dir / name) for name in ("models.csv", "samples.csv")))  # as read
        return
    try:
        build_report(out_dir, progress=progress)  # reads the manifest
    except OSError as exc:  # the tables are there: the report can be rebuilt
        raise UsageError(_write_failure(out_dir, exc, written=True)) from None
