"""Repeatability and reproducibility of saliency maps (Arun et al. 2021, "Assessing the
trustworthiness of saliency maps for localizing abnormalities in medical imaging", Radiology: AI).

Two maps of the same sample should agree when the model is trained again by the same recipe with
another seed (**repeatability**) and, less strictly, when another architecture is trained on the
same data (**reproducibility**). Agreement is measured per sample by

- ``ssim``: structural similarity (Wang et al. 2004) of the min-max normalised maps, Gaussian
  window σ = 1.5 (11 taps), K1 = 0.01, K2 = 0.03, data range 1, 2D or 3D
  (:func:`faithbench.metrics.functional.similarity.ssim`, equal to
  ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``);
- ``spearman``: Spearman rank correlation of the two maps over all pixels/voxels
  (:func:`~faithbench.metrics.functional.similarity.spearman_abs`; a constant map against a
  varying one scores 0, two constant maps 1),

after the ``postprocess`` (default ``abs``, as the randomisation checks) of both maps.

Baseline: random pairs. With the N shared units in a fixed order, unit i's map under a is
compared with the map of unit π(i) under b, π a seeded random derangement (no fixed point) within
each explained class (:func:`class_derangement`), so the baseline is the similarity of two maps of
*different* images explained for the *same* class by the same pair of models, as the similarity
itself compares maps of one class. A class-specific explainer (Grad-CAM) gives maps of two classes
that differ more than any two maps of one class; pairing across classes lowered the baseline and
made a pair of seeds look repeatable that agreed no better than two random images of its class (a
review: ρ 0.080 against a mixed baseline of −0.026, p = 0.006; against same-class pairs 0.073,
p = 0.45). A unit alone in its class has no partner: its baseline is NaN and the test leaves it out.
``p`` is the one-sided Wilcoxon signed-rank test (paired by sample) that the similarity exceeds
the baseline (:func:`faithbench.stats.paired.wilcoxon_pair`, alternative 'greater'); ``mean``,
``ci_low``, ``ci_high`` the mean over samples and its 95% percentile bootstrap CI
(:func:`faithbench.stats.bootstrap.bootstrap_ci`, 1000 resamples, seed 0).

Pairs: repeatability, for each model every pair of its seeds (a, b = the seeds), except a model in
``fixed_models`` (one that no seed retrains: a ``weights`` file, or pretrained without a recipe), whose
seeds all hold one checkpoint and would agree trivially (a review: 12 rows of 1.000, every p < 0.05);
reproducibility,
for each pair of models (a, b = the models) the maps of the same seed, over every seed the two
models share: a unit's similarities (and baselines) under those seeds are averaged, so each sample
is one observation (the seeds explain the same images; pooling them as independent observations
would inflate the test). The observation is the sample on single-label data (each map holds a
sample once), also when its two models explained class 0 under one seed and class 1 under another,
and the (sample, class) unit on multi-label data (a map holds a sample once per explained class).
Within one pair of checkpoints maps are matched by (sample id, explained class), as Arun et al.
compare maps of the same class: only units present in both maps count. With
``target: predicted`` two checkpoints that predict differently explain different classes of a
sample; such a sample is left out and counted in ``n_target_differs`` (the samples kept under both
checkpoints whose explained classes differ; for reproducibility over several seeds, the (seed,
sample) pairs: a sample left out under one seed still enters ``n`` through the seeds under which
the two models explained the same class). Maps given without targets are matched by id only.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from faithbench.metrics.base import postprocess as apply_postprocess
from faithbench.metrics.functional.similarity import spearman_abs, ssim
from faithbench.stats.bootstrap import bootstrap_ci
from faithbench.stats.paired import wilcoxon_pair

__all__ = ["REPEATABILITY_COLUMNS", "SIMILARITY_METRICS", "class_derangement", "derangement", "map_similarity",
           "repeatability_table"]

REPEATABILITY_COLUMNS = ["dataset", "explainer", "kind", "model", "a", "b", "metric", "mean", "ci_low", "ci_high",
                         "n", "n_target_differs", "baseline_mean", "p"]
SIMILARITY_METRICS = ("ssim", "spearman")
MapKey = tuple[str, str, str, int]
Kept = tuple[list[str], list[int], Tensor]  # (sample ids, explained classes, saliency (N, *spatial))
Maps = dict[MapKey, Kept | tuple[list[str], Tensor]]


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A seeded random permutation of range(n) with no fixed point (n >= 2): a uniformly random
    cyclic shift by 1..n-1 of a random order, so every i is paired with another sample."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 samples, got {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    shift = int(rng.integers(1, n))
    out = np.empty(n, dtype=int)
    out[order] = order[(np.arange(n) + shift) % n]
    return out


def class_derangement(classes, seed: int = 0) -> np.ndarray:
    """The partner of each unit for the random-pair baseline: a seeded :func:`derangement` of the
    units of each class (``classes``: one class per unit), -1 for a unit alone in its class. One
    class gives ``derangement(n, seed)`` itself. Example: classes [0, 1, 0, 1] -> [2, 3, 0, 1]."""
    classes = np.asarray(classes)
    out = np.full(classes.size, -1, dtype=int)
    for value in np.unique(classes):
        members = np.flatnonzero(classes == value)
        if members.size >= 2:
            out[members] = members[derangement(members.size, seed)]
    return out


def map_similarity(a: Tensor, b: Tensor, metric: str, postprocess: str = "abs") -> np.ndarray:
    """Per-sample similarity ``(N,)`` of two map stacks ``(N, *spatial)``: ``ssim`` or ``spearman``
    (see the module docstring), after ``postprocess`` (``abs``, ``relu`` or ``none``)."""
    if a.shape != b.shape:
        raise ValueError(f"expected two map stacks of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = apply_postprocess(a.detach().cpu().double(), postprocess), apply_postprocess(b.detach().cpu().double(),
                                                                                        postprocess)
    if metric == "ssim":
        return ssim(a, b).double().numpy()
    if metric == "spearman":  # a map with NaN is undefined, as under ssim (the ranks would give it a value)
        finite = (torch.isfinite(a) & torch.isfinite(b)).flatten(1).all(1).numpy()
        return np.where(finite, spearman_abs(a, b).double().numpy(), np.nan)
    raise ValueError(f"unknown similarity {metric!r}; expected one of {', '.join(SIMILARITY_METRICS)}")


def _units(value: Kept | tuple[list[str], Tensor]) -> Kept:
    """``(ids, targets, maps)`` of a kept value; a value without targets gets target -1 everywhere
    (so two such values are matched by id only)."""
    if len(value) == 2:
        ids, maps = value
        targets: list[int] = [-1] * len(ids)
    else:
        ids, targets, maps = value
    if not len(ids) == len(targets) == maps.shape[0]:
        raise ValueError(f"expected one sample id per map and one target per map, got {len(ids)} ids, "
                         f"{len(targets)} targets and {maps.shape[0]} maps")
    return [str(s) for s in ids], [int(t) for t in targets], maps


def _aligned(first: Kept | tuple[list[str], Tensor],
             second: Kept | tuple[list[str], Tensor]) -> tuple[Tensor, Tensor, int, list]:
    """The maps of the (sample id, target) units present in both, in sorted order, the number of
    sample ids present in both whose sets of explained targets differ (single-label: left out;
    multi-label: only their units present in one map are), and those units."""
    (ids_a, targets_a, maps_a), (ids_b, targets_b, maps_b) = _units(first), _units(second)
    pos_a = {unit: i for i, unit in enumerate(zip(ids_a, targets_a))}
    pos_b = {unit: i for i, unit in enumerate(zip(ids_b, targets_b))}
    shared = sorted(set(pos_a) & set(pos_b))
    classes_a: dict[str, set[int]] = {}
    classes_b: dict[str, set[int]] = {}
    for classes, units in ((classes_a, pos_a), (classes_b, pos_b)):
        for sid, target in units:
            classes.setdefault(sid, set()).add(target)
    differs = sum(classes_a[sid] != classes_b[sid] for sid in set(classes_a) & set(classes_b))
    index_a = torch.tensor([pos_a[u] for u in shared], dtype=torch.long)
    index_b = torch.tensor([pos_b[u] for u in shared], dtype=torch.long)
    return maps_a[index_a], maps_b[index_b], differs, shared


def _unit_mean(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else np.nan


def _pair_values(pairs: list[tuple[Tensor, Tensor, list]], metric: str, postprocess: str,
                 seed: int, by_sample: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(similarity, baseline similarity) per unit, in sorted unit order: a unit of several aligned
    pairs (the seeds two models share) gets the mean of its values there (NaN ones left out). A unit
    is the sample id (``by_sample``: single-label data, whose sample may be explained for class 0
    under one seed and class 1 under another and is still one observation), else the (sample id,
    class) pair (multi-label data: the classes of one image are separate units)."""
    values: dict = {}
    baseline: dict = {}
    for index, (a, b, units) in enumerate(pairs):
        if a.shape[0] == 0:
            continue
        if a.shape[1:] != b.shape[1:]:
            raise ValueError(f"expected maps of the same spatial shape, got {tuple(a.shape[1:])} "
                             f"and {tuple(b.shape[1:])}")
        similar = map_similarity(a, b, metric, postprocess)
        partner = class_derangement([target for _, target in units], seed + index)
        random_pairs = np.full(a.shape[0], np.nan)
        paired = partner >= 0
        if paired.any():
            random_pairs[paired] = map_similarity(a[torch.from_numpy(paired)], b[torch.from_numpy(partner[paired])],
                                                  metric, postprocess)
        for (sid, target), v, w in zip(units, similar, random_pairs):
            unit = sid if by_sample else (sid, target)
            values.setdefault(unit, []).append(float(v))
            baseline.setdefault(unit, []).append(float(w))
    order = sorted(values)
    return (np.array([_unit_mean(values[u]) for u in order], dtype=float),
            np.array([_unit_mean(baseline[u]) for u in order], dtype=float))


