"""What ``faithbench validate`` checks of each (model, dataset) pair without computing anything: the
network is built on the meta device (no memory, no weights read), fed one meta image of the
dataset's shape, and searched for each explainer's ``target_layer``.

Built for the check: built-in architectures, your own ``pkg.module:callable`` and MONAI classes,
and timm / torchvision networks without pretrained weights (a ``weights`` file is not read here:
:func:`faithbench.config_checks.check_weights` compares its shapes). Hub entries (``hf-hub:``,
``local-dir:``) and pretrained library weights are not built, since that would download or read
them; the run's preflight checks those (a ``local-dir:`` folder's ``config.json`` is read for its
``input_size``: a 2D network on 3D images is refused here). Your own builder runs as it is written: one that downloads
weights itself downloads them here too (offline, its error is validate's). A build or forward pass
the meta device cannot run (``Tensor.item()``, an operation with data-dependent shapes,
``NotImplementedError``) is not an error: only a failure that would happen on real data is (a 2D
network on 3D volumes, a wrong channel count, logits of the wrong shape).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from faithbench.config_checks import SuiteWarning, first_line, mask_names, model_dataset_pairs
from faithbench.datasets.base import ImageAxesError, check_train_classes
from faithbench.datasets.paths import DataError
from faithbench.models.errors import INPLACE_INPUT, logits_problem
from faithbench.names import counted
from faithbench.types import arch_family

_FIXED_SIZE = re.compile(r"Input (height|width|image size) .*doesn't match model")  # timm's PatchEmbed
_VIT_DEFAULT_LAYER = "blocks.-1.norm1"  # the CAM explainers' default for a ViT (blocks[-1].norm1)


def _buildable(mspec: Any) -> bool:
    """Whether the entry's network can be built without downloading or reading weights."""
    from faithbench.models.factory import parse_model_name

    source = parse_model_name(mspec.name).source
    if source in ("builtin", "module", "monai"):
        return True
    return source in ("timm", "torchvision") and not mspec.uses_pretrained


def _local_dir_dims(mspec: Any) -> tuple[int, list[int]] | None:
    """``(spatial dims, input_size)`` of a ``local-dir:`` network by its ``config.json``'s
    ``pretrained_cfg.input_size`` (``[C, H, W]``: 2D), read offline without its weights; None where that
    cannot be told (another source, no such key: the run's first image checks it)."""
    from faithbench.models.factory import parse_model_name

    parsed = parse_model_name(mspec.name)
    if parsed.source != "local-dir":
        return None
    try:
        config = json.loads((Path(parsed.target).expanduser() / "config.json").read_text(encoding="utf-8"))
        size = config["pretrained_cfg"]["input_size"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (len(size) - 1, list(size)) if isinstance(size, list) and len(size) in (3, 4) else None


def _meta_only(exc: BaseException) -> bool:
    """Whether ``exc`` is the meta device's own limit (``Tensor.item()`` in a builder, an operator
    without a meta kernel), which says nothing about real data."""
    return isinstance(exc, NotImplementedError) or "meta" in first_line(exc).lower()


def _meta_failure(model: nn.Module, channels: int, spatial: tuple[int, ...], num_classes: int) -> str | None:
    """Why one meta image of ``(1, channels, *spatial)`` fails the model, or None (also when the
    meta device cannot tell)."""
    x = torch.empty((1, channels, *spatial), device="meta")
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's network is reported
        return None if _meta_only(exc) else f"{type(exc).__name__}: {first_line(exc)}"
    if x._version:  # in-place ops count on the meta device too
        return INPLACE_INPUT
    return logits_problem(out, num_classes)


def _channel_hint(model: nn.Module, channels: int) -> str:
    """Where a network without an input transform has a first convolution for another number of
    channels than the data has: what it takes and the ways to match them ("" otherwise)."""
    transform = getattr(model, "input_transform", None)
    if transform is not None:
        return ""  # the transform picks and replicates channels; its own errors say so
    first = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    if first is None or first.in_channels == channels:
        return ""
    takes = counted(first.in_channels, "channel")
    return (f" (its first convolution takes {takes}, the data has {channels}: give the dataset {takes} where it "
            f"has that parameter, pick {first.in_channels} of the image's channels with preprocess: "
            f"{{channels: [...]}}, or build the network for {counted(channels, 'channel')})")


def _dtype_hint(model: nn.Module) -> str:
    """Where the network's parameters are not float32, which the images are (a review: float64 and
    half models failed with the framework's "Input type (float) and bias type (double)")."""
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters() if p.is_floating_point()})
    if not dtypes or dtypes == ["float32"]:
        return ""
    return (f" (its parameters are {', '.join(dtypes)}, the images float32: return the network in float32, "
            f"model.float())")


