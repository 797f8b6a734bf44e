"""MedMNIST v2 / MedMNIST+ (Yang et al. 2023, Scientific Data): 2D and 3D subsets, official splits.

Files are read from ``<root>/medmnist/<flag>.npz`` (28 px) or ``<flag>_<size>.npz`` (MedMNIST+),
where ``root`` is the data root (``$FAITHBENCH_DATA`` or the ``root`` parameter). A file that is
absent is downloaded through the ``medmnist`` package into that folder (the package checks the
official MD5 of what it downloads); a local file is used as it is, without an MD5 check, so a
curated subset works (the shared PneumoniaMNIST file holds 3,882 of the 4,708 training images);
its arrays must fit the request (images of side ``size``, one label row per image, labels within
the subset's classes), else a :class:`DataError` names the file.

Images become float in [0, 1]: ``(C, H, W)`` for 2D subsets, ``(C, D, H, W)`` for 3D ones.
Single-label subsets give ``label`` as an int. Multi-label subsets (ChestMNIST) set
``multilabel = True`` and give the full 0/1 vector as ``Sample.labels`` (and in ``meta["labels"]``):
the runner trains them with a sigmoid per class and explains per class (suite ``target:
each_positive`` or ``{classes: [...]}``); ``label`` is then the first positive class (0 when there
is none, with ``meta["no_finding"] = True``), kept for tables only. For a binary task instead pick
one finding with ``finding``: ``label`` = that finding present, classes
``("no <finding>", "<finding>")``, ``multilabel = False``.
"""

from __future__ import annotations

import difflib
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from faithbench.configurable import ParameterError
from faithbench.datasets.base import BaseDataset, Split, stratified_order
from faithbench.datasets.paths import OFFLINE_VAR, DataError, data_root, downloads_allowed
from faithbench.registry import datasets
from faithbench.store import file_sha256
from faithbench.types import Sample

SIZES = (28, 64, 128, 224)


def medmnist_info() -> dict[str, dict[str, Any]] | None:
    """``medmnist.INFO`` when the package is installed, else None."""
    try:
        import medmnist
    except ImportError:
        return None
    return medmnist.INFO


