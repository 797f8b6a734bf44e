"""Batches of a test split: the first ``n_samples`` samples (or their positive subset), streamed
``batch_size`` at a time with the explained target, on the run's device."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from faithbench.models.training import predict_logits
from faithbench.runner.errors import InputDataError
from faithbench.types import Batch


def iter_batches(dataset: Any, label: str, n_samples: int, batch_size: int, model: nn.Module,
                 target_mode: str, subset: str = "all", device: str = "cpu") -> Iterator[tuple[Batch, Tensor]]:
    """The first ``n_samples`` samples of ``dataset`` in batches, with the explained target.
    ``subset="positive"`` keeps only samples whose label is not 0 (the abnormal cases: an
    explanation of "normal" has no finding to point at, and a blurred insertion baseline
    already looks normal), still the first ``n_samples`` of them in index order. A multi-label
    dataset yields one row per (sample, explained class) of ``target_mode``
    (:mod:`faithbench.runner.targets`); ``positive`` then means any class present.

    Streams: one batch is in memory at a time, moved to ``device`` (the model's). A sample that cannot be read or collated (a
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
            if subset == "positive" and not sample.positive:
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
        from faithbench.config_checks import class_masks_in

        class_masks = class_masks_in(dataset, n_samples, subset)
        for batch, target in _class_batches(batches(), target_mode, tuple(dataset.classes), batch_size, label,
                                            split, class_masks):
            yield batch.to(device), target.to(device)
        return
    for samples in batches():
        try:
            batch = Batch.collate(samples)
        except (ValueError, RuntimeError) as exc:
            raise InputDataError(f"dataset {label!r} ({split} split): {exc}") from exc
        batch = batch.to(device)
        if target_mode == "label":
            target = batch.label
        else:
            with torch.no_grad():
                target = predict_logits(model, batch.x).argmax(-1)
        yield batch, target


def _class_batches(sample_lists: Iterator[list[Any]], target_mode: Any, classes: tuple[str, ...], batch_size: int,
                   label: str, split: str, class_masks: bool = False) -> Iterator[tuple[Batch, Tensor]]:
    """A multi-label dataset's (sample, class) units (:mod:`faithbench.runner.targets`)."""
    from faithbench.runner.targets import class_batches

    if target_mode in ("predicted", "label"):
        raise InputDataError(f"dataset {label!r} is multi-label: target {target_mode!r} explains one class per "
                             f"sample; use each_positive or {{classes: [...]}}")
    units = 0
    try:
        for batch, target in class_batches((s for samples in sample_lists for s in samples), target_mode, classes,
                                           batch_size, class_masks):
            units += len(batch)
            yield batch, target
    except (ValueError, RuntimeError) as exc:
        raise InputDataError(f"dataset {label!r} ({split} split): {exc}") from exc
    if units == 0:
        raise InputDataError(f"dataset {label!r} ({split} split): no (sample, class) pair to explain for "
                             f"target {target_mode!r}")
