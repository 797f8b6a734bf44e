"""Checkpoints: an architecture plus weights from a training recipe or from a file.

A recipe checkpoint is trained once and cached as safetensors under a key that hashes the
architecture, its parameters, the training data spec, the recipe and the seed. A weights file
is read without executing pickled code: safetensors, or a torch file with ``weights_only=True``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, model_validator
from torch import Tensor, nn

from faithbench.datasets.base import BaseDataset
from faithbench.models.architectures import build_model, count_parameters
from faithbench.models.dependencies import dependencies_of
from faithbench.models.training import Recipe, evaluate_model, train_model, train_on_frozen_features
from faithbench.store import Cache, load_tensors, make_key

CHECKPOINT_FORMAT = "1"


class ModelSpec(BaseModel):
    """A model entry of a suite: ``{name, alias?, params?, recipe? | weights?}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    alias: str | None = None
    params: dict[str, Any] = {}
    recipe: Recipe | None = None
    weights: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSpec":
        if self.recipe is not None and self.weights is not None:
            raise ValueError("give either 'recipe' or 'weights', not both")
        return self

    @property
    def label(self) -> str:
        return self.alias or self.name


@dataclass
class Checkpoint:
    model: nn.Module
    key: str
    spec: ModelSpec
    seed: int
    metrics: dict[str, float] = field(default_factory=dict)
    origin: str = ""  # "trained", "cache", or the weights path
    info: dict[str, Any] = field(default_factory=dict)


class CheckpointError(ValueError):
    """A weights file that cannot be used for this dataset (missing, unsafe, mismatched)."""


def load_weights_file(model: nn.Module, path: Path) -> None:
    """Load a safetensors or torch weights-only file into ``model``; refuse pickled code."""
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            state, _ = load_tensors(path)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError for forbidden globals
            raise CheckpointError(
                f"{path}: refused to load: not a weights-only torch file "
                f"(it would execute pickled code or is corrupt: {str(exc).splitlines()[0]})"
            ) from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    expected = model.state_dict()
    for name, tensor in state.items():
        if name in expected and tuple(expected[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: parameter {name!r} has shape {tuple(tensor.shape)}, the model for this dataset "
                f"expects {tuple(expected[name].shape)} (check the classes and channels)"
            )
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match architecture: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.load_state_dict(state)


def checkpoint_key(spec: ModelSpec, train_spec: dict[str, Any], in_chans: int, num_classes: int,
                   input_size: tuple[int, ...], seed: int, permute_labels: bool = False) -> str:
    """The cache key of a recipe checkpoint. It includes ``torch.get_num_threads()``: CPU
    training reduces in a thread-count-dependent order, so the same recipe and seed give weights
    that differ (issue 17: scores up to 2.7e-4 apart) with 1 and with 2 threads."""
    recipe = (spec.recipe or Recipe()).model_dump()
    parts: list[Any] = ["checkpoint", CHECKPOINT_FORMAT, spec.name, spec.params, train_spec, recipe,
                        in_chans, num_classes, list(input_size), seed, {"threads": torch.get_num_threads()}]
    if permute_labels:
        parts.append("permuted-labels")
    return make_key(*parts)


def permuted(y: Tensor, seed: int) -> Tensor:
    """Labels shuffled by a seeded permutation (Adebayo et al. 2018, data randomisation)."""
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + 7919))]