def _row(values: np.ndarray, baseline: np.ndarray, n_resamples: int, seed: int) -> dict:
    keep = ~np.isnan(values)
    low, high = bootstrap_ci(values[keep], n_resamples=n_resamples, seed=seed)
    _, p = wilcoxon_pair(values, baseline, alternative="greater")
    return {"mean": float(np.mean(values[keep])) if keep.any() else np.nan, "ci_low": low, "ci_high": high,
            "n": int(keep.sum()),
            "baseline_mean": float(np.nanmean(baseline)) if np.isfinite(baseline).any() else np.nan, "p": p}


def _comparisons(entries: dict[tuple[str, int], Kept],
                 fixed_models: Collection[str] = ()) -> list[tuple[str, str, str, str, list]]:
    """(kind, model, a, b, aligned pairs) of one (dataset, explainer): every pair of seeds of a model
    not in ``fixed_models`` (repeatability), every pair of models over their shared seeds (reproducibility)."""
    models = sorted({m for m, _ in entries})
    out: list[tuple[str, str, str, str, list]] = []
    for model in (m for m in models if m not in fixed_models):
        seeds = sorted(s for m, s in entries if m == model)
        for sa, sb in itertools.combinations(seeds, 2):
            pairs = [_aligned(entries[(model, sa)], entries[(model, sb)])]
            out.append(("repeatability", model, str(sa), str(sb), pairs))
    for ma, mb in itertools.combinations(models, 2):
        seeds = sorted({s for m, s in entries if m == ma} & {s for m, s in entries if m == mb})
        if seeds:
            pairs = [_aligned(entries[(ma, s)], entries[(mb, s)]) for s in seeds]
            out.append(("reproducibility", "", ma, mb, pairs))
    return out


