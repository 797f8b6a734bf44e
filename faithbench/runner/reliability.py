"""Metric reliability in a run: each metric re-scored under a minor and a disruptive perturbation.

The idea of MetaQuantus (Hedström et al. 2023): a reliable metric keeps the explainers' ranking
when the model or input changes a little (noise resilience) and changes it when the model is
destroyed (adversary reactivity). With the suite's ``reliability: N`` (default 8; 0: off), each
group's first ``k = min(N, first batch)`` explained samples are explained again by every cell's
explainer under the two perturbed conditions of
:func:`~faithbench.metrics.reliability.perturbed_conditions` (the weights plus small Gaussian
noise; fully re-initialised weights) and scored by every metric of the cell, on the run's device.
Control explainers (``family == "control"``: random, sobel, center_prior) are left out, as from
repeatability: a map that does not look at the model cannot react to its randomisation (capping
``ar_scores`` at (n - 1) / n with n explainers) and its misses break the real explainers'
ties (a held-out review: 6 of 16 verdicts changed with ``random`` in).

When the ``k`` samples are the cell's whole first batch, the ``original`` condition is not
recomputed: its values are the cell's own rows (the main results), reused; this is exact because
explainers and metrics are seeded (``tests/runner/test_reliability_run.py`` re-explains and
re-scores it and compares). When ``k`` is smaller than the batch, the original is re-scored on the
``k`` samples: the maps of a slice equal the slice of the maps (measured for 7 explainers), but
batch-level metrics (consistency, sufficiency, focus) and metrics whose random draws are shaped by
the batch (sensitivity-n, faithfulness correlation, the robustness metrics, ...) score a slice
differently, so all three conditions must see the same batch.

Metrics that cannot be re-scored, or whose re-scoring costs too much, are left out and named
(:func:`skip_reason`): per-region metrics (``regions.csv``), metrics that need the permuted-label
twin checkpoint, and randomisation checks (they perturb the model or class themselves, and MPRT
re-explains once per randomised layer). The tidy rows go to
:func:`~faithbench.stats.reliability.metric_reliability`, which writes ``reliability.csv`` and
the leaderboard's footnote. The rows of a group are cached (:func:`cached_reliability_rows`):
computing them costs two extra explanations and scorings of ``k`` samples per cell (three when
``k`` is smaller than the first batch); a rerun reads them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from torch import Tensor

from faithbench.metrics.base import EvalContext, ForwardCounter, Metric
from faithbench.metrics.reliability import perturbed_conditions
from faithbench.runner.cell import CellRun, GroupData
from faithbench.runner.guard import InputGuard
from faithbench.runner.plan import Group
from faithbench.stats.reliability import metric_reliability
from faithbench.store import Cache, make_key
from faithbench.types import Batch, Category

PERTURBED = ("minor", "disruptive")
RescoreProgress = Callable[[int, int, str], None]  # (re-scored so far, to re-score, which cell under which condition)
VERSION = "3"  # of the re-scoring, in the cache key of its rows: bump when the conditions or the rows change
# 3: rank_biserial ties differences equal up to float rounding (nr_scores, ar_scores of seed-averaged 0/1 metrics)


@dataclass
class ReliabilityScores:
    """The tidy rows (dataset, model, seed, explainer, metric, sample_id, condition, value,
    higher_is_better) of one group, the metrics left out (``{metric: reason}``) and log lines
    for the (cell, metric, condition) that failed."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    reason: str = ""  # why nothing was computed (fewer than two explainers)
    failed: int = 0  # (cell, condition) explanations and (cell, metric, condition) scorings that raised
    origin: str = ""  # "computed" now, "cached" (read), "": nothing to compute


def skip_reason(label: str, metric: Metric, run: CellRun) -> str | None:
    """Why ``metric`` is not re-scored under the perturbed conditions (None: it is)."""
    if label in run.per_region:
        return "per-region scores (regions.csv), not one value per sample"
    if "permuted_model" in metric.info.requires:
        return "needs the permuted-label twin checkpoint, which the conditions do not perturb"
    if metric.info.category == Category.RANDOMIZATION:
        return ("a randomisation check: it perturbs the model or class itself (re-explaining once per "
                "randomised layer for MPRT), too costly and circular to re-score")
    return None


def sample_keys(batch: Batch, target: Tensor, k: int) -> list[str]:
    """The first ``k`` explained units' ids: ``sample_id``, or ``sample_id#class`` on a
    multi-label batch (one unit per explained class), so every key is unique."""
    ids = list(batch.ids[:k])
    if batch.labels is None:
        return ids
    return [f"{sid}#{int(t)}" for sid, t in zip(ids, target[:k].tolist())]


def original_values(run: CellRun, label: str, batch: Batch, target: Tensor, k: int) -> list[float]:
    """The cell's own values of ``label`` for the first ``k`` units of ``batch`` (NaN where the
    metric was undefined: no row)."""
    kept = {(r["sample_id"], r["target"]): r["value"] for r in run.result.rows if r["metric"] == label}
    return [kept.get((sid, int(t)), math.nan) for sid, t in zip(batch.ids[:k], target[:k].tolist())]