def _size_hint(model: nn.Module, problem: str, spatial: tuple[int, ...]) -> str:
    """Where a 2D network without an input transform fails on the data's image size with the
    framework's own shape message (a review: "a and b must have same reduction dim"), the way to
    resize the images to what it was built for ("" otherwise)."""
    if getattr(model, "input_transform", None) is not None or len(spatial) != 2 or \
            not problem.startswith("RuntimeError"):
        return ""
    return (f" (a network built for another image size than {spatial[0]} x {spatial[1]}? preprocess: "
            f"{{size: [H, W]}} in the model entry resizes the images to it)")


def _fixed_size_hint(model: nn.Module, problem: str, spatial: tuple[int, ...]) -> str:
    """Where a network built for one input size (timm's ViT patch embedding) refuses the size it gets:
    the size it takes and the ways to match it (a review: the line named only a channel fix, or none)."""
    if not _FIXED_SIZE.search(problem):
        return ""
    size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    size = size or (getattr(model, "pretrained_cfg", None) or {}).get("input_size", (0, 0, 0))[-2:]
    config = getattr(getattr(model, "input_transform", None), "config", None)
    gets = tuple(config.size) if config is not None and config.size else spatial
    takes = " x ".join(str(n) for n in size) if all(size) else "another size"
    resize = f"{{size: [{size[0]}, {size[1]}]}}" if all(size) else "{size: [H, W]}"
    got = " x ".join(map(str, gets))
    return (f" (the network takes {takes} images, it gets {got}: preprocess: {resize} or preprocess: auto (the "
            f"network's own input config) in the model entry resizes them, or, for weights trained at {got}, "
            f"build it for that size with params: {{img_size: {list(gets)}}})")


def _needs_twin(suite: Any) -> bool:
    """Whether a metric of ``suite`` needs the permuted-label twin (``data_randomization``)."""
    from faithbench.registry import metrics

    return any("permuted_model" in metrics.get(m.name).info.requires for m in suite.metrics)


