"""Suite checks of each metric against the datasets and models it runs on, found by validation.

:func:`faithbench.config.validate_plugins` calls :func:`check_metric_fit` after the other checks of
:mod:`faithbench.config_checks`, so a limit that depends on the data or the network is an error of
``faithbench validate`` (exit code 2, one line naming the suite file, ``metrics[i]`` and the parameter), not a
failure in the middle of a run or a column of NaN:

- an ``alias`` that is the registry name of another metric or explainer (its rows would read as that one's);
- :meth:`~faithbench.metrics.base.Metric.check_dataset` ``(spatial_shape, *, multilabel)``: on each dataset where
  the metric applies (:meth:`~faithbench.metrics.base.Metric.applicability`; where it does not,
  :func:`check_masks` warns and the run skips it), a problem message or None (``top_k_intersection``'s ``k``
  above the pixels of an image, ``continuity``'s ``steps`` above 2W + 1, ``consistency``'s ``grid`` above the
  smallest side or an image with a side of 1, ``class_sensitivity``'s ``others: positive`` on single-label data,
  a ``patch`` that leaves one feature to rank); a metric computed directly refuses the same
  (:meth:`~faithbench.metrics.base.Metric.refuse_unfit`). A plugin without the hook is checked for a ``patch``
  parameter that leaves one feature;
- :meth:`~faithbench.metrics.base.Metric.check_model` ``(model)``: on each model the metric meets, built for the
  dataset on the ``meta`` device as :func:`~faithbench.config_checks.check_weights` builds it
  (``relative_representation_stability``'s ``layer``). A model that cannot be built there (one that downloads
  pretrained weights, a library network that refuses the meta device) is left to the run;
- that something applies: a suite in which no metric applies to any dataset (each one skipped, as
  :func:`check_masks` warns) is an error, since its run would train and explain to compute nothing.

A plugin metric may define either hook; one without them is not checked.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from faithbench.config_checks import SuiteWarning, class_masks_in, first_line, mask_names, model_dataset_pairs
from faithbench.metrics.base import one_feature
from faithbench.metrics.functional import feature_ids, whole_features

__all__ = ["check_aliases", "check_masks", "check_metric_fit", "first_batch_masks", "run_masks", "skip_reason"]


def check_aliases(suite: Any, source: str, error: type[Exception]) -> None:
    """An alias may not be the registry name of another metric or explainer: ``{name:
    avg_sensitivity, alias: sparseness}`` would put avg_sensitivity's scores in rows that read as
    sparseness', and ``{name: gradcam, alias: random}`` Grad-CAM's maps under the random control's
    name (which the report then treats as the control)."""
    from faithbench.registry import explainers, metrics

    for key, registry in (("metrics", metrics), ("explainers", explainers)):
        for i, spec in enumerate(getattr(suite, key)):
            if spec.alias is not None and spec.alias != spec.name and spec.alias in registry:
                raise error(f"{source}: {key}[{i}].alias: {spec.alias!r} is the name of another "
                            f"{key[:-1]}: the rows of {spec.name!r} would read as that {key[:-1]}'s; "
                            "choose another alias")


def _overrides(plugin: Any, hook: str) -> bool:
    """``plugin`` defines ``hook`` beyond the base class's default (which checks nothing)."""
    from faithbench.metrics.base import Metric

    own = getattr(type(plugin), hook, None)
    return callable(own) and own is not getattr(Metric, hook, None)


def _hook(plugin: Any, hook: str, *args: Any, **kwargs: Any) -> str | None:
    """A plugin's hook, whose own failure (another signature, a bug) is a problem to report in one
    line, not a traceback."""
    try:
        return getattr(plugin, hook)(*args, **kwargs)
    except Exception as exc:
        return f"{plugin.name}: {hook} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _fit_problem(plugin: Any, shape: tuple[int, ...], multilabel: bool) -> str | None:
    """``plugin``'s ``check_dataset`` on images of ``shape`` (without one: a ``patch`` leaving one feature)."""
    if _overrides(plugin, "check_dataset"):
        return _hook(plugin, "check_dataset", shape, multilabel=multilabel)
    return one_feature(plugin.name, getattr(plugin, "params", {}).get("patch"), shape)


