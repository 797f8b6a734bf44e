"""Multi-label targets: which classes of a sample are explained, one explanation row per
(sample, class).

A multi-label dataset (``dataset.multilabel``; samples carry ``labels (K,)``) is explained per
class: the suite's ``target`` is ``each_positive`` (every class present in the sample) or
:class:`~faithbench.config.ClassTargets` (named classes, on all samples, only where present, or
one-vs-normal). :func:`expand_targets` turns samples into (sample, class) units;
:func:`class_batches` streams them in batches whose ``target`` is the explained class.

Per-class localisation: when the samples a run explains have masks named after the dataset's
classes (``nodule``, ``cavity``; :func:`~faithbench.config_checks.class_masks_in`), every batch
also carries the mask ``target`` (:data:`TARGET_MASK`): row i's copy of the mask of its explained
class, empty where the sample has none of that class (an absent mask is an empty one; its rows are
undefined, NaN, for the metrics that need a non-empty mask). A localisation metric with ``mask:
target`` thus scores each row against its own class's mask; nothing in the metrics changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from faithbench.types import Batch, MaskRole, Sample

TARGET_MASK = "target"


def class_indices(target: Any, classes: Sequence[str]) -> list[int]:
    """The class indices a target explains: the named classes of a :class:`ClassTargets` (in its
    order), else every class."""
    names = getattr(target, "classes", None)
    if not names:
        return list(range(len(classes)))
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise ValueError(f"unknown class {unknown[0]!r}; the dataset's classes are {', '.join(classes)}")
    return [list(classes).index(n) for n in names]


def sample_targets(labels: Tensor, target: Any, classes: Sequence[str]) -> list[int]:
    """The classes explained for one sample with 0/1 ``labels (K,)``:

    - ``each_positive`` / ``samples: positive``: the requested classes present in the sample;
    - ``samples: all``: every requested class;
    - ``samples: one_vs_normal``: the requested class when it is the sample's only finding, or
      every requested class when the sample has no finding (the normal reference).
    """
    if labels.ndim != 1 or labels.shape[0] != len(classes):
        raise ValueError(f"expected a label vector of shape ({len(classes)},), got {tuple(labels.shape)}")
    wanted = class_indices(target, classes)
    samples = "positive" if target == "each_positive" else getattr(target, "samples", None)
    present = [bool(v) for v in labels.tolist()]
    if samples == "all":
        return wanted
    if samples == "positive":
        return [c for c in wanted if present[c]]
    if samples == "one_vs_normal":
        n_found = sum(present)
        return [c for c in wanted if n_found == 0 or (n_found == 1 and present[c])]
    raise ValueError(f"expected target each_positive or {{classes, samples}}, got {target!r}")


def expand_targets(samples: Sequence[Sample], target: Any, classes: Sequence[str]) -> list[tuple[Sample, int]]:
    """(sample, class) units in sample order, each sample's classes in ``target``'s order."""
    units = []
    for s in samples:
        if s.labels is None:
            raise ValueError(f"sample {s.id!r} of a multi-label dataset has no label vector 'labels'")
        units += [(s, c) for c in sample_targets(s.labels, target, classes)]
    return units


def collate_units(units: Sequence[tuple[Sample, int]], classes: Sequence[str],
                  class_masks: bool = False) -> tuple[Batch, Tensor]:
    """A batch of (sample, class) units and its ``target (B,)`` of class indices. ``batch.label``
    is the explained class's 0/1 label (is the class present?), ``batch.labels`` the full vectors;
    ``batch.masks["target"]`` the explained class's mask per row, when a sample of the batch has a
    mask named after a class, or with ``class_masks`` (the explained samples, or an earlier batch,
    have one): a class whose mask a sample lacks has an empty one there, as any absent mask (a
    review: a batch without a rare class's mask failed the metric, depending on ``batch_size``)."""
    batch = Batch.collate([s for s, _ in units])
    target = torch.tensor([c for _, c in units], dtype=torch.long)
    assert batch.labels is not None
    batch.label = batch.labels.gather(1, target[:, None])[:, 0]
    if TARGET_MASK in batch.masks:
        raise ValueError(f"the dataset has a mask named {TARGET_MASK!r}, the name reserved for the explained "
                         f"class's mask")
    if class_masks or any(name in batch.masks for name in classes):
        empty = torch.zeros((len(units), *batch.x.shape[2:]), dtype=torch.bool)
        per_class = torch.stack([batch.masks.get(name, empty) for name in classes], dim=1)  # (B, K, *spatial)
        batch.masks[TARGET_MASK] = per_class[torch.arange(len(units)), target]
        batch.held = torch.tensor([classes[c] in s.masks for s, c in units], dtype=torch.bool)
    return batch, target


def class_batches(samples: Iterator[Sample], target: Any, classes: Sequence[str],
                  batch_size: int, class_masks: bool = False) -> Iterator[tuple[Batch, Tensor]]:
    """Stream (sample, class) units of ``samples`` in batches of at most ``batch_size`` units; once a
    batch has the explained class's mask (``target``), every later one has it (:func:`collate_units`);
    with ``class_masks`` (the explained samples have class masks, :func:`~faithbench.config_checks.
    class_masks_in`), every batch from the first."""
    pending: list[tuple[Sample, int]] = []
    for sample in samples:
        pending += expand_targets([sample], target, classes)
        while len(pending) >= batch_size:
            batch, explained = collate_units(pending[:batch_size], classes, class_masks)
            class_masks = TARGET_MASK in batch.masks
            yield batch, explained
            pending = pending[batch_size:]
    if pending:
        yield collate_units(pending, classes, class_masks)


def truth_mask(masks: dict[str, Tensor], roles: dict[str, MaskRole]) -> Tensor | None:
    """The ground truth to outline or measure: the explained class's mask of a multi-label batch
    (:data:`TARGET_MASK`), else the first truth mask in the order the dataset declares its roles."""
    if TARGET_MASK in masks:
        return masks[TARGET_MASK]
    names = [name for name, role in roles.items() if role == MaskRole.TRUTH and name in masks]
    return masks[names[0]] if names else None


__all__ = ["TARGET_MASK", "class_batches", "class_indices", "collate_units", "expand_targets", "sample_targets",
           "truth_mask"]
