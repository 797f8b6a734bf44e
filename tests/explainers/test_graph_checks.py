"""Explainers that act on modules refuse networks that compute outside them (a held-out review).

captum's LRP and DeepLIFT put their rules on leaf modules; a functional addition, concatenation,
pooling or ReLU between them gets none and the map is silently not the method's. Guided
backpropagation guides nn.ReLU modules only. CAMs read (B, C, *grid) feature maps: a channels-last
network (Swin) made pytorch-grad-cam sum over an image axis. Each model below is small and built
to have exactly one such feature, beside a twin without it that runs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Permute

from faithbench.explainers.graph import trace_leaves
from faithbench.explainers.layers import channels_first, find_target_layer
from faithbench.registry import explainers


def _cnn(tail: str = "module") -> nn.Module:
    """conv-relu-conv-relu, then a pooled linear head; ``tail`` says how the forward pools and adds."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.relu1 = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()
            self.conv2, self.relu2 = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
            self.pool, self.flatten, self.head = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.relu1(self.conv1(x))
            b = self.conv2(a)
            if tail == "residual":
                b = b + a  # a skip connection
            b = F.relu(b) if tail == "functional_relu" else self.relu2(b)
            if tail == "reused_relu":
                b = self.relu1(b)
            pooled = F.adaptive_avg_pool2d(b, 1) if tail == "functional_pool" else self.pool(b)
            return self.head(self.flatten(pooled))

    torch.manual_seed(0)
    model = Net().eval()
    model.arch_family = "cnn"
    return model


X = torch.rand(2, 1, 12, 12)


@pytest.mark.parametrize("name", ["lrp", "lrp_epsilon_zplus"])
@pytest.mark.parametrize(("tail", "op"), [("residual", "Add"), ("functional_pool", "Mean")])
def test_lrp_refuses_functional_operations(name: str, tail: str, op: str) -> None:
    reason = explainers.get(name)().unsupported_reason(_cnn(tail), X)
    assert reason is not None and f"applies {op} outside its layers" in reason
    assert explainers.get(name)().unsupported_reason(_cnn("module"), X) is None


def test_lrp_functional_pool_breaks_conservation() -> None:
    """Why the refusal: with the pool as a function, LRP-epsilon is no longer input x gradient (its
    value for a bias-free ReLU network); with the pool as a module it is."""
    for tail, agrees in (("module", True), ("functional_pool", False)):
        model = _cnn(tail)
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        x = X.clone().requires_grad_(True)
        model(x)[:, 0].sum().backward()
        reference = (x * x.grad).sum(1)
        lrp = explainers.get("lrp")().explain(model, X, torch.tensor([0, 0]))
        assert torch.allclose(lrp, reference, rtol=1e-3, atol=1e-6) is agrees


def test_lrp_allows_reshapes_and_functional_relu() -> None:
    trace = trace_leaves(_cnn("functional_relu"), X)
    assert trace is not None and set(trace.functional) <= {"Relu", "View"}
    assert explainers.get("lrp")().unsupported_reason(_cnn("functional_relu"), X) is None


def test_deeplift_refuses_functional_relu_and_reuse() -> None:
    deeplift = explainers.get("deeplift")()
    reason = deeplift.unsupported_reason(_cnn("functional_relu"), X)
    assert reason is not None and "applies Relu outside modules" in reason
    reason = deeplift.unsupported_reason(_cnn("reused_relu"), X)
    assert reason is not None and "relu1 (2 calls)" in reason
    assert deeplift.unsupported_reason(_cnn("residual"), X) is None  # an addition is linear: exact


def test_deeplift_functional_relu_breaks_summation_to_delta() -> None:
    """The refused model really gives sums that are not score(x) - score(0); the accepted one does."""
    for tail, exact in (("residual", True), ("functional_relu", False)):
        model = _cnn(tail)
        with torch.no_grad():
            model.conv2.bias.fill_(-0.05)  # some pre-activations below 0 at x, above at the baseline
        x = X[:1]
        attr = explainers.get("deeplift")().explain(model, x, torch.tensor([1]))
        change = (model(x) - model(torch.zeros_like(x)))[0, 1]
        assert torch.isclose(attr.sum(), change, rtol=1e-4, atol=1e-6).item() is exact


