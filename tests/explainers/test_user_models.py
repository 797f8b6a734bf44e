"""Explainers on users' own, untidy networks (a held-out review): an in-place ReLU after a hand-picked
CAM layer, frozen parameters, BatchNorm left in train mode, and builders that return what explainers
cannot hook."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faithbench.models.checkpoint import ModelSpec, build_for_dataset
from faithbench.models.errors import CheckpointError
from faithbench.registry import explainers


class Core(nn.Module):
    """conv, ReLU, conv, ReLU (in place or not), global max pool, linear head."""

    def __init__(self, inplace: bool = False, bn: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6) if bn else nn.Identity()
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.act2 = nn.ReLU(inplace=inplace)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        h = self.act2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.fc(self.pool(h).flatten(1))


def _pair():
    torch.manual_seed(0)
    plain, inplace = Core(), Core(inplace=True)
    inplace.load_state_dict(plain.state_dict())
    return plain.eval(), inplace.eval(), torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 1, 0])


@pytest.mark.parametrize("name", ["gradcam", "gradcam_pp", "xgradcam", "hirescam", "layercam", "scorecam",
                                  "ablationcam"])
def test_a_cam_layer_changed_in_place_later_reads_its_own_output(name):
    """The review: with target_layer conv2 before ReLU(inplace=True), pytorch-grad-cam kept a view of conv2's
    output, which the ReLU overwrote: the map was the ReLU's (Grad-CAM++ 85 times too large)."""
    plain, inplace, x, t = _pair()
    explainer = explainers.get(name)(target_layer="conv2", relu=False)
    expected, got = explainer(plain, x, t), explainer(inplace, x, t)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)
    if name not in ("hirescam", "layercam"):  # grad x activation: 0 where the ReLU cut, so these were right
        relu_map = explainers.get(name)(target_layer="act2", relu=False)(plain, x, t)
        assert not torch.allclose(expected, relu_map, atol=1e-6, rtol=0)  # the case tells the two apart


def test_gradcam_on_a_layer_changed_in_place_equals_its_definition():
    plain, inplace, x, t = _pair()
    acts = {}
    handle = plain.conv2.register_forward_hook(lambda _m, _i, out: acts.__setitem__("a", out))
    score = plain(x).gather(1, t[:, None]).sum()
    handle.remove()
    grad, = torch.autograd.grad(score, acts["a"])
    cam = (grad.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True).detach()
    expected = F.interpolate(cam, size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    got = explainers.get("gradcam")(target_layer="conv2", relu=False)(inplace, x, t)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["gradcam", "gradcam_pp", "xgradcam", "hirescam", "layercam"])
def test_a_frozen_network_gets_the_same_cam(name):
    """The review: a network whose parameters do not require grad (an inference checkpoint) failed every
    gradient CAM cell: 'element 0 of tensors does not require grad'."""
    plain, _, x, t = _pair()
    expected = explainers.get(name)()(plain, x, t)
    for p in plain.parameters():
        p.requires_grad_(False)
    assert torch.equal(explainers.get(name)()(plain, x, t), expected)
    assert not any(p.requires_grad for p in plain.parameters())  # left frozen
    for p in plain.fc.parameters():  # a frozen backbone under a trained head (a diff review: that still failed)
        p.requires_grad_(True)
    assert torch.equal(explainers.get(name)()(plain, x, t), expected)


@pytest.mark.parametrize("name", ["saliency", "guided_backprop", "deeplift", "gradcam", "fullgrad"])
def test_support_checks_do_not_move_batchnorm_statistics(name):
    """The review: unsupported_reason's probes (a layer search, a graph trace) ran the network in train mode,
    so BatchNorm's running statistics moved (guided backprop then differed from captum by 0.019)."""
    torch.manual_seed(0)
    model = Core(bn=True).train()
    before = model.bn1.running_mean.clone()
    assert explainers.get(name)().unsupported_reason(model, torch.rand(4, 1, 16, 16)) is None
    assert torch.equal(model.bn1.running_mean, before) and model.training and model.bn1.training


class Tagged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = Core()
        self.arch_family = "vit"  # the builder's own tag, as docs/plugins.md says to set

    def forward(self, x):
        return self.net(x)


def build_scripted(in_chans, num_classes):
    return torch.jit.script(Core())


def build_tagged(in_chans, num_classes):
    return Tagged()