def reliability_rows(group: Group, data: GroupData, runs: list[CellRun], first: tuple[Batch, Tensor],
                     samples: int, recompute_original: bool = False, progress: RescoreProgress | None = None,
                     ) -> ReliabilityScores:
    """Scores of the first ``samples`` units of ``first`` under each condition (module docstring).
    ``recompute_original``: explain and score the original condition again instead of reusing
    the cell's rows (for the test that the two agree). ``progress(done, total, what)`` is called
    before each (cell, condition) is re-scored: the suite's bar is full by then (a review waited
    37 s at "100 %" with no count)."""
    batch, target = first
    k = min(samples, len(batch))
    x, t, label = batch.x[:k], target[:k], batch.label[:k]
    masks = {name: m[:k] for name, m in batch.masks.items()}
    labels = None if batch.labels is None else batch.labels[:k]
    keys = sample_keys(batch, target, k)
    out = ReliabilityScores()
    live = _live(runs)
    if len(live) < 2:  # a ranking needs two explainers
        out.reason = (f"a ranking needs at least 2 explainers besides the controls; {group.dataset.label} / "
                      f"{group.model.label} has {len(live)}")
        out.log.append(f"reliability: not computed: {out.reason}")
        return out

    def add(run: CellRun, label: str, metric: Metric, condition: str, values: list[float]) -> None:
        out.rows.extend({"dataset": group.dataset.label, "model": group.model.label, "seed": group.seed,
                         "explainer": run.cell.explainer.label, "metric": label, "sample_id": sid,
                         "condition": condition, "value": value, "higher_is_better": metric.higher_is_better}
                        for sid, value in zip(keys, values))

    scored: dict[tuple[str, str], list[tuple[Any, Metric]]] = {}  # (cell, condition) -> metrics to score
    for run in live:
        for spec, metric in run.active:
            reason = skip_reason(spec.label, metric, run)
            if reason:
                out.skipped.setdefault(spec.label, reason)
                continue
            for condition in PERTURBED:
                scored.setdefault((run.cell.name, condition), []).append((spec, metric))
            if recompute_original or k < len(batch):  # a slice of the cell's batch: stochastic metrics draw differently
                scored.setdefault((run.cell.name, "original"), []).append((spec, metric))
            else:
                add(run, spec.label, metric, "original", original_values(run, spec.label, batch, target, k))
    if not scored:
        return out
    conditions = perturbed_conditions(data.model, x, seed=group.seed)  # two model copies: only when used
    jobs = [(c, run) for c in ("original",) + PERTURBED for run in live if scored.get((run.cell.name, c))]
    for done, (condition, run) in enumerate(jobs):
        model, xc = conditions[condition]
        if progress is not None:
            progress(done, len(jobs), f"{run.cell.name} under {condition}")
        inputs = InputGuard(masks, x=xc, target=t, label=label, labels=labels)
        try:
            with data.guarded(f"explainer {run.explainer.name!r}", inputs):
                saliency = run.explainer(model, xc, t)
            inputs.add("saliency", saliency)
        except Exception as exc:
            out.log.append(f"reliability: {run.cell.name} under {condition}: explainer failed: {exc}")
            out.failed += 1
            continue
        for spec, metric in scored[(run.cell.name, condition)]:
            ctx = EvalContext(model=model, x=xc, target=t, label=label, saliency=saliency, masks=masks,
                              predict=ForwardCounter(model), explainer=run.explainer, background=data.background,
                              seed=group.seed, multilabel=data.multilabel, labels=labels, classes=data.classes,
                              mask_roles=data.mask_roles, ids=batch.ids[:k])
            try:
                with data.guarded(f"metric {spec.label!r}", inputs, ctx):
                    values = metric(ctx).value.double().cpu().tolist()
            except Exception as exc:
                out.log.append(f"reliability: {spec.label} in {run.cell.name} under {condition} failed: {exc}")
                out.failed += 1
                continue
            add(run, spec.label, metric, condition, values)
    out.log += _skip_log(out.skipped)
    return out


def _skip_log(skipped: dict[str, str]) -> list[str]:
    """One log line per reason a metric was not re-scored, naming its metrics."""
    by_reason: dict[str, list[str]] = {}
    for label, reason in sorted(skipped.items()):
        by_reason.setdefault(reason, []).append(label)
    return [f"reliability: not re-scored ({reason}): {', '.join(labels)}" for reason, labels in by_reason.items()]


def _live(runs: list[CellRun]) -> list[CellRun]:
    """The cells whose explainer ranks in the check: explained, not stopped, not a control."""
    return [run for run in runs if not run.stopped and run.explainer is not None and run.explainer.family != "control"]


