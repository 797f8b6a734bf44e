"""2D images from a folder: PNG/JPEG (DICOM when pydicom is installed), optional masks, labels.

Labels come from a CSV (``path,label[,patient_id]``; ``path`` relative to the image folder;
``label`` a class name or index) or, without one, from sub-folder names
(``NORMAL/…``, ``PNEUMONIA/…``). The split is patient-level and stratified by class: patients
are shuffled with ``seed`` within each class and cut by ``fractions``, so no patient is in two
splits. Every image is resized to one ``size`` (source sizes can differ by class, which a model
would learn as a shortcut: the Kermany chest X-rays' NORMAL images are systematically larger).
"""

from __future__ import annotations

import csv
import os
import random
import re
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from faithbench.configurable import AT_LEAST_ONE, Bound, check_bound
from faithbench.datasets.base import BaseDataset, Split
from faithbench.datasets.paths import DataError, csv_image, resolve_path
from faithbench.registry import datasets
from faithbench.types import Sample, edit_distance

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm")


def read_image(path: Path) -> np.ndarray:
    """A greyscale image as float32 (H, W), in [0, 1] for 8/16-bit files (DICOM: min-max)."""
    if path.suffix.lower() == ".dcm":
        try:
            import pydicom
        except ImportError:
            raise DataError(f"{path}: reading DICOM needs pydicom: pip install pydicom") from None
        try:
            ds = pydicom.dcmread(str(path))
            arr = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # pydicom raises several types for unreadable pixel data
            raise DataError(f"{path}: cannot read DICOM pixels: {exc}") from None
        arr = arr * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
        if arr.ndim == 3:
            arr = arr.mean(-1)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
            arr = 1.0 - arr  # MONOCHROME1 stores white as 0
        return arr
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I"):
                arr = np.asarray(im, dtype=np.float32)
                return arr / (65535.0 if arr.max() > 255 else 255.0)
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except OSError as exc:
        raise DataError(f"{path}: cannot read image: {exc}") from None