def test_module_builders_keep_their_tag_and_a_script_is_refused():
    spec = ModelSpec.model_validate({"name": f"{__name__}:build_tagged", "recipe": "default"})
    assert build_for_dataset(spec, 1, 2, (16, 16))[0].arch_family == "vit"  # was overwritten with "cnn"
    spec = ModelSpec.model_validate({"name": f"{__name__}:build_scripted", "recipe": "default"})
    with pytest.raises(CheckpointError, match=r"build_scripted returned a TorchScript module, expected a "
                                              r"torch.nn.Module \(explainers hook its layers"):
        build_for_dataset(spec, 1, 2, (16, 16))


def _suite(model: str) -> dict:
    """A suite of one 32-px phantom dataset and the builder ``model`` (``module:function``)."""
    return {"name": "t", "datasets": [{"name": "phantom_cxr", "params": {"size": 32, "n": 8}}],
            "models": [{"name": model, "recipe": {"epochs": 1}}], "explainers": ["saliency"],
            "metrics": ["pointing_game"]}


class ShiftsInPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = Core()

    def forward(self, x):
        return self.net(x.sub_(0.1))  # normalising in place, common in user code


def build_shifting(in_chans, num_classes):
    return ShiftsInPlace()


def test_a_network_that_changes_its_input_in_place_is_refused(tmp_path):
    """The review: x.sub_() inside forward passed validate; explainers and metrics then ran on changed
    images (insertion AUC 0.45 instead of the out-of-place twin's 0.88) without a word."""
    from faithbench.config import SuiteError, suite_from_dict
    from faithbench.models.training import evaluate_model

    suite = _suite(f"{__name__}:build_shifting")
    with pytest.raises(SuiteError, match=r"models\[0\]: .* fails on an image of that shape: its forward changes its "
                                         r"input in place \(x.sub_\(\), x /= ...\)"):
        suite_from_dict(suite, source="s.yaml")
    x = torch.rand(8, 1, 16, 16)
    with pytest.raises(CheckpointError, match=r"^model 'mine': its forward changes its input in place"):
        evaluate_model(ShiftsInPlace().eval(), x, torch.arange(8) % 2, label="mine")
    evaluate_model(Core().eval(), x, torch.arange(8) % 2, label="mine")  # a network that leaves it: no error


class FixedSize(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 2)  # built for 28 x 28 images

    def forward(self, x):
        return self.fc(x.flatten(1))


def build_fixed(in_chans, num_classes):
    return FixedSize()


def test_a_network_built_for_another_image_size_gets_the_resize_hint():
    """The review: a raw matrix-shape error, while preprocess: {size: [28, 28]} (which works) went unsaid."""
    from faithbench.config import SuiteError, suite_from_dict

    suite = _suite(f"{__name__}:build_fixed")
    with pytest.raises(SuiteError, match=r"fails on an image of that shape: RuntimeError: .* \(a network built for "
                                         r"another image size than 32 x 32\? preprocess: \{size: \[H, W\]\} in the "
                                         r"model entry resizes the images to it\)$"):
        suite_from_dict(suite, source="s.yaml")
    suite["models"][0]["preprocess"] = {"size": [28, 28]}
    suite_from_dict(suite, source="s.yaml")  # as the hint says


def build_double(in_chans, num_classes):
    return Core().double()


def test_a_network_in_float64_gets_the_dtype_hint():
    from faithbench.config import SuiteError, suite_from_dict

    suite = _suite(f"{__name__}:build_double")
    with pytest.raises(SuiteError, match=r"fails on an image of that shape: .* \(its parameters are float64, the "
                                         r"images float32: return the network in float32, model.float\(\)\)$"):
        suite_from_dict(suite, source="s.yaml")


class Residual(nn.Module):
    """conv, ReLU, conv, a residual add (in place, as torchvision's blocks: out += identity, or not), ReLU."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.conv1, self.act1 = nn.Conv2d(1, 6, 3, padding=1), nn.ReLU()
        self.conv2, self.act2 = nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()
        self.pool, self.fc = nn.AdaptiveMaxPool2d(1), nn.Linear(6, 2)
        self.inplace = inplace

    def forward(self, x):
        h = self.act1(self.conv1(x))
        out = self.conv2(h)
        if self.inplace:
            out += h
        else:
            out = out + h
        return self.fc(self.pool(self.act2(out)).flatten(1))


@pytest.mark.parametrize("name", ["gradcam", "ablationcam"])
def test_a_cam_layer_before_an_in_place_residual_add(name):
    """A diff review: AblationCAM adds its own activation hook during the call (after kept_output's), whose
    copy the += then changed: torchvision's layer4.0.bn2 gave a map 55 off on a scale of 23."""
    torch.manual_seed(0)
    plain, inplace = Residual(False).eval(), Residual(True).eval()
    inplace.load_state_dict(plain.state_dict())
    x, t = torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 1, 0])
    explainer = explainers.get(name)(target_layer="conv2", relu=False)
    assert torch.allclose(explainer(inplace, x, t), explainer(plain, x, t), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["gradcam", "hirescam", "eigencam", "scorecam", "fullgrad"])