def check_models(suite: Any, source: str, built: dict[str, Any], explainers: list[Any],
                 error: type[Exception]) -> None:
    """Build each (model, dataset) pair on the meta device (see the module docstring), run one
    image of the dataset's shape through it, and check explainers' ``target_layer``."""
    from faithbench.explainers.layers import VIT_LAYER_HINT, canonical_layer
    from faithbench.models.checkpoint import build_for_dataset
    from faithbench.models.factory import unexpected_parameter_hint

    if len(suite.seeds) > 1:
        for i, mspec in enumerate(suite.models):
            if mspec.recipe is None:
                warnings.warn(f"{source}: models[{i}] {mspec.label!r} is not trained here (no recipe): every seed "
                              f"of {suite.seeds} uses the same checkpoint, so seeds change only the explainers' and "
                              f"metrics' randomness: a deterministic explainer and metric give the same value under "
                              f"every seed (the statistics average a sample's seeds, so the copies add no "
                              f"evidence, only time)", SuiteWarning, stacklevel=2)
    for i, mspec in enumerate(suite.models if _needs_twin(suite) else []):
        if mspec.recipe is None:  # a review: its weights file played no part in the twin
            warnings.warn(f"{source}: models[{i}] {mspec.label!r} has no recipe: data_randomization trains its "
                          f"permuted-label twin from a fresh init with the default recipe (Recipe(): 4 epochs), not "
                          f"as this model was trained, so it compares with a network unrelated to the model's "
                          f"training; a model trained here (a recipe, no weights) gets a twin of its own recipe",
                          SuiteWarning, stacklevel=2)
    pairs, runs = model_dataset_pairs(suite, built), []  # runs: per pair checked, whether some explainer runs
    for i, mspec, label, dataset in pairs:
        if not _buildable(mspec):  # a local-dir: folder's config tells its dimensions (a review: exit 1 in the run)
            dims = _local_dir_dims(mspec)
            wanted = getattr(dataset, "spatial_dims", None)
            if dims and wanted and dims[0] != wanted:
                raise error(f"{source}: models[{i}]: {mspec.label!r} is a {dims[0]}D network (input_size {dims[1]} in "
                            f"its config.json) and dataset {label!r} holds {wanted}D images: expected a {wanted}D "
                            f"network for it")
            continue
        try:
            channels, classes = dataset.in_channels, len(dataset.classes)
            spatial = tuple(dataset.spatial_shape)
        except ImageAxesError as exc:  # an image without its channel axis: the data's fault, not the model's
            raise error(f"{source}: datasets {label!r}: {first_line(exc)}") from None
        except Exception:  # noqa: BLE001 - an empty or unreadable split: the run's preflight names it
            continue
        what = f"{mspec.label!r} for dataset {label!r} ({counted(channels, 'channel')}, size {spatial})"
        try:
            with torch.device("meta"):
                model, _ = build_for_dataset(mspec, channels, classes, spatial)
        except Exception as exc:  # noqa: BLE001
            if _meta_only(exc):  # e.g. a drop-path schedule read with .item() while building: runs on real data
                continue
            key = ".preprocess" if str(exc).startswith("preprocess") else ".params" if mspec.params else ""
            where = f"{source}: models[{i}]{key}"
            hint = unexpected_parameter_hint(mspec, exc)
            raise error(f"{where}: cannot build {what}: {first_line(exc)}{hint}") from None
        problem = _meta_failure(model, channels, spatial, classes)
        if problem:
            hint = _fixed_size_hint(model, problem, spatial)  # then the channels too: both must fit
            hint = hint + _channel_hint(model, channels) if hint else \
                _channel_hint(model, channels) or _dtype_hint(model) or _size_hint(model, problem, spatial)
            raise error(f"{source}: models[{i}]: {what} fails on an image of that shape: {problem}{hint}")
        supported = _check_support(suite, source, explainers, model, (channels, *spatial), mspec.label, label,
                                   mask_names(dataset), getattr(dataset, "mask_roles", None), error)
        runs.append(any(supported))
        for k, plugin in enumerate(explainers):
            problem = plugin.check_input((channels, *spatial)) if supported[k] else None
            if problem:
                raise error(f"{source}: explainers[{k}].params: {problem} (dataset {label!r})")
            layer = getattr(plugin, "target_layer", None)
            if layer is None or layer == _VIT_DEFAULT_LAYER:
                continue
            try:
                name = canonical_layer(model, layer)
                module = model.get_submodule(name)
            except AttributeError:
                names = [n for n, _ in model.named_modules() if n and "." not in n][:12]
                raise error(f"{source}: explainers[{k}].params.target_layer: {layer!r} is not a module of model "
                            f"{mspec.label!r}; its top-level modules: {', '.join(names)}") from None
            if supported[k] and getattr(plugin, "finds_layer", True) and \
                    (found := _layer_problem(model, name, module, (channels, *spatial))):
                problem, fix = found[0], found[1] or (VIT_LAYER_HINT if arch_family(model) == "vit"
                                                      else "choose a convolutional stage")
                raise error(f"{source}: explainers[{k}].params.target_layer: {layer!r} {problem} (model "
                            f"{mspec.label!r}, dataset {label!r}); {fix}")
    if explainers and runs and len(runs) == len(pairs) and not any(runs):
        raise error(f"{source}: explainers: none supports any model of the suite, so the run would compute nothing "
                    "(see the warnings above); add an explainer for these models or a model these explainers support")


