"""Allow-lists of torch.nn leaves (a held-out review, attrib3d: deeplift returned maps 3-580 % off summation-to-delta,
and guided backprop ran unguided, through Hardtanh, Softsign, Threshold, LogSigmoid, RReLU, Hardshrink, Tanhshrink,
AdaptiveMaxPool, LPPool, FractionalMaxPool modules, which a deny-list missed)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench import create_explainer, create_model

X = torch.rand(3, 1, 12, 12, 12, generator=torch.Generator().manual_seed(4)) * 2 - 0.5
TARGET = torch.tensor([1, 0, 2])


def _net(act: nn.Module, pool: nn.Module | None = None) -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), act, nn.MaxPool3d(2), nn.Conv3d(4, 6, 3), nn.ReLU(),
                         pool if pool is not None else nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(6, 3)).eval()


REFUSED = {"Hardtanh": (nn.Hardtanh(), None), "Softsign": (nn.Softsign(), None),
           "Threshold": (nn.Threshold(0.1, 0.0), None), "LogSigmoid": (nn.LogSigmoid(), None),
           "RReLU": (nn.RReLU(), None), "Hardshrink": (nn.Hardshrink(), None), "Tanhshrink": (nn.Tanhshrink(), None),
           "ReLU6": (nn.ReLU6(), None), "GELU": (nn.GELU(), None),
           "AdaptiveMaxPool3d": (nn.ReLU(), nn.Sequential(nn.AdaptiveMaxPool3d(2), nn.AvgPool3d(2))),
           "LPPool3d": (nn.ReLU(), nn.LPPool3d(2, 4)),
           "FractionalMaxPool3d": (nn.ReLU(), nn.FractionalMaxPool3d(2, output_size=1))}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_deeplift_refuses_modules_without_a_rule_in_one_line(kind: str) -> None:
    act, pool = REFUSED[kind]
    model = _net(act, pool)
    path = "1" if pool is None else "5.0" if kind == "AdaptiveMaxPool3d" else "5"
    with pytest.raises(ValueError) as err:
        create_explainer("deeplift")(model, X.clone(), TARGET)
    assert str(err.value) == ("deeplift (captum) has no rule for activation, pooling or per-sample norm module(s) "
                              f"{kind} ({path}), whose plain gradients would pass")


@pytest.mark.parametrize("act", [nn.ReLU(), nn.ELU(), nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(), nn.Softplus()],
                         ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("pool", [nn.AdaptiveAvgPool3d(1), nn.AdaptiveMaxPool3d(1), nn.AdaptiveMaxPool3d((1, 1, 1))],
                         ids=["avg", "max", "max111"])
def test_deeplift_sums_to_the_score_change_on_every_accepted_activation(act: nn.Module, pool: nn.Module) -> None:
    """Σ map = score(x) - score(0) to 1e-5 relative; a global adaptive max-pool gets captum's max-pool rule over one
    window (before: the plain gradient, 3-27 % off)."""
    model = nn.Sequential(nn.Dropout3d(0.2), nn.Identity(), *list(_net(act, pool)), nn.Dropout(0.3)).eval()
    with torch.no_grad():
        delta = (model(X) - model(torch.zeros_like(X))).gather(1, TARGET[:, None]).squeeze(1)
    out = create_explainer("deeplift")(model, X.clone(), TARGET)
    rel = ((out.flatten(1).sum(1) - delta).abs() / delta.abs()).max().item()
    assert rel < 1e-5


@pytest.mark.parametrize("size", [(12, 12, 12), (32, 32)])
def test_small_cnn_with_max_pool_sums_to_the_score_change(size: tuple[int, ...]) -> None:
    """The built-in small_cnn with ``pool: max`` (a global AdaptiveMaxPool): DeepLIFT was 5-27 % off in 3D and
    40-469 % in 2D (the plain gradient); guided backprop passes a max-pool's gradient as the method does."""
    torch.manual_seed(0)
    model = create_model("small_cnn", in_chans=1, num_classes=2, input_size=size, width=4, depth=2, pool="max").eval()
    x = torch.rand(4, 1, *size, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        delta = (model(x) - model(torch.zeros_like(x))).gather(1, target[:, None]).squeeze(1)
    out = create_explainer("deeplift")(model, x.clone(), target)
    # to 1e-5 relative, or float rounding (6e-8) where the score hardly changes; the plain gradient was 5-469 % off
    assert torch.all((out.flatten(1).sum(1) - delta).abs() <= 1e-5 * delta.abs() + 1e-7)
    assert create_explainer("guided_backprop").unsupported_reason(model, x) is None


@pytest.mark.parametrize("name", ["guided_backprop", "guided_gradcam"])
@pytest.mark.parametrize("act", [nn.Hardtanh(), nn.Softsign(), nn.Threshold(0.1, 0.0)], ids=lambda m: type(m).__name__)
def test_guided_backprop_refuses_the_activations_a_deny_list_missed(name: str, act: nn.Module) -> None:
    model = _net(act)
    with pytest.raises(ValueError) as err:
        create_explainer(name)(model, X.clone(), TARGET)
    assert str(err.value) == (f"{name} guides nn.ReLU modules only; the model also has {type(act).__name__} (1), "
                              "whose gradients would pass unguided")


def test_guided_backprop_accepts_relu_networks_with_linear_and_pooling_leaves() -> None:
    model = nn.Sequential(nn.Identity(), nn.Dropout3d(0.1), *list(_net(nn.ReLU(), nn.AdaptiveMaxPool3d(1)))).eval()
    assert create_explainer("guided_backprop").unsupported_reason(model, X) is None


def test_the_refusal_names_each_type_once_with_its_count() -> None:
    """Diff review 36: every instance was listed with its path (1,758 characters on torchvision's efficientnet_b0);
    a type used by several modules is named once, with their number and the first path."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.Hardtanh(), nn.Conv3d(4, 4, 3, padding=1), nn.Hardtanh(),
                          nn.Conv3d(4, 4, 3, padding=1), nn.Softsign(), nn.Hardtanh(), nn.AdaptiveAvgPool3d(1),
                          nn.Flatten(), nn.Linear(4, 3)).eval()
    with pytest.raises(ValueError) as err:
        create_explainer("deeplift")(model, X.clone(), TARGET)
    assert str(err.value) == ("deeplift (captum) has no rule for activation, pooling or per-sample norm module(s) "
                              "Hardtanh (3 modules: 1, ...), Softsign (5), whose plain gradients would pass")
