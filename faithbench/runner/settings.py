"""Frozen settings built once from a suite and the command line, passed whole.

:class:`RunSettings` is what :func:`~faithbench.runner.group.run_group` needs to compute one
(dataset, model, seed) group; :class:`ReportSettings` is what the report needs. Both are
plain frozen dataclasses, so a Ray task receives them pickled as they are.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import torch

from faithbench.config import PluginSpec, RegionSpec, Suite
from faithbench.device import check_device_name
from faithbench.registry import metrics
from faithbench.runner.errors import UsageError


def resolve_device(device: str | None, where: str = "device", cpu: str = "--device cpu") -> str:
    """``auto`` (or None) -> ``cuda`` when a GPU is visible, else ``cpu``; ``cpu``, ``cuda`` and
    ``cuda:N`` as given (``mps`` is refused: no float64 there). An unusable device is a
    :class:`UsageError` (exit 2) that begins with ``where``: the setting that asked for it
    (``--device``, ``suite.yaml: device``, ``run: device``); ``cpu``: how its advice names the CPU
    (``device='cpu'`` for :func:`faithbench.run`)."""
    try:
        device = check_device_name(device or "auto")
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{where} {device!r}: CUDA is not available here (torch {torch.__version__}, "
                             f"{torch.cuda.device_count()} GPUs); use {cpu} or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"{where} {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif dev.type == "mps":  # a review: every metric would fail (.double() on the device), after training
        raise UsageError(f"{where} {device!r}: not supported: faithbench's metrics compute in float64, which "
                         f"Apple's MPS lacks; use {cpu}")
    return str(dev)


def _named(suite: Suite) -> str:
    """The suite's file, which an error about its keys names (review 164), else its name."""
    return suite.source if suite.source not in ("<suite>", "<Suite>") else f"suite {suite.name!r}"


def region_metric(regions: RegionSpec | None) -> tuple[PluginSpec, ...]:
    """The suite's ``regions:`` block as the registered metric ``regions``
    (:class:`~faithbench.metrics.regions.RegionSaliency`), or nothing."""
    if regions is None:
        return ()
    return (PluginSpec(name="regions", params={"masks": regions.masks, "grid": regions.grid,
                                               "postprocess": regions.postprocess}),)


def check_limit(limit: Any, where: str = "limit") -> int | None:
    """``limit`` (the cap on the samples per dataset) as an int, or None for no cap; anything but a
    whole number >= 1 is a :class:`UsageError` that begins with ``where`` (``--limit`` for the CLI).
    One check for the CLI and the API (a review: ``limit=0`` ran the whole suite, ``limit=2.5`` trained
    the model, then failed with a raw TypeError)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1:
        kind = "" if type(limit) is int else f" ({type(limit).__name__})"
        raise UsageError(f"{where}: expected a positive number of samples (an int >= 1), got {limit!r}{kind}")
    return int(limit)


def check_limit_fits(suite: Suite, limit: int, where: str = "--limit") -> None:
    """A ``limit`` below what a metric that compares a sample with the others of its batch needs
    (``min_batch``: sufficiency, consistency, focus) is a :class:`UsageError` before any work (a
    review: ``--limit 1`` trained, explained and scored, then the metric had no row); the message
    begins with ``where`` and the limit (``run: limit 1`` for :func:`faithbench.run`)."""
    for spec in suite.metrics:  # a suite whose own samples or batch_size are too few: validate's refusal
        need = int(getattr(metrics.get(spec.name), "min_batch", 1) or 1)
        if limit < min(need, suite.samples, suite.batch_size):
            raise UsageError(f"{where} {limit}: metric {spec.label!r} compares each sample with the others of its "
                             f"batch and needs {need} samples in a batch; expected a limit of at least {need}")


@dataclass(frozen=True)
class RunSettings:
    """How every group of a run is computed.

    n_samples: test samples per dataset (the suite's ``samples``, capped by ``--limit``).
    metrics: the suite's metric entries, and the ``regions:`` block as the metric ``regions``.
    needs_permuted: some metric needs the permuted-label twin checkpoint (data randomisation).
    needs_validation: some metric is calibrated on the validation split before it scores
    (:mod:`faithbench.runner.calibration`), so every group builds that split.
    gallery_seed: galleries are drawn for this seed only (the suite's first).
    device: where models, batches, explainers and metrics run (``cpu``, ``cuda``, ``cuda:1``).
    threads: torch's CPU threads of the driver; a Ray task computes with as many, so that the
    checkpoints it trains (whose keys record the thread count) are the driver's.
    """

    n_samples: int
    batch_size: int
    target: Any
    subset: str
    metrics: tuple[PluginSpec, ...]
    needs_permuted: bool
    gallery_seed: int
    device: str = "cpu"
    threads: int = 1
    reliability: int = 0  # samples per group re-scored under perturbed conditions (0: no reliability check)
    needs_validation: bool = False  # some metric tunes a setting on the validation split (runner.calibration)
    keep_maps: bool = False  # keep each cell's first maps for repeatability (two seeds, or two models of a dataset)

    @classmethod
    def from_suite(cls, suite: Suite, *, limit: int | None = None, device: str | None = None) -> "RunSettings":
        limit = check_limit(limit)
        if limit:
            check_limit_fits(suite, limit)
        return cls(
            n_samples=min(suite.samples, limit) if limit else suite.samples,
            batch_size=suite.batch_size,
            target=suite.target,
            subset=suite.subset,
            metrics=tuple(suite.metrics) + region_metric(suite.regions),
            needs_permuted=any("permuted_model" in metrics.get(m.name).info.requires for m in suite.metrics),
            gallery_seed=suite.seeds[0],
            device=resolve_device(device or suite.device,
                                  "--device" if device else f"{_named(suite)}: device",
                                  "--device cpu" if device else "device: cpu (or --device cpu, run(device='cpu'))"),
            threads=torch.get_num_threads(),
            reliability=suite.reliability,
            needs_validation=any(metrics.get(m.name)(**m.params).needs_calibration for m in suite.metrics),
            keep_maps=len(suite.seeds) > 1 or any(
                len([m for m in suite.models if d.models is None or m.label in d.models]) > 1 for d in suite.datasets),
        )


@dataclass(frozen=True)
class ReportSettings:
    """How the derived tables are built: ``control`` is the explainer that ``p_vs_random`` and
    ``beats_random`` test against (the suite's ``control:``, default ``random``)."""

    control: str = "random"
    build: bool = True  # write the derived tables, plots and HTML now (else ``faithbench report`` later)

    @classmethod
    def from_suite(cls, suite: Suite, *, build: bool = True) -> "ReportSettings":
        return cls(control=suite.control, build=build)