def _largest_patch(plugin: Any, shape: tuple[int, ...], multilabel: bool) -> str:
    """The bound on ``patch`` a message states: ``<= p`` for the largest patch p the metric takes on images of
    ``shape`` (a fuzzing review: "<= 32", then 32 refused; a diff review: "< 32", then 31 refused by a
    correlation metric that needs 3 whole patches, where 16 is the largest it takes)."""
    for patch in range(max(shape), 0, -1):
        try:
            probe = type(plugin)(**{**plugin.params, "patch": patch})
        except Exception:  # noqa: BLE001 - the metric refuses that patch on construction
            continue
        if _fit_problem(probe, shape, multilabel) is None:
            return f"<= {patch}"
    return f"< {max(shape)}"


def _applies(plugin: Any, masks: set[str] | None, dims: int) -> bool:
    """False where the run skips ``plugin`` on ``masks``, ``dims`` axes (``masks`` None: the preflight tells)."""
    return masks is None or skip_reason(plugin, masks, dims) is None


def first_batch_masks(dataset: Any, suite: Any) -> set[str] | None:
    """The mask names of the run's first batch: of each of its samples (the first ``batch_size`` of the first
    ``samples``, or of the first positive ones with ``subset: positive``), as the run collates them and decides
    which metrics apply (None when they cannot be read here)."""
    from faithbench.models.reliance import explained_indices

    n = min(suite.samples, suite.batch_size)
    try:
        return set().union(*(mask_names(dataset, i) or set() for i in explained_indices(dataset, n, suite.subset)))
    except Exception:  # an unreadable sample: the run's preflight names it
        return None


def run_masks(dataset: Any, suite: Any, metric_plugins: list[Any]) -> set[str] | None:
    """The mask names the run's metrics meet on ``dataset``: sample 0's, or where a metric needs one sample 0
    lacks, those of the run's first batch (:func:`first_batch_masks`: a volume without a lesion first), where the
    run decides; None when sample 0 cannot be read."""
    masks = mask_names(dataset)
    if masks is not None and any(not set(getattr(p, "required_masks", lambda: [])()) <= masks for p in metric_plugins):
        masks = first_batch_masks(dataset, suite) or masks
    wanted = any("target" in getattr(p, "required_masks", lambda: [])() for p in metric_plugins)
    scan = masks is not None and wanted and "target" not in masks and getattr(dataset, "multilabel", False)
    if scan and class_masks_in(dataset, suite.samples, suite.subset):  # the run builds it from the first batch on
        masks = masks | {"target"}
    return masks


def unreadable(dataset: Any) -> str | None:
    """Why test sample 0 cannot be read (a mask of another size, a corrupt file), or None: every batch starts
    with it."""
    try:
        if dataset is not None and len(dataset):
            dataset[0]
    except Exception as exc:  # noqa: BLE001 - any failure of the dataset's code is reported
        return f"test sample 0 cannot be read: {type(exc).__name__}: {first_line(exc)}"
    return None


