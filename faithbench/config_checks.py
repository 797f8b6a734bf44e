"""Suite checks that need the plugins built: what a run would refuse, found by validation.

:func:`faithbench.config.validate_plugins` calls these after it has resolved every name:

- :func:`check_kwargs`: dataset and model parameter names against the builder's signature;
- :func:`faithbench.config_types.check_param_types` (its own module): a dataset or model parameter whose
  annotation is ``int``, ``float``, ``bool`` or ``str`` (or ``Optional`` of one) must have that type
  (``size: "64"`` is an error naming ``params.size``, not a failure deep inside the dataset);
- :func:`faithbench.model_checks.check_models` (its own module): every model is built for every
  dataset it pairs with on the ``meta`` device and fed one image of the dataset's shape, so wrong
  parameter values and a 2D model on 3D data are errors; explainers' ``target_layer`` must name a
  module of each model;
- :func:`faithbench.metric_checks.check_masks` (its own module, with the other checks of the
  metrics): a metric that needs a mask the dataset lacks, or that does not apply to it otherwise
  (``applicability``), warns (:class:`SuiteWarning`): the run skips it on that dataset;
- :func:`check_validation`: a metric tuned on the validation split (``threshold: val``) on a
  dataset whose validation split is missing, empty or without a non-empty mask: an error; a model
  trained here (a recipe, or the permuted-label twin) on a dataset without a train or val split
  (checked where building a split is cheap: ``BaseDataset.cheap_splits``): an error;
- :func:`faithbench.names.check_file_names` (with the mapping it checks): two labels that map to one file name
  (``x/y`` and ``x_y``, or ``Ph`` and ``ph``) would overwrite each other's plots: an error;
- :func:`check_suite_values`: seeds distinct and >= 0, a device name torch reads; an entry that
  repeats another of its kind under another alias warns;
- :func:`check_target`: class targets need a multi-label dataset with those classes;
- :func:`resolve_weights` (before the schema): each model's ``weights:`` path made absolute, relative
  to the suite file that writes it; :func:`check_weights`: the tensor names and shapes of each
  ``weights:`` file against the model the run builds for each dataset.
"""

from __future__ import annotations

import difflib
import inspect
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from faithbench.datasets.paths import DataError
from faithbench.device import check_device_name
from faithbench.names import counted

class SuiteWarning(UserWarning):
    """A suite that runs, but not entirely as written (a metric skipped on a dataset)."""


def unique_names(value: Any) -> Any:
    """A pydantic validator: a list without repeats (regions' masks and scores, target classes)."""
    if isinstance(value, list) and len(set(value)) != len(value):
        raise ValueError(f"expected unique names, got {value}")
    return value


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def check_kwargs(where: str, target: Any, params: dict[str, Any], error: type[Exception],
                 part: str = ".params") -> None:
    """Check keyword names against a callable's signature (for datasets and models); the message
    begins with ``where`` and ``part`` (a suite's ``datasets[0].params``; the API's ``phantom_cxr``)."""
    sig = inspect.signature(target)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    named = [n for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY or
             (p.kind is p.POSITIONAL_OR_KEYWORD and n not in ("self", "split"))]
    data_given = ("in_chans", "num_classes", "input_size")  # a built-in network's: refused in params (a review)
    for key in params:
        if key not in named and not accepts_any:
            valid = [n for n in named if n not in data_given]
            raise error(f"{where}{part}: unknown parameter {key!r}; valid parameters: {', '.join(valid) or 'none'}")


def model_dataset_pairs(suite: Any, built: dict[str, Any]) -> list[tuple[int, Any, str, Any]]:
    """(model index, model spec, dataset label, dataset) for every dataset a model pairs with."""
    return [(i, m, d.label, built[d.label]) for i, m in enumerate(suite.models) for d in suite.datasets
            if d.label in built and (d.models is None or m.label in d.models)]


def mask_names(dataset: Any, i: int = 0) -> set[str] | None:
    """The mask names sample ``i`` offers a metric (None when it cannot be read): its masks, and
    ``target`` on a multi-label sample with a mask named after a class (:mod:`faithbench.runner.targets`)."""
    try:
        masks = set(dataset[i].masks) if dataset is not None and len(dataset) > i else None
    except Exception:  # unreadable sample: the run's preflight names it
        return None
    if masks is not None and getattr(dataset, "multilabel", False) and set(dataset.classes) & masks:
        masks.add("target")  # the runner's mask of the explained class
    return masks