def test_deeplift_leaves_no_tensors_on_the_model_when_captum_fails() -> None:
    model = _cnn("module")
    with pytest.raises(Exception):
        explainers.get("deeplift")().explain(model, X, torch.tensor([5, 5]))  # no class 5
    left = [name for name, m in model.named_modules() if "input" in m.__dict__ or "output" in m.__dict__]
    assert left == []


def test_guided_backprop_refuses_unguided_activations() -> None:
    model = _cnn("module")
    model.relu2 = nn.Hardswish()
    reason = explainers.get("guided_backprop")().unsupported_reason(model, X)
    assert reason is not None and "Hardswish (1)" in reason
    reason = explainers.get("guided_gradcam")().unsupported_reason(_cnn("functional_relu"), X)
    assert reason is not None and "applies Relu functionally" in reason
    assert explainers.get("guided_backprop")().unsupported_reason(_cnn("module"), X) is None


class _Swish(nn.Module):
    """An activation of one's own (MONAI's Swish is this): torch.nn has no class for captum to key on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class _MyReLU(nn.ReLU):
    """A subclass of nn.ReLU: captum's DeepLIFT rules take exact types, its guided backprop isinstance."""


def test_activations_of_ones_own_are_refused_where_captum_would_pass_plain_gradients() -> None:
    """A held-out review: deeplift accepted MONAI's DenseNet with act: swish / mish (Swish and Mish
    are MONAI's classes, not torch.nn's) and summed to 0.19 for a score change of 0.57."""
    for act, refused_by_guided in ((_Swish(), True), (_MyReLU(), False)):
        model = _cnn("module")
        model.relu2 = act
        reason = explainers.get("deeplift")().unsupported_reason(model, X)
        name = type(act).__name__
        ops = "Mul (gate), Sigmoid" if name == "_Swish" else "Relu"
        assert reason is not None and reason.endswith(f"only; {name} ({ops}) would pass plain gradients")
        x = X[:1]  # what the refusal prevents: a sum off the score change
        with torch.no_grad():
            model.conv2.bias.fill_(-0.05)
            change = (model(x) - model(torch.zeros_like(x)))[0, 1]
        attr = explainers.get("deeplift")().explain(model, x, torch.tensor([1]))
        assert not torch.isclose(attr.sum(), change, rtol=1e-3).item()
        guided = explainers.get("guided_backprop")().unsupported_reason(model, X)
        assert (guided is not None and guided.endswith(f"{name} (Sigmoid) would pass plain gradients")) \
            if refused_by_guided else guided is None
    assert explainers.get("deeplift")().unsupported_reason(_cnn("module").to("meta"), X.to("meta")) is None
    # a diff review: the model's own functional operations were blamed on any foreign leaf (faithbench's input
    # transform named for a squeeze-excitation gate); a leaf of one's own that computes linearly is no activation
    from faithbench.models.preprocess import InputConfig, attach_input_transform

    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.relu, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Linear(4, 2)

        def forward(self, x):
            h = self.relu(self.conv(x))
            h = h * torch.sigmoid(h.mean((2, 3), keepdim=True))  # a functional gate: guided leaves it be
            return self.fc(h.mean((2, 3)))

    gated = attach_input_transform(Gated().eval(), InputConfig(in_chans=1, mean=(0.4,), std=(0.2,)))
    assert explainers.get("guided_backprop")().unsupported_reason(gated, X) is None


@pytest.mark.parametrize(("shape", "inp", "expected"), [
    ((1, 96, 16, 16), (1, 3, 64, 64), True),
    ((1, 16, 16, 96), (1, 3, 64, 64), False),   # channels last: 'grid' (16, 96)
    ((1, 56, 56, 96), (1, 3, 224, 224), False),  # timm Swin's patch embedding (factors 4 and 2.3)
    ((1, 8, 3, 2), (1, 3, 65, 64), True),        # odd sizes after strides: within one cell
    ((1, 8, 56, 56), (1, 3, 28, 28), True),      # a model that upsamples its input first
    ((1, 8, 4, 4, 4), (1, 1, 32, 32, 32), True),
    ((1, 8, 3, 16, 16), (1, 1, 3, 32, 32), True),  # visits (or thick slices) not strided as H and W
    ((1, 4, 8, 8, 96), (1, 1, 16, 32, 32), False),  # a channels-last volume
])
def test_channels_first(shape: tuple, inp: tuple, expected: bool) -> None:
    assert channels_first(torch.Size(shape), torch.Size(inp)) is expected


