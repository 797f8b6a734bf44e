"""Any timm / torchvision / MONAI network, a hub repo, or your own module, by name.

Model names (the ``name`` of a suite's model entry):

==================================  =========================================================
``resnet18``, ``small_cnn``, ...    a faithbench built-in (``faithbench list models``)
``timm:<name>[.<tag>]``             ``timm.create_model(name, **params)`` (any timm architecture)
``torchvision:<name>``              ``torchvision.models.get_model(name, **params)``
``monai:<Class>``                   ``monai.networks.nets.<Class>(**params)``
``hf-hub:<owner>/<repo>``           a timm-format Hugging Face Hub repo (config.json + weights)
``local-dir:<folder>``              the same layout saved locally (``timm.models.save_for_hf``);
                                    ``hf-hub:`` followed by a path (``/``, ``.`` or ``~``) is read
                                    the same way
``pkg.module:callable``             your own builder, imported; called with ``**params``
==================================  =========================================================

From the dataset, unless ``params`` gives them: the number of classes (``num_classes``, or
``out_channels`` for MONAI), the input channels (``in_chans`` / ``in_channels`` /
``n_input_channels``) of a network trained here from random init, and MONAI's ``spatial_dims``.
Pretrained networks (``pretrained: true``, hub repos) keep their channels (1-channel images are
replicated, :mod:`faithbench.models.preprocess`); a pretrained head whose size is not the
dataset's number of classes is replaced by a new one when the entry says ``replace_head: true``
(a linear probe, or fine-tuning), and is a one-line error otherwise.
"""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from faithbench.models import hub
from faithbench.models.errors import CheckpointError
from faithbench.models.preprocess import InputConfig, input_config_from_timm, input_config_from_torchvision
from faithbench.types import arch_family