def class_masks_in(dataset: Any, n: int, subset: str = "all") -> bool:
    """Whether one of the samples a run explains (the first ``n``; with ``subset="positive"`` the
    first ``n`` positive ones) of a multi-label ``dataset`` has a mask named after a class: then
    every batch carries ``target`` (:mod:`faithbench.runner.targets`), the first one too when its
    own samples have none (a diff review: a normal first image skipped localisation for the cell).
    Reads samples up to the first such one; an unreadable sample ends the scan (the run names it)."""
    classes, taken = set(getattr(dataset, "classes", ())), 0
    try:
        for i in range(len(dataset)):
            if taken == n:
                break
            sample = dataset[i]
            if subset == "positive" and not sample.positive:
                continue
            taken += 1
            if classes & set(sample.masks):
                return True
    except Exception:  # noqa: BLE001 - see the docstring
        return False
    return False


def _validation_problem(dataset: Any, params: dict[str, Any], masks: list[str], n: int) -> str | None:
    """Why the validation split of ``dataset``'s class cannot calibrate a metric on ``masks`` (None
    when it can): it cannot be built, it is empty, or none of its first ``n`` samples has a
    non-empty mask of each name (``target``: of any class)."""
    try:
        val = type(dataset)(split="val", **params)
        size = len(val)
    except Exception as exc:
        return f"no validation split ({first_line(exc)})"
    if size == 0:
        return "an empty validation split"
    found = dict.fromkeys(masks, False)
    per_class = getattr(val, "multilabel", False)
    for i in range(min(n, size)):
        sample = val[i].masks
        for name in masks:
            if name == "target" and per_class and name not in sample:  # the explained class's mask
                parts = [sample[c] for c in val.classes if c in sample]  # a class's absent mask: empty
            else:
                parts = [sample[name]] if name in sample else None
            if parts is None:
                return f"no {name!r} mask in its validation split (sample {i})"
            found[name] = found[name] or any(bool(m.any()) for m in parts)
    missing = [name for name, ok in found.items() if not ok]
    if missing:
        return f"no non-empty {missing[0]!r} mask in the first {min(n, size)} samples of its validation split"
    return None


def check_validation(suite: Any, source: str, built: dict[str, Any], metric_plugins: list[Any],
                     error: type[Exception]) -> None:
    """A metric tuned on the validation split (``needs_calibration``: CheXlocalize's ``threshold:
    val``, ``gate: val``) needs, on every dataset where it runs (the test split has its masks), a
    validation split whose first ``calibration_samples`` samples carry those masks, one at least
    non-empty: else an error naming the metric, the dataset and what is missing. Before that, when
    a model is trained, the train and val splits of each dataset with ``cheap_splits``, and of one that
    builds a split of labels alone (:meth:`~faithbench.datasets.base.BaseDataset.labels_split`: ``medmnist``)."""
    permuted = any("permuted_model" in p.info.requires for p in metric_plugins)
    for i, spec in enumerate(suite.datasets):
        paired = [m for m in suite.models if spec.models is None or m.label in spec.models]  # as runner.plan
        trains = permuted or any(m.recipe is not None for m in paired)
        dataset = built.get(spec.label)  # absent: an optional dataset that is not there (the run skips it)
        cls = type(dataset)
        for split in ("train", "val") if trains and dataset is not None else ():
            try:  # labels_split: the split where cheap_splits, medmnist's labels alone (a review: a file
                if hasattr(cls, "labels_split"):  # without val arrays passed validate, then the run refused it)
                    cls.labels_split(split, **spec.params)
                elif getattr(dataset, "cheap_splits", False):
                    cls(split=split, **spec.params)
            except Exception as exc:
                if spec.optional and isinstance(exc, DataError):
                    break  # the run's preflight skips an optional dataset whose files are not all there
                raise error(f"{source}: datasets[{i}] {spec.label!r}: a model is trained here (a recipe, or the "
                            f"permuted-label twin), which needs its {split} split: {first_line(exc)}") from None
    wanted = [(k, p) for k, p in enumerate(metric_plugins) if getattr(p, "needs_calibration", False)]
    for spec in suite.datasets if wanted else []:
        dataset = built.get(spec.label)
        test_masks = mask_names(dataset)
        for k, plugin in wanted:
            needed = plugin.required_masks()
            if test_masks is None or not set(needed) <= test_masks:
                continue  # the run skips the metric there (metric_checks.check_masks warns)
            problem = _validation_problem(dataset, spec.params, needed, plugin.calibration_samples)
            if problem:
                raise error(f"{source}: metrics[{k}] {suite.metrics[k].label!r} is tuned on the validation split "
                            f"(threshold: val / gate: val), but dataset {spec.label!r} has {problem}")