def check_masks(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any],
                error: type[Exception] | None = None) -> dict[str, set[str] | None]:
    """Warn (:class:`SuiteWarning`) for each metric mask a dataset lacks, naming the mask, and for
    any other reason the run skips a metric on a dataset (its ``applicability``: a temporal metric
    on 2D images), on the masks of :func:`run_masks`, unless the metric runs on another entry of the
    same dataset (a variant it is meant for: ``quick``'s ``mass_on_marker`` on the shortcut phantom;
    the run lists the skip in ``skipped.csv``); returns the masks per dataset label (read once, for
    :func:`check_metric_fit`). With ``error``, a first test sample that cannot be read raises it."""
    found: dict[str, set[str] | None] = {}
    skips: list[tuple[int, str, str]] = []  # (metric, dataset name, why)
    runs: set[tuple[int, str]] = set()  # (metric, dataset name) where it runs (or that cannot be told)
    for i, spec in enumerate(suite.datasets):
        dataset = built.get(spec.label)
        masks = found[spec.label] = run_masks(dataset, suite, metric_plugins)
        if masks is None:
            problem = unreadable(dataset)
            if problem and error is not None:  # a review: validate said ok, then every cell of the run failed
                raise error(f"{source}: datasets[{i}] {spec.label!r}: {problem}")
            continue
        try:
            dims = len(dataset.spatial_shape)
        except Exception:  # an unreadable split: the run's preflight names it
            dims = None
        for k, plugin in enumerate(metric_plugins):
            missing = [m for m in getattr(plugin, "required_masks", lambda: [])() if m not in masks]
            # a reason that holds even with the missing masks first, as the run's skipped.csv gives it (a review:
            # visit_pointing on 2D images was said to need mask 'change', not sequences of visits)
            reason = None if dims is None else skip_reason(plugin, masks | set(missing), dims)
            if reason:
                skips.append((k, spec.name, f"{source}: metrics[{k}] {suite.metrics[k].label!r} does not apply to "
                                            f"dataset {spec.label!r}: {reason}; the run skips it there"))
            else:
                skips += [(k, spec.name, f"{source}: metrics[{k}] {suite.metrics[k].label!r} needs mask {mask!r}, "
                           f"which dataset {spec.label!r} lacks (its masks: {', '.join(sorted(masks)) or 'none'}); "
                           "the run skips it there") for mask in missing]
            if not (missing or reason):
                runs.add((k, spec.name))
    for k, name, message in skips:
        if (k, name) not in runs:
            warnings.warn(message, SuiteWarning, stacklevel=2)
    _warn_one_class(suite, source, built, metric_plugins)
    _warn_cut_patches(suite, source, built, metric_plugins)
    _warn_gate(suite, source, built, metric_plugins)
    _warn_every_visit(suite, source, built, metric_plugins)
    return found


def _visits_problem(plugin: Any, dataset: Any, label: str) -> str | None:
    """A metric comparing visits (``min_visits`` 2) on sequences of fewer real visits (``most_visits``; a review)."""
    need, most = int(getattr(plugin, "min_visits", 1) or 1), getattr(dataset, "most_visits", None)
    if not isinstance(most, int) or most >= need:
        return None
    return (f"{plugin.name} compares the visits of a sequence, and each sequence of dataset {label!r} holds at most "
            f"{most} real visit (seq_len, max_visits or the patients' visits), so every map would score the same; "
            f"expected sequences of {need} real visits or more")


def _warn_every_visit(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any]) -> None:
    """Warn where ``visit_pointing``'s mask is on every real visit of each of the run's first samples (``lung_left``;
    a review: 1.000 = chance for every explainer): every map hits, so those samples are NaN (``skipped.csv``)."""
    from faithbench.models.reliance import explained_indices

    for k, plugin in enumerate(metric_plugins):
        mask = getattr(plugin, "params", {}).get("mask")
        if getattr(plugin, "min_visits", 1) < 2 or not isinstance(mask, str):
            continue
        for spec in suite.datasets:  # not where validate refuses sequences of one visit (_visits_problem)
            dataset, every = built.get(spec.label), []
            if not getattr(dataset, "temporal", False) or _visits_problem(plugin, dataset, spec.label):
                continue
            try:
                for i in explained_indices(dataset, min(suite.samples, suite.batch_size), suite.subset):
                    masks = dataset[i].masks
                    held = masks[mask].flatten(1).any(1)
                    real = masks["valid"].flatten(1).any(1) if "valid" in masks else torch.ones_like(held)
                    every.append(bool((held | ~real).all()))
            except Exception:  # no such mask, an unreadable sample: warned of or named elsewhere
                continue
            if every and all(every):
                warnings.warn(f"{source}: metrics[{k}] {suite.metrics[k].label!r}: mask {mask!r} is set on every "
                              f"real visit of each of the first {len(every)} samples of dataset {spec.label!r}, so "
                              "every map hits there (chance 1): those samples are undefined (NaN, counted in "
                              "skipped.csv); expected a mask of the deciding change (change, lesion)",
                              SuiteWarning, stacklevel=3)


