"""The saliency gallery's content: which rows of a group's first batch it shows, each row's title, and
each explainer's maps of them (:class:`Gallery`; :mod:`faithbench.reports.gallery` draws it).

The gallery shows the first ``GALLERY_SAMPLES`` samples of the first batch, each whole: a multi-label
sample explained for several classes fills a row per class, every one of them (a held-out review: 4
rows showed 3 images and cut the fourth's second class, as if it had been explained for one). Rows
are bounded by ``GALLERY_ROWS``: a sample whose rows would pass it is left out with those after it,
but the first sample is always shown whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

from faithbench.runner.targets import sample_targets, truth_mask
from faithbench.types import Batch, MaskRole, masks_with_role

if TYPE_CHECKING:
    from faithbench.runner.cell import CellRun, GroupData
    from faithbench.runner.plan import Group

GALLERY_SAMPLES = 4  # the first batch's first samples shown, each whole (every explained class of it)
GALLERY_ROWS = 8  # at most this many (sample, class) rows, except the first sample's own


@dataclass
class Gallery:
    """The first ``GALLERY_SAMPLES`` explained samples of a group (every class of a multi-label one, in at
    most ``GALLERY_ROWS`` rows) and each explainer's raw maps (on the CPU), with each row's label and the
    predicted probability of its target.
    ``outline``: the ground-truth mask to draw (the explained class's on a multi-label batch);
    ``visits``: a batch of visits over time, its (N, T) real visits (False: a padding frame; a row per visit)."""

    dataset: str
    model: str
    batch: Batch
    previews: dict[str, Tensor]
    labels: list[str] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    outline: Tensor | None = None
    visits: Tensor | None = None
    planes: tuple[str, ...] = ()  # a volume's slice names (the dataset's ``planes``)


def whole_sample_rows(ids: Sequence[str], *, samples: int = GALLERY_SAMPLES, rows: int = GALLERY_ROWS,
                      last_whole: bool = True) -> int:
    """How many leading rows of a batch (``ids``, a sample's rows next to each other as
    :func:`~faithbench.runner.targets.class_batches` yields them) hold its first ``samples`` samples
    whole, in at most ``rows`` rows: a sample whose rows would pass ``rows`` is left out with those
    after it, except the first, always whole. With ``last_whole`` False the batch's last sample goes on
    in the next batch and is left out too, unless it is the first (its rows in this batch are shown)."""
    counts: list[int] = []  # rows per sample, in order
    for i, sid in enumerate(ids):
        if i and sid == ids[i - 1]:
            counts[-1] += 1
        else:
            counts.append(1)
    if not last_whole and len(counts) > 1:
        counts.pop()
    taken = 0
    for n, count in enumerate(counts[:samples]):
        if n and taken + count > rows:
            break
        taken += count
    return taken


def gallery_rows(batch: Batch, target: Any, classes: Sequence[str], *, multilabel: bool,
                 samples: int = GALLERY_SAMPLES, rows: int = GALLERY_ROWS) -> int:
    """:func:`whole_sample_rows` of a group's first ``batch`` explained with the suite's ``target``: a
    multi-label batch's last sample is whole when the batch holds every class that
    :func:`~faithbench.runner.targets.sample_targets` explains for it."""
    last_whole = True
    if multilabel and len(batch.ids) and batch.labels is not None:
        wanted = sample_targets(batch.labels[-1].cpu(), target, classes)
        last_whole = batch.ids.count(batch.ids[-1]) >= len(wanted)
    return whole_sample_rows(batch.ids, samples=samples, rows=rows, last_whole=last_whole)


def gallery_label(classes: Sequence[str], label: int, target: int, multilabel: bool) -> str:
    """A gallery row's class: a multi-label row's explained class and whether the image has it
    (``label`` is then its 0/1 presence: a review read "label: d" under an image without d), else the
    sample's label and, where it differs, the class its maps and ``p`` explain (a review: "label:
    lymphocyte, p = 0.21" read as P(lymphocyte), where the maps explained platelet)."""
    def name(c: int) -> str:
        return classes[c] if classes and 0 <= c < len(classes) else str(c)

    if multilabel:
        return f"{name(target)} {'present' if label else 'absent'}"
    return name(label) + (f" (explains {name(target)})" if target != label else "")


def make_gallery(group: Group, data: GroupData, first: tuple[Batch, Tensor], prob: Tensor, runs: list[CellRun],
                 k: int) -> Gallery:
    """The gallery of the first ``k`` rows of a group's ``first`` batch (:func:`gallery_rows`), with its
    target probabilities ``prob`` and each cell's kept maps (``CellRun.preview``)."""
    batch, target = first
    classes = data.classes
    labels = [gallery_label(classes, int(y), int(t), data.multilabel) for y, t in zip(batch.label[:k], target[:k])]
    small = Batch(batch.ids[:k], batch.x[:k].cpu(), batch.label[:k].cpu(),
                  {name: m[:k].cpu() for name, m in batch.masks.items()},
                  None if batch.labels is None else batch.labels[:k].cpu())
    probs = [round(float(p), 4) for p in prob[:k].cpu()]
    validity = masks_with_role(data.mask_roles, small.masks, MaskRole.VALIDITY)  # (N, T, H, W): real frames
    visits = small.masks[validity[0]].flatten(2).any(-1) if validity and small.x.ndim == 5 else None
    return Gallery(group.dataset.label, group.model.label, small,
                   {run.cell.explainer.label: run.preview[:k] for run in runs if run.preview is not None},
                   labels, probs, outline=truth_mask(small.masks, data.mask_roles), planes=data.planes, visits=visits)


__all__ = ["GALLERY_ROWS", "GALLERY_SAMPLES", "Gallery", "gallery_label", "gallery_rows", "make_gallery",
           "whole_sample_rows"]