SOURCES = ("timm", "torchvision", "monai", "hf-hub", "local-dir")
HUB_SOURCES = ("hf-hub", "local-dir")  # the name itself says where the weights are
_IDENT = re.compile(r"[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class ModelName:
    """A parsed model name: ``source`` (``builtin``, one of :data:`SOURCES`, or ``module``) and
    ``target`` (what follows the prefix; for ``module``, the whole ``pkg.module:callable``)."""

    source: str
    target: str


def parse_model_name(name: str) -> ModelName:
    prefix, sep, rest = name.partition(":")
    if not sep:
        return ModelName("builtin", name)
    if prefix in SOURCES:
        if not rest:
            raise ValueError(f"model name {name!r}: expected a name after {prefix + ':'!r}")
        if prefix == "hf-hub" and rest.startswith(("/", ".", "~")):
            return ModelName("local-dir", rest)
        return ModelName(prefix, rest)
    if _IDENT.fullmatch(prefix) and _IDENT.fullmatch(rest):
        return ModelName("module", name)
    raise ValueError(f"model name {name!r}: expected a built-in name, one of the prefixes "
                     f"{', '.join(p + ':' for p in SOURCES)} or 'package.module:callable'")


def is_external(name: str) -> bool:
    return ":" in name


def _did_you_mean(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _fill(fn: Any, params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``params`` plus each default whose name ``fn`` accepts and ``params`` does not give."""
    accepted = inspect.signature(fn).parameters
    return {**{k: v for k, v in defaults.items() if k in accepted and k not in params}, **params}


def _parameter_names(fn: Any) -> list[str]:
    """The keyword names of ``fn``, and for a class those of every ``__init__`` of its MRO (where
    ``**kwargs`` often go: MONAI's ``DenseNet121`` to ``DenseNet``; but not always, so these are
    hints, never grounds to refuse)."""
    chain = [k.__init__ for k in fn.__mro__ if "__init__" in vars(k) and k not in (nn.Module, object)] \
        if isinstance(fn, type) else [fn]
    names: list[str] = []
    for part in chain:
        names += [n for n, p in inspect.signature(part).parameters.items() if n != "self" and n not in names
                  and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return names


def _close_parameter(name: str, fn: Any) -> str:
    close = difflib.get_close_matches(name, _parameter_names(fn), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_params(where: str, fn: Any, params: dict[str, Any]) -> None:
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return  # **kwargs: where they go is the builder's business (unexpected_parameter_hint names a typo)
    for key in params:
        if key not in sig.parameters:
            raise ValueError(f"{where}: unknown parameter {key!r}{_close_parameter(key, fn)}; valid parameters: "
                             f"{', '.join(sig.parameters)}")


def unexpected_parameter_hint(spec: Any, exc: BaseException) -> str:
    """`` (did you mean 'spatial_dims'?)`` for a builder's ``TypeError: ... unexpected keyword
    argument 'spatial_dim'`` (a MONAI network's ``**kwargs`` reach its parent class), else ""."""
    found = re.search(r"unexpected keyword argument '(\w+)'", str(exc)) if isinstance(exc, TypeError) else None
    if not found:
        return ""
    try:
        parsed = parse_model_name(spec.name)
        fn = {"monai": monai_class, "module": module_callable}[parsed.source](parsed.target)
    except (KeyError, ValueError):
        return ""
    return _close_parameter(found.group(1), fn)


def builder_package(name: str) -> str:
    """The identity of the code that builds model ``name`` when it is yours: ``pkg.module:callable``,
    or a registered builder that is not faithbench's; :func:`~faithbench.configurable.package_version`
    of its module (a version, and a digest of its source and local helpers where that can change
    under the version). ``""`` for faithbench's and the libraries' models, and when it cannot be
    imported (building it fails with the reason)."""
    from faithbench.configurable import package_version
    from faithbench.registry import models

    try:
        parsed = parse_model_name(name)
        if parsed.source == "module":
            fn = module_callable(parsed.target)
        elif parsed.source == "builtin" and name in models.names() and models.origin(name) != "builtin":
            fn = models.get(name)
        else:
            return ""
        return package_version(fn.__module__, fn)
    except Exception:  # noqa: BLE001 - an unimportable builder: the build says why
        return ""


def monai_downloads(name: str) -> bool:
    """Whether the MONAI network of ``monai:<Class>`` has ``pretrained=True`` as its default, which
    :func:`build_network` overrides with ``False`` unless the entry's params ask."""
    try:
        param = inspect.signature(monai_class(name.split(":", 1)[1])).parameters.get("pretrained")
    except Exception:  # an unknown class: the build names it
        return False
    return param is not None and param.default is True


def monai_class(target: str) -> Any:
    import monai.networks.nets as nets

    cls = getattr(nets, target, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        names = sorted(n for n in dir(nets) if isinstance(getattr(nets, n), type))
        raise ValueError(f"unknown MONAI network {target!r}{_did_you_mean(target, names)}")
    return cls


def module_callable(target: str) -> Any:
    from faithbench.registry import _import_string

    try:
        fn = _import_string(target)
    except (ImportError, AttributeError) as exc:
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name == target.partition(":")[0].split(".")[0]:
            hint = " (install your package, or put the folder that holds it on PYTHONPATH)"
        raise ValueError(f"cannot import {target!r}: {type(exc).__name__}: {exc}{hint}") from None
    if not callable(fn):
        raise ValueError(f"{target!r} is not callable")
    return fn


def check_model_spec(spec: Any) -> None:
    """Validate a library/module/hub model entry without downloading anything (offline-safe).
    Raises ValueError with a one-line message."""
    parsed = parse_model_name(spec.name)
    if parsed.source == "timm":
        from timm.models import get_pretrained_cfg, is_model, list_models, split_model_name_tag

        arch, tag = split_model_name_tag(parsed.target)
        if not is_model(arch):
            raise ValueError(f"unknown timm model {arch!r}{_did_you_mean(arch, list_models())}")
        try:
            known_tag = not tag or get_pretrained_cfg(parsed.target) is not None
        except RuntimeError:  # timm: "Invalid pretrained tag"
            known_tag = False
        if not known_tag:
            from timm.models import list_pretrained

            raise ValueError(f"timm model {arch!r} has no pretrained tag {tag!r}; tags: "
                             f"{', '.join(list_pretrained(arch + '.*'))}")
    elif parsed.source == "torchvision":
        import torchvision

        names = torchvision.models.list_models()
        if parsed.target not in names:
            raise ValueError(f"unknown torchvision model {parsed.target!r}{_did_you_mean(parsed.target, names)}")
    elif parsed.source == "monai":
        check_params("params", monai_class(parsed.target), spec.params)
    elif parsed.source == "module":
        check_params("params", module_callable(parsed.target), spec.params)
    elif parsed.source == "local-dir":
        folder = Path(parsed.target).expanduser()
        if not folder.is_dir():  # a review: a folder that does not exist said "found no config.json"
            raise ValueError(f"{folder}: no such folder (a relative local-dir: path is read from the working "
                             f"directory, {Path.cwd()})")
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder}: expected a timm model folder with config.json and model.safetensors "
                             f"(timm.models.save_for_hf), found no config.json")
    elif parsed.source == "hf-hub" and parsed.target.count("/") != 1:
        raise ValueError(f"hf-hub: expected a repo id 'owner/name', got {parsed.target!r}")
    if spec.uses_pretrained and parsed.source in ("monai", "module", "builtin"):
        raise ValueError(f"pretrained: true downloads hub weights for timm:, torchvision: and hf-hub: names; "
                         f"for {spec.name!r} give weights: <file>")


def classifier_outputs(model: nn.Module) -> int | None:
    """The head's number of outputs: timm's ``num_classes``, else the last ``nn.Linear``'s."""
    if hasattr(model, "num_classes") and hasattr(model, "reset_classifier"):
        return int(model.num_classes)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def replace_classifier(model: nn.Module, num_classes: int) -> None:
    """A new ``num_classes`` head (drawn from torch's global generator, seeded by the caller)."""
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    setattr(parent, child, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))


def _fit_head(model: nn.Module, spec: Any, num_classes: int) -> None:
    outputs = classifier_outputs(model)
    if outputs is None or outputs == num_classes or "num_classes" in spec.params:
        return
    if not spec.replace_head:
        raise CheckpointError(f"model {spec.label!r}: its pretrained head has {outputs} outputs, the dataset has "
                              f"{num_classes} classes; set replace_head: true (a new head, trained by the recipe)")
    replace_classifier(model, num_classes)


def _timm_name(parsed: ModelName) -> str:
    return parsed.target if parsed.source == "timm" else f"{parsed.source}:{parsed.target}"


def _pretrained_source(spec: Any, parsed: ModelName) -> tuple[bool, str, str]:
    """``(cached, where, how)`` of a pretrained entry's weights: whether they are in the
    library's cache, which weights, and how to provide them."""
    if parsed.source == "torchvision":
        import os

        import torchvision

        default = torchvision.models.get_model_weights(parsed.target).DEFAULT
        how = f"pre-fill {hub.torch_cache_dir()} where there is a network (torchvision.models.get_model(" \
              f"'{parsed.target}', weights='DEFAULT')) and copy it here{hub.local_advice(parsed.source, spec)}"
        cached = (Path(hub.torch_cache_dir()) / os.path.basename(default.url)).exists()
        return cached, f"{default} ({default.url})", how
    name = _timm_name(parsed)
    how = f"pre-fill the cache where there is a network (python -c \"import timm; timm.create_model('{name}', " \
          f"pretrained=True)\") and copy it here{hub.local_advice(parsed.source, spec)}"
    if parsed.source == "timm":
        import timm

        cached, where = hub.timm_weights_cached(timm.models.get_pretrained_cfg(parsed.target))
        return cached, where, how
    if parsed.source == "hf-hub":
        cached = hub.hf_cached(parsed.target, ("config.json",)) and hub.hf_cached(parsed.target)
        return cached, f"hf-hub {parsed.target} (cache {hub.hf_cache_dir()})", how
    return True, parsed.target, how  # local-dir: on disk


def check_pretrained_available(spec: Any) -> None:
    """Offline, raise :class:`~faithbench.models.hub.PretrainedUnavailableError` (one line) for a
    pretrained entry whose weights are not in the library's cache. Nothing is built or downloaded:
    a run can check every entry before it trains anything."""
    if not spec.uses_pretrained or not hub.offline():
        return
    parsed = parse_model_name(spec.name)
    if parsed.source not in ("timm", "torchvision", *HUB_SOURCES):
        return
    cached, where, how = _pretrained_source(spec, parsed)
    if not cached:
        raise hub.unavailable(spec.label, where, how, hub.offline_reason())


def _build_timm(spec: Any, parsed: ModelName, in_chans: int, num_classes: int) -> tuple[nn.Module, InputConfig | None]:
    import timm

    name = _timm_name(parsed)
    kwargs = dict(spec.params)
    if spec.uses_pretrained:
        check_pretrained_available(spec)
        _cached, where, how = _pretrained_source(spec, parsed)
        model = hub.fetch(spec.label, where, how, lambda: timm.create_model(name, pretrained=True, **kwargs))
        _fit_head(model, spec, num_classes)
    else:
        if spec.weights is None:  # trained here from random init: the dataset's channels
            kwargs.setdefault("in_chans", in_chans)
        kwargs.setdefault("num_classes", num_classes)
        model = hub.fetch(spec.label, name, "give a local-dir: folder",
                          lambda: timm.create_model(name, pretrained=False, **kwargs))
    chans = int(kwargs.get("in_chans") or model.pretrained_cfg.get("input_size", (3,))[0])
    config = input_config_from_timm(model, chans)
    size = kwargs.get("img_size", config.size)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if spec.uses_pretrained or spec.weights is not None:  # built with img_size: that size, not the cfg's (a review:
        # a ViT built for 64 px from a weights file was fed 224-px images and failed validation, blaming the image)
        return model, config if "img_size" not in kwargs else replace(config, size=size, source=config.source
                                                                      + f", size: img_size {list(size)}")
    # trained here from random init: no normalisation; resize only where the size is fixed (ViT)
    if not model.pretrained_cfg.get("fixed_input_size", False):
        return model, None
    return model, InputConfig(in_chans=chans, size=size, interpolation=config.interpolation,
                              source="timm (random init, fixed input size)")


def _build_torchvision(spec: Any, parsed: ModelName, num_classes: int) -> tuple[nn.Module, InputConfig]:
    import torchvision

    kwargs = dict(spec.params)
    default = torchvision.models.get_model_weights(parsed.target).DEFAULT
    if spec.uses_pretrained:
        check_pretrained_available(spec)
        _cached, where, how = _pretrained_source(spec, parsed)
        model = hub.fetch(spec.label, where, how,
                          lambda: torchvision.models.get_model(parsed.target, weights=default, **kwargs))
        _fit_head(model, spec, num_classes)
    else:
        kwargs.setdefault("num_classes", num_classes)
        model = torchvision.models.get_model(parsed.target, weights=None, **kwargs)
    if spec.uses_pretrained or spec.weights is not None:
        return model, input_config_from_torchvision(default)
    return model, InputConfig(in_chans=3, source="torchvision (random init)")


def build_network(spec: Any, in_chans: int, num_classes: int, input_size: tuple[int, ...]) -> tuple[nn.Module, InputConfig | None]:
    """The network of a library/module/hub entry and its default input config (before the
    entry's ``preprocess`` overrides). Built-in names go through :func:`build_model`."""
    parsed = parse_model_name(spec.name)
    dims = len(input_size)
    config: InputConfig | None = None
    if parsed.source == "builtin":
        from faithbench.models.architectures import build_model

        return build_model(spec.name, in_chans, num_classes, input_size, **_data_given(spec.name, spec.params)), None
    if parsed.source in ("timm", *HUB_SOURCES):
        model, config = _build_timm(spec, parsed, in_chans, num_classes)
    elif parsed.source == "torchvision":
        model, config = _build_torchvision(spec, parsed, num_classes)
    else:
        fn = monai_class(parsed.target) if parsed.source == "monai" else module_callable(parsed.target)
        defaults = {"spatial_dims": dims, "in_channels": in_chans, "n_input_channels": in_chans, "in_chans": in_chans,
                    "out_channels": num_classes, "num_classes": num_classes, "input_size": tuple(input_size)}
        if parsed.source == "monai":  # MONAI's EfficientNetBN downloads ImageNet weights by default, even offline
            defaults["pretrained"] = False  # (a review); params: {pretrained: true} asks for them
        how = (f"pre-fill {hub.torch_cache_dir()} where there is a network (build it once with pretrained=True) and "
               "copy it here, or drop pretrained from params (random init)")  # a review: a raw urlopen error
        model = hub.fetch(spec.label, f"of monai:{parsed.target}", how, lambda: fn(**_fill(fn, spec.params, defaults)))
        if not isinstance(model, nn.Module) or isinstance(model, torch.jit.ScriptModule):  # no hooks on a script
            got = "a TorchScript module" if isinstance(model, nn.Module) else type(model).__name__
            raise CheckpointError(f"model {spec.label!r}: {parsed.target} returned {got}, expected a torch.nn.Module "
                                  f"(explainers hook its layers: return the module before torch.jit.script)")
    model.arch_family = arch_family(model)  # a builder's own tag is kept (docs/plugins.md), else guessed
    model.spatial_dims = dims
    return model, config


def _data_given(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of a built-in network, refused where they hold what the dataset decides."""
    given = sorted({"in_chans", "num_classes", "input_size"} & set(params))
    if given:
        raise ValueError(f"model {name!r}: {', '.join(given)} come from the dataset (its channels, classes and "
                         f"image size), not from params: remove {given[0]!r} (to use other image channels, give the "
                         f"dataset that many channels, or the entry preprocess: {{channels: [...]}})")
    return params


__all__ = ["SOURCES", "ModelName", "parse_model_name", "is_external", "check_model_spec", "build_network",
           "check_pretrained_available",
           "classifier_outputs", "replace_classifier"]