def check_suite_values(suite: Any, source: str, error: type[Exception]) -> None:
    """Seeds distinct, >= 0 and < 2**32 (a repeated seed would compute each row twice, numpy's generators refuse a
    negative one, and torch's CPU generator keeps 32 bits: a held-out review's seeds 0 and 2**32 gave byte-identical
    checkpoints and results, an across-seed sd of 0, and a seed of 2**63 failed every cell); a device name torch reads
    (whether the device is present is the run's concern: a suite meant for a GPU machine validates on a laptop)."""
    seen: set[int] = set()
    for seed in suite.seeds:
        why = f"{seed} is negative" if seed < 0 else (f"{seed} is repeated" if seed in seen else "")
        if seed >= 2**32:
            why = f"{seed} is 2**32 or more (torch's generator keeps 32 bits: it would repeat seed {seed % 2**32})"
        if why:
            raise error(f"{source}: seeds: expected distinct integers from 0 to 2**32 - 1 (one run per seed), got "
                        f"{suite.seeds}: {why}")
        seen.add(seed)
    try:
        check_device_name(suite.device)
    except ValueError as exc:
        raise error(f"{source}: device: {exc}") from None
    for i, spec in enumerate(suite.metrics):  # a review: listed, it ignored the block and its scores were not written
        if spec.name == "regions":
            raise error(f"{source}: metrics[{i}] 'regions': region scores come from the suite's regions: block "
                        f"(masks, grid, postprocess; docs/statistics.md), not from metrics:; move its settings there")
    _warn_repeated_entries(suite, source)


def _warn_repeated_entries(suite: Any, source: str) -> None:
    """Warn of an entry that repeats an earlier one of its kind under another alias (same name,
    parameters and options): its rows copy the other's, and a dataset entered twice counts as two
    independent blocks in ``overall_ranks.csv`` (a review: one model under three names took the
    overall Friedman p from 0.145 to 0.001 before the ranks took a dataset as one block)."""
    for kind in ("datasets", "models", "explainers", "metrics"):
        specs, seen = getattr(suite, kind), {}
        also = ", and it counts as another dataset in overall_ranks.csv" if kind == "datasets" else ""
        for i, spec in enumerate(specs):
            j = seen.setdefault(json.dumps(spec.model_dump(exclude={"alias"}), sort_keys=True, default=repr), i)
            if j != i:
                warnings.warn(f"{source}: {kind}[{i}] ({spec.label!r}) repeats {kind}[{j}] ({specs[j].label!r}) "
                              f"with the same name and parameters: its rows copy the other's{also}; remove one or "
                              f"change a parameter", SuiteWarning, stacklevel=4)


def check_control(suite: Any, source: str, error: type[Exception]) -> None:
    """A ``control:`` the suite sets must be one of its explainers (the default ``random`` may be
    absent: the leaderboard then has no test against a control)."""
    labels = [e.label for e in suite.explainers]
    if "control" in suite.model_fields_set and suite.control not in labels:
        raise error(f"{source}: control: {suite.control!r} is not an explainer of the suite; "
                    f"expected one of {', '.join(labels)}")
    if suite.control not in labels and len(labels) > 1:  # a review: a reader cannot tell "not tested"
        warnings.warn(f"{source}: explainers: no {suite.control!r} control, so the leaderboard tests no explainer "
                      f"against one (no * marks, beats_random empty); add it, or set control:", SuiteWarning,
                      stacklevel=3)