def _layer_problem(model: nn.Module, name: str, layer: nn.Module,
                   shape: tuple[int, ...]) -> tuple[str, str | None] | None:
    """What is wrong with ``layer``'s output for a CAM on a meta image of the dataset's shape (a
    review: a linear head passed validate, then every cell failed in pytorch-grad-cam after training),
    and its fix where it is not the caller's generic one, or None; None too where the meta device cannot run
    the network (the run tells). A part of an attention module (Swin's softmax: attention weights) is refused by
    its place (explainers.layers.attention_parts). A ViT's layer must output its tokens
    (explainers.layers.token_problem; a review: ``head`` and timm's ``qkv`` passed). A layer the forward pass never
    calls has no output to read; one it calls twice (explainers.layers.reuse_problem) or whose grid is one cell
    (one_cell_problem: a global pool, a review) is refused as the explainers' own check does."""
    from faithbench.explainers.layers import (ONE_CELL_FIX, attention_parts, channels_first, counted_calls,
                                              one_cell_problem, reuse_problem, token_problem)

    vit = arch_family(model) == "vit"
    if why := attention_parts(model).get(name):
        return (f"{why}: not a block's (B, N, C) tokens" if vit else f"{why}: not a (B, C, *grid) feature map"), None

    seen: list[Any] = []
    network_input = [(1, *shape)]  # a model that resizes its input: the resized shape (explainers.layers)
    transform = getattr(model, "input_transform", None)
    hooks = [layer.register_forward_hook(lambda _m, _i, out: seen.append(out) if not seen else None)]
    if isinstance(transform, nn.Module):
        hooks.append(transform.register_forward_hook(lambda _m, _i, out: network_input.__setitem__(0, out.shape)))
    try:
        param = next(model.parameters())
        with torch.no_grad(), counted_calls(model, name) as counts:
            model(torch.empty((1, *shape), device=param.device, dtype=param.dtype))
    except Exception:  # noqa: BLE001 - see the docstring
        return None
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        return f"is never called by {type(model).__name__}'s forward pass, so it has no output to read", None
    if reused := reuse_problem(model, name, counts):
        return reused
    if vit:
        return (problem, None) if (problem := token_problem(seen[0], 1, model, tuple(shape[1:]))) else None
    if isinstance(seen[0], torch.Tensor) and not channels_first(tuple(seen[0].shape), network_input[0]):
        return (f"outputs {tuple(seen[0].shape)} for an input of {(1, *shape)}: not a (B, C, *grid) feature map (a "
                f"linear layer, or channels last)"), None
    if isinstance(seen[0], torch.Tensor) and (problem := one_cell_problem(seen[0].shape)):
        return problem, ONE_CELL_FIX
    return None


def _check_support(suite: Any, source: str, explainers: list[Any], model: nn.Module, shape: tuple[int, ...],
                   model_label: str, dataset_label: str, masks: set[str] | None = None,
                   roles: dict[str, Any] | None = None, error: type[Exception] = ValueError) -> list[bool]:
    """Warn (:class:`SuiteWarning`) for each explainer the run would skip on ``model`` (its
    ``unsupported_reason`` on a meta image of ``(1, *shape)``: an attention explainer on a CNN, a 2D
    explainer on volumes; its ``dataset_reason`` for sample 0's ``masks``: a sequence explainer on
    volumes); per explainer, whether it runs (also when the meta device cannot tell). A ``dataset_reason``
    that raises (it reads no tensor, so the meta device is not to blame) is ``error``, naming the explainer:
    the run would fail every cell (a review: a TypeError swallowed here, and validate said ok)."""
    from faithbench.explainers.base import call_dataset_reason

    x, runs = torch.empty((1, *shape), device="meta"), []
    for k, plugin in enumerate(explainers):
        try:
            reason = plugin.unsupported_reason(model, x)
        except Exception:  # noqa: BLE001 - a check the meta device cannot run: the run tells
            reason = None
        try:
            reason = reason or (None if masks is None else call_dataset_reason(plugin, masks, len(shape) - 1, roles))
        except Exception as exc:  # noqa: BLE001 - the plugin's own failure, in one line
            raise error(f"{source}: explainers[{k}] {suite.explainers[k].label!r}: dataset_reason failed on dataset "
                        f"{dataset_label!r}: {type(exc).__name__}: {first_line(exc)}") from None
        runs.append(reason is None)
        if reason is None:
            continue
        warnings.warn(f"{source}: explainers[{k}] {suite.explainers[k].label!r} does not support model "
                      f"{model_label!r} on dataset {dataset_label!r}: {reason}; the run skips that cell",
                      SuiteWarning, stacklevel=3)
    return runs