def fit_square(x: Tensor, size: int, fit: str, mode: str) -> Tensor:
    """(C, H, W) -> (C, size, size): centre ``crop`` to a square, ``pad`` to one, or ``squash``."""
    h, w = x.shape[-2:]
    if fit == "crop":
        s = min(h, w)
        x = x[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    elif fit == "pad":
        s = max(h, w)
        x = F.pad(x, [(s - w) // 2, s - w - (s - w) // 2, (s - h) // 2, s - h - (s - h) // 2])
    kwargs = {"antialias": True} if mode == "bilinear" else {}
    return F.interpolate(x[None].float(), size=(size, size), mode=mode, **kwargs)[0]


def resize_mask(mask: Tensor, size: int, fit: str) -> Tensor:
    """``mask (1, H, W)`` bool -> ``(size, size)`` bool through the image's :func:`fit_square`
    (bilinear with antialias), then share > 0.5, so the mask stays on its lesion (nearest put it
    (k - 1) / 2 source pixels off at a downscale of k). A mask with some share keeps at least its
    pixel of largest share, so a lesion smaller than a pixel does not vanish (one cropped away does)."""
    share = fit_square(mask.float(), size, fit, "bilinear")[0]
    out = share > 0.5
    if not bool(out.any()) and float(share.max()) > 0:
        out.view(-1)[int(share.argmax())] = True
    return out


def patient_split(groups: dict[str, int], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Patient id -> split, stratified by each patient's class; seeded. Every class with at least
    3 patients has at least one in each split."""
    out: dict[str, str] = {}
    rng = random.Random(seed)
    for label in sorted(set(groups.values())):
        patients = sorted(p for p, c in groups.items() if c == label)
        rng.shuffle(patients)
        n = len(patients)
        n_val = max(1, round(fractions[1] * n)) if n >= 3 else 0
        n_test = max(1, round(fractions[2] * n)) if n >= 3 else 0
        n_train = n - n_val - n_test
        for k, p in enumerate(patients):
            out[p] = "train" if k < n_train else ("val" if k < n_train + n_val else "test")
    return out


def _typo_of(a: str, b: str) -> bool:
    """Whether class name ``a`` reads as a typo of ``b``: the same but for case (``Well``, ``well``),
    or at most 2 edits apart with lengths within one, neither inside the other (``abnormal`` is
    ``normal`` with a prefix, ``unhealthy`` ``healthy``: two classes), 4 characters or more and the
    same numbers (``grade1``, ``grade2``)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    return (min(len(a), len(b)) >= 4 and abs(len(a) - len(b)) <= 1 and a not in b and b not in a
            and edit_distance(a, b) <= 2 and re.findall(r"\d+", a) == re.findall(r"\d+", b))


def near_labels(labels: list[str], source: Path) -> list[str]:
    """Warnings for each class named like a larger one (``pnuemonia`` beside ``pneumonia``,
    ``Normal`` beside ``NORMAL``; :func:`_typo_of`): without ``classes``, every name found is a
    class, so a typo makes a class of its own."""
    counts = {name: labels.count(name) for name in sorted(set(labels))}
    out = []
    for name, k in counts.items():
        close = [other for other, m in counts.items() if m > k and _typo_of(name, other)]
        if close:
            out.append(f"{source}: class {name!r} ({_images(k)}) is named like {close[0]!r} "
                       f"({_images(counts[close[0]])}); a typo makes a class of its own: set the dataset's "
                       "classes to refuse labels that are none of them")
    return out


def _stem(rel: Path) -> str:
    """A relative path without its last suffix, as the key of an image and its mask."""
    return rel.with_name(rel.stem).as_posix()


def _images(k: int) -> str:
    return f"{k} image" + "s" * (k != 1)


@datasets.register("folder")
class FolderDataset(BaseDataset):
    """Images in a folder (relative to the data root or absolute), ``(C, size, size)`` in [0, 1].

    Parameters:
        path: the image folder. labels: a CSV ``path,label[,patient_id]`` (relative to ``path`` or
            the data root); without one, the class is the first sub-folder of each image.
        masks: a folder of mask images named like the images (same relative path; any image
            suffix); nonzero = inside. The mask is called ``mask_name`` (``lesion``). An image
            without a mask file gets an empty mask (no finding); mask files named like no image,
            and a split where no image has one, are warned of.
        classes: class names in index order (default: sorted names found).
        size: output side (224). fit: ``crop`` (centre square, as MedMNIST), ``pad`` or ``squash``.
        channels: 1 or 3 (the grey image repeated). fractions: train/val/test ((0.7, 0.1, 0.2)).
        seed: the split's seed (0). patient_pattern: a regex whose first group, searched in the
            file name, is the patient id when the CSV gives none (default: each file its own
            patient). n: cap on samples in this split. root: data root overriding
            ``$FAITHBENCH_DATA``.
    """

    spatial_dims = 2
    background = 0.0
    version = "2"  # 2: masks resized as the image, then > 0.5 (1: nearest, (k - 1) / 2 pixels off at a downscale of k)
    cheap_splits = True

    def __init__(self, split: Split = "test", *, path: str = "", labels: str | None = None,
                 masks: str | None = None, mask_name: str = "lesion", classes: list[str] | None = None,
                 size: int = 224, fit: Literal["crop", "pad", "squash"] = "crop", channels: int = 1,
                 fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = 0,
                 patient_pattern: str | None = None, n: int | None = None, root: str | None = None) -> None:
        if not path:
            raise ValueError("folder: 'path' (the image folder) is required")
        if fit not in ("crop", "pad", "squash"):
            raise ValueError(f"folder: expected fit crop, pad or squash, got {fit!r}")
        if channels not in (1, 3):
            raise ValueError(f"folder: expected channels 1 or 3, got {channels}")
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(f"folder: expected 3 non-negative fractions summing to 1, got {list(fractions)}")
        check_bound("folder", "size", size, Bound(8))
        check_bound("folder", "n", n, AT_LEAST_ONE)  # None: the whole split
        pattern = re.compile(patient_pattern) if patient_pattern else None
        super().__init__(split, path=path, labels=labels, masks=masks, mask_name=mask_name, classes=classes,
                         size=size, fit=fit, channels=channels, fractions=list(fractions), seed=seed,
                         patient_pattern=patient_pattern, n=n)
        folder = Path(os.path.abspath(resolve_path(path, root, "image folder")))
        rows: list[tuple[Path, str, str | None]] = []
        if labels:
            csv_path = folder / labels if (folder / labels).exists() else resolve_path(labels, root, "labels CSV")
            with csv_path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
                    raise DataError(f"{csv_path}: expected columns path,label[,patient_id], got {reader.fieldnames}")
                for line, row in enumerate(reader, start=2):
                    img = csv_image(folder, row["path"], csv_path, line)
                    rows.append((img, row["label"].strip(), (row.get("patient_id") or "").strip() or None))
        else:
            for img in sorted(folder.rglob("*")):
                if img.suffix.lower() in IMAGE_SUFFIXES and img.is_file() and img.parent != folder:
                    rows.append((img, img.relative_to(folder).parts[0], None))
        if not rows:
            raise DataError(f"{folder}: no images found (expected class sub-folders or a labels CSV)")
        found = sorted({r[1] for r in rows})
        if classes is None:
            for message in near_labels([r[1] for r in rows], csv_path if labels else folder):
                self.warn(message)
            names = tuple(found) if not all(f.isdigit() for f in found) else \
                tuple(f"class_{i}" for i in range(max(int(f) for f in found) + 1))
        else:
            names = tuple(classes)
        self.classes = names  # type: ignore[misc]

        def index(label: str) -> int:
            if label in names:
                return names.index(label)
            if label.isdigit() and int(label) < len(names):
                return int(label)
            raise DataError(f"folder: label {label!r} is not one of the classes {names}")

        def patient(img: Path, given: str | None) -> str:
            if given:
                return given
            if pattern is not None:
                m = pattern.search(img.name)
                if m:
                    return m.group(1) if m.groups() else m.group(0)
            return img.relative_to(folder).as_posix()

        entries = [(img, index(lab), patient(img, pid)) for img, lab, pid in rows]
        groups: dict[str, int] = {}
        for _img, label, pid in entries:
            groups.setdefault(pid, label)  # a patient's class: the label of its first image
        assignment = patient_split(groups, tuple(fractions), seed)  # type: ignore[arg-type]
        self.entries = [e for e in entries if assignment[e[2]] == split][: n if n else None]
        if not self.entries:
            raise ValueError(f"folder: split {split!r} is empty ({len(entries)} images, {len(groups)} patients)")
        self.folder, self.mask_dir = folder, (resolve_path(masks, root, "mask folder") if masks else None)
        self.mask_name, self.size, self.fit, self.channels = mask_name, size, fit, channels
        self._sources = [img for img, _, _ in rows]  # every split's images, for data_files
        self._labels_csv = csv_path if labels else None
        self._masks: dict[str, list[Path]] = {}  # the mask files by relative path without suffix
        if self.mask_dir is not None:
            for m in sorted(self.mask_dir.rglob("*")):
                if m.suffix.lower() in IMAGE_SUFFIXES and m.is_file():
                    self._masks.setdefault(_stem(m.relative_to(self.mask_dir)), []).append(m)
            self._check_mask_names(split)

    def _check_mask_names(self, split: str) -> None:
        """Warns of mask files named like no listed image (a typo in a name leaves its image with an
        empty mask, silently) and of a split none of whose images has a mask file; the same lookup
        as :meth:`_mask_path`."""
        stems = {_stem(img.relative_to(self.folder)) for img in self._sources}
        assert self.mask_dir is not None
        orphans = [m.relative_to(self.mask_dir).as_posix() for stem, paths in self._masks.items()
                   if stem not in stems for m in paths]
        if orphans:
            self.warn(f"{self.mask_dir}: {len(orphans)} of {sum(map(len, self._masks.values()))} mask files are named "
                      f"like no image of {self.folder} (e.g. {orphans[0]!r}); a mask has its image's relative path "
                      "(any image suffix), and an image without one gets an empty mask")
        if not any(self._mask_path(img) for img, _, _ in self.entries):
            self.warn(f"{self.mask_dir}: no image of split {split!r} has a mask file: every {self.mask_name!r} "
                      "mask is empty")

    def data_files(self) -> list[tuple[str, Path]]:
        """Every split's images (relative to the folder), the labels CSV and every mask file."""
        files = [(img.relative_to(self.folder).as_posix(), img) for img in self._sources]
        if self._labels_csv is not None:
            files.append(("labels:" + self._labels_csv.name, self._labels_csv))
        if self.mask_dir is not None:
            files += [("masks:" + m.relative_to(self.mask_dir).as_posix(), m) for m in sorted(self.mask_dir.rglob("*"))
                      if m.suffix.lower() in IMAGE_SUFFIXES and m.is_file()]
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
        arr = torch.from_numpy(read_image(img))[None]
        image = fit_square(arr, self.size, self.fit, "bilinear").clamp(0, 1)
        masks: dict[str, Tensor] = {}
        if self.mask_dir is not None:
            mpath = self._mask_path(img)
            if mpath is None:
                masks[self.mask_name] = torch.zeros(self.size, self.size, dtype=torch.bool)
            else:
                m = torch.from_numpy(read_image(mpath))[None]
                if m.shape != arr.shape:
                    raise DataError(f"{mpath}: mask shape {tuple(m.shape[1:])} differs from its image "
                                    f"{img} {tuple(arr.shape[1:])}")
                masks[self.mask_name] = resize_mask(m > 0, self.size, self.fit)
        rel = img.relative_to(self.folder).as_posix()
        return Sample(id=rel, image=image.repeat(self.channels, 1, 1), label=label, masks=masks, patient_id=pid,
                      meta={"path": str(img), "source_shape": tuple(arr.shape[1:])})


__all__ = ["FolderDataset", "fit_square", "patient_split", "read_image"]
