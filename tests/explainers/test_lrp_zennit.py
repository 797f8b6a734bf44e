"""LRP against zennit (Anders et al. 2021) on identical models and inputs, and against LRP-epsilon by hand.

zennit computes each rule itself (its own hooks), so a rule our captum-based explainer applies to the
wrong layer (epsilon on ``nn.Flatten``: a reshape must pass relevance through unchanged) shows up
as a disagreement. The zennit layer maps below mirror the rule set each explainer documents.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench.models.architectures import small_cnn
from faithbench.registry import explainers

zennit = pytest.importorskip("zennit")
from zennit.attribution import Gradient  # noqa: E402
from zennit.composites import LayerMapComposite  # noqa: E402
from zennit.rules import Epsilon, Norm, Pass, ZPlus  # noqa: E402
from zennit.types import Activation, AvgPool, BatchNorm, Convolution, MaxPool  # noqa: E402


def _model(dims: int, seed: int = 0) -> nn.Module:
    """small_cnn with non-trivial BatchNorm statistics (gamma > 0), in eval mode."""
    torch.manual_seed(seed)
    model = small_cnn(1, 3, (16,) * dims, width=4, depth=3)
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            n = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=g))
    return model.eval()


def _zennit(model: nn.Module, x: torch.Tensor, target: torch.Tensor, composite: LayerMapComposite) -> torch.Tensor:
    """zennit relevance of the target logit (initial relevance = the logit, as captum), summed over
    channels, (B, *spatial)."""
    onehot = torch.nn.functional.one_hot(target, 3).float()
    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(x, lambda logits: logits * onehot)
    return relevance.sum(1)


def _epsilon_everywhere(eps: float) -> LayerMapComposite:
    # our `lrp`: epsilon on every layer with parameters or pooling; activations pass; Flatten has no rule
    rule = Epsilon(epsilon=eps)
    return LayerMapComposite([(Activation, Pass()), (Convolution, rule), (nn.Linear, rule),
                              (BatchNorm, rule), (MaxPool, rule), (AvgPool, rule)])


def _epsilon_plus(eps: float) -> LayerMapComposite:
    # zennit's EpsilonPlus composite (ε for dense layers, z+ for convolutions, BatchNorm passes)
    return LayerMapComposite([(Activation, Pass()), (AvgPool, Norm()), (BatchNorm, Pass()),
                              (Convolution, ZPlus()), (nn.Linear, Epsilon(epsilon=eps))])


def _rel_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((ours - ref).abs().amax() / ref.abs().amax()).item())


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("eps", [0.01, 0.25, 1.0])
def test_lrp_epsilon_matches_zennit(dims: int, eps: float) -> None:
    model = _model(dims)
    x = torch.rand((2, 1, *(16,) * dims), generator=torch.Generator().manual_seed(3))
    target = torch.tensor([0, 2])
    ours = explainers.get("lrp")(epsilon=eps)(model, x, target)
    ref = _zennit(model, x, target, _epsilon_everywhere(eps))
    assert _rel_error(ours, ref) < 1e-4


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("eps", [1e-6, 0.25])
def test_lrp_epsilon_zplus_matches_zennit_epsilon_plus(dims: int, eps: float) -> None:
    model = _model(dims, seed=4)
    # signed inputs: zennit's z+ splits x+ w+ and x- w-, so the first convolution is checked too
    x = torch.randn((2, 1, *(16,) * dims), generator=torch.Generator().manual_seed(5))
    target = torch.tensor([1, 2])
    ours = explainers.get("lrp_epsilon_zplus")(epsilon=eps)(model, x, target)
    ref = _zennit(model, x, target, _epsilon_plus(eps))
    assert _rel_error(ours, ref) < 1e-4


def test_lrp_epsilon_by_hand_through_flatten() -> None:
    """Conv(1->2, 2x2) -> ReLU -> Flatten -> Linear: R = x * dz1/dx-weights * R1 / (z1 + eps sign z1)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 2)).eval()
    x = torch.rand(1, 1, 3, 3, generator=torch.Generator().manual_seed(1)) + 0.1
    eps = 0.25
    conv, linear = model[0], model[3]
    z1 = conv(x)
    a1 = z1.clamp(min=0).flatten(1)
    z2 = linear(a1)[:, 1]
    r_out = z2  # relevance of the target logit
    r_a1 = a1 * linear.weight[1] * r_out / (z2 + eps * z2.sign())  # epsilon on the Linear layer
    r_z1 = r_a1.reshape(z1.shape)  # Flatten and ReLU pass relevance through unchanged
    s = r_z1 / (z1 + eps * torch.where(z1 >= 0, 1.0, -1.0))
    expected = x * torch.nn.grad.conv2d_input(x.shape, conv.weight, s)
    ours = explainers.get("lrp")(epsilon=eps)(model, x, torch.tensor([1]))
    assert torch.allclose(ours, expected.sum(1).detach(), atol=1e-6)


