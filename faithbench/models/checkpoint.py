"""Checkpoints: an architecture plus weights from a training recipe or from a file. A recipe checkpoint
is trained once and cached as safetensors under a key that hashes the architecture, its parameters, the
training data spec, the recipe and the seed. A weights file is read without executing pickled code:
safetensors, or a torch file with ``weights_only=True``."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from faithbench import registry
from faithbench.configurable import Bool
from faithbench.datasets.base import BaseDataset, check_train_classes
from faithbench.models.architectures import count_parameters
from faithbench.models.dependencies import dependencies_of
from faithbench.models.errors import (STATE_DICT, CheckpointError, check_state_fits, expected_shapes,
                                     hub_name_with_weights, norm_counters, refusal)
from faithbench.models.factory import build_network, builder_package, monai_downloads
from faithbench.models.preprocess import (TRANSFORM_VERSION, PreprocessSpec, attach_input_transform,
                                          resolve_input_config)
from faithbench.models.training import (Recipe, check_logits, evaluate_model, permuted, permuted_fit, train_model,
                                       train_on_frozen_features)
from faithbench.names import check_label
from faithbench.store import Cache, file_sha256, is_safetensors, load_tensors, make_key

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "1"
TWIN_SEED_OFFSET = 104_729  # the permuted-label twin's seed is the run's + this: its own init and shuffles, as
# Adebayo et al. 2018's separate network (a review: with the model's seed the weights correlated 0.84-0.996)

_AS_IT_IS = ("a weights file is used as it is, never trained further (to fine-tune or re-head your own timm "
             "weights, save them with timm.models.save_for_hf and name the folder local-dir:FOLDER, which a recipe "
             "may train)")


class ModelSpec(BaseModel):
    """A model entry of a suite: ``{name, alias?, params?, recipe? | weights?, pretrained?,
    replace_head?, preprocess?}``.

    ``name``: a built-in, or ``timm:``, ``torchvision:``, ``monai:``, ``hf-hub:``, ``local-dir:``
    or ``package.module:callable`` (:mod:`faithbench.models.factory`). Where the weights come
    from, at least one of: ``recipe`` (trained here; ``recipe: default`` for the default recipe;
    with ``pretrained`` it fine-tunes, or trains the head with ``linear_probe: true``),
    ``weights`` (a safetensors or torch weights-only file) or ``pretrained: true`` (the library's
    hub weights; implied by ``hf-hub:`` and ``local-dir:`` names). ``replace_head: true``: a
    pretrained head of the wrong size is replaced by a new one (needs a recipe to train it).
    ``preprocess``: ``auto`` (the pretrained network's own input config; none for built-ins),
    ``none``, or a mapping of overrides (:class:`~faithbench.models.preprocess.PreprocessSpec`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    alias: str | None = Field(None, min_length=1)
    params: dict[str, Any] = {}
    recipe: Recipe | None = None
    weights: str | None = None
    pretrained: Bool | None = None
    replace_head: Bool = False
    preprocess: Literal["auto", "none"] | PreprocessSpec = "auto"
    _label = field_validator("name", "alias")(check_label)  # no NUL, newline, blank or padded label (a review)

    @field_validator("recipe", mode="before")
    @classmethod
    def _default_recipe(cls, value: Any) -> Any:
        return {} if value == "default" else value

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSpec":
        from faithbench.models.factory import HUB_SOURCES, parse_model_name

        parsed = parse_model_name(self.name)  # a malformed name is an error here
        if "pretrained" in self.params and parsed.source not in ("monai", "module"):  # theirs: a constructor argument
            name = f"timm:{self.name}" if parsed.source == "builtin" else self.name
            value = str(self.params["pretrained"]).lower()  # a review: pretrained: false was told to write true
            raise ValueError(f"model {self.name!r}: 'pretrained' is a key of the entry, not a parameter: "
                             f"write {{name: {name!r}, pretrained: {value}}}")
        if self.pretrained and parsed.source == "builtin":
            raise ValueError(f"model {self.name!r}: built-ins have no hub weights; for timm's pretrained "
                             f"network write {{name: 'timm:{self.name}', pretrained: true}}")
        if self.weights is not None and self.weights.startswith(("hf-hub:", "local-dir:")):
            raise ValueError(f"model {self.name!r}: weights: {self.weights!r} is a model name, not a file: "
                             f"write {{name: {self.weights!r}}}")
        if self.recipe is not None and self.weights is not None:
            raise ValueError(f"give either 'recipe' or 'weights', not both: {_AS_IT_IS}")
        if self.pretrained and self.weights is not None:
            raise ValueError(f"model {self.name!r}: give either 'pretrained: true' or 'weights', not both")
        if self.weights is not None and parsed.source in HUB_SOURCES and self.uses_pretrained:  # not pretrained: false
            raise ValueError(hub_name_with_weights(self.name))
        if self.recipe is None and self.weights is None and not self.uses_pretrained:
            if ":" not in self.name and self.name not in registry.models.names():  # a review: models: [abc]
                raise ValueError(registry.models.unknown_message(self.name))
            raise ValueError(f"model {self.name!r}: no weights source; give 'recipe' (trained here; 'recipe: "
                             f"default' for the default recipe), 'weights' (a file) or 'pretrained: true'")
        if self.replace_head and self.weights is not None:  # a review: the two errors sent users in a circle
            raise ValueError(f"model {self.name!r}: replace_head: true needs a recipe to train the new head, and "
                             f"{_AS_IT_IS}")
        if self.replace_head and self.recipe is None:
            raise ValueError(f"model {self.name!r}: replace_head: true leaves an untrained head without a "
                             f"'recipe' (e.g. recipe: {{linear_probe: true}})")
        return self

    @property
    def label(self) -> str:
        return self.alias or self.name

    @property
    def uses_pretrained(self) -> bool:
        """``pretrained`` as given, else True for ``hf-hub:`` / ``local-dir:`` names."""
        if self.pretrained is not None:
            return self.pretrained
        from faithbench.models.factory import HUB_SOURCES, parse_model_name

        return parse_model_name(self.name).source in HUB_SOURCES

    def key_extras(self) -> list[Any]:
        """What beyond (name, params, recipe) decides the weights; empty for a plain entry, so
        the cache keys of existing suites are unchanged. A builder of your own (``pkg.module:callable``
        or a plugin's) adds its code's identity (:func:`~faithbench.models.factory.builder_package`):
        a held-out review edited one and its run folder held the new model's test metrics beside
        the old model's maps and scores."""
        extras: dict[str, Any] = {}
        if self.uses_pretrained:
            extras["pretrained"] = True
        if self.replace_head:
            extras["replace_head"] = True
        if self.preprocess != "auto":
            extras["preprocess"] = self.preprocess if isinstance(self.preprocess, str) else self.preprocess.model_dump()
        if builder := builder_package(self.name):
            extras["builder"] = builder
        if self.name.startswith("monai:") and "pretrained" not in self.params and monai_downloads(self.name):
            extras["monai_pretrained"] = False  # the default faithbench now passes (MONAI's own was a download)
        return [extras] if extras else []


@dataclass
class Checkpoint:
    model: nn.Module
    key: str
    spec: ModelSpec
    seed: int
    metrics: dict[str, float] = field(default_factory=dict)
    origin: str = ""  # "trained", "cache", or the weights path
    info: dict[str, Any] = field(default_factory=dict)


def load_weights_file(model: nn.Module, path: Path) -> None:
    """Load a safetensors or torch weights-only file into ``model``; refuse pickled code."""
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder: expected a weights file (.safetensors, or a torch .pt/.pth "
                              f"state dict)")
    if is_safetensors(path):
        try:
            state, _ = load_tensors(path)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
    else:
        try:
            with warnings.catch_warnings():  # torch warns of a TorchScript archive before refusing it
                warnings.simplefilter("ignore", UserWarning)
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError for forbidden globals
            raise CheckpointError(refusal(path, exc)) from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected {STATE_DICT}, got a {type(state).__name__}")
    check_state_fits(path, expected_shapes(model, state), state)
    own = model.state_dict()
    state.update({k: own[k] for k in norm_counters(model) - set(state)})  # BatchNorm's counters: the model's own
    model.load_state_dict(state)


def build_for_dataset(spec: ModelSpec, in_chans: int, num_classes: int,
                      input_size: tuple[int, ...]) -> tuple[nn.Module, dict[str, Any]]:
    """The entry's network for a dataset of ``in_chans`` channels, ``num_classes`` classes and
    ``input_size``, with its input transform in front (:mod:`faithbench.models.preprocess`).
    Returns ``(model, {"input": the input config as recorded, or None})``."""
    pp = spec.preprocess
    build_chans = len(pp.channels) if isinstance(pp, PreprocessSpec) and pp.channels else in_chans
    model, default = build_network(spec, build_chans, num_classes, tuple(input_size))
    try:
        config = resolve_input_config(default, pp, build_chans)
    except ValueError as exc:  # named so: validate's error said models[i].params (a review)
        raise ValueError(f"preprocess: {exc}") from None
    if config is not None:
        attach_input_transform(model, config)
        _warn_library_transform(spec, config, tuple(input_size))
    return model, {"input": config.record() if config is not None else None}


_WARNED: set[tuple[str, tuple[int, ...]]] = set()


def _transform_extras(input_info: dict[str, Any]) -> list[Any]:
    """The input transform's record and version, for the keys of a network that has one (none:
    the keys of built-in networks are unchanged), so that cached maps follow the transform."""
    return [{"input": input_info["input"], "transform": TRANSFORM_VERSION}] if input_info["input"] else []


def _warn_library_transform(spec: ModelSpec, config: Any, input_size: tuple[int, ...]) -> None:
    """Once per (entry, size) in a process: ``preprocess: auto`` resizes or normalises the images for a network
    loaded from a ``weights`` file by the library's pretrained convention, which is wrong when the
    file was trained on the dataset's [0, 1] images as they are (a review: accuracy 0.945 -> 0.535); so does a
    ``preprocess`` mapping for the keys it leaves out (a review: ``{channels: [0, 0, 0]}``, which the channel
    error suggests, kept a 224-px resize and ImageNet's mean and std: accuracy 0.966 -> 0.514, unwarned)."""
    mapping = spec.preprocess if isinstance(spec.preprocess, PreprocessSpec) else None
    if spec.weights is None or (mapping is None and spec.preprocess not in ("auto", None)) or \
            (spec.label, input_size) in _WARNED:
        return
    given = mapping.model_dump(exclude_none=True) if mapping is not None else {}
    kept = [f"size {config.size}"] if "size" not in given and config.size is not None and \
        tuple(config.size) != input_size else []
    kept += [f"{k} {getattr(config, k)}" for k in ("mean", "std") if k not in given and getattr(config, k) is not None]
    if not kept:
        return
    _WARNED.add((spec.label, input_size))
    source = config.source.split(" + ")[0] if config.source else "the library"
    if mapping is None:
        log.warning("model %r: preprocess auto puts %s's input convention in front of the weights file (%s); if the "
                    "file was trained on the dataset's images as they are, set 'preprocess: none' (a network of "
                    "other channels than the images: preprocess: {channels: [...], size: %s, mean: [0], std: [1]})",
                    spec.label, source, ", ".join(kept), list(input_size))
    else:
        log.warning("model %r: its preprocess mapping leaves %s to %s's input convention, in front of the weights "
                    "file; if the file was trained on the dataset's images as they are, set them too (size: %s, "
                    "mean: 0, std: 1 per channel)", spec.label, ", ".join(kept), source, list(input_size))


def _own_seed(seed: int, permute_labels: bool) -> int:
    """The seed of a checkpoint's init and shuffles: the run's, or the permuted-label twin's (+ TWIN_SEED_OFFSET)."""
    return seed + TWIN_SEED_OFFSET if permute_labels else seed


def checkpoint_key(spec: ModelSpec, train_spec: dict[str, Any], in_chans: int, num_classes: int,
                   input_size: tuple[int, ...], seed: int, permute_labels: bool = False) -> str:
    """The cache key of a recipe checkpoint. It includes ``torch.get_num_threads()``: CPU
    training reduces in a thread-count-dependent order, so the same recipe and seed give weights
    that differ with 1 and with 2 threads (a review: pointing game 0.906 against 0.813); and torch's
    version, whose kernels and initialisers may change as much (a review: no library version was
    in any key, so a checkpoint trained under another torch was reused)."""
    recipe = (spec.recipe or Recipe()).model_dump()
    parts: list[Any] = ["checkpoint", CHECKPOINT_FORMAT, spec.name, spec.params, train_spec, recipe,
                        in_chans, num_classes, list(input_size), seed,
                        {"threads": torch.get_num_threads(), "torch": torch.__version__}, *spec.key_extras()]
    if permute_labels:
        parts += ["permuted-labels", {"init_seed": _own_seed(seed, permute_labels)}]
    return make_key(*parts)


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
        ckpt = load_checkpoint(spec, views[0], views[1], views[2], seed, cache,
                               device=str(next(iter(model.parameters())).device))
        model.attach_dependency(name, ckpt.model)  # type: ignore[operator]
        out[name] = {"key": ckpt.key, "origin": ckpt.origin, "metrics": ckpt.metrics}
    return out


def load_checkpoint(spec: ModelSpec, train: BaseDataset, val: BaseDataset, test: BaseDataset,
                    seed: int, cache: Cache, *, permute_labels: bool = False, device: str = "cpu") -> Checkpoint:
    """Build the architecture for ``train``'s shape and classes, then train or load its weights.

    Test metrics (accuracy, F1, AUC, loss) are computed on the whole ``test`` split and cached
    beside the weights. ``permute_labels``: the same recipe trained on permuted train and val labels
    from seed + ``TWIN_SEED_OFFSET``, keeping the last epoch (data randomisation; accuracy at chance).
    ``device``: where the model is trained and evaluated (and returned); a checkpoint trained off
    the CPU is keyed by its device type too, since its weights differ in the last bits. Training
    holds the cache's lock on the checkpoint's key, so two runs sharing a cache train it once.
    """
    in_chans, input_size = train.in_channels, train.spatial_shape
    num_classes = len(train.classes)
    torch.manual_seed(_own_seed(seed, permute_labels))
    model, input_info = build_for_dataset(spec, in_chans, num_classes, input_size)
    model.to(device)
    if spec.recipe is None and not permute_labels:  # fixed weights: a file, or the library's pretrained ones
        if spec.weights is not None:
            path = Path(spec.weights).expanduser()
            load_weights_file(model, path)
            key = make_key("weights", file_sha256(path), spec.name, spec.params,  # the content, not the path and
                           *spec.key_extras(), *_transform_extras(input_info))  # time: cp -p keeps those
            origin = str(path)
        else:
            key = make_key("pretrained", spec.name, spec.params, in_chans, num_classes, list(input_size),
                           *spec.key_extras(), *_transform_extras(input_info))
            origin = "pretrained"
        model.eval()
        x_test, y_test = test.tensors()
        check_logits(model, x_test, num_classes, spec.label)  # a tuple from a forward validate could not run
        notes: list[str] = []
        metrics = evaluate_model(model, x_test, y_test, tuple(test.classes) if test.classes else None,
                                 label=spec.label, notes=notes)
        return Checkpoint(model, key, spec, seed, metrics, origin=origin,
                          info={"parameters": count_parameters(model), **input_info, "warnings": notes})

    key = checkpoint_key(spec, train.spec(), in_chans, num_classes, input_size, seed, permute_labels)
    if input_info["input"] is not None:
        key = make_key(key, *_transform_extras(input_info))
    if torch.device(device).type != "cpu":
        key = make_key(key, torch.device(device).type)
    busy = f"model {spec.label!r} (seed {seed}) is being trained by another process sharing this cache"
    with cache.lock("checkpoints", key, waiting=busy):  # another run may be training it: wait, then read it
        return _train_or_read(spec, model, key, (train, val, test), seed, cache, permute_labels, input_info)


METRICS_VERSION = 5  # 2: AUCs ranked by float64 log-odds, not float32 probabilities; 3: no CI from < 5 of a class;
# 4: the same per multi-label class (auc_exact_p_<class>); 5: and over > 2 classes (permuted macro AUC's auc_exact_p)


def _current_metrics(meta: dict[str, Any], model: nn.Module, test: BaseDataset) -> dict[str, Any]:
    """The test metrics of a cached checkpoint, evaluated again (one pass over the test split) where
    they were computed by an earlier rule (``metrics_version``: a review's confident model had AUC
    0.511 from probabilities tied at 1.0 where its logits gave 0.5595; before that, checkpoints
    lacked ``predicted_classes``, ``f1_classes`` and ``majority``); what a run adds stays."""
    if meta.get("metrics_version") == METRICS_VERSION:
        return meta["metrics"]
    x_test, y_test = test.tensors()
    fresh = evaluate_model(model, x_test, y_test, tuple(test.classes) if test.classes else None)
    return {**meta["metrics"], **fresh}


def _train_or_read(spec: ModelSpec, model: nn.Module, key: str, splits: tuple[BaseDataset, BaseDataset, BaseDataset],
                   seed: int, cache: Cache, permute_labels: bool, input_info: dict[str, Any]) -> Checkpoint:
    train, val, test = splits
    recipe = spec.recipe or Recipe()
    state = cache.get_tensors("checkpoints", key)
    meta = cache.get_json("checkpoints", key) if state is not None else None
    if state is not None and meta is not None:
        model.load_state_dict(state)
        model.eval()
        metrics = _current_metrics(meta, model, test)
        if permute_labels and "permuted_fit" not in metrics:  # a twin cached before the fit was recorded
            x_train, y_train = train.tensors()
            metrics = {**metrics, "permuted_fit": permuted_fit(model, x_train, permuted(y_train, seed), recipe.n_train)}
        if metrics is not meta["metrics"]:  # written back: the pass is paid once (a diff review)
            try:
                cache.put_json("checkpoints", key, {**meta, "metrics": metrics, "metrics_version": METRICS_VERSION})
            except OSError:  # another user's cache entry (a shared cache): computed again next time
                pass
        return Checkpoint(model, key, spec, seed, metrics, origin="cache", info=meta["info"])

    resolved = resolve_dependencies(model, splits, seed, cache)  # e.g. a frozen backbone first
    x_train, y_train = train.tensors()
    check_logits(model, x_train, len(train.classes), spec.label)  # before training: a tuple validate could not see
    if y_train.ndim == 1:  # trained on one class, a model predicts it for every input: refused (exit 2)
        check_train_classes(y_train.tolist(), tuple(train.classes), f"model {spec.label!r}", n_train=recipe.n_train)
    x_val, y_val = val.tensors()
    if permute_labels:
        y_train, y_val = permuted(y_train, seed), permuted(y_val, seed + 1)
    start = time.perf_counter()
    trainer = train_on_frozen_features if hasattr(model, "frozen_features") else train_model
    history = trainer(model, x_train, y_train, x_val, y_val, recipe, _own_seed(seed, permute_labels),
                      keep_best=not permute_labels,
                      desc=f"train {spec.label} seed {seed}{' (permuted labels)' if permute_labels else ''}")
    seconds = time.perf_counter() - start
    for p in model.parameters():  # a linear probe froze the backbone; explainers need its gradients
        p.requires_grad_(True)
    x_test, y_test = test.tensors()
    notes: list[str] = []
    metrics = evaluate_model(model, x_test, y_test, tuple(test.classes) if test.classes else None,
                             label=spec.label, notes=notes)
    if permute_labels:
        metrics["permuted_fit"] = permuted_fit(model, x_train, y_train, recipe.n_train)  # y_train: permuted above
    info = {"parameters": count_parameters(model), **input_info, "train_seconds": seconds, "history": history,
            "recipe": recipe.model_dump(), "epochs_run": len(history["val_loss"]), "warnings": notes}
    info.update(resolved)
    cache.put_tensors("checkpoints", key, model.state_dict())
    cache.put_json("checkpoints", key, {"metrics": metrics, "info": info, "metrics_version": METRICS_VERSION})
    return Checkpoint(model, key, spec, seed, metrics, origin="trained", info=info)
