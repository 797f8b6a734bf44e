"""The CAM family's order of operations against pytorch-grad-cam on identical inputs.

The library (and the papers) compute upsample(ReLU(cam)) and min-max scale it; we keep the scale,
so our map must be an affine image of the library's: after min-max they are equal. The runner's
order, ReLU(upsample(cam)), is a different map near every sign change of the grid.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import AblationCAM, GradCAM, HiResCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from faithbench.explainers.cam import raw_cam_class
from faithbench.models.architectures import small_cnn
from faithbench.registry import explainers

LIBRARY = {"gradcam": GradCAM, "xgradcam": XGradCAM, "hirescam": HiResCAM, "ablationcam": AblationCAM}


def _minmax(a: np.ndarray) -> np.ndarray:
    flat = a.reshape(a.shape[0], -1)
    lo, hi = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    return ((flat - lo) / (hi - lo)).reshape(a.shape)


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    model = small_cnn(1, 3, (32, 32), width=8, depth=3).eval()
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(10))
    return model, x, torch.tensor([0, 1, 2])


@pytest.mark.parametrize("name", list(LIBRARY))
def test_cam_is_upsampled_relu_as_the_library(name, case):
    model, x, target = case
    lib = LIBRARY[name](model=model, target_layers=[model.features[2]])(
        input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target])
    ours = explainers.get(name)(target_layer="features.2")(model, x, target).numpy()
    assert ours.min() >= 0  # the ReLU is part of the method
    assert np.abs(_minmax(ours) - lib).max() < 1e-5
    signed = explainers.get(name)(target_layer="features.2", relu=False)(model, x, target).numpy()
    assert signed.min() < 0  # the raw signed grid stays available
    # the other order is a different map on this case (so the check above can fail)
    assert np.abs(_minmax(np.maximum(signed, 0)) - lib).max() > 0.05


def test_relu_on_the_grid_then_upsample(case):
    model, x, target = case
    raw = raw_cam_class(GradCAM)(model=model, target_layers=[model.features[2]])
    grid = torch.as_tensor(raw(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target]))
    assert grid.shape == (3, 8, 8) and grid.min() < 0 < grid.max()
    up = lambda g: F.interpolate(g[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]  # noqa: E731
    default = explainers.get("gradcam")(target_layer="features.2")(model, x, target)
    signed = explainers.get("gradcam")(target_layer="features.2", relu=False)(model, x, target)
    scale = float(grid.abs().max())
    assert (default - up(grid.clamp(min=0))).abs().max() < 1e-5 * scale
    assert (signed - up(grid)).abs().max() < 1e-5 * scale
    assert (default - up(grid).clamp(min=0)).abs().max() > 0.05 * scale  # the runner's order differs
    assert explainers.get("eigencam")().relu is False  # a principal component's sign is arbitrary
