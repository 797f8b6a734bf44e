"""A CAM target layer whose grid is one cell on every axis, or that the forward pass calls more than once, is
refused with one line (held-out review cams4: torchvision resnet18's ``avgpool`` gave Grad-CAM maps of
3.9061546-3.9061551, rounding, and EigenCAM 0; ``layer4.1.relu``, BasicBlock's shared ReLU, gave its first call's
map silently, 1.03 from the block's at a maximum of 1.19)."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn

from faithbench import create_explainer
from faithbench.explainers.layers import counted_calls, find_target_layer, one_cell_problem, reuse_problem
from faithbench.registry import explainers

LAYERED = sorted(name for name in explainers.names() if "target_layer" in explainers.get(name).defaults
                 and getattr(explainers.get(name), "finds_layer", True))


class SharedBlock(nn.Module):
    """A residual block whose one ReLU runs twice, as torchvision's BasicBlock."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), SharedBlock(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 2)).eval()


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def test_every_explainer_that_reads_a_target_layer_is_checked():
    assert set(LAYERED) == {"ablationcam", "eigencam", "gradcam", "gradcam_pp", "guided_gradcam", "hirescam",
                            "layercam", "scorecam", "xgradcam"}


@pytest.mark.parametrize(("shape", "cell"), [((2, 8, 1, 1), "1 x 1"), ((1, 3, 1, 1, 1), "1 x 1 x 1")])
def test_a_grid_of_one_cell_is_a_problem(shape, cell):
    assert one_cell_problem(shape) == (f"outputs {shape}: a grid of one cell ({cell}), so every CAM of it would be "
                                       "one number per image upsampled, a constant map")


@pytest.mark.parametrize("shape", [(2, 8, 1, 4), (2, 8, 2, 2), (1, 3, 1, 1, 2), (2, 10)])
def test_a_grid_of_more_than_one_cell_or_no_grid_is_not(shape):
    assert one_cell_problem(shape) is None


def test_a_shared_relu_is_counted_twice_and_its_block_once():
    model = _net()
    with counted_calls(model, "1.relu") as counts:
        model(torch.rand(1, 1, 8, 8))
        model(torch.rand(1, 1, 8, 8))  # only the first pass counts
    assert counts == {"1": 1, "1.relu": 2}
    assert reuse_problem(model, "1.relu", counts) == (
        "is called 2 times in one forward pass of Sequential (one module reused), so its output is no one tensor (a "
        "CAM would read its first call's, Guided Grad-CAM its last)", "choose a module called once, e.g. the "
        "enclosing block '1'")
    with counted_calls(model, "1.conv1") as counts:
        model(torch.rand(1, 1, 8, 8))
    assert counts == {"1": 1, "1.conv1": 1} and reuse_problem(model, "1.conv1", counts) is None
    assert _hooks(model) == 0


@pytest.mark.parametrize("name", LAYERED)
def test_a_one_cell_layer_is_refused_by_every_cam(name):
    model, x = _net(), torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError) as caught:
        create_explainer(name, target_layer="2")(model, x, torch.tensor([0, 1]))
    assert str(caught.value) == (
        f"{name}: target_layer '2' outputs (2, 4, 1, 1): a grid of one cell (1 x 1), so every CAM of it would be one "
        "number per image upsampled, a constant map; choose a layer before the pooling or striding that leaves one "
        "cell (an earlier stage, e.g. 'layer4' before a ResNet's 'avgpool'), or give a larger input")
    assert _hooks(model) == 0


@pytest.mark.parametrize("name", LAYERED)
def test_a_layer_called_twice_is_refused_by_every_cam_and_its_block_taken(name):
    model, x, target = _net(), torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError) as caught:
        create_explainer(name, target_layer="1.relu")(model, x, target)
    assert str(caught.value) == (
        f"{name}: target_layer '1.relu' is called 2 times in one forward pass of Sequential (one module reused), so "
        "its output is no one tensor (a CAM would read its first call's, Guided Grad-CAM its last); choose a module "
        "called once, e.g. the enclosing block '1'")
    assert _hooks(model) == 0
    assert create_explainer(name, target_layer="1")(model, x, target).shape == (2, 8, 8)


def test_the_reviews_torchvision_layers_are_refused_and_the_default_kept():
    torch.manual_seed(0)
    model, x, target = torchvision.models.resnet18(num_classes=3).eval(), torch.rand(1, 3, 64, 64), torch.tensor([0])
    with pytest.raises(ValueError, match=r"^gradcam: target_layer 'avgpool' outputs \(1, 512, 1, 1\): a grid of one "):
        create_explainer("gradcam", target_layer="avgpool")(model, x, target)
    with pytest.raises(ValueError, match=re.escape("gradcam: target_layer 'layer4.1.relu' is called 2 times in one "
                                                   "forward pass of ResNet")) as caught:
        create_explainer("gradcam", target_layer="layer4.1.relu")(model, x, target)
    assert str(caught.value).endswith("e.g. the enclosing block 'layer4.1'")
    explainer = create_explainer("gradcam")
    explainer(model, x, target)
    assert explainer.last_info == {"target_layer": "layer3", "grid": [4, 4]}


def test_checked_hooks_leave_an_accepted_map_bit_for_bit(monkeypatch):
    """The check's hooks return nothing: the map of an accepted layer is the map without them."""
    import contextlib

    import faithbench.explainers.cam as cam

    model, x, target = _net(), torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    checked = create_explainer("gradcam_pp", target_layer="1")(model, x, target)
    monkeypatch.setattr(cam, "checked_layer", lambda *_a, **_k: contextlib.nullcontext())
    assert torch.equal(checked, create_explainer("gradcam_pp", target_layer="1")(model, x, target))


def test_a_default_layer_of_one_cell_is_refused():
    """``min_grid`` 1 on a small input let the last stage, 1 x 1, be found."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3).eval()
    with pytest.raises(ValueError, match=re.escape("the layer found in ResNet, 'layer4', has a grid of one cell "
                                                   "(1 x 1) for an input of (32, 32), so every CAM of it would be "
                                                   "constant; set min_grid >= 2 or a target_layer")):
        find_target_layer(model, torch.rand(1, 3, 32, 32), min_grid=1)
    assert find_target_layer(model, torch.rand(1, 3, 32, 32), min_grid=2) == ("layer3", (2, 2))
    explainer = create_explainer("gradcam", min_grid=1)
    assert explainer.unsupported_reason(model, torch.rand(1, 3, 32, 32)).startswith("gradcam: the layer found in "
                                                                                   "ResNet, 'layer4', has a grid")