def cached_reliability_rows(store: Cache, group: Group, data: GroupData, runs: list[CellRun],
                            first: tuple[Batch, Tensor], samples: int, progress: RescoreProgress | None = None,
                            ) -> ReliabilityScores:
    """:func:`reliability_rows`, read from the cache when the same cells (explainers and metrics with
    their parameters), checkpoint, seed and first batch were re-scored before, and stored when
    nothing failed (a failure is retried by the next run). A rerun redid it every time (a held-out
    review: 5.9 s of a fully cached rerun that took 0.74 s without it). The key holds the cells as a
    set (sorted by their specs' canonical JSON: every draw is seeded from the seed, not from a cell's
    position) and no label: the rows read get the current dataset, model, explainer and metric labels
    through the specs stored with them (a review: reordering the suite or renaming an alias re-scored
    every cell). Two entries with the same spec under two aliases keep their labels in the key.
    ``origin`` of the result: ``computed`` or ``cached`` (the closing line's and manifest's counts)."""
    batch, target = first
    live = _live(runs)
    if len(live) < 2:  # nothing to compute: no ranking (its reason names the current labels)
        return reliability_rows(group, data, runs, first, samples, progress=progress)
    explainers, metrics = _canonical_labels(live, batch, labelled=False)
    if len(set(explainers.values())) < len(explainers) or len(set(metrics.values())) < len(metrics):
        explainers, metrics = _canonical_labels(live, batch, labelled=True)  # a spec twice: labels tell them apart
    cells = sorted([explainers[run.cell.explainer.label], sorted(metrics[s.label] for s, _ in run.active)]
                   for run in live)
    key = make_key("reliability", VERSION, data.dataset_fingerprint, data.checkpoint_key, group.seed, samples,
                   list(batch.ids), target.tolist(), cells)
    cached = store.get_json("reliability", key)
    if cached is not None:
        return _relabelled(cached, group, explainers, metrics)
    out = reliability_rows(group, data, runs, first, samples, progress=progress)
    if not out.failed:
        store.put_json("reliability", key, {**asdict(out), "labels": {"explainers": explainers, "metrics": metrics}})
    out.origin = "computed"
    return out


def _canonical_labels(live: list[CellRun], batch: Batch, labelled: bool) -> tuple[dict[str, str], dict[str, str]]:
    """``({explainer label: canonical JSON of its spec}, {metric label: of its spec})`` of the live
    cells; ``labelled``: the label in each too."""
    def canon(label: str, spec: Any) -> str:
        return json.dumps([label, spec] if labelled else spec, sort_keys=True, default=str, separators=(",", ":"))

    explainers, metrics = {}, {}
    for run in live:
        rng = run.explainer.draws_on(batch.x.device)  # a GPU's draws, as in the saliency key (helper 119)
        explainers[run.cell.explainer.label] = canon(run.cell.explainer.label,
                                                     [run.explainer.spec(), *([rng] if rng else [])])
        metrics.update((s.label, canon(s.label, m.spec())) for s, m in run.active)
    return explainers, metrics


def _relabelled(cached: dict[str, Any], group: Group, explainers: dict[str, str],
                metrics: dict[str, str]) -> ReliabilityScores:
    """The cached scores with the current labels: the stored labels map to specs, the specs to the
    current labels (both one to one: :func:`cached_reliability_rows`)."""
    labels = cached.pop("labels")
    by_spec = {spec: label for label, spec in explainers.items()}
    explainer = {old: by_spec[spec] for old, spec in labels["explainers"].items()}
    by_spec = {spec: label for label, spec in metrics.items()}
    metric = {old: by_spec[spec] for old, spec in labels["metrics"].items()}
    out = ReliabilityScores(**cached)
    out.rows = [{**r, "dataset": group.dataset.label, "model": group.model.label,
                 "explainer": explainer[r["explainer"]], "metric": metric[r["metric"]]} for r in out.rows]
    out.skipped = {metric[m]: reason for m, reason in out.skipped.items()}
    out.log = _skip_log(out.skipped)  # the only lines of a stored (failure-free) result
    out.origin = "cached"
    return out


def reliability_summary(samples: int, groups: list[ReliabilityScores]) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The table of :func:`~faithbench.stats.reliability.metric_reliability` over every group's
    scores (None when there is none) and the manifest's ``reliability`` entry: ``samples`` (the
    suite's N), ``status`` (``off``, ``computed`` or ``not computed``), ``note`` (one line for the
    report when there is no table) and ``skipped`` (``{metric: reason}``, metrics not re-scored)."""
    skipped = {m: r for g in groups for m, r in g.skipped.items()}
    info: dict[str, Any] = {"samples": samples, "status": "off", "note": "", "skipped": skipped}
    if not samples:
        info["note"] = "Metric reliability is off (the suite sets reliability: 0)."
        return None, info
    rows = [r for g in groups for r in g.rows]
    if not rows:
        reasons = sorted({g.reason for g in groups if g.reason}) or (
            ["no metric could be re-scored"] if skipped else ["no cell was explained"])
        info.update(status="not computed", note="Metric reliability could not be computed: " + "; ".join(reasons)
                    + ".")
        return None, info
    info["status"] = "computed"
    return metric_reliability(pd.DataFrame(rows)), info