def medmnist_filename(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def download_medmnist(flag: str, size: int, folder: Path) -> Path:
    """Download ``flag`` at ``size`` into ``folder`` with the ``medmnist`` package.

    Raises :class:`DataError` (naming the folder) when the package is missing, downloads are off
    (``$FAITHBENCH_OFFLINE``), or the download fails, for example offline.
    """
    name = medmnist_filename(flag, size)
    if not downloads_allowed():
        raise DataError(f"medmnist: {name} is not in {folder}, and downloads are off (${OFFLINE_VAR} is set): "
                        f"put the file there, or unset {OFFLINE_VAR} to download it")
    try:
        import medmnist
    except ImportError:
        raise DataError(f"medmnist: {name} is not in {folder}, and the 'medmnist' package is not installed "
                        f"to download it (pip install medmnist, or put the file there)") from None
    cls = getattr(medmnist, medmnist.INFO[flag]["python_class"])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        cls(split="test", download=True, root=str(folder), size=size)
    except (RuntimeError, OSError, AssertionError) as exc:
        reason = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
        raise DataError(f"medmnist: {name} is not in {folder} and the download failed (offline?): {reason}. "
                        f"Put the file there, or point {'$FAITHBENCH_DATA'} / 'root' at a folder that has "
                        f"medmnist/{name}") from exc
    path = folder / name
    if not path.exists():
        raise DataError(f"medmnist: the download reported success but {path} does not exist")
    return path


def npy_header(npz: Any, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of array ``key`` of an open ``np.load`` .npz, read from its .npy header only (a split
    of labels only checks its images' count, side and dtype without reading them). KeyError when absent."""
    with npz.zip.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        return tuple(int(d) for d in shape), np.dtype(dtype)


def check_split_arrays(path: Path, split: str, image_shape: tuple[int, ...], labels: np.ndarray, size: int,
                       spatial_dims: int, n_classes: int | None, multilabel: bool,
                       image_dtype: np.dtype = np.dtype(np.uint8)) -> None:
    """Raise :class:`DataError` naming ``path`` when a split's arrays do not fit the request (a held-out review:
    a ``_64`` file of 28 px images, a binary subset with label 3 and 30 images with 5 labels were used as they
    were): as many label rows as images, images of side ``size`` (grey, or with a last axis of 1 or 3
    channels), and, where the subset's ``n_classes`` is known, labels in ``0..n_classes - 1`` (multi-label:
    one 0/1 column per class), and uint8 images (the official files' 0-255 pixels, divided by 255: a review's
    float copy in [0, 1] loaded as [0, 0.0039]). ``labels``: the split's labels as ``(N, columns)`` integers."""
    where = f"medmnist: {path}"
    if image_dtype != np.uint8:
        raise DataError(f"{where} holds {split} images of dtype {image_dtype}, expected uint8 (the official files' "
                        f"0-255 pixels, which the dataset divides by 255): a re-saved copy?")
    if image_shape[0] != len(labels):
        raise DataError(f"{where} has {image_shape[0]} {split}_images but {len(labels)} {split}_labels; "
                        "expected one label row per image")
    spatial, extra = image_shape[1:1 + spatial_dims], image_shape[1 + spatial_dims:]
    if spatial != (size,) * spatial_dims or extra not in ((), (1,), (3,)):
        want = "x".join([str(size)] * spatial_dims)
        channels = " (grey, or with 3 channels last)" if spatial_dims == 2 else ""
        raise DataError(f"{where} holds {split} images of shape {image_shape[1:]}, expected {want}{channels} for "
                        f"size {size}: a file of another size under this name?")
    if n_classes is None or not labels.size:
        return
    columns = n_classes if multilabel else 1
    if labels.shape[1] != columns:
        raise DataError(f"{where} has {split}_labels of {labels.shape[1]} columns, expected {columns}"
                        + (" (one 0/1 per class)" if multilabel else " (one class index per image)"))
    high = 1 if multilabel else n_classes - 1
    bad = np.flatnonzero(((labels < 0) | (labels > high)).any(1))
    if len(bad):
        row = int(bad[0])
        value = labels[row].tolist() if multilabel else int(labels[row, 0])
        raise DataError(f"{where} has {split} label {value} at index {row}, expected "
                        + ("0 or 1 per class" if multilabel else f"0..{high} (the subset's {n_classes} classes)"))


@datasets.register("medmnist")
class MedMNIST(BaseDataset):
    """A MedMNIST subset with its official train/val/test split.

    Parameters:
        flag: the subset, a key of ``medmnist.INFO`` (``pneumoniamnist``, ``chestmnist``,
            ``adrenalmnist3d``, ``organmnist3d``, ...).
        size: 28 (MedMNIST v2) or 64/128/224 (MedMNIST+; 3D subsets: 28 or 64).
        root: data root overriding ``$FAITHBENCH_DATA``; the file is ``<root>/medmnist/<file>``.
        n: keep a seeded, class-stratified subset of ``n`` images of the split (default all), in
            an order whose every prefix keeps each class's share (it kept the first n: the shared
            PneumoniaMNIST train split is sorted by class, so n = 50 gave 50 pneumonia images).
            Sample ids keep each image's index in the file. Stratified on the label the dataset gives:
            the class; with ``finding``, that finding's presence; for a plain multi-label subset, each
            image's first positive class (images without a finding counted with class 0).
        seed: the seed of the ``n`` subset (0).
        finding: for a multi-label subset, the class name (str) or index (int) that becomes a binary label.

    No masks (MedMNIST has none), no patient ids (the official splits are patient-level where
    the source data allowed it). Background 0.
    """

    background = 0.0
    version = "1"
    _with_images = True  # False: a split of labels only (labels_split)

    @classmethod
    def labels_split(cls, split: Split, **params: Any) -> MedMNIST:
        """Split ``split`` with its labels and classes but no image read from the file (a held-out review:
        ``validate`` passed ``n: 1``, a train split of one class, which the run refused)."""
        dataset = cls.__new__(cls)
        dataset._with_images = False
        dataset.__init__(split, **params)  # type: ignore[misc]
        return dataset

    def __init__(self, split: Split = "test", *, flag: str = "pneumoniamnist", size: int = 28,
                 root: str | None = None, n: int | None = None, finding: str | int | None = None,
                 seed: int = 0) -> None:
        # the seed enters the spec with n only: without n it changes nothing (the cache keys stay)
        super().__init__(split, flag=flag, size=size, n=n, finding=finding, **({"seed": seed} if n else {}))
        if size not in SIZES:
            raise ParameterError(f"medmnist: expected size in {SIZES}, got {size}")
        if n is not None and n < 1:
            raise ParameterError(f"medmnist: expected n >= 1, got {n}")
        if finding is not None and (isinstance(finding, bool) or not isinstance(finding, (str, int, np.integer))):
            raise ParameterError(f"medmnist: expected finding to be a class name (str) or index (int), "
                                 f"got {type(finding).__name__} {finding!r}")
        info = medmnist_info()
        if info is not None and flag not in info:
            close = difflib.get_close_matches(flag, list(info), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ParameterError(f"medmnist: unknown flag {flag!r}{hint} (valid: {', '.join(sorted(info))})")
        self.flag, self.size, self.n = flag, size, n
        self.spatial_dims = 3 if flag.endswith("3d") else 2  # type: ignore[misc]
        if self.spatial_dims == 3 and size not in (28, 64):
            raise ParameterError(f"medmnist: 3D subset {flag!r} comes in sizes 28 and 64, got {size}")

        folder = data_root(root) / "medmnist"
        path = folder / medmnist_filename(flag, size)
        if not path.exists():
            path = download_medmnist(flag, size, folder)
        self.path = path
        try:
            with np.load(path) as npz:
                labels = npz[f"{split}_labels"]
                images = npz[f"{split}_images"] if self._with_images else None
                image_shape, image_dtype = ((tuple(images.shape), images.dtype) if images is not None
                                            else npy_header(npz, f"{split}_images"))
        except KeyError:
            raise DataError(f"medmnist: {path} has no arrays '{split}_images'/'{split}_labels'") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # truncated or corrupt
            raise DataError(f"medmnist: cannot read {path}: {type(exc).__name__}: {exc} (a corrupt or "
                            f"partial download? delete the file and fetch it again)") from None
        labels = np.asarray(labels).reshape(len(labels), -1).astype(np.int64)
        task = (info or {}).get(flag, {}).get("task", "multi-label" if labels.shape[1] > 1 else "")
        names = (info or {}).get(flag, {}).get("label")
        multilabel = task.startswith("multi-label")
        check_split_arrays(path, split, image_shape, labels, size, self.spatial_dims,
                           len(names) if names else None, multilabel, image_dtype)
        if n is not None and n > len(labels):  # a review: capped without a word, the manifest still saying n
            self.warn(f"medmnist: n = {n} is more than the {len(labels)} images of {flag}'s {split} split; "
                      f"all {len(labels)} are used")
        n_classes = len(names) if names else (labels.shape[1] if labels.shape[1] > 1 else int(labels.max()) + 1)
        class_names = tuple(names[str(i)] for i in range(n_classes)) if names else \
            tuple(f"class_{i}" for i in range(n_classes))
        k = None  # the finding's column
        if finding is not None:
            if not multilabel:
                raise ParameterError(f"medmnist: 'finding' applies to multi-label subsets; {flag!r} is {task}")
            k = class_names.index(finding) if isinstance(finding, str) and finding in class_names else finding
            if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < n_classes:
                raise ParameterError(f"medmnist: finding {finding!r} is not one of {class_names}")
            k = int(k)
        first = np.where(labels.any(1), labels.argmax(1), 0)  # a multi-label image's first positive class (0: none)
        self._index = np.arange(len(labels))  # each sample's position in the file: its id
        if n is not None:  # stratified on the label the dataset gives (a review: the finding's was not)
            strata = labels[:, k] if k is not None else first if multilabel else labels[:, 0]
            self._index = np.asarray(stratified_order(strata.tolist(), seed)[:n], dtype=np.int64)
            labels, first = labels[self._index], first[self._index]
        self._images = None  # labels_split: no image read
        if images is not None:  # (N, *spatial) grey or (N, H, W, 3) RGB -> (N, C, *spatial), kept uint8 until indexed
            images = images[self._index] if n is not None else images
            images = np.moveaxis(images, -1, 1) if images.ndim == self.spatial_dims + 2 else images[:, None]
            self._images = torch.from_numpy(np.ascontiguousarray(images))

        self._finding = k
        self._label_vectors: np.ndarray | None = labels if multilabel else None
        if multilabel and k is None:
            self.multilabel = True  # type: ignore[misc]
            self.classes = class_names  # type: ignore[misc]
            self._labels = first
        elif k is not None:
            self.classes = (f"no {class_names[k]}", class_names[k])  # type: ignore[misc]
            self._labels = labels[:, k]
        else:
            self.classes = class_names  # type: ignore[misc]
            self._labels = labels[:, 0]

    def spec(self) -> dict[str, Any]:
        # The root and the file's time are not part of the spec (the official file, downloaded again
        # or anywhere else, gives the same data: no data_files), but its content is: a local file of
        # the same name must not share checkpoints with the official one (a review: an edited file of
        # the same size, keyed by name and size, reused every cached result, and touch did not help).
        spec = super().spec()
        spec["file"] = {"name": self.path.name, "bytes": os.path.getsize(self.path), "sha256": file_sha256(self.path)}
        if self.n is not None and self._finding is not None:  # n is stratified on the finding (it was on the
            spec["strata"] = "finding"  # first positive class): other samples, other keys; single-label: as before
        return spec

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < len(self):
            raise IndexError(f"medmnist {self.flag}: index {i} out of range for {len(self)} samples")
        meta: dict[str, Any] = {}
        if self._label_vectors is not None:
            meta["labels"] = self._label_vectors[i].tolist()
            if self.multilabel:
                meta["no_finding"] = not bool(self._label_vectors[i].any())
        labels = None
        if self.multilabel and self._label_vectors is not None:
            labels = torch.from_numpy(np.asarray(self._label_vectors[i], dtype=np.int64))
        return Sample(id=f"{self.flag}_{self.size}-{self.split}-{int(self._index[i]):05d}",
                      image=self._images[i].float() / 255.0, label=int(self._labels[i]), meta=meta, labels=labels)

    def labels(self) -> list[int] | None:
        return None if self.multilabel else [int(y) for y in self._labels]

    def tensors(self) -> tuple[Tensor, Tensor]:
        if self.multilabel and self._label_vectors is not None:
            return self._images.float() / 255.0, torch.from_numpy(np.asarray(self._label_vectors, dtype=np.int64))
        return self._images.float() / 255.0, torch.from_numpy(np.asarray(self._labels, dtype=np.int64))


__all__ = ["MedMNIST", "SIZES", "download_medmnist", "medmnist_filename", "medmnist_info"]