class _ChannelsLast(nn.Module):
    """A conv stem, then a stage on (B, H, W, C) tokens, as Swin; with ``convnext`` the stage is a block
    that permutes to channels last and back inside itself, as ConvNeXt's blocks do (a feature map)."""

    def __init__(self, convnext: bool) -> None:
        super().__init__()
        self.convnext = convnext
        self.stem = nn.Conv2d(1, 16, 4, stride=4)  # 16 channels: a (B, 8, 8, C) output is no 8 x 8 grid
        inner = [nn.LayerNorm(16), nn.Linear(16, 16), nn.ReLU()]
        self.stage = (nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), Permute([0, 2, 3, 1]), *inner,
                                    Permute([0, 3, 1, 2])) if convnext else nn.Sequential(*inner))
        self.head = nn.Linear(16, 2)
        self.arch_family = "cnn"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        if self.convnext:
            return self.head(self.stage(h).mean((2, 3)))
        return self.head(self.stage(h.permute(0, 2, 3, 1)).mean((1, 2)))


def test_cam_refuses_a_channels_last_network() -> None:
    x = torch.rand(2, 1, 32, 32)
    with pytest.raises(ValueError, match="continues channels last past its last channels-first output 'stem'"):
        find_target_layer(_ChannelsLast(convnext=False), x)
    reason = explainers.get("gradcam")().unsupported_reason(_ChannelsLast(convnext=False), x)
    assert reason is not None and "a target_layer set by hand must output one" in reason
    assert find_target_layer(_ChannelsLast(convnext=True), x) == ("stage", (8, 8))
    cam = explainers.get("gradcam")(target_layer="stage.2")
    with pytest.raises(ValueError, match=r"outputs \(2, 8, 6, 16\).*channels last"):
        cam(_ChannelsLast(convnext=False), torch.rand(2, 1, 32, 24), torch.tensor([0, 1]))


def test_cam_on_a_vit_without_timm_blocks_is_a_skip() -> None:
    model = _cnn("module")
    model.arch_family = "vit"  # torchvision's VisionTransformer is tagged so (nn.MultiheadAttention)
    reason = explainers.get("gradcam")().unsupported_reason(model, X)
    assert reason is not None and "needs a timm VisionTransformer" in reason


def test_operations_on_parameters_alone_are_no_gate():
    """A diff review: a learnable per-channel scale (x * gamma) and a learnable temperature
    (logits * s.exp()) were refused as gates; DeepLIFT is exact on both (summation-to-delta)."""

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.relu = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()
            self.gamma, self.s = nn.Parameter(torch.rand(4) + 0.5), nn.Parameter(torch.tensor(0.3))
            self.pool, self.flatten, self.head = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
            self.arch_family = "cnn"

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.relu(self.conv(x)) * self.gamma.view(1, -1, 1, 1)
            return self.head(self.flatten(self.pool(h))) * self.s.exp()

    torch.manual_seed(0)
    model = Scaled().eval()
    trace = trace_leaves(model, X)
    assert trace is not None and trace.nonlinear() == []
    assert explainers.get("deeplift")().unsupported_reason(model, X) is None
    attr = explainers.get("deeplift")().explain(model, X[:1], torch.tensor([1]))
    change = (model(X[:1]) - model(torch.zeros_like(X[:1])))[0, 1]
    assert torch.isclose(attr.sum(), change, rtol=1e-4, atol=1e-6)
    gated = _cnn("module")
    gated.forward = lambda x: gated.head(gated.flatten(gated.pool(gated.relu1(gated.conv1(x)) * torch.sigmoid(
        gated.conv2(gated.relu1(gated.conv1(x)))))))
    reason = explainers.get("deeplift")().unsupported_reason(gated, X)
    assert reason is not None and "Mul (gate)" in reason


