"""Suite checks of each metric against the datasets and models it runs on, found by validation.

:func:`faithbench.config.validate_plugins` calls :func:`check_metric_fit` after the other checks of
:mod:`faithbench.config_checks`, so a limit that depends on the data or the network is an error of
``faithbench validate`` (exit code 2, one line naming the suite file, ``metrics[i]`` and the
parameter), not a failure in the middle of a run or a column of NaN:

- an ``alias`` that is the registry name of another metric or explainer (its rows would read as
  that one's);
- :meth:`~faithbench.metrics.base.Metric.check_dataset` ``(spatial_shape, *, multilabel)``: on each
  dataset where the metric applies (:meth:`~faithbench.metrics.base.Metric.applicability`; where it
  does not, :func:`~faithbench.config_checks.check_masks` warns and the run skips it), a problem
  message or None (``top_k_intersection``'s ``k`` above the pixels of an image, ``continuity``'s
  ``steps`` above 2W + 1, ``class_sensitivity``'s ``others: positive`` on single-label data);
- :meth:`~faithbench.metrics.base.Metric.check_model` ``(model)``: on each model the metric meets,
  built for the dataset on the ``meta`` device as :func:`~faithbench.config_checks.check_weights`
  builds it (``relative_representation_stability``'s ``layer``). A model that cannot be built there
  (one that downloads pretrained weights, a library network that refuses the meta device) is left
  to the run;
- that something applies: a suite in which no metric applies to any dataset (each one skipped, as
  :func:`~faithbench.config_checks.check_masks` warns) is an error, since its run would train and
  explain to compute nothing.

A plugin metric may define either hook; one without them is not checked.
"""

from __future__ import annotations

from typing import Any

import torch

from faithbench.config_checks import mask_names, model_dataset_pairs, skip_reason

__all__ = ["check_aliases", "check_metric_fit"]


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


def _applies(plugin: Any, masks: set[str] | None, dims: int) -> bool:
    """False where the run skips ``plugin`` on a dataset with ``masks`` and ``dims`` spatial axes
    (an unreadable sample, ``masks`` None: the run's preflight names it)."""
    return masks is None or skip_reason(plugin, masks, dims) is None


def _check_something_applies(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any],
                             applies: dict[str, list[bool]], error: type[Exception]) -> None:
    """When every dataset of the suite could be read and no metric applies to any of them (a
    temporal metric alone on 2D images, a localisation metric alone on data without masks), the
    run would train and explain for nothing and exit 2 with no result row: the same error here,
    naming the first metric and why it is skipped."""
    if not metric_plugins or len(applies) < len(suite.datasets) or any(any(a) for a in applies.values()):
        return
    label = suite.datasets[0].label
    dataset = built[label]
    reason = skip_reason(metric_plugins[0], mask_names(dataset) or set(), len(dataset.spatial_shape))
    raise error(f"{source}: metrics: none applies to any dataset, so the run would compute nothing "
                f"(metrics[0] {suite.metrics[0].label!r} on dataset {label!r}: {reason or 'skipped'}); "
                "add a metric that applies or a dataset it applies to")


def check_metric_fit(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any],
                     error: type[Exception]) -> None:
    """The alias check (:func:`check_aliases`, metrics and explainers), then each metric's ``check_dataset`` on every dataset and ``check_model``
    on every (model, dataset) pair where it runs; the first problem raises ``error``."""
    check_aliases(suite, source, error)
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
        masks = mask_names(dataset)
        shapes[spec.label], applies[spec.label] = shape, [_applies(p, masks, len(shape)) for p in metric_plugins]
        multilabel = bool(getattr(dataset, "multilabel", False))
        for k, plugin in enumerate(metric_plugins):
            if not applies[spec.label][k] or not _overrides(plugin, "check_dataset"):
                continue
            problem = _hook(plugin, "check_dataset", shape, multilabel=multilabel)
            if problem:
                raise error(f"{source}: metrics[{k}].params: {problem} (dataset {spec.label!r})")
    _check_something_applies(suite, source, built, metric_plugins, applies, error)
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
