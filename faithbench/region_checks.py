"""Suite checks of the ``regions:`` block (region-based saliency) against its datasets, found by validation.

:func:`faithbench.config.validate_plugins` calls :func:`check_regions` after
:func:`~faithbench.metric_checks.check_masks`. Errors (exit code 2, one line): a grid finer than a dataset's
image, a grid of a dimension no dataset has, masks no dataset has without a grid. Warnings
(:class:`~faithbench.config_checks.SuiteWarning`), where the run goes on: a mask no dataset has (a typo?), a
mask or a grid dimension that some datasets lack (the run leaves it out there, with a note in ``skipped.csv``),
and a mask empty on every sample of a class in the run's first batch (``lesion`` on normal images), which
``region_tests.csv`` gives no between-class test.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from faithbench.config_checks import SuiteWarning
from faithbench.metric_checks import first_batch_masks
from faithbench.names import did_you_mean

__all__ = ["check_regions", "empty_in_a_class"]


def check_regions(suite: Any, source: str, built: dict[str, Any], masks: dict[str, set[str] | None],
                  error: type[Exception]) -> None:
    """The ``regions:`` block against the data (a fuzzing review: both passed validate without a word): a grid finer
    than a dataset's image, or of a dimension no dataset has, is an error (the run failed every cell, or dropped the
    grid with exit 0); a mask name that no dataset has (a typo?) is warned of, with a did-you-mean (the run leaves it
    out); so are a mask, or a grid's dimension, that only some datasets lack (a review: docs/suites.md promised it,
    validate was silent), and a mask empty on every sample of a class of the first batch (:func:`empty_in_a_class`);
    an error where no dataset has any of them and there is no grid (a fuzzing review: empty tables). ``masks``: as
    :func:`~faithbench.metric_checks.check_masks` returns."""
    spec = suite.regions
    if spec is None:
        return
    known: set[str] = set()
    shapes: dict[str, tuple[int, ...]] = {}
    for label, dataset in built.items():
        try:
            shape = tuple(int(s) for s in dataset.spatial_shape)
        except Exception:  # an unreadable split: the run's preflight names it
            continue
        shapes[label] = shape
        known |= masks.get(label) or set()
        grid = spec.grid
        if grid is not None and len(grid) == len(shape) and any(g > n for g, n in zip(grid, shape)):
            raise error(f"{source}: regions.grid: {list(grid)} has more cells along an axis than dataset {label!r} "
                        f"has pixels {shape}; expected sizes between 1 and the image size")
    dims = {len(s) for s in shapes.values()}
    if spec.grid is not None and dims and len(spec.grid) not in dims:  # a fuzzing review: dropped, exit 0
        raise error(f"{source}: regions.grid: {list(spec.grid)} has {len(spec.grid)} sizes, but the datasets are "
                    f"{' and '.join(f'{d}D' for d in sorted(dims))}; expected one size per spatial axis")
    for label, shape in shapes.items():
        if spec.grid is not None and len(spec.grid) != len(shape):
            warnings.warn(f"{source}: regions.grid: {list(spec.grid)} has {len(spec.grid)} sizes, but dataset "
                          f"{label!r} is {len(shape)}D, so the run leaves the grid out there", SuiteWarning,
                          stacklevel=2)
    if not known:
        return
    have = {label: set(masks.get(label) or set()) for label in built if masks.get(label) is not None}
    for label in have:  # sample 0 may lack one (a normal image): the masks of the first batch, where the run decides
        if spec.masks != "all" and not set(spec.masks) <= have[label]:
            have[label] |= first_batch_masks(built[label], suite) or set()
            known |= have[label]
    _warn_missing(spec, source, built, masks, known, have, error)
    for label, dataset in built.items():
        wanted = sorted(have.get(label, set())) if spec.masks == "all" else list(spec.masks)
        for name, n in empty_in_a_class(dataset, suite, wanted).items():
            warnings.warn(f"{source}: regions.masks: mask {name!r} of dataset {label!r} is empty on every {n} of "
                          f"the run's first batch, so region_tests.csv gives it no between-class test (its scores "
                          f"there come from the mask, not the map: any map would differ between the classes)",
                          SuiteWarning, stacklevel=2)


def _warn_missing(spec: Any, source: str, built: dict[str, Any], masks: dict[str, set[str] | None], known: set[str],
                  have: dict[str, set[str]], error: type[Exception]) -> None:
    """A mask no dataset has: an error without a grid, else a warning; one some datasets lack: a warning each."""
    if spec.masks == "all":
        return
    names = sorted(known)
    if spec.grid is None and not set(spec.masks) & known and all(masks.get(label) is not None for label in built):
        raise error(f"{source}: regions.masks: no dataset has any of {', '.join(spec.masks)}, and there is no grid, so "
                    f"nothing would be left for the block; their masks: {', '.join(names)}")
    for name in spec.masks:
        if name not in known:
            warnings.warn(f"{source}: regions.masks: no dataset has a mask {name!r}{did_you_mean(name, names)}, so "
                          f"the run leaves it out; their masks: {', '.join(names)}", SuiteWarning, stacklevel=3)
            continue
        for label in (label for label, its in have.items() if name not in its):
            warnings.warn(f"{source}: regions.masks: dataset {label!r} has no mask {name!r}, so the run leaves it "
                          f"out there; its masks: {', '.join(sorted(have[label])) or 'none'}", SuiteWarning,
                          stacklevel=3)


def empty_in_a_class(dataset: Any, suite: Any, names: list[str]) -> dict[str, str]:
    """The masks of ``names`` empty on every sample of a class in the run's first batch (the first
    ``min(samples, batch_size)`` samples; both classes must be in it), each with the class and its count
    (``"label-0 sample (10)"``): ``region_tests.csv`` gives them no between-class test
    (:func:`faithbench.stats.regions.empty_class`). Nothing with ``subset: positive`` (one class) or where a
    sample cannot be read (the run's preflight names it)."""
    if suite.subset == "positive" or not names or getattr(dataset, "multilabel", False):
        return {}
    from faithbench.models.reliance import explained_indices

    filled: dict[str, dict[bool, list[bool]]] = {name: {False: [], True: []} for name in names}
    try:
        for i in explained_indices(dataset, min(suite.samples, suite.batch_size)):  # the run's first batch
            sample = dataset[i]
            positive = int(sample.label) != 0
            for name in names:
                mask = sample.masks.get(name)
                if mask is not None:
                    filled[name][positive].append(bool(torch.as_tensor(mask).any()))
    except Exception:  # noqa: BLE001 - an unreadable sample: the run's preflight names it
        return {}
    out: dict[str, str] = {}
    for name, by_class in filled.items():
        if not (by_class[False] and by_class[True]):
            continue
        for positive, word in ((False, "label-0 sample"), (True, "positive sample")):
            if not any(by_class[positive]):
                out[name] = f"{word} ({len(by_class[positive])})"
    return out