def _warn_gate(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any]) -> None:
    """Warn of a CheXlocalize ``gate`` that can only lower the score (``full_dataset: false``: it empties maps of
    samples with the finding only; a review: hit rates fell 0.615 -> 0.385 with nothing saying why) or that gates
    nothing (a fixed gate below 0.5 on a two-class single-label dataset with ``target: predicted``)."""
    for k, plugin in enumerate(metric_plugins):
        gate, where = getattr(plugin, "params", {}).get("gate"), f"{source}: metrics[{k}] {suite.metrics[k].label!r}"
        if gate is None or not str(getattr(plugin, "name", "")).startswith("chexlocalize"):
            continue
        if not plugin.params.get("full_dataset"):
            warnings.warn(f"{where}: a gate without full_dataset: true empties maps of samples with the finding only, "
                          "so it can only lower the score (a gate is meant for maps of the finding's class on images "
                          "with and without it, multi-label data with full_dataset: true, as CheXlocalize)",
                          SuiteWarning, stacklevel=3)
        two_class = [spec.label for spec in suite.datasets if built.get(spec.label) is not None and not getattr(
            built[spec.label], "multilabel", False) and len(getattr(built[spec.label], "classes", ())) == 2]
        if isinstance(gate, float) and gate < 0.5 and suite.target == "predicted" and two_class:
            warnings.warn(f"{where}: gate {gate} gates nothing on the two-class dataset(s) {', '.join(two_class)} "
                          "with target: predicted (the predicted class's probability is at least 0.5)",
                          SuiteWarning, stacklevel=3)


_RANKS_PATCHES = ("deletion_auc", "insertion_auc", "abpc", "morf_aopc", "lerf_aopc", "monotonicity", "selectivity",
                  "irof")
_CORRELATES_PATCHES = ("faithfulness_estimate", "monotonicity_correlation", "sensitivity_n")  # whole ones only


def _warn_cut_patches(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any]) -> None:
    """Warn where a metric ranks ``patch``-sized patches that do not tile a dataset's image: the patches
    cut by the border are ranked by their mean, which varies more over fewer pixels, so they come first
    and last more often than whole ones and the ``random`` control is not at chance (a review: morf_aopc
    0.145 against 0.108 for a random patch order, 28^3 volumes in 8^3 patches)."""
    patches = [(k, int(getattr(plugin, "params", {}).get("patch", 1) or 1)) for k, plugin in enumerate(metric_plugins)
               if getattr(plugin, "name", None) in _RANKS_PATCHES + _CORRELATES_PATCHES]
    patches = [(k, patch) for k, patch in patches if patch > 1]
    for spec in suite.datasets if patches else []:
        try:
            shape = tuple(built[spec.label].spatial_shape)  # reads the first sample: once per dataset
        except Exception:  # not built or unreadable: named elsewhere
            continue
        for k, patch in patches:
            multilabel = bool(getattr(built[spec.label], "multilabel", False))
            if patch > max(shape) or _fit_problem(metric_plugins[k], shape, multilabel):
                continue  # refused by check_metric_fit: no warning about tiling before it (a fuzzing review)
            whole, total = len(whole_features(shape, patch)), feature_ids(shape, patch)[1]
            if whole < total and metric_plugins[k].name in _CORRELATES_PATCHES:
                warnings.warn(f"{source}: metrics[{k}] {suite.metrics[k].label!r}: patch {patch} does not tile dataset "
                              f"{spec.label!r}'s images ({' x '.join(map(str, shape))}): the patches cut by the "
                              f"border are left out, {whole} of {total} correlated; a patch that divides every "
                              "side uses them all", SuiteWarning, stacklevel=3)
            elif any(side % patch for side in shape) and metric_plugins[k].name in _RANKS_PATCHES:
                warnings.warn(f"{source}: metrics[{k}] {suite.metrics[k].label!r}: patch {patch} does not tile dataset "
                              f"{spec.label!r}'s images ({' x '.join(map(str, shape))}): the patches cut by the "
                              f"border rank more often first and last, so the random control is not quite at "
                              f"chance; a patch that divides every side avoids it", SuiteWarning, stacklevel=3)