def _check_maps(maps: Maps) -> None:
    if not isinstance(maps, dict):
        raise TypeError("expected a dict {(dataset, model, explainer, seed): (sample_ids, targets, saliency)}, "
                        f"got {type(maps).__name__}")
    for key, value in maps.items():
        if not (isinstance(key, tuple) and len(key) == 4):
            raise ValueError(f"expected keys (dataset, model, explainer, seed), got {key!r}")
        if not (isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[-1], Tensor)
                and value[-1].ndim in (3, 4)):
            raise ValueError(f"expected (sample_ids, targets, saliency (N, H, W) or (N, D, H, W)) for {key!r}, "
                             f"got {type(value).__name__}")


def repeatability_table(maps: Maps, *, postprocess: str = "abs", metrics: tuple[str, ...] = SIMILARITY_METRICS,
                        n_resamples: int = 1000, seed: int = 0, fixed_models: Collection[str] = ()) -> pd.DataFrame:
    """Repeatability (seeds of one model) and reproducibility (pairs of models) of saliency maps.

    ``maps``: ``{(dataset, model, explainer, seed): (sample_ids, targets, saliency (N, *spatial) raw)}``
    (``(sample_ids, saliency)``: targets unknown, matched by id only). One row per (dataset,
    explainer, kind, pair, metric) with the columns of ``REPEATABILITY_COLUMNS``: ``kind``
    "repeatability" (``model`` the model, ``a``, ``b`` its two seeds) or "reproducibility"
    (``model`` empty, ``a``, ``b`` the two models, same-seed maps over the shared seeds, a unit's
    values averaged over them); ``mean, ci_low, ci_high`` the mean similarity and its bootstrap CI,
    ``n`` the units (samples; multi-label: (sample, class)),
    ``n_target_differs`` the samples kept under both checkpoints but left out because they explain
    different classes (module docstring), ``baseline_mean`` the mean similarity of random pairs
    (maps of different samples explained for the same class, a seeded derangement within each
    class), ``p`` the one-sided Wilcoxon p-value of similarity > baseline (NaN with fewer than 2
    samples). Sorted by dataset, explainer, kind, model, a, b, metric; empty (with these columns)
    when no pair exists. A pair whose every shared sample differs in target still gets its rows
    (``n`` 0, NaN statistics), so the loss is seen. ``fixed_models``: model labels that no seed
    retrains (every seed the same checkpoint): no repeatability rows for them (their reproducibility
    rows stay).
    """
    _check_maps(maps)
    if isinstance(fixed_models, str):
        raise TypeError(f"expected fixed_models as a collection of model labels, got the string {fixed_models!r}")
    unknown = [m for m in metrics if m not in SIMILARITY_METRICS]
    if unknown:
        raise ValueError(f"expected metrics among {list(SIMILARITY_METRICS)}, got {unknown}")
    groups: dict[tuple[str, str], dict[tuple[str, int], Kept]] = {}
    for (dataset, model, explainer, run_seed), value in maps.items():
        groups.setdefault((str(dataset), str(explainer)), {})[(str(model), int(run_seed))] = value
    rows = []
    for (dataset, explainer), entries in sorted(groups.items()):
        # multi-label maps hold a sample once per explained class; a single-label map once
        by_sample = all(len(set(ids)) == len(ids) for ids, _, _ in map(_units, entries.values()))
        for kind, model, a, b, pairs in _comparisons(entries, {str(m) for m in fixed_models}):
            differs = sum(d for _, _, d, _ in pairs)
            for metric in metrics:
                values, baseline = _pair_values([(x, y, u) for x, y, _, u in pairs], metric, postprocess, seed,
                                                by_sample)
                if values.size == 0 and differs == 0:
                    continue
                rows.append({"dataset": dataset, "explainer": explainer, "kind": kind, "model": model, "a": a,
                             "b": b, "metric": metric, "n_target_differs": differs,
                             **_row(values, baseline, n_resamples, seed)})
    table = pd.DataFrame(rows, columns=REPEATABILITY_COLUMNS)
    if table.empty:
        return table
    return table.sort_values(["dataset", "explainer", "kind", "model", "a", "b", "metric"],
                             kind="stable").reset_index(drop=True)
