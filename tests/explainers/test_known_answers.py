import pytest
import timm
import torch
from torch import nn

from faithbench.explainers import sobel_magnitude
from faithbench.registry import explainers


def _linear(linear_logit, shape=(2, 3, 5, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn((1, *shape[1:]), generator=g)
    x = torch.rand(shape, generator=g)
    return linear_logit(w), w, x


def test_integrated_gradients_linear(linear_logit):
    model, w, x = _linear(linear_logit)
    ig = explainers.get("integrated_gradients")(baseline=0.25)
    out = ig(model, x, torch.ones(2, dtype=torch.long))
    expected = ((x - 0.25) * w).sum(1)  # channels summed
    assert torch.allclose(out, expected, atol=1e-5)


def test_saliency_linear_is_abs_weight(linear_logit):
    model, w, x = _linear(linear_logit)
    out = explainers.get("saliency")()(model, x, torch.ones(2, dtype=torch.long))
    assert torch.allclose(out, w.abs().amax(1).expand(2, 5, 5), atol=1e-6)
    # target 0 has a constant logit: zero gradient
    out0 = explainers.get("saliency")()(model, x, torch.zeros(2, dtype=torch.long))
    assert torch.count_nonzero(out0) == 0


def test_random_seeded_and_model_independent(linear_logit):
    model, _, x = _linear(linear_logit)
    t = torch.ones(2, dtype=torch.long)
    a = explainers.get("random")(seed=1)(model, x, t)
    b = explainers.get("random")(seed=1)(model, x, t)
    c = explainers.get("random")(seed=2)(model, x, t)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (2, 5, 5) and 0 <= a.min() and a.max() < 1
    # per image: the same map alone, in another position or for another class; other images other noise
    alone = explainers.get("random")(seed=1)(model, x[1:], torch.zeros(1, dtype=torch.long))
    swapped = explainers.get("random")(seed=1)(model, x.flip(0), t)
    assert torch.equal(alone[0], a[1]) and torch.equal(swapped, a.flip(0)) and not torch.equal(a[0], a[1])


def test_sobel_edges_2d_and_3d(linear_logit):
    img = torch.zeros(1, 8, 8)
    img[0, :, 4:] = 1.0  # a vertical step edge
    mag = sobel_magnitude(img)
    assert torch.count_nonzero(mag[0, :, [0, 1, 6, 7]]) == 0
    assert (mag[0, :, 3:5] == 4.0).all()  # |[-1 0 1] x [1 2 1]| over the unit step
    assert torch.count_nonzero(sobel_magnitude(torch.full((1, 5, 6, 7), 3.0))) == 0
    vol = torch.zeros(1, 6, 6, 6)
    vol[0, 3:] = 1.0
    m3 = sobel_magnitude(vol)
    assert m3.shape == (1, 6, 6, 6) and m3[0, 2:4].min() == 16.0  # 3D smoothing sums 4x4
    model, _, x = _linear(linear_logit)
    other, _, _ = _linear(linear_logit, seed=5)
    s = explainers.get("sobel")()
    t = torch.ones(2, dtype=torch.long)
    assert torch.equal(s(model, x, t), s(other, x, t))  # ignores the model


@pytest.fixture(scope="module")
def tiny_cnn():
    torch.manual_seed(0)
    m = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=2)
    m.arch_family = "cnn"
    return m.eval()


@pytest.fixture(scope="module")
def tiny_vit():
    from faithbench.models import build_model

    torch.manual_seed(0)
    return build_model("vit_tiny", 1, 2, (32, 32), patch_size=8, embed_dim=48, depth=2, num_heads=2).eval()


@pytest.mark.parametrize("name", ["gradcam", "saliency", "integrated_gradients", "random", "sobel"])
@pytest.mark.parametrize("arch", ["tiny_cnn", "tiny_vit"])
def test_shapes_finite_deterministic(name, arch, request):
    model = request.getfixturevalue(arch)
    x = torch.rand(3, 1, 64, 64) if arch == "tiny_cnn" else torch.rand(3, 1, 32, 32)
    t = torch.tensor([0, 1, 1])
    kwargs = {"n_steps": 8} if name == "integrated_gradients" else {}
    a = explainers.get(name)(seed=0, **kwargs)(model, x, t)
    b = explainers.get(name)(seed=0, **kwargs)(model, x, t)
    assert a.shape == (3, *x.shape[2:])
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert a.flatten(1).std(1).min() > 0  # not constant


def test_gradcam_picks_a_fine_enough_layer(tiny_cnn):
    cam = explainers.get("gradcam")()
    cam(tiny_cnn, torch.rand(2, 1, 64, 64), torch.tensor([0, 1]))
    # layer4 is 2x2 at 64 px; layer3 is the last stage with a grid >= 4
    assert cam.last_info == {"target_layer": "layer3", "grid": [4, 4]}
    cam_big = explainers.get("gradcam")()
    cam_big(tiny_cnn, torch.rand(1, 1, 128, 128), torch.tensor([1]))
    assert cam_big.last_info["target_layer"] == "layer4"
    explicit = explainers.get("gradcam")(target_layer="layer2")
    explicit(tiny_cnn, torch.rand(1, 1, 64, 64), torch.tensor([1]))
    assert explicit.last_info == {"target_layer": "layer2", "grid": [8, 8]}


def test_gradcam_looks_inside_a_network_that_keeps_its_stages_in_one_block():
    """A held-out review: torchvision's and MONAI's DenseNets keep every stage in ``features``,
    whose output is the coarsest map (1 x 1 x 1 on a 28^3 volume for MONAI's): Grad-CAM was one
    number per image, 0 everywhere after its ReLU, and still ranked. Now the last stage inside
    ``features`` with a grid >= 4 (torchvision's dense block 3 on 64 px: 4 x 4; block 4 is 2 x 2)."""
    import torchvision
    from monai.networks.nets import DenseNet

    from faithbench.explainers.layers import find_target_layer

    torch.manual_seed(0)
    dense2d = torchvision.models.densenet121(num_classes=2).eval()
    assert find_target_layer(dense2d, torch.rand(1, 3, 64, 64)) == ("features.denseblock3", (4, 4))
    assert find_target_layer(dense2d, torch.rand(1, 3, 224, 224)) == ("features", (7, 7))  # fine at the top
    dense3d = DenseNet(spatial_dims=3, in_channels=1, out_channels=2, init_features=8, growth_rate=4,
                       block_config=(2, 2, 2)).eval()
    cam = explainers.get("gradcam")()
    maps = cam(dense3d, torch.rand(2, 1, 28, 28, 28), torch.tensor([0, 0]))
    assert cam.last_info == {"target_layer": "features.denseblock1", "grid": [7, 7, 7]}
    assert all(int(torch.unique(m).numel()) > 100 for m in maps)  # a map, not one value per image
    class Reused(nn.Module):  # one ReLU after every convolution: the layer is its last call, as before
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
            self.relu, self.fc = nn.ReLU(), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.relu(self.conv2(self.relu(self.conv1(x))))
            return self.fc(x.mean((2, 3)))

    assert find_target_layer(Reused().eval(), torch.rand(1, 1, 16, 16)) == ("relu", (16, 16))
    tiny = torchvision.models.resnet18(num_classes=2).eval()  # nothing reaches 4 at 4 px: the finest top-level map
    assert find_target_layer(tiny, torch.rand(1, 3, 4, 4)) == ("conv1", (2, 2))


@pytest.mark.parametrize(("name", "size", "expected"), [
    ("timm:efficientnet_b0", 64, ("blocks.4", (4, 4))),  # was the stem's bn1, 32 x 32: a map of edges
    ("timm:mobilenetv3_small_100", 64, ("blocks.3", (4, 4))),
    ("timm:convnext_atto", 64, ("stages.2", (4, 4))),  # was the stem
    ("timm:efficientnet_b0", 224, ("bn2", (7, 7))),  # fine at the top: the head's conv, as before
    ("timm:resnet50", 64, ("layer3", (4, 4))),  # layer4.0's 1 x 1 conv is 4 x 4 too: not a stage
    ("timm:densenet121", 64, ("features.denseblock3", (4, 4))),  # transition3's layers are no stage
    ("torchvision:regnet_y_400mf", 64, ("trunk_output.block3", (4, 4))),  # was the stem
    ("torchvision:alexnet", 64, ("features.4", (7, 7))),  # was avgpool: 6 x 6 copies of features' 1 x 1
    ("torchvision:alexnet", 224, ("features", (6, 6))),
    ("torchvision:vgg11", 64, ("features.19", (4, 4))),  # was avgpool: 7 x 7 from 2 x 2
])
def test_target_layer_is_the_last_fine_stage_of_library_networks(name, size, expected):
    """A held-out review: at small inputs timm's EfficientNet, MobileNet and ConvNeXt (a stem, then
    every stage in one coarse ``blocks``/``stages``) gave Grad-CAM on the stem, and torchvision's
    AlexNet and VGG on their adaptive ``avgpool``, which resamples a 1 x 1 or 2 x 2 map."""
    import torchvision

    from faithbench.explainers.layers import find_target_layer

    library, arch = name.split(":")
    torch.manual_seed(0)
    model = (timm.create_model(arch, pretrained=False, num_classes=2) if library == "timm"
             else getattr(torchvision.models, arch)(num_classes=2)).eval()
    assert find_target_layer(model, torch.rand(1, 3, size, size)) == expected


def test_gradcam_is_raw_not_minmax_scaled(tiny_cnn):
    x = torch.rand(2, 1, 64, 64)
    out = explainers.get("gradcam")()(tiny_cnn, x, torch.tensor([0, 1]))
    signed = explainers.get("gradcam")(relu=False)(tiny_cnn, x, torch.tensor([0, 1]))
    # pytorch-grad-cam's own output is ReLU'd and min-max scaled into [0, 1]; ours keeps the scale
    # (ReLU'd by default, the signed grid with relu=False)
    assert out.min() >= 0 and not torch.allclose(out.flatten(1).amax(1), torch.ones(2))
    assert signed.min() < 0 or signed.max() > 1


def test_gradcam_equals_library_up_to_relu_and_minmax():
    """On a layer at input resolution no resizing happens, so ReLU + min-max of our raw CAM
    must equal pytorch-grad-cam's own output exactly."""
    import numpy as np
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2)).eval()
    x = torch.rand(2, 1, 12, 12)
    ours = explainers.get("gradcam")(target_layer="2", relu=False)(model, x, torch.tensor([1, 0]))
    default = explainers.get("gradcam")(target_layer="2")(model, x, torch.tensor([1, 0]))
    assert torch.allclose(default, ours.clamp(min=0))  # no resizing: both orders agree
    lib = GradCAM(model=model, target_layers=[model[2]])
    theirs = lib(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(0)])
    lib.activations_and_grads.release()
    from pytorch_grad_cam.utils.image import scale_cam_image

    # the library scales once per layer and once after aggregating layers
    expected = scale_cam_image(scale_cam_image(ours.clamp(min=0).numpy()))
    assert np.allclose(expected, theirs, atol=1e-5)
    assert ours.min() < 0  # the raw map keeps its negative part


def test_unsupported_reason():
    cam = explainers.get("gradcam")()
    m = nn.Linear(2, 2)
    assert "3D" not in (cam.unsupported_reason(m, torch.rand(1, 1, 4, 4)) or "")
    from faithbench.explainers.base import Explainer

    class Only2D(Explainer):
        dims = frozenset({2})

    assert "supports 2D inputs, got 3D" in Only2D().unsupported_reason(m, torch.rand(1, 1, 4, 4, 4))