def test_a_network_that_computes_in_bfloat16_is_explained_by_the_cams(name):
    """Helper 129: a network run in bfloat16 (a wrapper casting its input, float32 logits out) failed every
    CAM cell with torch's 'Got unsupported ScalarType BFloat16' (numpy has no bfloat16); the CAM is now
    computed from float32 copies of the activations and gradients, close to the float32 network's."""
    class InBf16(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net.to(torch.bfloat16)

        def forward(self, x):
            return self.net(x.to(torch.bfloat16)).float()

    torch.manual_seed(0)
    net = Core().eval()
    low = InBf16(Core().eval())
    low.net.load_state_dict({k: v.to(torch.bfloat16) for k, v in net.state_dict().items()})
    x, target = torch.rand(2, 1, 16, 16), torch.tensor([0, 1])
    layer = {} if name == "fullgrad" else {"target_layer": "conv2"}  # fullgrad: every biased layer (helper 134)
    s32 = explainers.get(name)(**layer)(net, x, target)
    s16 = explainers.get(name)(**{k: f"net.{v}" for k, v in layer.items()})(low, x, target)
    assert s16.dtype == torch.float32 and s16.shape == (2, 16, 16)
    scale = s32.abs().amax()
    assert (s16 - s32).abs().amax() <= 0.05 * scale  # bfloat16 keeps ~3 significant digits


@pytest.mark.parametrize("name", ["gradcam", "gradcam_pp", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam",
                                  "ablationcam"])
def test_a_hand_set_layer_without_a_feature_map_gets_our_message(name):
    """A held-out review (F1): on a direct call, target_layer = a linear head gave pytorch-grad-cam's "Invalid grads
    shape" (gradient CAMs) or torch's interpolate error (Score-CAM); only EigenCAM reached faithbench's message."""
    plain, _, x, t = _pair()
    with pytest.raises(ValueError, match=rf"^{name}: target_layer 'fc' outputs \(4, 2\) for an input of "
                                         r"\(4, 1, 16, 16\): not \(B, C, \*grid\) \(a linear layer"):
        explainers.get(name)(target_layer="fc")(plain, x, t)
    assert all(not m._forward_hooks and not m._backward_hooks for m in plain.modules())  # released
    assert all(p.grad is None for p in plain.parameters())
    assert explainers.get(name)(target_layer="act2")(plain, x, t).shape == (4, 16, 16)  # the same object works


@pytest.mark.parametrize("name", ["gradcam", "layercam", "scorecam"])
def test_a_timm_vit_built_outside_faithbench_takes_the_vit_path(name):
    """A held-out review (F2): a timm ViT without ``arch_family`` got "continues channels last ... (a Swin has none
    past its patch embedding)" from the CAMs, and "Invalid grads shape" with target_layer blocks.11.norm1; now it
    is read as a ViT, as the model factory guesses, and gets the map of the same model tagged "vit"."""
    timm = pytest.importorskip("timm")
    from faithbench.types import arch_family

    torch.manual_seed(0)
    raw = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, pretrained=False, num_classes=3).eval()
    x, t = torch.rand(2, 3, 32, 32), torch.tensor([0, 2])
    assert not hasattr(raw, "arch_family") and arch_family(raw) == "vit"
    params = {"batch_size": 64} if name == "scorecam" else {}
    untagged = explainers.get(name)(**params)(raw, x, t)
    by_hand = explainers.get(name)(target_layer="blocks.11.norm1", **params)(raw, x, t)
    assert not hasattr(raw, "arch_family")  # read, not set
    raw.arch_family = "vit"
    tagged = explainers.get(name)(**params)(raw, x, t)
    assert untagged.shape == (2, 32, 32) and untagged.abs().max() > 0
    assert torch.allclose(untagged, tagged, atol=1e-6) and torch.allclose(by_hand, tagged, atol=1e-6)
