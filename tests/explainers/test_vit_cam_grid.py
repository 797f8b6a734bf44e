"""CAMs of timm ViTs on the patch grid the network sees (held-out review vit5): a ``dynamic_img_pad`` ViT at its
own, non-multiple size (36 px, 8-px patches: timm's grid_size 4 x 4, but the network pads to 40 and sees 5 x 5)
and a ``dynamic_img_size`` ViT given another size; checked against pytorch-grad-cam with a reshape_transform
on that grid, upsampled on the padded grid and cropped."""

import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM, LayerCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from faithbench.registry import explainers

timm = pytest.importorskip("timm")


def _vit(img_size, **kw):
    torch.manual_seed(11)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=img_size, patch_size=8,
                              embed_dim=48, depth=2, num_heads=2, num_classes=3, **kw).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def _library_grid(model, cam_cls, x, target, grid):
    """pytorch-grad-cam's raw CAM (before its ReLU and scaling) on ``grid``, by its documented reshape_transform."""
    def reshape(tokens):
        return tokens[:, model.num_prefix_tokens:].reshape(tokens.shape[0], *grid, tokens.shape[-1]).movedim(-1, 1)

    layer = model.blocks[-1].norm1
    cam = cam_cls(model=model, target_layers=[layer], reshape_transform=reshape)
    try:
        out = cam.activations_and_grads(x)
        model.zero_grad()
        sum(out[i, int(t)] for i, t in enumerate(target)).backward()
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        targets = [ClassifierOutputTarget(int(t)) for t in target]
        raw = cam.get_cam_image(x, layer, targets, acts, grads, False)
    finally:
        cam.activations_and_grads.release()
    model.zero_grad(set_to_none=True)
    return torch.as_tensor(raw, dtype=torch.float32)


@pytest.mark.parametrize("name, cam_cls", [("gradcam", GradCAM), ("layercam", LayerCAM)])
def test_dynamic_img_pad_vit_at_its_own_size_is_the_library_cam_on_the_padded_grid_cropped(name, cam_cls):
    model = _vit(36, dynamic_img_size=True, dynamic_img_pad=True)
    assert tuple(model.patch_embed.grid_size) == (4, 4)  # timm's; the network sees 5 x 5 patches of 40 px
    x = torch.randn(2, 3, 36, 36, generator=torch.Generator().manual_seed(3))
    target = torch.tensor([0, 2])
    explainer = explainers.get(name)()
    got = explainer(model, x, target)
    grid = _library_grid(model, cam_cls, x, target, (5, 5))
    expected = F.interpolate(grid.clamp(min=0)[:, None], size=(40, 40), mode="bilinear",
                             align_corners=False)[:, 0, :36, :36]
    assert explainer.last_info == {"target_layer": "blocks.-1.norm1", "grid": [5, 5]}
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("name", ["eigencam", "scorecam"])
def test_gradient_free_cams_run_on_the_padded_grid(name):
    model = _vit(36, dynamic_img_size=True, dynamic_img_pad=True)
    x = torch.randn(2, 3, 36, 36, generator=torch.Generator().manual_seed(3))
    explainer = explainers.get(name)()
    out = explainer(model, x, torch.tensor([0, 1]))
    assert out.shape == (2, 36, 36) and torch.isfinite(out).all() and out.abs().max() > 0
    assert explainer.last_info["grid"] == [5, 5]


def test_dynamic_img_size_vit_given_another_size_is_the_library_cam_on_that_grid():
    """Built for 32 px (4 x 4), given 48 x 40: the network sees 6 x 5 patches; the CAM reads them (it raised
    "shape '[2, 4, 4, 48]' is invalid" from the reshape)."""
    model = _vit(32, dynamic_img_size=True)
    x = torch.randn(2, 3, 48, 40, generator=torch.Generator().manual_seed(4))
    target = torch.tensor([1, 0])
    explainer = explainers.get("gradcam")()
    got = explainer(model, x, target)
    grid = _library_grid(model, GradCAM, x, target, (6, 5))
    expected = F.interpolate(grid.clamp(min=0)[:, None], size=(48, 40), mode="bilinear", align_corners=False)[:, 0]
    assert explainer.last_info["grid"] == [6, 5]
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))


def test_a_hand_set_block_on_the_padded_grid_is_accepted():
    """The token check counts the padded grid's tokens too (1 + 25, not 1 + 16)."""
    model = _vit(36, dynamic_img_size=True, dynamic_img_pad=True)
    x = torch.randn(2, 3, 36, 36, generator=torch.Generator().manual_seed(3))
    target = torch.tensor([0, 2])
    default = explainers.get("gradcam")()(model, x, target)
    by_hand = explainers.get("gradcam")(target_layer="blocks.1.norm1")(model, x, target)
    assert torch.equal(default, by_hand)
