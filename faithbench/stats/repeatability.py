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

Baseline: random pairs of *different* images explained for the *same* class by the same pair of
checkpoints, as the similarity itself compares maps of one class (:func:`partner_baseline`). Unit i's
baseline is the mean similarity of its map under a with the map under b of every other unit j of its
class, and of its map under b with theirs under a (2(k − 1) pairs in a class of k units): the exact
expectation over the random partners, so it depends on no draw and not on which checkpoint is a. It
replaced one seeded random partner per unit (a derangement within each class), with which the verdict
was a draw: redrawing the partners 300 times on one run, saliency / max-pool CNN / spearman had
p = 0.0105 in the table but p < 0.05 in 5 % of the draws, Integrated Gradients / ssim p = 0.0647 but
< 0.05 in 85 % (a held-out review; against this baseline p 0.26 and 0.006). A class-specific
explainer (Grad-CAM) gives maps of two classes that differ more than any two maps of one class;
pairing across classes lowered the baseline and made a pair of seeds look repeatable that agreed no
better than two random images of its class (a review: ρ 0.080 against a mixed baseline of −0.026,
p = 0.006; against same-class pairs 0.073, p = 0.45). A unit alone in its class has no partner: its
baseline is NaN and the test leaves it out. Cost: at most k² similarities per class and pair of
checkpoints (the runner keeps 32 maps a cell: ≤ 1024), each map's SSIM moments filtered once.

Arun et al. 2021 judge repeatability and reproducibility by the mean SSIM of the saliency maps of two
replicates against that of two replicates of a localisation network (U-Net, RetinaNet: a high
baseline, no test); their low baseline, in the randomisation test, is the mean SSIM of 50 randomly
chosen pairs of maps of the trained model. faithbench has no localisation network to compare with: it
tests each pair of checkpoints against that low baseline, taken over every pair of the same class
rather than 50 random ones, per unit so that the test can be paired, and across the two checkpoints,
as the similarity is; it adds the Spearman similarity.

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
import warnings
from collections.abc import Collection

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from faithbench.metrics.base import postprocess as apply_postprocess
from faithbench.metrics.functional.similarity import spearman_abs, spearman_abs_matrix, ssim, ssim_matrix
from faithbench.stats.bootstrap import bootstrap_ci
from faithbench.stats.paired import wilcoxon_pair

__all__ = ["REPEATABILITY_COLUMNS", "SIMILARITY_METRICS", "map_similarity", "partner_baseline", "repeatability_table"]

REPEATABILITY_COLUMNS = ["dataset", "explainer", "kind", "model", "a", "b", "metric", "mean", "ci_low", "ci_high",
                         "n", "n_target_differs", "baseline_mean", "p"]
SIMILARITY_METRICS = ("ssim", "spearman")
MapKey = tuple[str, str, str, int]
Kept = tuple[list[str], list[int], Tensor]  # (sample ids, explained classes, saliency (N, *spatial))
Maps = dict[MapKey, Kept | tuple[list[str], Tensor]]


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