def test_feature_maps_are_read_against_the_resized_input():
    """A diff review: a 24 x 16 image resized to 32 x 32 by the model's input transform gave square
    feature maps that read as channels last against the image, and every CAM was refused."""

    class Resize(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)

    model = _cnn("module")
    model.add_module("input_transform", Resize())
    model.register_forward_pre_hook(lambda m, args: (m.input_transform(args[0]), *args[1:]))
    x = torch.rand(2, 1, 24, 16)
    assert find_target_layer(model, x) == ("relu2", (32, 32))
    for name in ("gradcam", "fullgrad"):
        assert explainers.get(name)().unsupported_reason(model, x) is None
    cam = explainers.get("gradcam")(target_layer="conv2")
    assert cam(model, x, torch.tensor([0, 1])).shape == (2, 24, 16) and cam.last_info["grid"] == [32, 32]
    model.input_transform = nn.AdaptiveAvgPool2d((32, 32))  # an adaptive pool as the transform (a review)
    assert find_target_layer(model, x) == ("relu2", (32, 32))


def test_deeplift_runs_through_a_models_input_transform() -> None:
    """A held-out review: captum's DeepLift concatenates inputs and baselines in a pre-hook on the
    model, after the input transform's own pre-hook, which got a tuple: every model with a
    transform (torchvision's, pretrained and weights entries) failed its cell."""
    from faithbench.models.preprocess import InputConfig, attach_input_transform

    model = attach_input_transform(_cnn("module"), InputConfig(in_chans=1, mean=(0.4,), std=(0.2,)))
    with torch.no_grad():
        model.conv2.bias.fill_(-0.05)
    x = X[:1]
    attr = explainers.get("deeplift")().explain(model, x, torch.tensor([1]))
    change = (model(x) - model(torch.zeros_like(x)))[0, 1]
    assert torch.isclose(attr.sum(), change, rtol=1e-4, atol=1e-6)
    assert len(model._forward_pre_hooks) == 1  # the transform's own; captum's went on (and off) the wrapper


def test_timm_activations_and_per_sample_norms_are_refused() -> None:
    """A held-out review: timm's GELU is no torch.nn.GELU, so deeplift on timm's ConvNeXt gave
    input x gradient bit for bit and guided backprop passed its gradient unguided; a LayerNorm has no
    DeepLIFT rule either."""
    from timm.layers.activations import GELU

    model = _cnn("module")
    model.relu2 = GELU()
    reason = explainers.get("deeplift")().unsupported_reason(model, X)
    assert reason is not None and "no rule for activation, pooling or per-sample norm module(s) GELU (relu2)" in reason
    for name in ("guided_backprop", "guided_gradcam"):
        reason = explainers.get(name)().unsupported_reason(model, X)
        assert reason is not None and "GELU (1)" in reason
    model = _cnn("module")
    model.conv2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.GroupNorm(2, 4))
    reason = explainers.get("deeplift")().unsupported_reason(model, X)
    assert reason is not None and "GroupNorm" in reason
    assert explainers.get("deeplift")().unsupported_reason(_cnn("module"), X) is None


def test_fullgrad_refuses_norm_subclasses_it_would_leave_out() -> None:
    """A held-out review: timm's BatchNormAct2d (a BatchNorm2d subclass with its activation inside)
    was skipped by the exact-type bias selection, silently (EfficientNet: 49 of them), and a DenseNet
    of them was refused as having no bias."""
    from timm.layers import BatchNormAct2d

    model = _cnn("module")
    model.conv2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), BatchNormAct2d(4, act_layer=None))
    reason = explainers.get("fullgrad")().unsupported_reason(model.eval(), X)
    assert reason is not None and "BatchNormAct2d would be left out" in reason
    assert explainers.get("fullgrad")().unsupported_reason(_cnn("module"), X) is None


