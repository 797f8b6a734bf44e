"""The default CAM layer of a model that wraps a network of its own after a preprocessing or adapter child
(a held-out review, plugins9: ``Wrapped(pre=normalise + grey->RGB, net=resnet18)`` got Grad-CAM on ``pre``,
the normalised input, not on the network: attribution localisation 0.197 against 0.076 on ``net.layer1``)."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from faithbench.explainers.layers import find_target_layer
from faithbench.registry import explainers


class Pre(nn.Module):
    """The review's preprocessing: normalise, grey -> RGB; no parameters, the input's own grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - 0.5) / 0.25).repeat(1, 3, 1, 1)


class Wrapped(nn.Module):
    def __init__(self, pre: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.pre, self.net = pre, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.pre(x))


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=2)


def _wrapped(kind: str) -> nn.Module:
    first = Pre() if kind == "pre" else nn.Conv2d(1, 3, 1)  # a learned 1 -> 3 channel adapter
    model = Wrapped(first, _resnet()).eval()
    model.arch_family = "cnn"
    return model


@pytest.mark.parametrize("kind", ["pre", "adapter"])
@pytest.mark.parametrize(("size", "expected"), [(16, ("net.layer1", (4, 4))), (64, ("net.layer3", (4, 4))),
                                                (224, ("net.layer4", (7, 7)))])
def test_a_wrapped_network_gets_its_own_last_fine_stage(kind, size, expected):
    """resnet18 downsamples by 4 before layer1 and by 2 per later stage: at 16 px layer1 is 4 x 4, layer2 2 x 2;
    the wrapper's first child keeps the input's grid (the old pick: 'pre' / 'adapter' at size x size)."""
    assert find_target_layer(_wrapped(kind), torch.rand(1, 1, size, size)) == expected
    plain = find_target_layer(_resnet().eval(), torch.rand(1, 3, size, size))
    assert ("net." + plain[0], plain[1]) == expected  # the network's own pick, unwrapped


@pytest.mark.parametrize(("build", "size", "expected"), [
    (lambda: Wrapped(Pre(), timm.create_model("efficientnet_b0", num_classes=2)), 64, ("net.blocks.4", (4, 4))),
    (lambda: Wrapped(Pre(), torchvision.models.densenet121(num_classes=2)), 64, ("net.features.denseblock3", (4, 4))),
    (lambda: Wrapped(Pre(), Wrapped(nn.Conv2d(3, 3, 1), _resnet())), 16, ("net.net.layer1", (4, 4))),  # nested
    (lambda: nn.Sequential(nn.Conv2d(1, 3, 1), _resnet()), 16, ("1.layer1", (4, 4))),
])
def test_other_wrapped_networks(build, size, expected):
    """Unwrapped: efficientnet_b0 'blocks.4', densenet121 'features.denseblock3' at 64 px (test_known_answers)."""
    torch.manual_seed(0)
    assert find_target_layer(build().eval(), torch.rand(1, 1, size, size)) == expected


def _hand_gradcam(model: nn.Module, layer: str, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) hooked on ``layer``: w_c = mean of d logit / d A_c over the grid,
    ReLU(sum_c w_c A_c), bilinearly upsampled (cell centres) to the input."""
    kept = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: kept.update(a=out))
    logits = model(x.clone().requires_grad_(True))  # 'pre' has no parameters: a gradient through the input
    handle.remove()
    (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), kept["a"])
    cam = F.relu((grad.mean((2, 3), keepdim=True) * kept["a"]).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0].detach()


@pytest.mark.parametrize("kind", ["pre", "adapter"])
def test_gradcam_of_a_wrapped_network_is_the_hand_gradcam_on_its_stage(kind):
    model = _wrapped(kind)
    torch.manual_seed(1)
    x, target = torch.rand(3, 1, 16, 16), torch.tensor([0, 1, 1])
    cam = explainers.get("gradcam")()
    maps = cam(model, x, target)
    assert cam.last_info == {"target_layer": "net.layer1", "grid": [4, 4]}
    hand = _hand_gradcam(model, "net.layer1", x, target)
    assert hand.flatten(1).amax(1).min() > 0  # a map to compare, not zeros
    assert torch.allclose(maps, hand, atol=1e-5 * float(hand.abs().max()))
    first = _hand_gradcam(model, "pre", x, target)  # the old pick: a different map
    assert (maps - first).abs().max() > 0.1 * float(hand.abs().max())