def partner_baseline(a: Tensor, b: Tensor, classes, metric: str, postprocess: str = "abs") -> np.ndarray:
    """The random-pair baseline of each unit ``(N,)``: the mean similarity of its map under one checkpoint
    with the map of every *other* unit of its class under the other, both ways round (``a[i]`` against
    ``b[j]`` and ``b[i]`` against ``a[j]``, j ≠ i in the class of i: 2(k − 1) pairs in a class of k), so it
    is exact (no draw) and the same with ``a`` and ``b`` swapped. NaN for a unit alone in its class;
    partners whose similarity is NaN (a map with NaN) are left out of the mean. ``classes``: one class per
    unit. Example: classes [0, 0, 1] give unit 0 the mean of s(a0, b1) and s(b0, a1), unit 2 NaN."""
    if a.shape != b.shape:
        raise ValueError(f"expected two map stacks of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    classes = np.asarray(classes)
    if classes.shape != (a.shape[0],):
        raise ValueError(f"expected one class per map ({a.shape[0]}), got {classes.size}")
    if metric not in SIMILARITY_METRICS:
        raise ValueError(f"unknown similarity {metric!r}; expected one of {', '.join(SIMILARITY_METRICS)}")
    a, b = apply_postprocess(a.detach().cpu().double(), postprocess), apply_postprocess(b.detach().cpu().double(),
                                                                                        postprocess)
    finite_a, finite_b = (torch.isfinite(m).flatten(1).all(1).numpy() for m in (a, b))
    out = np.full(a.shape[0], np.nan)
    for value in np.unique(classes):
        members = np.flatnonzero(classes == value)
        if members.size < 2:
            continue
        index = torch.from_numpy(members)
        pairwise = {"ssim": ssim_matrix, "spearman": spearman_abs_matrix}[metric](a[index], b[index]).numpy()
        pairwise[~finite_a[members]] = np.nan  # as map_similarity: a map with NaN or ±inf is undefined
        pairwise[:, ~finite_b[members]] = np.nan
        np.fill_diagonal(pairwise, np.nan)  # a unit is not its own partner
        both = np.concatenate([pairwise, pairwise.T], axis=1)  # row i: a[i] vs b[j], then a[j] vs b[i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row without a finite pair: NaN
            out[members] = np.nanmean(both, axis=1)
    return out


def _pair_values(pairs: list[tuple[Tensor, Tensor, list]], metric: str, postprocess: str,
                 by_sample: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(similarity, baseline similarity) per unit, in sorted unit order: a unit of several aligned
    pairs (the seeds two models share) gets the mean of its values there (NaN ones left out). A unit
    is the sample id (``by_sample``: single-label data, whose sample may be explained for class 0
    under one seed and class 1 under another and is still one observation), else the (sample id,
    class) pair (multi-label data: the classes of one image are separate units)."""
    values: dict = {}
    baseline: dict = {}
    for a, b, units in pairs:
        if a.shape[0] == 0:
            continue
        if a.shape[1:] != b.shape[1:]:
            raise ValueError(f"expected maps of the same spatial shape, got {tuple(a.shape[1:])} "
                             f"and {tuple(b.shape[1:])}")
        similar = map_similarity(a, b, metric, postprocess)
        random_pairs = partner_baseline(a, b, [target for _, target in units], metric, postprocess)
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
        seen: dict[tuple[str, int], int] = {}
        for unit in zip(*_units(value)[:2]):
            seen[unit] = seen.get(unit, 0) + 1
        (sid, target), count = max(seen.items(), key=lambda item: item[1], default=(("", -1), 0))
        if count > 1:
            what = f"sample id {sid!r}" + (f" with class {target}" if target != -1 else "")
            raise ValueError(f"expected each (sample id, class) once in the maps of {key!r}, "
                             f"got {what} {count} times")


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
    different classes (module docstring), ``baseline_mean`` the mean over units of their random-pair
    baseline (each unit's mean similarity to the maps of every other unit of its class under the other
    checkpoint, both ways round: :func:`partner_baseline`; no draw), ``p`` the one-sided Wilcoxon
    p-value of similarity > baseline (NaN with fewer than 2 samples). Sorted by dataset, explainer, kind, model, a,
    b, metric; empty (with these columns)
    when no pair exists. A pair whose every shared sample differs in target still gets its rows
    (``n`` 0, NaN statistics), so the loss is seen. ``fixed_models``: model labels that no seed
    retrains (every seed the same checkpoint): no repeatability rows for them (their reproducibility
    rows stay). ``seed``: the bootstrap's only. A map stack holding a (sample id, class) twice (an id twice,
    without targets) is a ValueError.
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
                values, baseline = _pair_values([(x, y, u) for x, y, _, u in pairs], metric, postprocess,
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
