"""A direct call refuses a model the explainer cannot explain, with the reason the runner skips the cell with
(a held-out review: fullgrad on an EfficientNet, guided backprop, guided Grad-CAM and deeplift on its SiLU
network returned ordinary-looking maps); once per model, parameters and input shape."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from faithbench.registry import explainers


def _relu_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 2)).eval()


@pytest.fixture(scope="module")
def efficientnet():
    torch.manual_seed(0)
    return timm.create_model("efficientnet_b0", pretrained=False, num_classes=2, in_chans=1).eval()


@pytest.mark.parametrize("name, reason", [
    ("fullgrad", r"^fullgrad takes the biases of exact Conv2d / BatchNorm2d modules"),
    ("guided_backprop", r"^guided_backprop modifies the backward pass of nn\.ReLU modules"),
    ("guided_gradcam", r"^guided_gradcam modifies the backward pass of nn\.ReLU modules"),
    ("deeplift", r"^deeplift"),
])
def test_a_direct_call_is_refused_with_the_runners_reason(efficientnet, name, reason):
    explainer = explainers.get(name)()
    x = torch.rand(1, 1, 32, 32)
    expected = explainer.unsupported_reason(efficientnet, x)
    assert expected is not None
    with pytest.raises(ValueError, match=reason) as caught:
        explainer(efficientnet, x, torch.tensor([1]))
    assert str(caught.value) == expected


def test_the_check_runs_once_per_model_and_shape_and_not_when_the_runner_vetted(monkeypatch):
    explainer = explainers.get("guided_backprop")()
    calls = []
    real = explainer.unsupported_reason
    monkeypatch.setattr(explainer, "unsupported_reason", lambda model, x: calls.append(x.shape) or real(model, x))
    model, target = _relu_net(), torch.tensor([0, 1])
    for _ in range(3):
        explainer(model, torch.rand(2, 1, 8, 8), target)
    explainer(model, torch.rand(2, 1, 12, 12), target)
    assert calls == [(2, 1, 8, 8), (2, 1, 12, 12)]
    vetted = explainers.get("guided_backprop")()
    vetted.vetted = True  # the runner's cell checked the model
    monkeypatch.setattr(vetted, "unsupported_reason", lambda model, x: calls.append("again"))
    vetted(_relu_net(), torch.rand(2, 1, 8, 8), target)
    assert "again" not in calls


def test_a_users_cnn_is_not_judged_by_its_module_names_and_a_swapped_module_is_checked_again():
    """A diff review: a user's CNN with an SE gate named `attn` was refused as a ViT, and after its ReLU was
    swapped for a SiLU in place guided backprop still returned a map (the first check was remembered)."""
    model = _relu_net()
    model.attn = nn.Identity()  # a module name, not an architecture
    explainer, x, target = explainers.get("guided_backprop")(), torch.rand(1, 1, 8, 8), torch.tensor([0])
    assert explainer(model, x, target).shape == (1, 8, 8)
    model[1] = nn.SiLU()
    with pytest.raises(ValueError, match=r"^guided_backprop modifies the backward pass of nn\.ReLU modules"):
        explainer(model, x, target)


class _ReluNetWith(nn.Module):
    """nn.ReLU modules, plus one activation applied in ``forward`` (a held-out review's models)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn
        self.c1, self.a1 = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()
        self.c2, self.a2 = nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU()
        self.pool, self.flat, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a1(self.c1(x)) if self.fn is None else self.fn(self.c1(x))
        return self.fc(self.flat(self.pool(self.a2(self.c2(h)))))


@pytest.mark.parametrize("name", ["guided_backprop", "guided_gradcam"])
@pytest.mark.parametrize("fn, op", [(F.gelu, "Gelu"), (F.silu, "Silu"), (torch.tanh, "Tanh"),
                                    (F.relu6, "Hardtanh")])
def test_a_functional_activation_in_a_relu_network_is_refused(name, fn, op):
    """A held-out review: guided backprop ran on a network of nn.ReLU modules whose forward also applied
    F.gelu, F.silu, torch.tanh or F.relu6, whose gradients pass unguided (a hybrid map), though deeplift and lrp
    refused the same models from the same trace."""
    torch.manual_seed(0)
    model, x, target = _ReluNetWith(fn).eval(), torch.rand(2, 3, 48, 80), torch.tensor([0, 1])
    expected = (f"{name} guides nn.ReLU modules only; the forward also applies {op} functionally, whose gradients "
                "would pass unguided")
    assert explainers.get(name)().unsupported_reason(model, x) == expected
    with pytest.raises(ValueError) as caught:
        explainers.get(name)()(model, x, target)
    assert str(caught.value) == expected
    plain = _ReluNetWith(None).eval()  # the same network with its nn.ReLU module: accepted, a map
    assert explainers.get(name)().unsupported_reason(plain, x) is None
    assert explainers.get(name)()(plain, x, target).abs().max() > 0


class _GatedNet(nn.Module):
    """nn.ReLU modules and a squeeze-excitation gate: ``functional_relu`` puts an F.relu before the gate; the
    gate's (B, C) sigmoid goes to (B, C, 1, 1), as a Linear excitation needs, by indexing (``view``) or reshape."""

    def __init__(self, functional_relu: bool, view: bool) -> None:
        super().__init__()
        self.functional_relu, self.view = functional_relu, view
        self.c1, self.a1 = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()
        self.fc = nn.Linear(8, 8)
        self.c2, self.a2 = nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU()
        self.pool, self.flat, self.head = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.c1(x)) if self.functional_relu else self.a1(self.c1(x))
        gate = torch.sigmoid(self.fc(h.mean((2, 3))))
        h = h * (gate[:, :, None, None] if self.view else gate.reshape(*gate.shape, 1, 1))
        return self.head(self.flat(self.pool(self.a2(self.c2(h)))))


@pytest.mark.parametrize("view", [True, False])
def test_a_gates_sigmoid_is_accepted_and_a_functional_relu_before_it_refused(view):
    """A diff review: telling a gate from x * sigmoid(x) by the Mul's operands accepted an F.relu whose output
    a gate scales (the old rule refused it; its map was 1.1 % off the nn.ReLU network's) and refused a
    squeeze-excitation's sigmoid behind a view (the docs' own example needs one)."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    assert explainers.get("guided_backprop")().unsupported_reason(_GatedNet(False, view).eval(), x) is None
    reason = explainers.get("guided_backprop")().unsupported_reason(_GatedNet(True, view).eval(), x)
    assert reason == ("guided_backprop guides nn.ReLU modules only; the forward also applies Relu functionally, "
                      "whose gradients would pass unguided")


def test_a_2d_explainer_names_sequences_of_visits_not_3d_for_a_temporal_model():
    """A held-out review: ablationcam on temporal_mlp said "supports 2D inputs, got 3D"; a sequence of visits is
    not a volume. A 3D network without ``temporal`` still gets "3D"."""
    class Temporal(nn.Module):
        temporal = True

        def forward(self, x):
            return x.flatten(1)[:, :2]

    x = torch.zeros(1, 1, 3, 8, 8)
    explainer = explainers.get("ablationcam")()
    assert explainer.unsupported_reason(Temporal(), x) == "ablationcam supports 2D inputs, got sequences of visits " \
                                                          "(T, H, W)"
    volume = nn.Sequential(nn.Conv3d(1, 2, 3), nn.AdaptiveAvgPool3d(1), nn.Flatten())
    assert explainer.unsupported_reason(volume, x) == "ablationcam supports 2D inputs, got 3D"
