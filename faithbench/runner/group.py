"""One (dataset, model, seed) group, start to finish: :func:`run_group`.

A group builds its dataset's splits (only the test split when its checkpoint is not trained, and
the val split when a metric is calibrated on it: :mod:`faithbench.runner.calibration`), trains or
loads its checkpoint (and the permuted-label twin when a metric needs it), measures
the model's reliance on planted evidence where the dataset can intervene, runs every cell of
the group on the same batches, and keeps the first batch for the saliency gallery
(:mod:`faithbench.runner.gallery`). The local
and the Ray executors only map :func:`run_group` over the groups, so both produce the same
:class:`GroupOutput` and the same output folder.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from faithbench.config import DatasetSpec
from faithbench.datasets.base import BaseDataset
from faithbench.datasets.paths import DataError
from faithbench.device import full_float32
from faithbench.metrics.functional.localization import relevance_mass
from faithbench.models.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from faithbench.models.reliance import EVIDENCE, can_intervene, sample_drops, summarise_drops
from faithbench.registry import datasets
from faithbench.runner.batches import iter_batches
from faithbench.runner.calibration import calibrate_runs
from faithbench.runner.cell import CellResult, CellRun, GroupData, failure_row
from faithbench.runner.errors import InputDataError
from faithbench.runner.gallery import GALLERY_ROWS, GALLERY_SAMPLES, Gallery, gallery_rows, make_gallery
from faithbench.runner.guard import ModelGuard
from faithbench.runner.plan import Group
from faithbench.runner.reliability import ReliabilityScores, cached_reliability_rows
from faithbench.runner.settings import RunSettings
from faithbench.store import Cache, CacheWriteError, make_key
from faithbench.runner.targets import truth_mask
from faithbench.scores import target_score
from faithbench.types import Batch

MAPS_KEPT = 32  # per cell, the first explained samples' maps, for repeatability across seeds and models

Progress = Callable[[float, str], None]  # (cells done, what is running)


@dataclass
class GroupOutput:
    """What a group computed: its cells' results, the checkpoint's row of ``models.csv``, the
    rows of ``reliance.csv`` (and per sample: ``drops``, each cell's ``evidence_mass``) and the
    gallery; ``trained`` counts checkpoints trained now."""

    group: Group
    cells: list[CellResult] = field(default_factory=list)
    model_row: dict[str, Any] | None = None
    reliance: list[dict[str, Any]] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)  # models.reliance.sample_drops, with the group's keys
    evidence_mass: list[dict[str, Any]] = field(default_factory=list)  # each map's relevance mass on each evidence
    warnings: list[str] = field(default_factory=list)  # what its datasets warned of (manifest.json)
    gallery: Gallery | None = None
    trained: int = 0
    device: str = ""  # where the group computed (manifest.json; a Ray task with a GPU: cuda, a review)
    log: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)  # rows of samples.csv
    model_input: dict[str, Any] | None = None
    reliability: ReliabilityScores = field(default_factory=ReliabilityScores)  # scores under perturbed conditions
    # explainer -> (sample ids, explained classes, saliency): the kept maps (repeatability)
    maps: dict[str, tuple[list[str], list[int], Tensor]] = field(default_factory=dict)
    calibration: list[dict[str, Any]] = field(default_factory=list)  # rows of calibration.csv

    @classmethod
    def failed(cls, group: Group, stage: str, exc: BaseException) -> GroupOutput:
        """Every cell of ``group`` failed at ``stage`` with ``exc`` (one failure row each)."""
        return cls(group, cells=[CellResult(cell, failures=[failure_row(cell, stage, exc)]) for cell in group.cells])


_BUILT: OrderedDict[str, BaseDataset] = OrderedDict()  # recently built splits of this process
_BUILT_MAX = 6
TWIN_FIT_MIN = 0.9  # below: the permuted-label twin is warned of as not having memorised its labels
RELIANCE_VERSION = "1"  # in the cache key of the reliance rows: bump when sample_drops changes


def build_dataset(name: str, split: str, params: dict[str, Any]) -> BaseDataset:
    """A split of a registered dataset. The last few built are kept during a run, so the groups
    of one dataset (and the preflight before them) build each split once."""
    key = make_key(name, split, params)
    if key in _BUILT:
        _BUILT.move_to_end(key)
        return _BUILT[key]
    dataset = datasets.get(name)(split=split, **params)
    _BUILT[key] = dataset
    while len(_BUILT) > _BUILT_MAX:
        _BUILT.popitem(last=False)
    return dataset


def forget_datasets() -> None:
    """Drop the kept splits (a run starts and ends with this: files may change between runs)."""
    _BUILT.clear()


def build_splits(spec: DatasetSpec, splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, BaseDataset]:
    """The named splits of a dataset entry; a dataset that cannot be built (missing files, a data
    root that does not exist) raises :class:`InputDataError` naming the entry and split."""
    out = {}
    for split in splits:
        try:
            out[split] = build_dataset(spec.name, split, spec.params)
        except Exception as exc:  # noqa: BLE001 - a plugin's own error too (RuntimeError, ImportError): named
            why = "" if isinstance(exc, (ValueError, OSError)) else f"cannot be built: {type(exc).__name__}: "
            raise InputDataError(f"dataset {spec.label!r} ({split} split): {why}{exc}") from exc
    return out


def needed_splits(group: Group, settings: RunSettings) -> tuple[str, ...]:
    """A checkpoint that is trained (a recipe; the permuted-label twin) needs train and val; one
    with fixed weights (a file, or pretrained without a recipe) needs only the test split, and
    the val split when a metric is calibrated on it (``settings.needs_validation``)."""
    trains = group.model.recipe is not None or settings.needs_permuted
    if trains:
        return ("train", "val", "test")
    return ("val", "test") if settings.needs_validation else ("test",)


def open_group(group: Group, splits: dict[str, BaseDataset], store: Cache, settings: RunSettings,
               ) -> tuple[GroupData, Checkpoint, Checkpoint | None]:
    """Train or load the group's checkpoint (and its permuted-label twin when a metric needs it),
    on the settings' device."""
    test = splits["test"]
    train, val = splits.get("train", test), splits.get("val", test)
    ckpt = load_checkpoint(group.model, train, val, test, group.seed, store, device=settings.device)
    data = GroupData(ckpt.model, ckpt.key, test.fingerprint(), test.background, classes=tuple(test.classes),
                     multilabel=bool(test.multilabel), mask_roles=dict(test.mask_roles), planes=tuple(test.planes),
                     guards=(ModelGuard(ckpt.model),))
    twin = None
    if settings.needs_permuted:
        twin = load_checkpoint(group.model, train, val, test, group.seed, store, permute_labels=True,
                               device=settings.device)
        data.permuted_model, data.permuted_key = twin.model, twin.key
        data.guards += (ModelGuard(twin.model),)
    return data, ckpt, twin


def run_group(group: Group, settings: RunSettings, store: Cache, progress: Progress | None = None) -> GroupOutput:
    """:func:`compute_group` on the group's splits, with what their datasets warned of (when they
    were built, maybe before the run by validation, which keeps them, and while the run read their
    samples) in ``warnings``: a run folder records them in ``manifest.json`` (they went to stderr
    only, a held-out review)."""
    splits = build_splits(group.dataset, needed_splits(group, settings))
    with full_float32(settings.device):  # TF32 off on CUDA; the caller's switches back after the group
        out = compute_group(group, settings, store, splits, progress)
    out.warnings = [w for split in splits.values() for w in getattr(split, "data_warnings", [])] + out.warnings
    return out


def compute_group(group: Group, settings: RunSettings, store: Cache, splits: dict[str, BaseDataset],
                  progress: Progress | None = None) -> GroupOutput:
    """Compute one group on its ``splits``: checkpoint, reliance, every cell, the gallery.

    Bad input (a dataset that cannot be read, a checkpoint that does not fit) raises
    :class:`InputDataError` or :class:`CheckpointError`; any other failure of the checkpoint
    (training ran out of memory, diverged) fails the group's cells, recorded in their results.
    ``progress(cells, text)`` is called as the group advances (fractions of its cells).
    """
    dspec, mspec, seed = group.dataset, group.model, group.seed
    out = GroupOutput(group, device=settings.device)  # a Ray task given a GPU: cuda, whatever the driver's
    report = progress or (lambda _done, _text: None)
    report(0.0, f"model {mspec.label} on {dspec.label}")
    try:
        data, ckpt, twin = open_group(group, splits, store, settings)
    except (CheckpointError, InputDataError, CacheWriteError):
        raise
    except (FileNotFoundError, DataError) as exc:  # a sample file went missing, a sample the run cannot use
        raise InputDataError(f"dataset {dspec.label!r}: {exc}") from exc
    except Exception as exc:
        out.log.append(f"checkpoint {mspec.label} on {dspec.label} (seed {seed}) failed: "
                       f"{type(exc).__name__}: {exc}")
        out.cells = GroupOutput.failed(group, "checkpoint", exc).cells
        report(len(group.cells), "")
        return out
    out.trained = (ckpt.origin == "trained") + (twin is not None and twin.origin == "trained")
    out.warnings += ckpt.info.get("warnings", [])  # a model's outputs that look like probabilities (manifest.json)
    if ckpt.origin == "trained":
        out.log.append(f"trained {mspec.label} on {dspec.label} (seed {seed}): test accuracy "
                       f"{ckpt.metrics['accuracy']:.3f}, AUC {ckpt.metrics['auc']:.3f}")
    out.model_row = {"model": mspec.label, "dataset": dspec.label, "seed": seed, **ckpt.metrics,
                     "architecture": mspec.name, "checkpoint": ckpt.key, "origin": ckpt.origin,
                     "parameters": ckpt.info.get("parameters")}
    if twin is not None:  # data_randomization's twin: how well it fitted its permuted labels (a review)
        fit = twin.metrics.get("permuted_fit")
        out.model_row.update(permuted_fit=fit, permuted_accuracy=twin.metrics.get("accuracy"),
                             permuted_checkpoint=twin.key)
        if fit is not None and fit < TWIN_FIT_MIN:
            out.warnings.append(f"the permuted-label twin of {mspec.label} on {dspec.label} (seed {seed}) fits "
                                f"{fit:.3f} of the permuted training labels it was trained on (Adebayo et al. "
                                f"2018's memorises them): data_randomization compares with a network that learnt "
                                f"little, much like a weight-randomisation check")
            out.log.append(f"warning: {out.warnings[-1]}")
    out.model_input = ckpt.info.get("input")  # the input transform in front of the net (pretrained config)
    test = splits["test"]
    if can_intervene(test):
        keys = {"dataset": dspec.label, "model": mspec.label, "seed": seed}
        report(0.0, f"model {mspec.label} on {dspec.label}: reliance on planted evidence")
        out.drops = [{**keys, **row} for row in cached_drops(store, data, ckpt.model, test, settings)]
        out.reliance = [{**keys, **row} for row in summarise_drops(out.drops)]
    _run_cells(group, settings, store, data, splits, out, report)
    return out


def cached_drops(store: Cache, data: GroupData, model: torch.nn.Module, test: BaseDataset,
                 settings: RunSettings) -> list[dict[str, Any]]:
    """:func:`~faithbench.models.reliance.sample_drops` of the explained samples, from the cache
    where a run computed them (a review: a fully cached rerun of 16 volumes of 64^3 spent 28 s here,
    more than its cells had taken)."""
    key = make_key("reliance", RELIANCE_VERSION, data.dataset_fingerprint, data.checkpoint_key, settings.n_samples,
                   settings.subset, EVIDENCE)
    rows = store.get_json("reliance", key)
    if rows is None:
        rows = sample_drops(model, test, settings.n_samples, subset=settings.subset)
        store.put_json("reliance", key, rows)
    return rows


def _run_cells(group: Group, settings: RunSettings, store: Cache, data: GroupData, splits: dict[str, BaseDataset],
               out: GroupOutput, report: Progress) -> None:
    """Calibrate the metrics that tune on the validation split, then feed every cell of the group
    the same test batches (each batch read once); keep the gallery."""
    test = splits["test"]
    evidence = bool(out.drops)  # each map's mass on the lesion and the marker, against the model's drops
    runs = [CellRun(cell, data, settings.metrics, store, keep_last=settings.keep_maps or evidence)
            for cell in group.cells]
    if settings.needs_validation:
        report(0.0, f"calibrating on the validation split of {group.dataset.label}")
        out.calibration, notes = calibrate_runs(runs, splits["val"], group, settings)
        out.log += notes
    first: tuple[Batch, Tensor] | None = None
    first_prob = torch.empty(0)  # the first batch's target probabilities (samples.csv), for the gallery
    n_cells, expected, done_samples, shown = len(runs), max(settings.n_samples, 1), 0, 0
    for batch, target in iter_batches(test, group.dataset.label, settings.n_samples, settings.batch_size,
                                      data.model, settings.target, settings.subset, settings.device):
        if first is None:  # the gallery's rows: its samples whole, each explainer keeps their maps
            shown = gallery_rows(batch, settings.target, data.classes, multilabel=data.multilabel,
                                 samples=GALLERY_SAMPLES, rows=GALLERY_ROWS)
            for run in runs:
                run.preview_rows = shown
        step = min(len(batch), expected - done_samples) if expected > done_samples else 0
        done_samples += step
        for run in runs:
            report(0.0, run.cell.name)
            run.feed(batch, target)
            report(step / expected, "")  # as each cell ends the batch (a review: 0 % until a one-batch group ended)
            if settings.keep_maps:
                _keep_map(out, run, batch, target)
            if evidence:
                out.evidence_mass += evidence_mass_rows(group, run, batch)
                if not settings.keep_maps:
                    run.last = None  # kept for this only: not held on the device until the next batch
        rows, prob = sample_rows(group, data, batch, target)
        out.samples += rows
        if first is None:
            first, first_prob = (batch, target), prob
        if all(run.stopped for run in runs):
            break
    out.cells = [run.finish() for run in runs]
    failed = {run.cell.explainer.label for run in runs if any(f["stage"] == "explain" for f in run.result.failures)}
    out.evidence_mass = [r for r in out.evidence_mass if r["explainer"] not in failed]  # as its rows: none
    report(n_cells * (expected - done_samples) / expected, "")  # fewer samples than asked: the rest at once
    if first is not None and group.seed == settings.gallery_seed:
        out.gallery = make_gallery(group, data, first, first_prob, runs, shown)
    if first is not None and settings.reliability:
        phase = f"metric reliability of {group.model.label} on {group.dataset.label}"
        report(0.0, phase)  # a review: silent; then a count, as the bar is full by now (a review: 37 s at 100 %)

        def counted(done: int, total: int, what: str) -> None:
            report(0.0, f"{phase}: {done}/{total} re-scored, now {what}")

        out.reliability = cached_reliability_rows(store, group, data, runs, first, settings.reliability, counted)
        out.log += out.reliability.log


def evidence_mass_rows(group: Group, run: CellRun, batch: Batch) -> list[dict[str, Any]]:
    """Rows (dataset, model, seed, explainer, sample_id, evidence, mass) of the batch's maps: the
    relevance mass on each planted evidence (``EVIDENCE``) a sample holds (a non-empty mask; NaN
    where the map has no positive value). A multi-label batch (one unit per class) has none: the
    model's drop is on its predicted class."""
    if run.stopped or run.last is None or batch.labels is not None:
        return []
    rows = []
    for name in EVIDENCE:
        mask = batch.masks.get(name)
        if mask is None:
            continue
        mass = relevance_mass(run.last.detach().float(), mask.to(run.last.device)).cpu().tolist()
        rows += [{"dataset": group.dataset.label, "model": group.model.label, "seed": group.seed,
                  "explainer": run.cell.explainer.label, "sample_id": sid, "evidence": name, "mass": value}
                 for sid, value, held in zip(batch.ids, mass, mask.flatten(1).any(1).tolist()) if held]
    return rows


def _keep_map(out: GroupOutput, run: CellRun, batch: Batch, target: Tensor) -> None:
    """The map of this batch's first units, up to :data:`MAPS_KEPT` per cell (on the CPU), with
    each unit's sample id and explained class, so repeatability compares maps of the same class.
    Control explainers (``family == "control"``: random, sobel, center_prior) are not kept: their
    maps do not look at the model, so their agreement across checkpoints says nothing. Nothing is
    written to disk: on a rerun the maps come back from the saliency cache, batch by batch."""
    if run.explainer is not None and run.explainer.family == "control":
        return
    label = run.cell.explainer.label
    ids, targets, maps = out.maps.get(label, ([], [], None))
    room = MAPS_KEPT - len(ids)
    if run.stopped or run.last is None or room <= 0:
        return
    new = run.last[:room].detach().float().cpu()
    names, classes = list(batch.ids[:room]), [int(t) for t in target[:room].tolist()]
    out.maps[label] = (ids + names, targets + classes, new if maps is None else torch.cat([maps, new]))


def sample_rows(group: Group, data: GroupData, batch: Batch, target: Tensor) -> tuple[list[dict[str, Any]], Tensor]:
    """Rows of ``samples.csv``, one per explained (sample, target): ``confidence`` the predicted
    probability of the target (softmax; sigmoid on a multi-label model), ``correct`` whether the
    prediction is right (multi-label: the target class's decision at 0.5 against its label) and
    ``lesion_area`` the fraction of the image in the ground-truth mask (NaN without one; multi-label: without a
    mask of the explained class in the sample, ``Batch.held``); multi-label:
    ``class``, the explained class's name (``label`` its 0/1 presence); and the probabilities ``(B,)``
    (the gallery's labels)."""
    with torch.no_grad():
        logits = data.model(batch.x)
    prob = target_score(logits, target, "sigmoid" if data.multilabel else "prob")
    if data.multilabel:
        truth = batch.labels.gather(1, target[:, None])[:, 0].bool() if batch.labels is not None else None
        correct = (prob > 0.5) == truth if truth is not None else torch.zeros_like(prob, dtype=torch.bool)
    else:
        correct = logits.argmax(-1) == batch.label
    mask = truth_mask(batch.masks, data.mask_roles)
    area = mask.flatten(1).double().mean(1) if mask is not None else torch.full((len(batch),), float("nan"))
    if mask is not None and batch.held is not None:  # multi-label: NaN where the sample has no mask of the class
        area = torch.where(batch.held.to(area.device), area, float("nan"))
    rows = [{"dataset": group.dataset.label, "model": group.model.label, "seed": group.seed, "sample_id": sid,
             "target": int(t), "label": int(y), "confidence": round(float(p), 6), "correct": bool(c),
             "lesion_area": float(a)}
            for sid, t, y, p, c, a in zip(batch.ids, target.tolist(), batch.label.tolist(), prob.cpu().tolist(),
                                          correct.cpu().tolist(), area.cpu().tolist())]
    if data.multilabel:  # as results.csv: which class a row explains, by name
        for row in rows:
            row["class"] = data.classes[row["target"]]
    return rows, prob
