import pytest
import torch

pytest.importorskip("monai")

from faithbench.explainers.cam import find_target_layer  # noqa: E402
from faithbench.models.architectures import build_model  # noqa: E402


@pytest.mark.parametrize("size", [28, 32])
def test_forward_and_cam_grid_at_least_4(size):
    torch.manual_seed(0)
    model = build_model("resnet18_3d", 1, 2, (size,) * 3, widen_factor=0.25).eval()
    assert model.arch_family == "cnn" and model.spatial_dims == 3
    x = torch.randn(2, 1, size, size, size)
    assert model(x).shape == (2, 2)
    name, grid = find_target_layer(model, x)
    assert (name, grid) == ("layer3", (4, 4, 4))


def test_no_max_pool_keeps_the_last_stage_at_4():
    model = build_model("resnet18_3d", 1, 3, (28, 28, 28), no_max_pool=True, widen_factor=0.25).eval()
    name, grid = find_target_layer(model, torch.randn(1, 1, 28, 28, 28))
    assert (name, grid) == ("layer4", (4, 4, 4))
    assert model(torch.randn(1, 1, 28, 28, 28)).shape == (1, 3)


def test_2d_input_size_is_refused():
    with pytest.raises(ValueError, match="3D input size"):
        build_model("resnet18_3d", 1, 2, (28, 28))