def check_target(target: Any, dataset: Any, where: str, which: str, error: type[Exception]) -> None:
    """Class targets need a multi-label dataset with those classes; a multi-label dataset needs
    class targets (one predicted or true class per sample does not describe it)."""
    multilabel = bool(getattr(dataset, "multilabel", False))
    classes = tuple(getattr(dataset, "classes", ()))
    if target in ("predicted", "label"):
        if multilabel:
            raise error(f"{where}: {target!r} explains one class per sample, but {which} is multi-label "
                        f"(classes: {', '.join(classes)}); use each_positive or {{classes: [...]}}")
        return
    if not multilabel:
        raise error(f"{where}: {'each_positive' if target == 'each_positive' else 'classes'} explains the "
                    f"classes of multi-label datasets, but {which} is single-label; use predicted or label")
    for k, name in enumerate(getattr(target, "classes", None) or []):
        if name not in classes:
            close = difflib.get_close_matches(name, classes, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise error(f"{where}.classes[{k}]: unknown class {name!r} of {which}{hint} "
                        f"(classes: {', '.join(classes)})")


def resolve_weights(models: Any, base: Path, source: str, error: type[Exception]) -> Any:
    """A suite's raw ``models:`` entries with each ``weights:`` path made absolute: a relative one
    is read relative to ``base``, the folder of the suite file that writes it (as ``include:`` is),
    else relative to the working directory (where it was read before, so such suites still load).
    A file at neither: an error naming ``source``, the key and the paths tried."""
    if not isinstance(models, list):
        return models  # the schema's error says what was expected
    out = list(models)
    for i, entry in enumerate(models):
        weights = entry.get("weights") if isinstance(entry, dict) else None
        if isinstance(weights, str) and not weights.strip():  # a fuzzing review: '' was read as the suite folder
            raise error(f"{source}: models[{i}].weights: expected the path of a weights file, got an empty string")
        if not isinstance(weights, str) or weights.startswith(("hf-hub:", "local-dir:")):
            continue  # a wrong type or a model name: the schema's error says so
        given = Path(weights).expanduser()
        tried = list(dict.fromkeys(Path(os.path.abspath(folder / given)) for folder in (base, Path.cwd())))
        found = next((path for path in tried if path.exists()), None)
        if found is None:
            raise error(f"{source}: models[{i}].weights: file not found: {weights} "
                        f"(looked for {' and '.join(map(str, tried))})")
        out[i] = {**entry, "weights": str(found)}
    return out


def _tensor_shapes(path: Path) -> dict[str, Any] | None:
    """Names and shapes of a weights file's tensors, read without their data (safetensors: the header; torch:
    weights-only onto the meta device), an entry that is not a tensor by its type's name (``epoch: int``, a
    nested ``model: dict``), as the loader names them; None when it cannot be read so."""
    from faithbench.store import is_safetensors

    try:
        if is_safetensors(path):
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        with warnings.catch_warnings():  # torch warns of a TorchScript archive before refusing it
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="meta", weights_only=True)
    except Exception:  # unreadable or refused: the loader's message says why
        return None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint, unwrapped as the loader does
    if not isinstance(state, dict):
        return None  # the loader's reason: not a state dict
    return {str(k): tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for k, v in state.items()}


def check_weights(suite: Any, source: str, built: dict[str, Any], error: type[Exception]) -> None:
    """Each ``weights:`` file against the model the run builds for each dataset it pairs with
    (:func:`~faithbench.models.checkpoint.build_for_dataset`, on the meta device): missing and unexpected tensor
    names and shape mismatches are an error before anything is trained, where the run would stop at that model
    after training the groups before it."""
    from faithbench.models.checkpoint import build_for_dataset, load_weights_file
    from faithbench.models.errors import CheckpointError, expected_shapes, weights_mismatch

    files: dict[Path, dict[str, tuple[int, ...]] | None] = {}
    for i, mspec, label, dataset in model_dataset_pairs(suite, built):
        # hf-hub:/local-dir: entries build from the hub's config (a download): left to the run
        if mspec.weights is None or mspec.uses_pretrained:
            continue
        where, path = f"{source}: models[{i}].weights", Path(mspec.weights).expanduser()
        try:
            shape = (dataset.in_channels, len(dataset.classes), tuple(dataset.spatial_shape))
            with torch.device("meta"):  # names and shapes only: no memory, no initialisation
                model, _ = build_for_dataset(mspec, *shape)
        except Exception:  # a built-in's build error is check_models'; a library or user network the run reports
            continue
        if first := path not in files:
            files[path] = _tensor_shapes(path)
        shapes = files[path]
        problem = shapes is not None and weights_mismatch(expected_shapes(model, shapes), shapes)
        if problem:
            raise error(f"{where}: {path} does not fit model {mspec.label!r} for dataset {label!r} ("
                        f"{counted(shape[0], 'channel')}, {counted(shape[1], 'class', 'classes')}): {problem}")
        if not first and shapes is not None:
            continue
        try:  # once a file: the loader's own reason (unreadable, pickled code, not a state dict, NaN or inf)
            with warnings.catch_warnings():  # the meta model takes no data: torch's "no-op" warning per tensor (122)
                warnings.filterwarnings("ignore", r"for .*: copying from a non-meta parameter", UserWarning)
                load_weights_file(model, path)
        except CheckpointError as exc:
            raise error(f"{where}: {first_line(exc)}") from None
        except Exception:  # read by the loader, but not onto the meta device: the run loads it for real
            pass