def _bn(n: int, g: torch.Generator) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(n)
    bn.running_mean.copy_(0.1 * torch.randn(n, generator=g))
    bn.running_var.copy_(0.5 + torch.rand(n, generator=g))
    bn.weight.data.copy_(0.5 + torch.rand(n, generator=g))
    return bn


@pytest.mark.parametrize("with_bn", [False, True])
def test_lrp_epsilon_zplus_relu_straight_into_a_convolution(with_bn: bool) -> None:
    """A ReLU right before a z+ convolution (or a BatchNorm that passes relevance), as in VGG: small_cnn's
    max pool between blocks hid that the ReLU handed on the gradient, not the relevance (a held-out
    review: 1.02 and 1.51 relative off zennit on these two nets, VGG11 0.59)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if with_bn:
        layers = [nn.Conv2d(3, 8, 3, stride=2), _bn(8, g), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), _bn(8, g),
                  nn.ReLU(), nn.MaxPool2d(7), nn.Flatten(), nn.Linear(8, 3)]
    else:
        layers = [nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.Flatten(),
                  nn.Linear(8 * 49, 3)]
    model = nn.Sequential(*layers).eval()
    x = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(2))
    target = model(x).argmax(1).detach()
    ours = explainers.get("lrp_epsilon_zplus")()(model, x, target)
    ref = _zennit(model, x, target, _epsilon_plus(1e-6))
    assert _rel_error(ours, ref) < 1e-4


def _with_no_ops(no_ops: bool) -> nn.Module:
    """conv-ReLU-[Identity-Dropout3d]-conv-ReLU-[Identity]-AdaptiveMaxPool3d-Flatten-Linear, eval."""
    torch.manual_seed(3)
    layers = [nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Identity(), nn.Dropout3d(0.5), nn.Conv3d(4, 5, 3),
              nn.ReLU(), nn.Identity(), nn.AdaptiveMaxPool3d(1), nn.Flatten(), nn.Linear(5, 3)]
    model = nn.Sequential(*layers).eval()
    return model if no_ops else nn.Sequential(*(m for m in layers if not isinstance(m, (nn.Identity, nn.Dropout3d))))


@pytest.mark.parametrize("name", ["lrp", "lrp_epsilon_zplus"])
def test_identity_dropout3d_and_adaptive_max_pool_get_zennits_relevance(name: str) -> None:
    """A held-out review (attrib3d D3): lrp refused Identity, Dropout3d and AdaptiveMaxPool3d (small_cnn's `pool:
    max`). Identity and Dropout3d (eval) pass relevance as zennit leaves them (no rule); an adaptive max-pool gets
    epsilon, as zennit's MaxPool type (which holds the adaptive ones)."""
    x = torch.rand(2, 1, 8, 8, 8, generator=torch.Generator().manual_seed(5))
    target = torch.tensor([0, 2])
    model = _with_no_ops(True)
    ours = explainers.get(name)()(model, x.clone(), target)
    composite = _epsilon_everywhere(1e-9) if name == "lrp" else _epsilon_plus(1e-6)
    theirs = _zennit(model, x.clone(), target, composite)
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-6 * theirs.abs().max().item())
    plain = explainers.get(name)()(_with_no_ops(False), x.clone(), target)
    assert torch.allclose(ours, plain, rtol=1e-6, atol=1e-9)  # the no-ops change nothing
