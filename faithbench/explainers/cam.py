"""Class-activation-map explainers through pytorch-grad-cam (Gildenblat et al.).

The library owns hooks, the backward pass and the channel weights; we take its CAM BEFORE
its ReLU and min-max scaling (they destroy sign and scale, which faithfulness metrics need)
and upsample it to the input size with (bi/tri)linear interpolation. Grad-CAM's ReLU is then
the runner's ``relu`` post-processing, recorded per metric.

Target layer: ``target_layer`` (a dotted module name) if given; otherwise, for a ViT, the
last block's ``norm1`` with the token -> grid reshape; for a CNN, the last top-level stage
whose output grid is at least ``min_grid`` per spatial axis (SCIENCE.md: a 2x2 CAM is not
comparable to pixel-level maps). The chosen layer and grid are in ``last_info``.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from faithbench.explainers.base import Explainer
from faithbench.registry import explainers


class _RawCAMMixin:
    """Overrides pytorch-grad-cam's per-layer step to keep the raw CAM (no ReLU, no scaling)."""

    def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):  # type: ignore[no-untyped-def]
        acts = [a.cpu().data.numpy() for a in self.activations_and_grads.activations]  # type: ignore[attr-defined]
        grads = [g.cpu().data.numpy() for g in self.activations_and_grads.gradients]  # type: ignore[attr-defined]
        cams = []
        for i, layer in enumerate(self.target_layers):  # type: ignore[attr-defined]
            a = acts[i] if i < len(acts) else None
            g = grads[i] if i < len(grads) else None
            cam = self.get_cam_image(input_tensor, layer, targets, a, g, eigen_smooth)  # type: ignore[attr-defined]
            cams.append(np.asarray(cam, dtype=np.float32)[:, None])
        return cams

    def aggregate_multi_layers(self, cam_per_target_layer):  # type: ignore[no-untyped-def]
        return np.mean(np.concatenate(cam_per_target_layer, axis=1), axis=1)


_RAW_CLASSES: dict[type, type] = {}


def raw_cam_class(cam_cls: type) -> type:
    """A subclass of a pytorch-grad-cam class that returns the raw, unscaled CAM."""
    if cam_cls not in _RAW_CLASSES:
        _RAW_CLASSES[cam_cls] = type(f"Raw{cam_cls.__name__}", (_RawCAMMixin, cam_cls), {})
    return _RAW_CLASSES[cam_cls]


def vit_reshape_transform(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """(B, prefix + h*w, C) tokens -> (B, C, h, w) feature map for a timm ViT."""
    n_prefix = int(getattr(model, "num_prefix_tokens", 1))
    grid = tuple(model.patch_embed.grid_size)  # type: ignore[union-attr]

    def reshape(tokens: Tensor) -> Tensor:
        spatial = tokens[:, n_prefix:, :]
        return spatial.reshape(spatial.shape[0], *grid, spatial.shape[-1]).movedim(-1, 1)

    return reshape


def find_target_layer(model: nn.Module, x: Tensor, min_grid: int = 4) -> tuple[str, tuple[int, ...]]:
    """The last top-level child whose output is a feature map with every axis >= ``min_grid``.

    Falls back to the finest-grid feature map found if none is that fine.
    """
    outputs: list[tuple[str, tuple[int, ...]]] = []
    hooks = []
    for name, child in model.named_children():
        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, Tensor) and out.ndim == x.ndim:
                outputs.append((name, tuple(out.shape[2:])))
        hooks.append(child.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    if not outputs:
        raise ValueError(f"no feature-map layer found in {type(model).__name__}; set target_layer")
    fine = [(n, g) for n, g in outputs if min(g) >= min_grid]
    return fine[-1] if fine else max(outputs, key=lambda item: min(item[1]))


def resolve_module(model: nn.Module, dotted: str) -> nn.Module:
    try:
        return model.get_submodule(dotted)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n][:40]
        raise ValueError(f"target_layer {dotted!r} not found in {type(model).__name__}; "
                         f"modules include: {', '.join(names)}") from None


class CAMExplainer(Explainer):
    """Base for the CAM family; subclasses set ``cam_class`` (a pytorch-grad-cam class)."""

    family = "cam"
    cam_class: ClassVar[type] = GradCAM
    defaults: ClassVar[dict[str, Any]] = {"target_layer": None, "min_grid": 4}

    def layer_for(self, model: nn.Module, x: Tensor) -> tuple[nn.Module, Callable | None]:
        if getattr(model, "arch_family", "cnn") == "vit":
            name = self.target_layer or "blocks.-1.norm1"
            if name == "blocks.-1.norm1":
                layer = model.blocks[-1].norm1  # type: ignore[index]
            else:
                layer = resolve_module(model, name)
            self.last_info = {"target_layer": name, "grid": list(model.patch_embed.grid_size)}  # type: ignore[union-attr]
            return layer, vit_reshape_transform(model)
        if self.target_layer:
            layer = resolve_module(model, self.target_layer)
            with torch.no_grad():
                grid: list[int] = []
                h = layer.register_forward_hook(lambda _m, _i, o: grid.extend(o.shape[2:]))
                try:
                    model(x[:1])
                finally:
                    h.remove()
            self.last_info = {"target_layer": self.target_layer, "grid": grid}
            return layer, None
        name, grid_t = find_target_layer(model, x, self.min_grid)
        self.last_info = {"target_layer": name, "grid": list(grid_t)}
        return model.get_submodule(name), None

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        layer, reshape = self.layer_for(model, x)
        cam = raw_cam_class(self.cam_class)(model=model, target_layers=[layer], reshape_transform=reshape)
        try:
            raw = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target])
        finally:
            cam.activations_and_grads.release()
        raw_t = torch.as_tensor(np.asarray(raw, dtype=np.float32), device=x.device)
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        return F.interpolate(raw_t[:, None], size=tuple(x.shape[2:]), mode=mode, align_corners=False)[:, 0]


@explainers.register("gradcam")
class GradCAMExplainer(CAMExplainer):
    """Grad-CAM: channel weights = spatial mean of d score / d activation (Selvaraju et al. 2017)."""

    cam_class = GradCAM
    paper = "Selvaraju et al. 2017, Grad-CAM"
    description = "gradient-weighted class activation map (pytorch-grad-cam), raw before ReLU"
