"""Longitudinal (temporal) datasets: each sample is a sequence of visits of one patient.

Protocol (the temporal study's design: sequences of ``seq_len`` visits, padded at the beginning,
truncated from the beginning):

- ``image`` is ``(C, T, H, W)`` with ``T = seq_len``: time is the first spatial axis, so a batch
  is ``(B, C, T, H, W)``, the shape of a 3D input, and every explainer and metric that supports
  3D inputs runs on it unchanged; saliency comes back as ``(B, T, H, W)``. The dataset says so
  with ``temporal = True`` and ``spatial_dims = 3`` (spatial axis 0 = time).
- Visits are in date order, oldest first. A patient with more than ``seq_len`` visits keeps the
  most recent ``seq_len``; one with fewer is padded **at the beginning** with padding frames.
- A padding frame is an all-background image (the dataset's ``background``, 0.0): the model sees
  it as an empty visit. Which visits are real is in the mask ``valid`` ``(T, H, W)`` (all True on a
  real visit, all False on a padding frame) and in ``meta["valid"]`` (``T`` bools), so metrics can
  leave padding out. Every other mask is all False on a padding frame.
- ``meta``: ``dates`` (ISO dates, ``None`` for padding), ``visit_ids`` (a per-visit identifier,
  ``None`` for padding), ``visit_labels`` (the label of each single visit, for training a 2D
  backbone on visits; ``None`` for padding), ``n_visits`` (before truncation).
- ``patient_id``: the patient. Splits are patient-level (no patient in two splits).

:meth:`LongitudinalDataset.visits` is the 2D view (every real visit a sample) on which the frozen
backbone of a temporal model is trained (:mod:`faithbench.models.temporal`).

``phantom_longitudinal``: chest-like phantom sequences (the anatomy of ``phantom_cxr``, built with
the helpers of :mod:`faithbench.datasets.phantoms`) in which a lesion that appears at one visit
decides the label, with exact per-visit masks and the visit of change in ``meta``.
``longitudinal_folder``: real longitudinal data from a CSV ``patient_id, date, path, label``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal

import torch
from torch import Tensor

from faithbench.configurable import AT_LEAST_ONE, NON_NEGATIVE, OPEN_UNIT, POSITIVE, Bound, check_bound
from faithbench.datasets.base import BaseDataset, Split, stratified_order
from faithbench.datasets.folder import fit_square, patient_split, read_image
from faithbench.datasets.folder_split import draw_ranks, few_patients
from faithbench.datasets.folder_labels import check_folder_params, near_labels
from faithbench.datasets.longitudinal_csv import label_indices, read_visit_rows
from faithbench.datasets.paths import labels_csv, resolve_path
from faithbench.datasets.phantoms import (MAX_N, SEED, _SPLIT_OFFSET, PhantomCXR, _erode, _grid, check_lesion_radius,
                                         ellipsoid, smooth_field)
from faithbench.registry import datasets
from faithbench.types import Sample


def pad_visits(frames: list[Tensor], seq_len: int, pad_value: float = 0.0) -> tuple[Tensor, Tensor, int]:
    """Visits ``frames`` (oldest first, each ``(C, H, W)``) -> ``(C, seq_len, H, W)``.

    More than ``seq_len`` visits: the most recent ``seq_len`` are kept (the oldest dropped). Fewer:
    padding frames filled with ``pad_value`` are put at the beginning. Returns the sequence, the
    validity ``(seq_len,)`` bool (False on padding) and the number of padding frames.
    """
    if seq_len < 1:
        raise ValueError(f"expected seq_len >= 1, got {seq_len}")
    if not frames:
        raise ValueError("expected at least one visit, got none")
    kept = frames[-seq_len:]
    pad = seq_len - len(kept)
    c, *space = kept[0].shape
    out = torch.full((c, seq_len, *space), float(pad_value), dtype=kept[0].dtype)
    for k, frame in enumerate(kept):
        out[:, pad + k] = frame
    valid = torch.arange(seq_len) >= pad
    return out, valid, pad


def pad_list(items: list[Any], seq_len: int) -> list[Any]:
    """The per-visit companion of :func:`pad_visits`: keep the last ``seq_len`` items, put ``None``
    at the beginning for padding."""
    kept = list(items[-seq_len:])
    return [None] * (seq_len - len(kept)) + kept


class LongitudinalDataset(BaseDataset):
    """Base of the sequence datasets: ``(C, T, H, W)`` samples, see the module docstring."""

    temporal: ClassVar[bool] = True
    spatial_dims: ClassVar[Literal[2, 3]] = 3
    time_axis: ClassVar[int] = 0  # the first spatial axis is time
    seq_len: int = 3

    def visits(self) -> "VisitDataset":
        """The 2D view: every real visit of this split once, labelled with its visit label."""
        return VisitDataset(self)

    @property
    def most_visits(self) -> int:
        """The most real visits a sequence of this split holds (validate refuses a metric that compares visits at 1)."""
        entries = self.entries if isinstance(self, LongitudinalFolder) else None  # (patient, its last visit's index)
        most = max(k + 1 for _p, k in entries) if entries else getattr(self, "max_visits", self.seq_len)
        return min(self.seq_len, most)


class VisitDataset(BaseDataset):
    """Single visits of a :class:`LongitudinalDataset`, ``(C, H, W)``: every non-padding visit of
    every sequence once (a visit shared by several sequences, as in ``longitudinal_folder``, once by
    its ``visit_ids``), labelled ``meta["visit_labels"][t]``. Materialised on first use."""

    spatial_dims: ClassVar[Literal[2, 3]] = 2

    def __init__(self, parent: LongitudinalDataset) -> None:
        super().__init__(parent.split)
        self.parent = parent
        self.classes = getattr(parent, "visit_classes", parent.classes)  # type: ignore[misc]
        self.background = parent.background
        self._items: list[Sample] | None = None

    def spec(self) -> dict[str, Any]:
        return {"name": "visits", "of": self.parent.spec()}

    def _materialise(self) -> list[Sample]:
        if self._items is None:
            items, seen = [], set()
            for i in range(len(self.parent)):
                s = self.parent[i]
                for t, (vid, lab) in enumerate(zip(s.meta["visit_ids"], s.meta["visit_labels"])):
                    if vid is None or vid in seen:
                        continue
                    seen.add(vid)
                    masks = {k: m[t] for k, m in s.masks.items() if k != "valid"}
                    items.append(Sample(id=str(vid), image=s.image[:, t], label=int(lab), masks=masks,
                                        patient_id=s.patient_id, meta={"sequence": s.id, "visit": t}))
            self._items = items
        return self._items

    def __len__(self) -> int:
        return len(self._materialise())

    def __getitem__(self, i: int) -> Sample:
        return self._materialise()[i]


_EPOCH = dt.date(2015, 1, 1)


@datasets.register("phantom_longitudinal")
class PhantomLongitudinal(LongitudinalDataset):
    """Chest-like phantom sequences, ``(C, seq_len, size, size)`` in [0, 1], background 0.

    Each patient has 1..``max_visits`` visits (dates 30–400 days apart) of one fixed anatomy (the
    ``phantom_cxr`` body, lungs, heart, spine and texture), each visit with its own pixel noise and
    a ±5 % exposure change. Label 1 ("change"): a bright lesion appears inside one lung at one
    visit, the **visit of change** t*, drawn uniformly among the visits kept after truncation (so
    the evidence is always in the sequence the model sees). With ``persist: false`` (default) it
    is visible at t* only (an interval change: the one visit that decides the label); with
    ``persist: true`` it stays at every later visit, its radius multiplied by ``growth`` per visit.
    Label 0 ("no_change"): no lesion at any visit. A single visit's label (``visit_labels``, on
    which the 2D backbone is trained) is 1 when the lesion is visible in it.

    Parameters: n (sequences in this split; default 600 train, 150 val, 200 test), size (64),
    channels (1), seq_len (3), max_visits (5), seed (0), prevalence (P(label 1) = 0.5),
    lesion_contrast (0.35), lesion_radius ((2.5, 4.0) px at size 64), noise (0.03), persist
    (false), growth (1.0).

    Masks ``(T, H, W)``: ``lesion`` (the exact disc at every visit where it is visible), ``change``
    (the lesion at t* only: the deciding change), ``valid``, ``lung_left``, ``lung_right``,
    ``heart``, ``spine``, ``body``. meta: ``change_visit`` (t* as an index into the padded
    sequence, or None), ``dates``, ``visit_ids``, ``visit_labels``, ``valid``, ``n_visits``,
    ``lesion_centre``, ``lesion_radius``, ``lesion_side``.

    Deterministic from (seed, split, index); :meth:`counterfactual` regenerates a sequence without
    its lesion (same anatomy and noise), for ``reliance.csv``.
    """

    classes = ("no_change", "change")
    visit_classes = ("no_lesion", "lesion")
    background = 0.0
    version = "1"
    default_n: ClassVar[dict[str, int]] = {"train": 600, "val": 150, "test": 200}

    def __init__(self, split: Split = "test", *, n: int | None = None, size: int = 64, channels: int = 1,
                 seq_len: int = 3, max_visits: int = 5, seed: int = 0, prevalence: float = 0.5,
                 lesion_contrast: float = 0.35, lesion_radius: tuple[float, float] = (2.5, 4.0),
                 noise: float = 0.03, persist: bool = False, growth: float = 1.0) -> None:
        name = "phantom_longitudinal"
        n = self.default_n[split] if n is None and split in self.default_n else n
        for param, value, bound in (("n", n, MAX_N), ("size", size, Bound(32, 1024)),
                                    ("channels", channels, AT_LEAST_ONE), ("seq_len", seq_len, AT_LEAST_ONE),
                                    ("max_visits", max_visits, Bound(1, 1000)),  # 1e12 hung validate
                                    ("lesion_contrast", lesion_contrast, POSITIVE),
                                    ("noise", noise, NON_NEGATIVE), ("growth", growth, POSITIVE), ("seed", seed, SEED)):
            check_bound(name, param, value, bound)
        check_bound(name, "prevalence", prevalence, OPEN_UNIT, "at 0 or 1 a split has one class and the test "
                                                              "AUC is undefined")
        radius = check_lesion_radius(name, lesion_radius, PhantomCXR.max_lesion_radius, PhantomCXR.lesion_why,
                                     (growth, min(seq_len, max_visits)) if persist else None)
        super().__init__(split, n=n, size=size, channels=channels, seq_len=seq_len, max_visits=max_visits,
                         seed=seed, prevalence=prevalence, lesion_contrast=lesion_contrast,
                         lesion_radius=list(radius), noise=noise, persist=persist, growth=growth)
        self.n, self.size, self.channels, self.seq_len, self.max_visits = n, size, channels, seq_len, max_visits
        self.seed, self.prevalence, self.lesion_contrast, self.lesion_radius = seed, prevalence, lesion_contrast, radius
        self.noise, self.persist, self.growth = noise, persist, growth
        self._grid = _grid((size, size))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Sample:
        return self.generate(i)

    def counterfactual(self, i: int, remove: Iterable[str]) -> Sample:
        """Sequence ``i`` without its lesion: same anatomy, dates and noise; masks unchanged."""
        unknown = set(remove) - {"lesion"}
        if unknown:
            raise ValueError(f"phantom_longitudinal: can only remove 'lesion', got {sorted(unknown)}")
        return self.generate(i, frozenset(remove))

    def generate(self, i: int, without: frozenset[str] = frozenset()) -> Sample:
        if not 0 <= i < self.n:
            raise IndexError(f"phantom_longitudinal: index {i} out of range for {self.n} samples")
        gen = torch.Generator().manual_seed(self.seed * 10_000_019 + _SPLIT_OFFSET[self.split] + 13 + i)
        u = lambda: float(torch.rand((), generator=gen))  # noqa: E731 - a tiny local helper
        s, g, size, T = self.size / 64.0, self._grid, self.size, self.seq_len

        label = int(u() < self.prevalence)
        n_visits = 1 + min(self.max_visits - 1, int(u() * self.max_visits))
        # one anatomy per patient (the phantom_cxr proportions)
        cy, cx = 33 * s + (u() - 0.5) * 4 * s, 32 * s + (u() - 0.5) * 4 * s
        body = ellipsoid(g, [cy, cx], [(28 + u() * 3) * s, (25 + u() * 3) * s])
        lung_ry, lung_rx, off = (15 + u() * 3) * s, (8 + u() * 2) * s, (12 + u() * 2) * s
        lung_right = ellipsoid(g, [cy - 3 * s, cx - off], [lung_ry, lung_rx])  # image left
        lung_left = ellipsoid(g, [cy - 3 * s, cx + off], [lung_ry, lung_rx])
        heart = ellipsoid(g, [cy + 9 * s, cx + 4 * s], [(7 + u() * 2) * s, (9 + u() * 2) * s])
        spine = body & ((g[1] - cx).abs() <= 2.2 * s)
        lung_left, lung_right = lung_left & ~heart & ~spine, lung_right & ~heart & ~spine
        anatomy = torch.zeros(size, size)
        anatomy[body] = 0.38
        anatomy[lung_left | lung_right] = 0.14
        anatomy[heart] = 0.55
        anatomy[spine] = 0.78
        anatomy += 0.04 * smooth_field(g, gen, n_blobs=6, scale=6 * s) * body

        days = [int(u() * 1000)]
        for _ in range(n_visits - 1):
            days.append(days[-1] + 30 + int(u() * 370))
        kept = min(n_visits, T)
        pad = T - kept
        # the visit of change, among the kept visits; the lesion's place and size
        change = pad + min(kept - 1, int(u() * kept))
        lung = lung_left if u() < 0.5 else lung_right
        r_min, r_max = self.lesion_radius
        radius = (r_min + u() * (r_max - r_min)) * s
        inside = _erode(lung, radius)
        inside = inside if inside.any() else lung
        idx = torch.nonzero(inside)
        centre = idx[int(u() * len(idx)) % len(idx)].tolist()
        d2 = (g[0] - centre[0]) ** 2 + (g[1] - centre[1]) ** 2

        frames, lesion_masks = [], []
        for v in range(n_visits):
            t = pad + v - (n_visits - kept)  # position in the padded sequence (< pad: truncated)
            img = anatomy * (1.0 + 0.1 * (u() - 0.5))
            lesion_v = torch.zeros(size, size, dtype=torch.bool)
            shows = label == 1 and (t == change or (self.persist and t > change))
            if shows:
                r_t = radius * self.growth ** (t - change)
                lesion_v = d2 <= r_t**2
                if "lesion" not in without:
                    img = img + self.lesion_contrast * torch.exp(-d2 / (2 * (r_t / 1.5) ** 2))
            img = (img + self.noise * torch.randn(img.shape, generator=gen)).clamp(0.0, 1.0)
            frames.append(img[None].repeat(self.channels, 1, 1))
            lesion_masks.append(lesion_v)

        image, valid, _ = pad_visits(frames, T, self.background)
        lesion = pad_visits([m[None] for m in lesion_masks], T, 0)[0][0].bool()
        change_mask = torch.zeros_like(lesion)
        if label == 1:
            change_mask[change] = lesion[change]
        rep = valid[:, None, None].expand(T, size, size)
        masks = {"lesion": lesion, "change": change_mask, "valid": rep.clone(),
                 "lung_left": rep & lung_left, "lung_right": rep & lung_right, "heart": rep & heart,
                 "spine": rep & spine, "body": rep & body}
        dates = pad_list([(_EPOCH + dt.timedelta(days=d)).isoformat() for d in days], T)
        sid = f"{self.split}-{i:05d}"
        meta: dict[str, Any] = {
            "change_visit": change if label == 1 else None, "n_visits": n_visits, "dates": dates,
            "valid": valid.tolist(), "visit_ids": pad_list([f"{sid}-v{v}" for v in range(n_visits)], T),
            "visit_labels": pad_list([int(m.any()) for m in lesion_masks], T),
        }
        if label == 1:
            meta.update(lesion_centre=tuple(centre), lesion_radius=radius,
                        lesion_side="left" if lung is lung_left else "right")
        return Sample(id=sid, image=image, label=label, masks=masks, patient_id=f"longitudinal-{sid}", meta=meta)


@datasets.register("longitudinal_folder")
class LongitudinalFolder(LongitudinalDataset):
    """Real longitudinal images from a CSV ``patient_id,date,path,label`` (the temporal study's
    protocol): each visit is one sample, the sequence of that patient's visits up to and including
    it (dates ISO ``YYYY-MM-DD``, oldest first), the most recent ``seq_len`` kept, padded at the
    beginning with background frames; its label is the visit's ``label``.

    Parameters: path (the image folder), labels (the CSV, relative to ``path`` or the data root),
    classes (default: sorted names found), seq_len (3), size (224), fit (``crop``, ``pad``,
    ``squash``), channels (1 or 3), fractions (train/val/test, (0.7, 0.1, 0.2)), seed (0), n (a
    class-stratified subset: the split is in a seeded order that interleaves the visits' classes),
    root (data root overriding ``$FAITHBENCH_DATA``).

    The split is patient-level and stratified by each patient's class (the label of their first
    visit), with ``folder``'s :func:`~faithbench.datasets.folder.patient_split`: all of a patient's
    sequences are in one split, whatever the order of ``classes`` (version 4), each class cut by largest
    remainders (version 5). A class of 1 or 2 patients, all in train, is warned of as in ``folder``. Masks:
    ``valid`` only.
    Images are read with ``folder``'s reader; a row naming a file of a format it cannot open
    (``.nii.gz``, NRRD, …) is refused by its name (:func:`~faithbench.datasets.longitudinal_csv.read_visit_rows`).
    Without ``classes``, a label named like a larger class's (``Pos`` beside ``pos``) is warned of, as in
    ``folder``: a typo makes a class of its own. ``meta["n_visits"]`` is the patient's number of visits up
    to and including this one (before truncation to ``seq_len``), not the number kept (``sum(meta["valid"])``).
    """

    background = 0.0
    # 5: split counts by largest remainders (as folder 9); 4: split drawn by class name, not classes' order; 3: train
    # 0 all in val/test; 2: interleaved
    version = "5"

    def __init__(self, split: Split = "test", *, path: str = "", labels: str = "", classes: list[str] | None = None,
                 seq_len: int = 3, size: int = 224, fit: Literal["crop", "pad", "squash"] = "crop", channels: int = 1,
                 fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = 0, n: int | None = None,
                 root: str | None = None) -> None:
        name = "longitudinal_folder"
        if not path or not labels:
            raise ValueError(f"{name}: 'path' (the image folder) and 'labels' (the CSV) are required")
        check_bound(name, "seq_len", seq_len, AT_LEAST_ONE)
        check_bound(name, "size", size, Bound(8, 8192))
        check_bound(name, "n", n, AT_LEAST_ONE)  # None: the whole split
        check_folder_params(name, fit, channels, fractions, classes)
        super().__init__(split, path=path, labels=labels, classes=classes, seq_len=seq_len, size=size, fit=fit,
                         channels=channels, fractions=list(fractions), seed=seed, n=n)
        folder = Path(os.path.abspath(resolve_path(path, root, "image folder")))
        csv_path = labels_csv(folder, labels, root)
        lines: list[int] = []
        rows = read_visit_rows(folder, csv_path, lines)
        if classes is None:  # every name found is a class: warn of one named like a larger one (a review: 'Pos')
            for message in near_labels([r[3] for r in rows], csv_path):
                self.warn(message)
        names = tuple(classes) if classes is not None else tuple(sorted({r[3] for r in rows}))
        self.classes = names  # type: ignore[misc]
        self.visit_classes = names
        labels_found = label_indices([r[3] for r in rows], names, csv_path, lines)
        by_patient: dict[str, list[tuple[dt.date, Path, int]]] = {}
        for (pid, date, img, _lab), c in zip(rows, labels_found):
            by_patient.setdefault(pid, []).append((date, img, c))
        for visits in by_patient.values():
            visits.sort(key=lambda v: (v[0], str(v[1])))
        rank = draw_ranks(((r[3], c) for r, c in zip(rows, labels_found)), names)  # not the order of classes
        classes_of = {pid: visits[0][2] for pid, visits in by_patient.items()}  # a patient's first visit's label
        if few := few_patients(classes_of, list(fractions), names, csv_path):  # as folder (a review: silent here)
            self.warn(few)
        assignment = patient_split({p: rank[c] for p, c in classes_of.items()}, tuple(fractions), seed)  # type: ignore
        # one sample per visit: (patient, index of its last visit)
        chosen = [(pid, k) for pid in sorted(by_patient) if assignment[pid] == split
                  for k in range(len(by_patient[pid]))]
        order = stratified_order([rank[by_patient[pid][k][2]] for pid, k in chosen], seed)
        self.entries = [chosen[i] for i in order][: n if n else None]
        if not self.entries:
            raise ValueError(f"{name}: split {split!r} is empty ({len(rows)} visits, {len(by_patient)} patients)")
        self.by_patient, self.folder, self._labels_csv = by_patient, folder, csv_path
        self.seq_len, self.size, self.fit, self.channels = seq_len, size, fit, channels

    def data_files(self) -> list[tuple[str, Path]]:
        """Every split's images (relative to the folder) and the labels CSV."""
        images = sorted({img for visits in self.by_patient.values() for _d, img, _l in visits})
        return [(img.relative_to(self.folder).as_posix(), img) for img in images] + \
            [("labels:" + self._labels_csv.name, self._labels_csv)]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < len(self):
            raise IndexError(f"longitudinal_folder: index {i} out of range for {len(self)} sequences")
        pid, k = self.entries[i]
        history = self.by_patient[pid][: k + 1]
        frames = [fit_square(torch.from_numpy(read_image(img))[None], self.size, self.fit, "bilinear").clamp(0, 1)
                  .repeat(self.channels, 1, 1) for _d, img, _l in history[-self.seq_len:]]
        image, valid, _ = pad_visits(frames, self.seq_len, self.background)
        rel = [img.relative_to(self.folder).as_posix() for _d, img, _l in history]
        meta = {"dates": pad_list([d.isoformat() for d, _i, _l in history], self.seq_len),
                "visit_ids": pad_list(rel, self.seq_len),
                "visit_labels": pad_list([lab for _d, _i, lab in history], self.seq_len),
                "valid": valid.tolist(), "n_visits": len(history)}
        mask = valid[:, None, None].expand(self.seq_len, self.size, self.size).clone()
        return Sample(id=f"{pid}/{rel[-1]}", image=image, label=history[-1][2], masks={"valid": mask},
                      patient_id=pid, meta=meta)


__all__ = ["LongitudinalDataset", "LongitudinalFolder", "PhantomLongitudinal", "VisitDataset", "pad_list",
           "pad_visits"]
