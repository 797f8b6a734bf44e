"""2D images from a folder: PNG/JPEG/TIFF/BMP (DICOM when pydicom is installed), optional masks, labels.

Labels come from a CSV (``path,label[,patient_id]``; ``path`` relative to the image folder;
``label`` a class name or index) or, without one, from sub-folder names
(``NORMAL/…``, ``PNEUMONIA/…``). The split is patient-level and stratified by class: patients
are shuffled with ``seed`` within each class and cut by ``fractions``, so no patient is in two
splits. Each split is in a seeded order that interleaves its classes
(:func:`~faithbench.datasets.base.stratified_order`), so ``n`` and the runner's first ``samples``
keep each class's share. Every image is resized to one ``size`` (source sizes can differ by class,
which a model would learn as a shortcut: the Kermany chest X-rays' NORMAL images are
systematically larger). Pixels and masks are read by :mod:`faithbench.datasets.images`.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from faithbench.configurable import AT_LEAST_ONE, Bound, ParameterError, check_bound
from faithbench.datasets.base import BaseDataset, Split, check_train_classes, stratified_order
from faithbench.datasets.folder_labels import (check_folder_params, class_names, class_problems, count_images,
                                               list_labels, near_labels, unmasked_images)
from faithbench.datasets.folder_split import (Row, check_train_patients, draw_ranks, empty_split, few_patients,
                                              mixed_patients, patient_ids, patient_split)
from faithbench.datasets.images import (IMAGE_SUFFIXES, LOSSY_SUFFIXES, binarise_mask, fit_square, read_image,
                                        resize_mask, scan_folder, unread_format)
from faithbench.datasets.paths import DataError, csv_image, csv_row_problem, labels_csv, resolve_path
from faithbench.registry import datasets
from faithbench.types import Sample


def _stem(rel: Path) -> str:
    """A relative path without its last suffix, as the key of an image and its mask."""
    return rel.with_name(rel.stem).as_posix()


def read_csv_rows(folder: Path, csv_path: Path, lines: list[int] | None = None) -> list[Row]:
    """The rows of a labels CSV (``utf-8-sig``: Excel's "CSV UTF-8" starts with a byte-order mark,
    which made the first column ``\\ufeffpath``); an empty path or label is refused with its line, and
    so is an image named again (validate passed it, the run refused its sample id without the lines), and a file
    of a format the reader cannot open, known by its name (:func:`~faithbench.datasets.images.unread_format`; a
    review: a NIfTI row passed validate and failed the run when it read the image).
    ``lines``, when given, receives each row's line number (for errors about its label)."""
    rows: list[Row] = []
    seen: dict[Path, tuple[int, str]] = {}  # image -> its line and label
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise DataError(f"{csv_path}: expected columns path,label[,patient_id], got {reader.fieldnames}")
        for row in reader:
            line = reader.line_num  # the file's line: blank lines count (enumerate was 1 short after one)
            if problem := csv_row_problem(row, ("path", "label")):
                raise DataError(f"{csv_path}: line {line}: {problem}")
            given, label = row["path"] or "", (row["label"] or "").strip()
            pid = (row.get("patient_id") or "").strip() or None
            img = csv_image(folder, given, csv_path, line)
            if (first := seen.setdefault(img, (line, label))) != (line, label):
                differ = f", labelled {first[1]!r} there and {label!r} here" if first[1] != label else ""
                raise DataError(f"{csv_path}: line {line}: the image of line {first[0]} again "
                                f"({img.relative_to(folder).as_posix()}{differ}): expected one row per image")
            if problem := unread_format(img, given, "folder"):
                raise DataError(f"{csv_path}: line {line}: {problem}")
            rows.append((img, label, pid))
            if lines is not None:
                lines.append(line)
    return rows


def is_mask_name(stem: str, mask_suffix: str) -> bool:
    """``x_mask`` or ``x_mask_2`` for ``mask_suffix`` ``_mask`` (BUSI's second masks are ``_mask_1``)."""
    return bool(mask_suffix) and re.search(re.escape(mask_suffix) + r"(_\d+)?$", stem) is not None