def _warn_one_class(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any]) -> None:
    """Warn where a metric that compares the explained class with samples of another class in the batch
    (``needs_other_class``: Focus' mosaics) meets ``subset: positive`` on a single-label two-class dataset: every
    explained sample is of class 1, so every value is NaN (a review: validate said ok)."""
    if suite.subset != "positive":
        return
    for k, plugin in enumerate(metric_plugins):
        if not getattr(plugin, "needs_other_class", False):
            continue
        for spec in suite.datasets:
            dataset = built.get(spec.label)
            if dataset is None or getattr(dataset, "multilabel", False) or len(getattr(dataset, "classes", ())) != 2:
                continue
            warnings.warn(f"{source}: metrics[{k}] {suite.metrics[k].label!r} needs samples of another class in "
                          f"each batch; with subset: positive, every explained sample of the two-class dataset "
                          f"{spec.label!r} is of class 1, so its every value there is NaN (set subset: all)",
                          SuiteWarning, stacklevel=3)


def skip_reason(plugin: Any, masks: set[str], dims: int) -> str | None:
    """Why the run skips ``plugin`` on a dataset with ``masks`` and ``dims`` spatial axes (its
    ``applicability``; None: it runs, or that cannot be told here)."""
    try:
        return plugin.applicability(masks, dims)[0]
    except Exception:  # no applicability, a plugin's check that fails: the run says why
        return None


def _check_something_applies(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any],
                             applies: dict[str, list[bool]], masks: dict[str, set[str] | None],
                             error: type[Exception]) -> None:
    """When every dataset of the suite could be read and no metric applies to any of them (a
    temporal metric alone on 2D images, a localisation metric alone on data without masks), the
    run would train and explain for nothing and exit 2 with no result row: the same error here,
    naming the first metric and why it is skipped (masks: :func:`run_masks`)."""
    if not metric_plugins or len(applies) < len(suite.datasets) or any(any(a) for a in applies.values()):
        return
    label = suite.datasets[0].label
    dataset = built[label]
    reason = skip_reason(metric_plugins[0], masks[label] or set(), len(dataset.spatial_shape))
    raise error(f"{source}: metrics: none applies to any dataset, so the run would compute nothing "
                f"(metrics[0] {suite.metrics[0].label!r} on dataset {label!r}: {reason or 'skipped'}); "
                "add a metric that applies or a dataset it applies to")