def test_fullgrad_refuses_biases_added_at_every_position_outside_conv_and_batchnorm() -> None:
    """A held-out review: FullGrad ran on ConvNeXt and Swin (tagged CNNs), whose LayerNorm2d and
    channels-last Linear biases (17-20 % and 72 % of the bias terms) pytorch-grad-cam leaves out; the
    head's bias after global pooling has no map, and a CNN with it alone still runs."""
    from timm.layers import LayerNorm2d

    model = _cnn("module")
    model.conv2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), LayerNorm2d(4))
    reason = explainers.get("fullgrad")().unsupported_reason(model.eval(), X)
    assert reason is not None and reason.endswith("adds biases at every position in LayerNorm2d (1), which it would "
                                                  "leave out")
    model = _cnn("module")  # a 1x1 "convolution" by a Linear on channels-last features, twice
    model.conv2 = nn.Sequential(Permute([0, 2, 3, 1]), nn.Linear(4, 4), nn.Linear(4, 4), Permute([0, 3, 1, 2]))
    assert "in Linear (2)" in explainers.get("fullgrad")().unsupported_reason(model.eval(), X)
    meta = _cnn("module").to("meta")  # validate's placeholder
    meta.conv2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), LayerNorm2d(4)).to("meta")
    assert "LayerNorm2d (1)" in explainers.get("fullgrad")().unsupported_reason(meta, X.to("meta"))
    model = _cnn("module")
    model.head = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))  # biases after pooling only
    assert explainers.get("fullgrad")().unsupported_reason(model.eval(), X) is None


def test_lrp_refusal_of_an_input_transform_names_preprocess_none() -> None:
    """A held-out review: the refusal spoke of residual blocks where the model's input transform was
    the layer without a rule; `preprocess: none` is the way out where the data fit the network."""
    from faithbench.models.preprocess import InputConfig, attach_input_transform

    model = attach_input_transform(_cnn("module"), InputConfig(in_chans=1, mean=(0.4,), std=(0.2,)))
    reason = explainers.get("lrp")().unsupported_reason(model, X)
    assert reason is not None and "no propagation rule for InputTransform" in reason
    assert "`preprocess: none`" in reason and "residual" not in reason


@pytest.mark.parametrize("name", ["lrp", "lrp_epsilon_zplus"])
def test_lrp_refusal_names_every_blocker_at_once(name: str) -> None:
    """A held-out review: torchvision's DenseNet with an input transform was told of InputTransform only, with
    `preprocess: none` as the way out, which then revealed its concatenations; now both at once, and no hint."""
    from faithbench.models.preprocess import InputConfig, attach_input_transform

    config = InputConfig(in_chans=1, mean=(0.4,), std=(0.2,))
    model = attach_input_transform(_cnn("residual"), config)
    reason = explainers.get(name)().unsupported_reason(model, X)
    assert reason == (f"{name}: no propagation rule for InputTransform (supported layers are listed in "
                      "faithbench.explainers.lrp); and the forward applies Add outside its layers (functionally, "
                      "as a skip connection, a concatenation or F.adaptive_avg_pool2d), where captum's LRP has no "
                      "rule, so relevance would leak")
    model = attach_input_transform(_cnn("module"), config)
    model.conv2 = nn.Sequential(model.conv2, model.conv2)  # one convolution called twice
    reason = explainers.get(name)().unsupported_reason(model.eval(), X)
    assert reason.endswith("(supported layers are listed in faithbench.explainers.lrp); and each layer must be "
                           "called once per forward pass; conv2.0 (2 calls)")
    torchvision = pytest.importorskip("torchvision")
    densenet = attach_input_transform(torchvision.models.densenet121(num_classes=2).eval(),
                                      InputConfig(in_chans=3, mean=(0.4,) * 3, std=(0.2,) * 3))
    reason = explainers.get(name)().unsupported_reason(densenet, torch.rand(1, 1, 64, 64))
    assert "no propagation rule for InputTransform" in reason and "applies Cat, Mean outside" in reason
    assert "preprocess: none" not in reason


def test_lrp_names_a_subclass_of_a_supported_layer_by_its_path() -> None:
    """timm's ``Linear`` subclasses ``nn.Linear``; the rules fit exact types, and the refusal said "no rule
    for Linear" while the docs list Linear as supported (a held-out review)."""

    class Linear(nn.Linear):  # as timm.layers.Linear
        pass

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), Linear(2 * 14 * 14, 2)).eval()
    reason = explainers.get("lrp")().unsupported_reason(model, torch.rand(1, 1, 16, 16))
    assert reason is not None and f"{__name__}.Linear (a subclass; rules fit exact types)" in reason