def scan_class_rows(folder: Path, mask_dir: Path | None,
                    mask_suffix: str) -> tuple[list[Row], list[Path], list[Path]]:
    """Without a CSV: each image under a class sub-folder (its first one), the images lying in
    ``folder`` itself, which have no class, and the files skipped as images of another format
    (:func:`~faithbench.datasets.images.scan_folder`). Hidden files, a mask folder inside ``folder``
    and, when the masks lie beside the images, files named as masks are no images."""
    inside = mask_dir is not None and mask_dir != folder and mask_dir.is_relative_to(folder)
    rows: list[Row] = []
    loose: list[Path] = []
    images, others = scan_folder(folder, skip=mask_dir if inside else None)
    for img in images:
        if mask_dir == folder and is_mask_name(img.stem, mask_suffix):
            continue
        if img.parent == folder:
            loose.append(img)
        else:
            rows.append((img, img.relative_to(folder).parts[0], None))
    return rows, loose, [p for p in others if not (mask_dir == folder and is_mask_name(p.stem, mask_suffix))]


def skipped_files(folder: Path, others: list[Path]) -> str | None:
    """One warning of the files under ``folder`` skipped as images of a format ``folder`` does not
    read (``.webp``, ``.gif``, a DICOM file without ``.dcm``), with their count and up to 3 names: they
    were left out without a word (a review)."""
    if not others:
        return None
    names = ", ".join(repr(p.relative_to(folder).as_posix()) for p in others[:3])
    return (f"{folder}: {len(others)} file{'s' * (len(others) != 1)} of an image format that folder does not read "
            f"{'is' if len(others) == 1 else 'are'} skipped (e.g. {names}): expected {', '.join(IMAGE_SUFFIXES)}; "
            "convert them (to PNG, or DICOM files to .dcm) to include them")


def empty_class_folders(folder: Path, rows: list[Row], mask_dir: Path | None) -> str | None:
    """One warning of the sub-folders of ``folder`` that hold no image (no class without a CSV)."""
    found = {label for _img, label, _pid in rows}
    empty = [e.name for e in sorted(os.scandir(folder), key=lambda e: e.name) if not e.name.startswith(".")
             and e.name not in found and os.path.isdir(folder / e.name)
             and not (mask_dir is not None and mask_dir.is_relative_to(folder / e.name))]
    if not empty:
        return None
    names = ", ".join(map(repr, empty[:3]))
    are = "is" if len(empty) == 1 else "are"
    return (f"{folder}: {len(empty)} sub-folder{'s' * (len(empty) != 1)} without an image {are} no class (e.g. "
            f"{names}): without a labels CSV a class is a sub-folder holding images; name it in the dataset's classes "
            "to keep it as a class of no image")