def resolve_dependencies(model: nn.Module, splits: tuple[BaseDataset, BaseDataset, BaseDataset], seed: int,
                         cache: Cache) -> dict[str, Any]:
    """Train or load each checkpoint ``model`` depends on
    (:func:`~faithbench.models.dependencies.dependencies_of`) on its declared view of the
    ``(train, val, test)`` splits, and attach it. Returns ``{name: {key, origin, metrics}}`` for
    the checkpoint info."""
    out: dict[str, Any] = {}
    for name, dep in dependencies_of(model).items():
        if dep.data_view is not None:
            lacking = [type(s).__name__ for s in splits if not callable(getattr(s, dep.data_view, None))]
            if lacking:
                raise ValueError(f"dependency {name!r} ({dep.name}) trains on {dep.data_view}() of the dataset; "
                                 f"{lacking[0]} has none")
            views = tuple(getattr(s, dep.data_view)() for s in splits)
        else:
            views = splits
        spec = ModelSpec(name=dep.name, params=dep.params, recipe=Recipe(**dep.recipe))
        ckpt = load_checkpoint(spec, views[0], views[1], views[2], seed, cache)
        model.attach_dependency(name, ckpt.model)  # type: ignore[operator]
        out[name] = {"key": ckpt.key, "origin": ckpt.origin, "metrics": ckpt.metrics}
    return out


def load_checkpoint(spec: ModelSpec, train: BaseDataset, val: BaseDataset, test: BaseDataset,
                    seed: int, cache: Cache, *, permute_labels: bool = False) -> Checkpoint:
    """Build the architecture for ``train``'s shape and classes, then train or load its weights.

    Test metrics (accuracy, F1, AUC, loss) are computed on the whole ``test`` split and cached
    beside the weights. ``permute_labels``: the same recipe trained on permuted train and val
    labels, keeping the last epoch (the data-randomisation check; its accuracy is at chance).
    """
    in_chans, input_size = train.in_channels, train.spatial_shape
    num_classes = len(train.classes)
    torch.manual_seed(seed)
    model = build_model(spec.name, in_chans, num_classes, input_size, **spec.params)
    if spec.weights is not None and not permute_labels:
        path = Path(spec.weights).expanduser()
        load_weights_file(model, path)
        model.eval()
        x_test, y_test = test.tensors()
        metrics = evaluate_model(model, x_test, y_test, tuple(test.classes) if y_test.ndim == 2 else None)
        key = make_key("weights", str(path.resolve()), path.stat().st_mtime_ns, spec.name, spec.params)
        return Checkpoint(model, key, spec, seed, metrics, origin=str(path),
                          info={"parameters": count_parameters(model)})

    recipe = spec.recipe or Recipe()
    key = checkpoint_key(spec, train.spec(), in_chans, num_classes, input_size, seed, permute_labels)
    state = cache.get_tensors("checkpoints", key)
    meta = cache.get_json("checkpoints", key) if state is not None else None
    if state is not None and meta is not None:
        model.load_state_dict(state)
        model.eval()
        return Checkpoint(model, key, spec, seed, meta["metrics"], origin="cache", info=meta["info"])

    resolved = resolve_dependencies(model, (train, val, test), seed, cache)  # e.g. a frozen backbone first
    x_train, y_train = train.tensors()
    x_val, y_val = val.tensors()
    if permute_labels:
        y_train, y_val = permuted(y_train, seed), permuted(y_val, seed + 1)
    start = time.perf_counter()
    trainer = train_on_frozen_features if hasattr(model, "frozen_features") else train_model
    history = trainer(model, x_train, y_train, x_val, y_val, recipe, seed, keep_best=not permute_labels,
                      desc=f"train {spec.label} seed {seed}{' (permuted labels)' if permute_labels else ''}")
    seconds = time.perf_counter() - start
    for p in model.parameters():  # a linear probe froze the backbone; explainers need its gradients
        p.requires_grad_(True)
    x_test, y_test = test.tensors()
    metrics = evaluate_model(model, x_test, y_test, tuple(test.classes) if y_test.ndim == 2 else None)
    info = {"parameters": count_parameters(model), "train_seconds": seconds, "history": history,
            "recipe": recipe.model_dump(), "epochs_run": len(history["val_loss"])}
    info.update(resolved)
    cache.put_tensors("checkpoints", key, model.state_dict())
    cache.put_json("checkpoints", key, {"metrics": metrics, "info": info})
    return Checkpoint(model, key, spec, seed, metrics, origin="trained", info=info)
