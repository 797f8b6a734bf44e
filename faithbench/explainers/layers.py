"""Where a class-activation map is read: the target layer of a CNN, found from the model's
feature maps on one image (:func:`find_target_layer`) or named (:func:`resolve_module`). Used by
the CAM explainers (:mod:`faithbench.explainers.cam`) and the layer-wise gradient ones."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["find_target_layer", "resolve_module"]

_ADAPTIVE_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                   nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def find_target_layer(model: nn.Module, x: Tensor, min_grid: int = 4) -> tuple[str, tuple[int, ...]]:
    """The last top-level child whose output is a feature map with every axis >= ``min_grid``; where
    no top-level child has one, the same rule inside the last child that holds one, and so on down.

    A network that keeps every stage in one container (torchvision's and MONAI's DenseNet:
    ``features``) has one top-level feature map, the last and coarsest: on a 28^3 volume MONAI's
    ``features`` ends on 1 x 1 x 1, whose Grad-CAM is one number per image, 0 everywhere after
    the ReLU where it is negative (found by a held-out review); its ``denseblock1`` has 7^3.

    A container run after the chosen child whose own output is coarser, but which holds fine stages
    (blocks with modules of their own), is entered: its last fine stage is deeper than that child.
    timm's EfficientNet, MobileNet and ConvNeXt run a stem, then every stage in one ``blocks`` or
    ``stages``: on 64 px the rule without this step picked the stem (``bn1``, 32 x 32: a map of
    edges), now ``blocks.4`` (4 x 4). Leaf layers are not stages: DenseNet's ``transition3``
    (norm, relu, conv at 4 x 4, then a pool) does not replace ``denseblock3``.

    Adaptive pooling layers are never chosen: their output is resampled to a fixed size, so
    torchvision's AlexNet and VGG ``avgpool`` gives 6 x 6 and 7 x 7 copies of a 1 x 1 or 2 x 2 map
    on small inputs. Falls back to the finest-grid top-level feature map if no module is that fine.
    """
    outputs: dict[str, tuple[int, ...]] = {}  # feature-map shapes, by module name
    order: dict[str, int] = {}  # when each module last returned: siblings in the order they run
    calls = itertools.count()
    hooks = []
    for name, module in model.named_modules():
        if not name or isinstance(module, _ADAPTIVE_POOLS):
            continue

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            order[name] = next(calls)  # a module called twice (one ReLU after every conv): its last call,
            if isinstance(out, Tensor) and out.ndim == x.ndim:  # whose output a CAM hook on it would keep
                outputs[name] = tuple(out.shape[2:])
            else:
                outputs.pop(name, None)
        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    transform = getattr(model, "input_transform", None)  # resizes the input: its output is no feature map

    def children(module: nn.Module, prefix: str) -> list[str]:
        names = [prefix + n for n, child in module.named_children() if child is not transform and prefix + n in order]
        return sorted(names, key=order.__getitem__)

    def is_fine(name: str) -> bool:
        return name in outputs and min(outputs[name]) >= min_grid

    def fine_in(module: nn.Module, prefix: str) -> tuple[str, tuple[int, ...]] | None:
        names = children(module, prefix)
        fine = [n for n in names if is_fine(n)]
        if fine:
            for later in reversed(names[names.index(fine[-1]) + 1:]):  # a coarse sequence of stages after it
                block = model.get_submodule(later)
                if isinstance(block, nn.Sequential):
                    stages = [n for n in children(block, later + ".") if is_fine(n)
                              and _holds_conv(model.get_submodule(n))]
                    if stages:
                        return stages[-1], outputs[stages[-1]]
            return fine[-1], outputs[fine[-1]]
        for name in reversed(names):
            found = fine_in(model.get_submodule(name), name + ".")
            if found:
                return found
        return None

    found = fine_in(model, "")
    if found:
        return found
    top = [(n, outputs[n]) for n in children(model, "") if n in outputs]
    if not top:
        raise ValueError(f"no feature-map layer found in {type(model).__name__}; set target_layer")
    return max(top, key=lambda item: min(item[1]))


def _holds_conv(module: nn.Module) -> bool:
    """Whether ``module`` is a block holding a convolution: a stage, not one layer."""
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules() if m is not module)


def resolve_module(model: nn.Module, dotted: str) -> nn.Module:
    try:
        return model.get_submodule(dotted)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n][:40]
        raise ValueError(f"target_layer {dotted!r} not found in {type(model).__name__}; "
                         f"modules include: {', '.join(names)}") from None
