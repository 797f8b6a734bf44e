"""Ablation-CAM (Desai & Ramaswamy 2020): each channel of the CAM layer set to zero in turn, the drop of the
target's score its weight. The map is read as the other CAMs' (:mod:`faithbench.explainers.cam`).

pytorch-grad-cam's ``AblationCAM`` sets the ablated channel to ``min(activations) - 1e7`` instead of zero
whenever the layer holds a value other than exactly 0 at its minimum ("deviating from the paper", its
``AblationLayer``): on a layer with negative values (MobileNetV3's and EfficientNet's linear bottlenecks, their
default CAM layers) a -1e7 channel flows linearly into the next convolution (a held-out review: a map up to 9e9,
correlation -0.12 with the zeroing Ablation-CAM on torchvision's ``mobilenet_v3_small``). We zero, as the paper
does; on a layer whose minimum is 0 (after a ReLU) both are the same map. Our loop also draws no progress bar
of its own (the library's tqdm bar interleaved with a run's log)."""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch
from pytorch_grad_cam.base_cam import BaseCAM
from torch import Tensor, nn

from faithbench.configurable import AT_LEAST_ONE, Bound
from faithbench.explainers.cam import CAMExplainer, raw_cam_class
from faithbench.registry import explainers
from faithbench.types import arch_family


class ZeroAblationCAM(BaseCAM):
    """Ablation-CAM's weights w_c = (S - S_c) / S, S_c the score with channel c of the layer's output set to 0
    (on every position; a ViT's channel on every token), ``batch_size`` channels per forward pass."""

    def __init__(self, model: nn.Module, target_layers: list[nn.Module], reshape_transform: Callable | None = None,
                 batch_size: int = 32, channel_axis: int = 1) -> None:
        super().__init__(model, target_layers, reshape_transform, uses_gradients=False)
        self.batch_size = batch_size
        self.channel_axis = channel_axis

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads):  # type: ignore[no-untyped-def]
        self.activations_and_grads.release()  # its activations are copied out; no more of them per ablated batch
        layer_output: list[Tensor] = []
        # the layer's own output (its last call's, as the library keeps): a ViT's tokens, not the grid made of them
        handle = target_layer.register_forward_hook(lambda _m, _i, out: layer_output.append(out.detach().clone()))
        with torch.no_grad():
            try:
                outputs = self.model(input_tensor)
            finally:
                handle.remove()
            original = np.float32([float(t(o)) for t, o in zip(targets, outputs)])
        n_channels = activations.shape[1]
        ablated = np.empty((len(targets), n_channels), dtype=np.float32)
        replacement: list[Tensor] = []
        handle = target_layer.register_forward_hook(lambda _m, _i, _out: replacement[0])
        try:
            with torch.no_grad():
                for b, (target, image) in enumerate(zip(targets, input_tensor)):
                    for start in range(0, n_channels, self.batch_size):
                        channels = range(start, min(start + self.batch_size, n_channels))
                        batch = layer_output[-1][b:b + 1].repeat(len(channels), *[1] * (layer_output[-1].ndim - 1))
                        for i, c in enumerate(channels):
                            batch[(i, c) if self.channel_axis == 1 else (i, ..., c)] = 0
                        replacement[:] = [batch]
                        scores = self.model(image[None].repeat(len(channels), *[1] * image.ndim))
                        ablated[b, start:start + len(channels)] = [float(target(o)) for o in scores]
        finally:
            handle.remove()
        return (original[:, None] - ablated) / original[:, None]


@explainers.register("ablationcam")
class AblationCAMExplainer(CAMExplainer):
    """Ablation-CAM: w_c = (S - S_c) / S, S_c the target's score with channel c of the CAM layer set to zero,
    map = sum_c w_c A_c (Desai & Ramaswamy 2020, "Ablation-CAM: Visual Explanations for Deep Convolutional Network
    via Gradient-free Localization"). pytorch-grad-cam sets the channel to min(activations) - 1e7 instead where
    the layer's minimum is not 0 (module docstring); on a post-ReLU layer the two agree.

    2D only. ``batch_size`` channels are ablated per forward pass. Note the division by S: when the score is
    negative the weights change sign (the paper's formula)."""

    cam_class = ZeroAblationCAM
    needs_grad = False
    dims = frozenset({2})
    paper = "Desai & Ramaswamy 2020, Ablation-CAM"
    description = "channel weights from the score drop when each channel is zeroed"
    defaults: ClassVar[dict[str, Any]] = {**CAMExplainer.defaults, "batch_size": 32}
    bounds: ClassVar[dict[str, Bound]] = {"batch_size": AT_LEAST_ONE}
    # 7: channels zeroed, as the paper (6 and before: pytorch-grad-cam's min - 1e7 on a layer with negative values),
    # and the layer as the other CAMs' version 7 finds it; 9: a ViT's map as the CAMs' 9 (gradient-free: their 8
    # changed nothing here)
    version = "11"  # the CAMs' 10: the layer of a wrapped network; 11: a wrapped ViT's

    def make_cam(self, model: nn.Module, layer: nn.Module, reshape: Callable | None) -> Any:
        vit = arch_family(model) == "vit"  # a ViT's layer outputs (B, tokens, C): channels last
        return raw_cam_class(ZeroAblationCAM)(model=model, target_layers=[layer], reshape_transform=reshape,
                                              batch_size=self.batch_size, channel_axis=-1 if vit else 1)