def unavailable_weights(suite: Any, source: str) -> list[str]:
    """Offline, each pretrained entry whose weights are not cached (``faithbench validate`` warns: the
    run's preflight stops at once with that error; a walkthrough found validate saying ok)."""
    from faithbench.models.factory import check_pretrained_available
    from faithbench.models.hub import PretrainedUnavailableError

    lines = []
    for i, spec in enumerate(suite.models):
        try:
            check_pretrained_available(spec)
        except PretrainedUnavailableError as exc:
            lines.append(f"{source}: models[{i}]: {exc}; here the run stops before it computes anything")
    return lines


def train_class_problem(label: str, trained: list[Any], train: Any) -> str | None:
    """Why a model of ``trained`` (model entries, each with its recipe's ``n_train``) cannot be trained on
    ``train``, dataset ``label``'s train split: its labels (:meth:`BaseDataset.labels`, when known without
    images) hold one class only (None: they hold two, or are not known so). The message is the one
    training would raise (``dataset 'x': model 'y': the train split holds one class only …``)."""
    labels = None if getattr(train, "multilabel", False) else train.labels()
    for model in trained if labels is not None else []:
        n_train = model.recipe.n_train if model.recipe is not None else None
        try:
            check_train_classes(labels, tuple(train.classes), f"dataset {label!r}: model {model.label!r}",
                                n_train=n_train)
        except DataError as exc:
            return str(exc)
    return None


def trained_models(suite: Any, spec: Any, permuted: bool) -> list[Any]:
    """The model entries of ``suite`` trained on dataset entry ``spec`` (a recipe; every paired model
    when the permuted-label twin is trained), as :func:`faithbench.runner.plan.plan` pairs them."""
    paired = [m for m in suite.models if spec.models is None or m.label in spec.models]
    return [m for m in paired if permuted or m.recipe is not None]


def check_train_splits(suite: Any, source: str, built: dict[str, Any], error: type[Exception]) -> None:
    """A dataset whose train split's labels are cheap to have (:meth:`BaseDataset.labels_split`: the
    phantoms, your own folders and volumes, ``medmnist`` without its images) and hold one class for a model
    trained on it: an error naming the suite file and ``datasets[i].params`` (a review: ``n: 1`` and
    ``prevalence: 0.001`` passed validate, then the run refused them; later ``medmnist`` ``n: 1``). The run's
    preflight checks the others' splits the same way."""
    permuted = _needs_twin(suite)
    for i, spec in enumerate(suite.datasets):
        dataset, trained = built.get(spec.label), trained_models(suite, spec, permuted)
        if not trained or dataset is None:
            continue
        cls = type(dataset)
        try:
            train = cls.labels_split("train", **spec.params) if hasattr(cls, "labels_split") else \
                (cls(split="train", **spec.params) if getattr(dataset, "cheap_splits", False) else None)
        except Exception:  # noqa: BLE001 - config_checks.check_validation reports a train split that fails
            continue
        if train is None:
            continue
        problem = train_class_problem(spec.label, trained, train)
        if problem:
            raise error(f"{source}: datasets[{i}].params: {problem}")


def warn_padding_baseline(suite: Any, source: str, built: dict[str, Any], explainers: list[Any]) -> None:
    """Warn (:class:`SuiteWarning`) for an explainer with a ``padding_baseline`` (``temporal_occlusion``'s
    ``baseline``) other than a sequence dataset's padding value (its ``background``): its padding frames
    then get a score drop like real visits (a held-out review: with ``baseline: -0.5`` the largest drop was on
    a padding frame in 4 of 4 padded sequences). The temporal metrics pad with the dataset's value already."""
    for k, plugin in enumerate(explainers):
        baseline = getattr(plugin, "padding_baseline", None)
        if baseline is None:
            continue
        for spec in suite.datasets:
            dataset = built.get(spec.label)
            if dataset is None or not getattr(dataset, "temporal", False):
                continue
            background = float(getattr(dataset, "background", 0.0))
            if baseline != background:
                warnings.warn(f"{source}: explainers[{k}] {suite.explainers[k].label!r}: baseline {baseline:g} is "
                              f"not dataset {spec.label!r}'s padding value {background:g}, so its padding frames get "
                              f"a score drop like real visits; set baseline: {background:g}", SuiteWarning,
                              stacklevel=2)
