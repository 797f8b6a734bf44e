"""Dataset protocol and a base class that stores its parameters for hashing."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from faithbench.datasets.paths import DataError, DataWarning
from faithbench.types import CANONICAL_PLANES, DEFAULT_MASK_ROLES, MaskRole, Sample

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


@runtime_checkable
class Dataset(Protocol):
    classes: tuple[str, ...]
    spatial_dims: Literal[2, 3]
    multilabel: bool

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Sample: ...


def files_signature(files: Iterable[tuple[str, Path]]) -> str:
    """A 16-hex digest of each file's name, size and modification time (ns), in the given order (a
    file that cannot be stat'ed: size and time -1)."""
    rows = []
    for name, path in files:
        try:
            stat = Path(path).stat()
        except OSError:  # absent (another split's file on another machine) or unreadable
            rows.append([str(name), -1, -1])
            continue
        rows.append([str(name), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def stratified_order(labels: Sequence[int], seed: int) -> list[int]:
    """Positions of ``labels`` in a seeded order whose every prefix keeps each class's share: each
    class's positions shuffled with ``seed``, the k-th of a class of m placed at k / m (ties broken
    by a seeded draw). A prefix of n holds about n m / N of a class of m, and one of every class
    once n reaches the number of classes, so a cap ``n`` or the runner's first ``samples`` never
    take one class of a class-sorted list (a held-out review: the first 4 Kermany images were all
    NORMAL, and a model was trained on them)."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    keyed: list[tuple[float, float, int]] = []
    for label in sorted(by_class):
        members = by_class[label]
        rng.shuffle(members)
        keyed += [(k / len(members), rng.random(), i) for k, i in enumerate(members)]
    return [i for _, _, i in sorted(keyed)]


def check_train_classes(labels: Iterable[int], classes: Sequence[str], where: str, hint: str = "",
                        n_train: int | None = None) -> None:
    """Raise :class:`~faithbench.datasets.paths.DataError` when the labels a model is to be trained
    on hold fewer than 2 classes: it would predict that class for every input (a held-out review:
    a run trained so exited 0, with only "model at chance" to show for it). ``n_train``: a recipe's
    cap, which trains on the first ``n_train`` labels (the message says so). ``labels`` may be lazy:
    the check stops at the second class (a fuzzing review: a phantom of a million samples took minutes)."""
    if n_train:
        labels = itertools.islice(labels, n_train)
        hint = (f"the recipe's n_train {n_train} takes the first {n_train} of the split; a folder or medmnist "
                "dataset's n keeps each class's share")
    counts: Counter[int] = Counter()
    for y in labels:
        counts[int(y)] += 1
        if len(counts) >= 2:
            return
    if len(counts) < 2:
        held = ", ".join(f"{classes[c] if 0 <= c < len(classes) else c!r}: {k}" for c, k in sorted(counts.items()))
        raise DataError(f"{where}: the train split holds one class only ({held or 'no samples'}): a model "
                        f"trained on it predicts that class for every input; expected samples of 2 classes or more"
                        + (f" ({hint})" if hint else ""))


class BaseDataset:
    """Holds ``split`` and the constructor parameters; subclasses implement ``__getitem__``.

    ``background`` is the value of empty space in model input space: the ``zero`` baseline
    of perturbation metrics uses it (RISE's deletion baseline, Petsiuk et al. 2018), never a
    hidden 0 after normalisation.
    ``version`` changes whenever generation changes, so caches keyed on ``spec()`` expire; a plugin
    dataset's ``spec()`` also holds its code's identity (``package``: the shipping distribution's
    version, or the SHA-256 of a local or editable module and its helpers, as for explainers).
    ``mask_roles`` declares what each mask stands for (:class:`~faithbench.types.MaskRole`);
    the default covers the names the built-in datasets share, and a mask not listed is a region.
    ``cheap_splits``: building a split reads no image data, so ``validate`` builds the train and
    val splits a training run needs (the user's own split layouts: ``volume``, ``folder``).
    A dataset read from files lists them in :meth:`data_files`; their names, sizes and
    modification times enter ``spec()``, so that cached checkpoints and results follow the data.
    ``planes``: a volume's names of the gallery's slices through axes 0, 1, 2
    (:data:`~faithbench.types.CANONICAL_PLANES`; an array in another layout names its own).
    """

    classes: ClassVar[tuple[str, ...]] = ()
    spatial_dims: ClassVar[Literal[2, 3]] = 2
    multilabel: ClassVar[bool] = False
    background: float = 0.0
    version: ClassVar[str] = "1"
    mask_roles: ClassVar[dict[str, MaskRole]] = DEFAULT_MASK_ROLES
    cheap_splits: ClassVar[bool] = False
    planes: tuple[str, ...] = CANONICAL_PLANES

    def __init__(self, split: Split = "test", **params: Any) -> None:
        if split not in SPLITS:
            raise ValueError(f"expected split to be one of {SPLITS}, got {split!r}")
        self.split = split
        self.params = params
        self.data_warnings: list[str] = []  # what :meth:`warn` said, each once: the run's manifest

    def warn(self, message: str) -> None:
        """A :class:`~faithbench.datasets.paths.DataWarning` (data that loads but may not be what was
        meant), kept in :attr:`data_warnings` too: a run records them in ``manifest.json`` also when
        the dataset was built before the run (by validation) and is reused."""
        if message not in self.data_warnings:
            self.data_warnings.append(message)
        warnings.warn(message, DataWarning, stacklevel=3)

    def spec(self) -> dict[str, Any]:
        spec = {"name": getattr(self, "registry_name", type(self).__name__), "split": self.split,
                "version": self.version, "params": self.params}
        module = type(self).__module__
        if module != "faithbench" and not module.startswith("faithbench."):  # a plugin: its code's identity,
            from faithbench.configurable import package_version  # as for explainers and metrics (a review:
            spec["package"] = package_version(module, type(self))  # a plugin's edit reused stale maps and scores)
        if "_faithbench_files" not in self.__dict__:  # stat the files once per dataset object
            files = self.data_files()
            self._faithbench_files = files_signature(files) if files else None
        if self._faithbench_files is not None:
            spec["files"] = self._faithbench_files
        return spec

    def data_files(self) -> list[tuple[str, Path]]:
        """The files the data of every split comes from, as ``(name, path)``, the name relative to
        the dataset's folder or the data root (as the suite gives it): with their sizes and
        modification times they enter :meth:`spec`, so that an image edited in place, a relabelled
        file or another data root with other files under the same names gets new cache keys, while
        the same files under another root (copied with their times) keep them. Default: none
        (generated data)."""
        return []

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.spec(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def in_channels(self) -> int:
        return int(self._first_image_shape()[0])

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self._first_image_shape()[1:]

    def _first_image_shape(self) -> tuple[int, ...]:
        """The first sample's image shape, ``(C, *spatial)``; a :class:`DataError` when its axes do not
        match ``spatial_dims`` (a review: an ``(H, W)`` image was read as H channels of size (W,), and the
        error blamed the model's parameters)."""
        sample = self[0]
        check_image_axes(sample, self, f"{type(self).__name__} ({self.split} split)")
        return tuple(sample.image.shape)

    def labels(self) -> Iterable[int] | None:
        """The class index of every sample, when known without reading or generating an image (None:
        not known so; a multi-label dataset: None). ``validate`` and the run's preflight refuse a
        train split of one class with it, before any training."""
        return None

    @classmethod
    def labels_split(cls, split: Split, **params: Any) -> BaseDataset | None:
        """Split ``split`` built with ``params`` for ``validate`` to read its ``classes`` and :meth:`labels`
        (a train split of one class), or None where building it reads the images: the split itself where
        ``cheap_splits``; a dataset that can read its labels alone (``medmnist``) builds it without them."""
        return cls(split=split, **params) if cls.cheap_splits else None

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All images and labels stacked: ``(N, C, *spatial)``, and ``(N,)`` class indices, or for a
        multi-label dataset the ``(N, K)`` 0/1 vectors. For training."""
        samples = [self[i] for i in range(len(self))]
        check_samples(samples, self, f"{type(self).__name__} ({self.split} split)")
        x = torch.stack([s.image for s in samples]).float()
        if self.multilabel:
            return x, torch.stack([s.labels for s in samples]).long()  # type: ignore[misc]
        return x, torch.tensor([s.label for s in samples])

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError


class ImageAxesError(DataError):
    """An image whose axes are not ``(C, *spatial)`` with its dataset's ``spatial_dims``."""


def check_image_axes(sample: Sample, dataset: Any, where: str) -> None:
    """Raise :class:`ImageAxesError` unless ``sample.image`` is ``(C, *spatial)`` with the dataset's
    ``spatial_dims`` spatial axes."""
    dims = int(getattr(dataset, "spatial_dims", 2))
    if sample.image.ndim != dims + 1:
        raise ImageAxesError(f"{where}: sample {sample.id!r} has an image of shape {tuple(sample.image.shape)}: "
                             f"expected (C, *spatial) with {dims} spatial axes (spatial_dims {dims}); a grey image "
                             "keeps its channel axis: image[None]")


def check_samples(samples: list[Sample], dataset: Any, where: str) -> None:
    """Raise :class:`~faithbench.datasets.paths.DataError` naming the first of ``samples`` that a
    run cannot use: an id used before, an image of another shape than the first's, NaN or Inf
    pixels, a label that is not one of ``dataset.classes`` (a multi-label sample: not a 0/1 vector
    over them). A held-out review found each of these passing validate, then failing the run with
    torch's message and no sample named (exit 1), or training on NaN silently."""
    from faithbench.datasets.paths import DataError

    classes = tuple(getattr(dataset, "classes", ()))
    k = len(classes)
    shape = None
    seen: dict[str, int] = {}  # id -> position
    for s in samples:
        if s.id in seen:
            raise DataError(f"{where}: sample id {s.id!r} is used twice (samples {seen[s.id]} and {len(seen)}); "
                            f"a dataset's sample ids must be unique")
        seen[s.id] = len(seen)
        check_image_axes(s, dataset, where)
        shape = tuple(s.image.shape) if shape is None else shape
        if tuple(s.image.shape) != shape:
            hint = ("; its `size` parameter resamples every image to one grid" if getattr(dataset, "size", 0) is None
                    else "")  # a dataset with an unset size (volume): a review, the fix went unsaid
            raise DataError(f"{where}: sample {s.id!r} has an image of shape {tuple(s.image.shape)}, the first "
                            f"{shape}: every image of a dataset must have one shape{hint}")
        if not bool(torch.isfinite(s.image).all()):
            raise DataError(f"{where}: sample {s.id!r}: its image has NaN or Inf values")
        if getattr(dataset, "multilabel", False):
            labels = s.labels
            if labels is None or tuple(labels.shape) != (k,) or not bool(((labels == 0) | (labels == 1)).all()):
                raise DataError(f"{where}: sample {s.id!r}: expected labels, a 0/1 vector over its {k} classes, "
                                f"got {None if labels is None else labels.tolist()}")
        elif k and not _whole(s.label):  # a review: 1.5 passed as int(1.5), then training failed on Float targets
            raise DataError(f"{where}: sample {s.id!r}: label {s.label!r} ({type(s.label).__name__}) is not a class "
                            f"index: expected an int 0 to {k - 1} (classes: {', '.join(classes)})")
        elif k and not 0 <= int(s.label) < k:
            raise DataError(f"{where}: sample {s.id!r}: label {int(s.label)} is not a class index 0 to {k - 1} "
                            f"(classes: {', '.join(classes)})")


def _whole(label: Any) -> bool:
    """Whether ``label`` is an integer class index: a Python or NumPy int, or a one-element integer tensor; not
    a bool, a float (even 1.0) or a float tensor, which training cannot take as a class target."""
    if isinstance(label, Tensor):  # 0-d, or one element (torch.tensor([1]) trained before this check)
        return label.numel() == 1 and not (label.is_floating_point() or label.is_complex() or label.dtype == torch.bool)
    return isinstance(label, int | np.integer) and not isinstance(label, bool | np.bool_)