def check_metric_fit(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any],
                     error: type[Exception], masks: dict[str, set[str] | None] | None = None) -> None:
    """The alias check (:func:`check_aliases`, metrics and explainers), then each metric's
    ``check_dataset`` on every dataset and ``check_model`` on every (model, dataset) pair where it
    runs, and that something applies; the first problem raises ``error``. ``masks``: per dataset
    label, as :func:`check_masks` returns them (None: read here, :func:`run_masks`)."""
    check_aliases(suite, source, error)
    if masks is None:
        masks = {spec.label: run_masks(built.get(spec.label), suite, metric_plugins) for spec in suite.datasets}
    applies: dict[str, list[bool]] = {}  # dataset label -> whether each metric runs there
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in suite.datasets:
        dataset = built.get(spec.label)
        if dataset is None:
            continue  # an optional dataset whose data is absent here: the run skips it
        try:
            shape = tuple(int(s) for s in dataset.spatial_shape)
        except Exception:  # an empty or unreadable split: the run's preflight names it
            continue
        shapes[spec.label], applies[spec.label] = shape, [_applies(p, masks[spec.label], len(shape))
                                                          for p in metric_plugins]
        multilabel = bool(getattr(dataset, "multilabel", False))
        for k, plugin in enumerate(metric_plugins):
            if not applies[spec.label][k]:
                continue
            patch = getattr(plugin, "params", {}).get("patch")
            if isinstance(patch, int) and patch > max(shape):  # a review: 1e12 failed every cell of the run
                raise error(f"{source}: metrics[{k}].params: {plugin.name}: parameter 'patch' = {patch} is larger "
                            f"than the image ({' x '.join(map(str, shape))}) of dataset {spec.label!r}; expected "
                            f"patch {_largest_patch(plugin, shape, multilabel)}")
            # one feature: nothing to rank (a fuzzing review: every explainer scored the same on eight metrics, NaN
            # on two, exit 0); a metric with its own check (the built-ins') decides: infidelity without scaling
            # scores it, and a built-in refuses it when computed too (Metric.refuse_unfit)
            problem = _fit_problem(plugin, shape, multilabel)
            if problem:
                raise error(f"{source}: metrics[{k}].params: {problem} (dataset {spec.label!r})")
            problem = _visits_problem(plugin, dataset, spec.label)
            if problem:
                raise error(f"{source}: metrics[{k}] {suite.metrics[k].label!r}: {problem}")
            problem = _batch_problem(plugin, suite, tuple(dataset.classes) if multilabel else None)
            if problem:
                raise error(f"{source}: metrics[{k}] {suite.metrics[k].label!r}: {problem}")
    _check_something_applies(suite, source, built, metric_plugins, applies, masks, error)
    from faithbench.models.checkpoint import build_for_dataset

    wanted = [(k, p) for k, p in enumerate(metric_plugins) if _overrides(p, "check_model")]
    for i, mspec, label, dataset in model_dataset_pairs(suite, built) if wanted else []:
        if mspec.uses_pretrained or label not in shapes:
            continue  # pretrained weights are a download: the run builds and checks that model
        try:
            shape = (dataset.in_channels, len(dataset.classes), shapes[label])  # read before the meta device
            with torch.device("meta"):  # module names and types only: no memory, no initialisation
                model = build_for_dataset(mspec, *shape)[0]
        except Exception:  # a built-in's build error is check_models'; a library or user network the run reports
            continue
        for k, plugin in wanted:
            problem = _hook(plugin, "check_model", model) if applies[label][k] else None
            if problem:
                raise error(f"{source}: metrics[{k}].params: {problem} (model {mspec.label!r}, dataset {label!r})")


def _batch_problem(plugin: Any, suite: Any, classes: tuple[str, ...] | None = None) -> str | None:
    """Why a metric that compares a sample with the others of its batch (``min_batch`` > 1: sufficiency,
    consistency, focus) cannot score any: batches (or samples) below ``min_batch`` (a fuzzing review: no row after
    the whole run); on a multi-label dataset (its ``classes``) under ``target: {classes, samples: all}`` a batch
    holds ``batch_size // k`` images, a row per class (a review: focus at batch_size 4 on 2 classes)."""
    need, have, target = int(getattr(plugin, "min_batch", 1) or 1), min(suite.batch_size, suite.samples), suite.target
    if classes and have >= need and getattr(target, "samples", None) == "all" and \
            suite.batch_size // (k := len(target.classes or classes)) < need:
        return (f"{plugin.name} compares each image with other images of its batch and needs {need} in a batch; "
                f"batch_size {suite.batch_size} holds {suite.batch_size // k} of this multi-label dataset, each "
                f"explained for its {k} classes (target samples: all); expected batch_size >= {need * k}")
    if have >= need:
        return None
    which = "batch_size" if suite.batch_size <= suite.samples else "samples"
    return (f"{plugin.name} compares each sample with the others of its batch and needs {need} samples in a batch; "
            f"{which} is {have}")