@datasets.register("folder")
class FolderDataset(BaseDataset):
    """Images in a folder (relative to the data root or absolute), ``(C, size, size)`` in [0, 1].

    Parameters:
        path: the image folder. labels: a CSV ``path,label[,patient_id]`` (relative to ``path`` or
            the data root); without one, the class is the first sub-folder of each image.
        masks: a folder of mask images named like the images (same relative path; any image
            suffix, plus ``mask_suffix``: ``_mask`` finds ``x_mask.png`` for ``x.png``, and lets the
            masks lie beside the images); a mask folder inside the image folder is no class.
            Inside: nonzero (every region of a label map), in a JPEG above half of the mask's own
            maximum (its halo stays outside).
            The mask is called ``mask_name`` (``lesion``). An image without a mask file gets an
            empty mask (no finding); mask files named like no image, images without one in a class
            whose other images have one, and a split where no image has one, are warned of.
        classes: class names in index order (default: sorted names found); their order does not
            change the split or its order (both drawn per class in sorted-name order).
        size: output side (224). fit: ``crop`` (centre square, as MedMNIST), ``pad`` (black bands
            to a square) or ``squash``. ``pad`` keeps each image's aspect ratio as the bands' width,
            which a model can learn where the classes differ in shape (the Kermany X-rays: the
            share of black pixels alone separates NORMAL from PNEUMONIA with AUC 0.73); ``crop``
            removes it.
        channels: 1 or 3 (the grey image repeated: colour is read as grey).
        bits: 16-bit images are divided by 2^bits − 1 (16: 65535; 12 for 12-bit data).
        fractions: train/val/test ((0.7, 0.1, 0.2)). seed: the split's and the order's seed (0).
        patient_pattern: a regex whose first group, searched in the file name, is the patient id
            when the CSV gives none (default: each file its own patient). n: a seeded,
            class-stratified subset of this split of at most n images. root: data root overriding
            ``$FAITHBENCH_DATA``.
    """

    spatial_dims = 2
    background = 0.0
    # 5: a train fraction of 0 puts every patient in val/test (a class of 1-2 patients was in train),
    # symbolic-link folders scanned, multi-page TIFFs refused. 4: masks nonzero, a JPEG's above half of
    # its own maximum (3: above half range when the mask reached it, which dropped label values up to
    # 127). 3: the split in a class-interleaved seeded
    # order (n: a stratified subset), 16-bit ÷ 65535,
    # masks > 127 when above half range, EXIF orientation, a fraction of 0 empty (2: masks resized
    # as the image, then > 0.5; 1: nearest, (k - 1) / 2 pixels off at a downscale of k); 7: 6's rescue of
    # every lesion withdrawn (seconds per image and masks grown many times on many small lesions); 8: split and
    # order drawn per class in sorted-name order (numeric labels by index), not in the order of classes; 9: each
    # class's split counts by largest remainders (val and test were each rounded, half to even, and train got the
    # rest: 6 patients at [0.5, 0.25, 0.25] split 2/2/2, now 3/1/2)
    version = "9"
    cheap_splits = True

    def __init__(self, split: Split = "test", *, path: str = "", labels: str | None = None,
                 masks: str | None = None, mask_name: str = "lesion", mask_suffix: str = "",
                 classes: list[str] | None = None, size: int = 224, fit: Literal["crop", "pad", "squash"] = "crop",
                 channels: int = 1, bits: int = 16, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                 seed: int = 0, patient_pattern: str | None = None, n: int | None = None,
                 root: str | None = None) -> None:
        if not path:
            raise ValueError("folder: 'path' (the image folder) is required")
        check_folder_params("folder", fit, channels, fractions, classes)
        if not isinstance(bits, int) or isinstance(bits, bool) or not 8 <= bits <= 16:
            raise ParameterError(f"folder: expected bits an integer from 8 to 16 (the significant bits of 16-bit "
                                 f"images), got {bits!r}")
        check_bound("folder", "size", size, Bound(8, 8192))
        check_bound("folder", "n", n, AT_LEAST_ONE)  # None: the whole split
        try:
            pattern = re.compile(patient_pattern) if patient_pattern else None
        except (re.error, TypeError) as err:
            raise ValueError(f"folder: patient_pattern {patient_pattern!r} is not a regular expression "
                             f"({err})") from None
        super().__init__(split, path=path, labels=labels, masks=masks, mask_name=mask_name, mask_suffix=mask_suffix,
                         classes=classes, size=size, fit=fit, channels=channels, bits=bits,
                         fractions=list(fractions), seed=seed, patient_pattern=patient_pattern, n=n)
        folder = Path(os.path.abspath(resolve_path(path, root, "image folder")))
        mask_dir = Path(os.path.abspath(resolve_path(masks, root, "mask folder"))) if masks else None
        if mask_suffix and not masks:
            raise ValueError(f"folder: mask_suffix {mask_suffix!r} needs masks (the mask folder; the image folder "
                             "itself when the masks lie beside the images): without it the mask files are images")
        if mask_dir == folder and not mask_suffix:
            raise DataError(f"folder: the mask folder {mask_dir} is the image folder {folder}: masks would be read as "
                            "images and each image as its own mask; put the masks in a folder of their own (same "
                            "relative paths), or set mask_suffix (BUSI's x_mask.png beside x.png: _mask)")
        self.folder, self.mask_dir, self.mask_suffix = folder, mask_dir, mask_suffix
        csv_path = labels_csv(folder, labels, root) if labels else None
        lines: list[int] = []
        rows = read_csv_rows(folder, csv_path, lines) if csv_path else self._scan(folder)
        names = class_names([r[1] for r in rows], classes,
                            f"{csv_path}: column 'label'" if csv_path else f"{folder}: sub-folder names")
        if classes is None:
            found = [r[1] for r in rows]
            for message in near_labels(found, csv_path or folder) + list_labels(found, csv_path or folder):
                self.warn(message)
        self.classes = names  # type: ignore[misc]

        def index(label: str, k: int) -> int:
            if label in names:
                return names.index(label)
            if label.isascii() and label.isdigit() and int(label) < len(names):
                return int(label)
            where = f"{csv_path}: line {lines[k]}" if csv_path else "folder"
            raise DataError(f"{where}: label {label!r} is not one of the classes {names}")

        labels_found = [index(lab, k) for k, (_img, lab, _pid) in enumerate(rows)]
        for message in class_problems(labels_found, names, csv_path or folder):
            self.warn(message)
        pids, pattern_warning = patient_ids(rows, pattern, folder)
        if pattern_warning:
            self.warn(pattern_warning)
        entries = [(img, label, pid) for (img, _, _), label, pid in zip(rows, labels_found, pids)]
        groups: dict[str, int] = {}
        for _img, label, pid in entries:
            groups.setdefault(pid, label)  # a patient's class: the label of its first image
        if mixed := mixed_patients(entries, groups, names, csv_path or folder):
            self.warn(mixed)
        if few := few_patients(groups, list(fractions), names, csv_path or folder):
            self.warn(few)
        rank = draw_ranks(((r[1], c) for r, c in zip(rows, labels_found)), names)  # not the order of classes
        assignment = patient_split({p: rank[c] for p, c in groups.items()}, tuple(fractions), seed)  # type: ignore
        chosen = [e for e in entries if assignment[e[2]] == split]
        order = stratified_order([rank[e[1]] for e in chosen], seed)
        self.entries = [chosen[i] for i in order][: n if n else None]
        if not self.entries:
            raise ValueError(empty_split(split, list(fractions), len(entries), len(groups)))
        if split == "train":
            check_train_patients(groups, assignment, names, list(fractions), folder)
            check_train_classes([e[1] for e in self.entries], names, f"folder {folder}",
                                "n keeps each class's share, and one image of each class from n = the number of "
                                "classes on" if n else "")
        self.mask_name, self.size, self.fit, self.channels, self.bits = mask_name, size, fit, channels, bits
        self._sources = [img for img, _, _ in rows]  # every split's images, for data_files
        self._labels_csv = csv_path
        self._masks: dict[str, list[Path]] = {}  # the mask files by their image's relative path without suffix
        for m in self._mask_files(warn=True):
            self._masks.setdefault(self._mask_key(m), []).append(m)
        if mask_dir is not None:
            self._check_mask_names(split, [(img, label) for img, label, _pid in entries])

    def _scan(self, folder: Path) -> list[Row]:
        """:func:`scan_class_rows`, warning of images in the folder itself (they have no class)."""
        rows, loose, others = scan_class_rows(folder, self.mask_dir, self.mask_suffix)
        for message in (skipped_files(folder, others), empty_class_folders(folder, rows, self.mask_dir)):
            if message:
                self.warn(message)
        if not rows:
            raise DataError(f"{folder}: no images found (expected class sub-folders or a labels CSV"
                            + (f"; {count_images(len(loose))} in the folder itself have no class)" if loose else ")"))
        if loose:
            self.warn(f"{folder}: {count_images(len(loose))} in the folder itself (e.g. {loose[0].name!r}) "
                      f"{'is' if len(loose) == 1 else 'are'} left out: "
                      "without a labels CSV an image's class is its sub-folder")
        return rows

    def _mask_files(self, warn: bool = False) -> list[Path]:
        """The mask folder's mask files (with ``mask_suffix``: those named as masks); ``warn``: warns of
        mask files of a format that folder does not read (:func:`skipped_files`), which left images with
        empty masks."""
        if self.mask_dir is None:
            return []
        files, others = scan_folder(self.mask_dir)
        if self.mask_suffix:
            files, others = ([m for m in found if is_mask_name(m.stem, self.mask_suffix)] for found in (files, others))
        if warn and (message := skipped_files(self.mask_dir, others)):
            self.warn(message)
        return files

    def _mask_key(self, mask: Path) -> str:
        """The relative path without suffix of the image that ``mask`` belongs to (``mask_suffix`` cut)."""
        stem = _stem(mask.relative_to(self.mask_dir))  # type: ignore[arg-type]
        cut = self.mask_suffix and stem.endswith(self.mask_suffix)
        return stem[: -len(self.mask_suffix)] if cut else stem

    def _check_mask_names(self, split: str, images: list[tuple[Path, int]]) -> None:
        """Warns of mask files named like no listed image (a typo in a name leaves its image with an
        empty mask, silently), of images of every split (``images``: path, class) without a mask file
        in a class whose other images have one (:func:`unmasked_images`) and of a split none of whose
        images has a mask file; the same lookup as :meth:`_mask_path`."""
        stems = {_stem(img.relative_to(self.folder)) for img in self._sources}
        assert self.mask_dir is not None
        orphans = [m.relative_to(self.mask_dir).as_posix() for stem, paths in self._masks.items()
                   if stem not in stems for m in paths]
        if orphans:
            self.warn(f"{self.mask_dir}: {len(orphans)} of {sum(map(len, self._masks.values()))} mask files are named "
                      f"like no image of {self.folder} (e.g. {orphans[0]!r}); a mask has its image's relative path"
                      f"{f' + {self.mask_suffix!r}' if self.mask_suffix else ''} (any image suffix), and an image "
                      "without one gets an empty mask")
        found = [(img.relative_to(self.folder).as_posix(), c, self._mask_path(img) is not None) for img, c in images]
        if unmasked := unmasked_images(found, self.classes, self.mask_dir, self.mask_name):
            self.warn(unmasked)
        if not any(self._mask_path(img) for img, _, _ in self.entries):
            self.warn(f"{self.mask_dir}: no image of split {split!r} has a mask file: every {self.mask_name!r} "
                      "mask is empty")

    def data_files(self) -> list[tuple[str, Path]]:
        """Every split's images (relative to the folder), the labels CSV and every mask file."""
        files = [(img.relative_to(self.folder).as_posix(), img) for img in self._sources]
        if self._labels_csv is not None:
            files.append(("labels:" + self._labels_csv.name, self._labels_csv))
        if self.mask_dir is not None:
            files += [("masks:" + m.relative_to(self.mask_dir).as_posix(), m) for m in self._mask_files()]
        return files

    def __len__(self) -> int:
        return len(self.entries)

    def _mask_path(self, img: Path) -> Path | None:
        """The mask file of ``img``: its relative path with any image suffix (any case), the image's
        own suffix first (a name with dots, ``1.2.840.0.png``, was never found before)."""
        paths = self._masks.get(_stem(img.relative_to(self.folder)), [])
        same = [p for p in paths if p.suffix.lower() == img.suffix.lower()]
        return (same or paths or [None])[0]

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < len(self):
            raise IndexError(f"folder: index {i} out of range for {len(self)} images")
        img, label, pid = self.entries[i]
        arr = torch.from_numpy(read_image(img, self.bits))[None]
        image = fit_square(arr, self.size, self.fit, "bilinear").clamp(0, 1)
        masks: dict[str, Tensor] = {}
        if self.mask_dir is not None:
            mpath = self._mask_path(img)
            if mpath is None:
                masks[self.mask_name] = torch.zeros(self.size, self.size, dtype=torch.bool)
            else:
                m = read_image(mpath)
                if m.shape != arr.shape[1:]:
                    raise DataError(f"{mpath}: mask shape {m.shape} differs from its image "
                                    f"{img} {tuple(arr.shape[1:])}")
                inside = binarise_mask(m, lossy=mpath.suffix.lower() in LOSSY_SUFFIXES)
                masks[self.mask_name] = resize_mask(torch.from_numpy(inside)[None], self.size, self.fit)
        rel = img.relative_to(self.folder).as_posix()
        return Sample(id=rel, image=image.repeat(self.channels, 1, 1), label=label, masks=masks, patient_id=pid,
                      meta={"path": str(img), "source_shape": tuple(arr.shape[1:])})


__all__ = ["FolderDataset", "fit_square", "patient_split", "read_image"]
