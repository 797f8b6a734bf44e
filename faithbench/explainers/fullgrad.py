"""FullGrad (Srinivas & Fleuret 2019) through pytorch-grad-cam: the input-gradient map plus the
bias-gradient maps of every Conv2d / BatchNorm2d layer, and the checks of the models where those
layers do not hold the network's biases (its own module: the rest of the CAM family is in
:mod:`faithbench.explainers.cam`)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from pytorch_grad_cam import FullGrad
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from faithbench.explainers.cam import CAMExplainer, restored_grads
from faithbench.explainers.graph import leaf_modules
from faithbench.registry import explainers


class _RawFullGrad(FullGrad):
    """FullGrad without the final min-max scaling (its per-map scaling is part of the method)."""

    def __init__(self, model: nn.Module, reshape_transform: Callable | None = None) -> None:
        super().__init__(model, [], reshape_transform)  # [] : the library finds the bias layers itself

    def aggregate_multi_layers(self, cam_per_target_layer):  # type: ignore[no-untyped-def]
        return np.sum(cam_per_target_layer, axis=1)

    def get_bias_data(self, layer):  # type: ignore[no-untyped-def]
        return super().get_bias_data(layer).float()  # numpy has no bfloat16 (a review), as the other CAMs

    def compute_cam_per_layer(self, input_tensor, target_category, eigen_smooth):  # type: ignore[no-untyped-def]
        recorded = self.activations_and_grads
        recorded.gradients = [g.float() for g in recorded.gradients]
        return super().compute_cam_per_layer(input_tensor, target_category, eigen_smooth)


def _has_bias_2d(module: nn.Module) -> bool:
    return type(module) in (nn.Conv2d, nn.BatchNorm2d) and getattr(module, "bias", None) is not None


def per_position_biases(model: nn.Module, x: Tensor) -> str:
    """The leaf modules other than Conv2d / BatchNorm2d whose bias is added at each spatial position
    (an output with more than the (B, C) axes: ConvNeXt's channels-last Linear and LayerNorm2d, Swin's
    MLPs), as 'Type (n)' joined, or ''. A held-out review gave their bias terms a share of 17-20 % on
    ConvNeXt and 72 % on Swin, all left out of FullGrad's sum. A bias after global pooling (the head)
    has no map to add and is left out by the method itself. One forward pass of a zero image (on the
    model's device, validate's meta placeholder included); '' when it fails (the call says why)."""
    biased = [m for m in leaf_modules(model) if getattr(m, "bias", None) is not None and not _has_bias_2d(m)]
    if not biased:
        return ""
    found: set[nn.Module] = set()
    hooks = [m.register_forward_hook(lambda m, _i, out: found.add(m) if isinstance(out, Tensor) and out.ndim > 2
                                     else None) for m in biased]
    param = next(model.parameters())
    try:
        with torch.no_grad():
            model(torch.zeros(x[:1].shape, device=param.device, dtype=param.dtype))
    except Exception:  # noqa: BLE001 - see the docstring
        return ""
    finally:
        for h in hooks:
            h.remove()
    return ", ".join(f"{name} ({n})" for name, n in sorted(Counter(type(m).__name__ for m in found).items()))


@explainers.register("fullgrad")
class FullGradExplainer(CAMExplainer):
    """FullGrad (Srinivas & Fleuret 2019) as pytorch-grad-cam computes it:

    S = sum_c psi(|x_c * dS/dx_c|) + sum_layers sum_c psi(|b_c * dS/dz_c|),
    psi = min-max of ONE channel's map of one image, then resize to the input (OpenCV bilinear).

    This is the library's normalisation (the paper's equation, with the sum over channels outside
    psi), not the authors' code (``fullgrad-saliency``), which min-max scales each layer's map over
    all its channels jointly, sums the channels, then upsamples (bilinear, ``align_corners=True``).
    Per-channel scaling gives every
    channel of every layer the same range, however small its gradient. We drop only the library's
    final min-max of S. Uses every Conv2d / BatchNorm2d with a bias (BatchNorm's effective bias
    b - mu*gamma/sigma); ``target_layer`` is ignored. Not on ViTs, nor on a CNN that adds biases at each
    position in other layers (ConvNeXt's Linear and LayerNorm2d, Swin's MLPs: :func:`per_position_biases`),
    which the library does not use, nor in 3D (the library resizes with OpenCV, 2D only).
    Non-negative by construction, so it has no ``relu`` parameter.
    """

    cam_class = FullGrad
    defaults: ClassVar[dict[str, Any]] = {"target_layer": None, "min_grid": 4}  # non-negative: no ReLU
    finds_layer = False
    version = "6"  # the CAMs' 7 changed how their layer is found, which FullGrad does not use: its maps are the same
    dims = frozenset({2})
    architectures = frozenset({"cnn"})
    paper = "Srinivas & Fleuret 2019, Full-Gradient Representation for Neural Network Visualization"
    description = "input-gradient plus bias-gradient maps of all conv/BN layers (pytorch-grad-cam)"

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        reason = super().unsupported_reason(model, x)
        odd = {type(m).__name__ for m in model.modules()  # timm's BatchNormAct2d: its output is after its activation
               if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) and m.bias is not None and not _has_bias_2d(m)}
        if reason is None and (odd or not any(_has_bias_2d(m) for m in model.modules())):
            reason = (f"fullgrad takes the biases of exact Conv2d / BatchNorm2d modules, as pytorch-grad-cam does: the "
                      f"model's {', '.join(sorted(odd))} would be left out silently (a review)" if odd else
                      "fullgrad needs Conv2d or BatchNorm2d layers with a bias; the model has none")
        if reason is None and (other := per_position_biases(model, x)):
            reason = (f"fullgrad takes the biases of Conv2d / BatchNorm2d layers only, as pytorch-grad-cam does; the "
                      f"model also adds biases at every position in {other}, which it would leave out")
        return reason

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        cam = _RawFullGrad(model)
        self.last_info = {"target_layer": "all Conv2d/BatchNorm2d biases",
                          "n_layers": len(cam.target_layers)}
        with restored_grads(model):
            try:
                raw = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target])
            finally:
                self.release(model, cam)
        return torch.as_tensor(np.asarray(raw, dtype=np.float32), device=x.device)
