"""A ViT's token grid -> pixels where the network does not see the input's own pixel grid: behind an input
transform that resizes the image to a size no multiple of the patch (the grid over the pixels the patches cover
of the resized image, 0 past them, resized back), under timm's dynamic_img_pad (grid, then cropped), and the
size refusal of a fixed-size ViT (a held-out review of the transformer explainers)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faithbench.explainers.transformer import frame_to_input, patch_layout, patch_pixels
from faithbench.models.preprocess import InputConfig, attach_input_transform
from faithbench.registry import explainers

timm = pytest.importorskip("timm")

MAPS = ["attention", "attention_rollout", "chefer", "gradcam", "eigencam"]


def _timm_vit(img_size=36, **kw):
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=img_size, patch_size=8,
                              embed_dim=48, depth=2, num_heads=2, num_classes=2, **kw).eval()
    with torch.no_grad():  # peaky attention, so that the maps are not flat
        for block in model.blocks:
            block.attn.qkv.weight.mul_(4)
    model.arch_family = "vit"
    return model


def _resized(model, size, interpolation="bicubic"):
    resized = copy.deepcopy(model)
    attach_input_transform(resized, InputConfig(in_chans=3, size=size, interpolation=interpolation))
    return resized


def _x(side, n=2, seed=1):
    return torch.rand((n, 3, side, side), generator=torch.Generator().manual_seed(seed))


class _Embed(nn.Module):
    def __init__(self, pad=False):
        super().__init__()
        self.patch_size, self.dynamic_img_pad = (8, 8), pad


class _Stub(nn.Module):
    def __init__(self, size=None, pad=False):
        super().__init__()
        self.patch_embed = _Embed(pad)
        if size is not None:
            attach_input_transform(self, InputConfig(in_chans=1, size=size))


def test_the_grid_covers_the_patches_of_the_resized_image_then_is_resized_back_known_answer():
    """Grid 4x4 of ones, 8-px patches, 40 px resized to 36: the patches cover 32 of the 36; input row i sits at
    (i + 0.5) * 36/40 - 0.5 of the resized image: rows 0-34 are 1, row 35 (31.45) 0.55, rows 36-39 0."""
    model = _Stub(size=(36, 36))
    assert patch_layout(model, (4, 4), (40, 40)) == ((32, 32), (36, 36))
    out = patch_pixels(torch.ones(1, 1, 4, 4), model, (40, 40))[0, 0]
    expected = torch.ones(40)
    expected[35], expected[36:] = 0.55, 0.0
    torch.testing.assert_close(out[:, 0], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, :], expected, atol=1e-5, rtol=0)


def test_layouts_that_keep_the_one_step_stretch():
    """No transform, a resize to a multiple of the patch, a transform that does not resize: as before."""
    assert patch_layout(_Stub(size=(32, 32)), (4, 4), (40, 40)) == ((40, 40), (40, 40))
    assert patch_layout(_Stub(size=(36, 36)), (4, 4), (36, 36)) == ((32, 32), (36, 36))  # no resize: 4 dropped
    assert patch_layout(_Stub(), (4, 4), (36, 36)) == ((32, 32), (36, 36))
    assert patch_layout(_Stub(), (4, 4), (32, 32)) == ((32, 32), (32, 32))
    assert patch_layout(_Stub(), (36, 36), (36, 36)) == ((36, 36), (36, 36))  # no plain patchify: the input
    grid = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    stretched = F.interpolate(grid, size=(40, 40), mode="bilinear", align_corners=False)
    assert torch.equal(patch_pixels(grid, _Stub(size=(32, 32)), (40, 40)), stretched)  # bit for bit
    covered = F.pad(F.interpolate(grid, size=(32, 32), mode="bilinear", align_corners=False), (0, 4, 0, 4))
    assert torch.equal(patch_pixels(grid, _Stub(), (36, 36)), covered)


def test_dynamic_img_pad_maps_the_grid_then_crops():
    """timm pads the bottom/right to whole patches: token i covers rows 8i..8i+7 of 44 (6 tokens), not 44/6."""
    model = _Stub(pad=True)
    assert patch_layout(model, (6, 5), (44, 36)) == ((48, 40), (44, 36))
    grid = torch.rand(2, 1, 6, 5, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(grid, size=(48, 40), mode="bilinear", align_corners=False)[..., :44, :36]
    assert torch.equal(patch_pixels(grid, model, (44, 36)), expected)
    assert patch_layout(_Stub(pad=False), (6, 5), (44, 36)) == ((44, 36), (44, 36))  # not timm's padding


@pytest.mark.parametrize("name", MAPS)
def test_a_map_behind_a_resize_is_the_map_of_the_resized_image_resized_back(name):
    """The review's case: 40 px resized (bicubic) to the 36 px of a ViT with 8-px patches; input rows 37-39 move
    no logit, yet held 12-20 % of |map| with the grid stretched over 40 px. The map must be the same network's map
    of the resized image (grid over 32 px, 0 on the 4 dropped), resized back to 40."""
    plain = _timm_vit(36)
    model = _resized(plain, (36, 36))
    x, target = _x(40), torch.tensor([0, 1])
    s = explainers.get(name)()(model, x, target)
    with torch.no_grad():
        seen = model.input_transform(x)
    inner = explainers.get(name)()(plain, seen, target)
    assert inner[:, 32:].abs().max() == 0 and inner[:, :, 32:].abs().max() == 0
    expected = F.interpolate(inner[:, None], size=(40, 40), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(s, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))
    dead = torch.zeros(40, 40, dtype=torch.bool)
    dead[37:, :], dead[:, 37:] = True, True
    with torch.no_grad():  # those pixels are dead indeed: noise there moves no logit
        noisy = x.clone()
        noisy[:, :, dead] = torch.rand_like(noisy[:, :, dead]) * 5
        assert torch.equal(model(noisy), model(x))
    assert s[:, dead].abs().max() == 0 and s.abs().sum() > 0


def test_scorecam_on_a_resized_vit_leaves_the_dropped_pixels_at_zero():
    model = _resized(_timm_vit(36), (36, 36))
    s = explainers.get("scorecam")()(model, _x(40), torch.tensor([0, 1]))
    assert s[:, 36:].abs().max() == 0 and s[:, :, 36:].abs().max() == 0 and s[:, :35, :35].abs().sum() > 0


def test_scorecam_masks_are_padded_in_the_frame_then_resized():
    masks = torch.ones(1, 3, 32, 32)
    out = frame_to_input(masks, (36, 36), (40, 40))
    assert out.shape == (1, 3, 40, 40) and float(out.max()) <= 1 + 1e-6 and out[..., 36:, :].abs().max() == 0
    assert torch.equal(frame_to_input(masks, (32, 32), (32, 32)), masks)
    half = frame_to_input(masks.to(torch.bfloat16), (36, 36), (40, 40))  # a bf16 network's maps
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), out, atol=1e-2)


@pytest.mark.parametrize("name", MAPS)
def test_maps_without_a_dropping_resize_are_unchanged(name):
    """Resize to a multiple of the patch (40 -> 32): the grid is stretched over the 40 px in one step, as before."""
    model = _resized(_timm_vit(32), (32, 32), "bilinear")
    s = explainers.get(name)()(model, _x(40), torch.tensor([0, 1]))
    assert s[:, 36:].abs().sum() > 0  # every pixel is seen, so the grid spans them all


def test_dynamic_img_pad_attention_rollout_is_the_cropped_grid():
    """44 x 36 px, 8-px patches, timm's dynamic_img_pad: the 6 x 5 grid on 48 x 40 px, cropped (the review: the
    stretch over 44 x 36 was 0.31 relative off it)."""
    from faithbench.explainers.transformer import attention_rollout, readout_weights, recorded_attention

    model = _timm_vit(32, dynamic_img_size=True, dynamic_img_pad=True)
    x = torch.randn(2, 3, 44, 36, generator=torch.Generator().manual_seed(3))
    tokens = []
    handle = model.norm.register_forward_hook(lambda _m, _i, out: tokens.append(out))
    with recorded_attention(model) as maps, torch.no_grad():
        model(x)
    handle.remove()
    rows = torch.einsum("bq,bqk->bk", readout_weights(model, tokens[-1], "auto"), attention_rollout(maps))[:, 1:]
    grid = rows.reshape(2, 1, 6, 5)
    expected = F.interpolate(grid, size=(48, 40), mode="bilinear", align_corners=False)[:, 0, :44, :36]
    s = explainers.get("attention_rollout")()(model, x, torch.tensor([0, 1]))
    torch.testing.assert_close(s, expected, rtol=1e-5, atol=1e-7)


def test_a_dynamic_vit_behind_a_resize_reads_the_grid_of_the_resized_image():
    """dynamic_img_size built at 32, resized to 40 (5 x 5 tokens), given 48 px: the grid of the 40 px it sees."""
    model = _resized(_timm_vit(32, dynamic_img_size=True), (40, 40), "bilinear")
    s = explainers.get("attention")()(model, _x(48), torch.tensor([0, 1]))
    assert s.shape == (2, 48, 48) and s[:, 44:, 44:].abs().sum() > 0


@pytest.mark.parametrize("name", ["attention", "attention_rollout", "chefer", "gradcam", "scorecam"])
def test_a_fixed_size_vit_given_another_size_is_a_one_line_value_error(name):
    """timm's AssertionError "Input height (48) doesn't match model (32)" came through (a review)."""
    model = _timm_vit(32)
    with pytest.raises(ValueError, match=r"expected 4x4 patch tokens of a 32x32-pixel input .* got an input of "
                                         r"48x48: is the input the size the model was built for\?"):
        explainers.get(name)()(model, _x(48), torch.tensor([0, 1]))
    resized = _resized(model, (40, 40))
    with pytest.raises(ValueError, match=r"got an input of 40x40 \(resized from 48x48\)"):
        explainers.get(name)()(resized, _x(48), torch.tensor([0, 1]))


@pytest.mark.parametrize("name", ["attention", "attention_rollout", "chefer", "gradcam"])
def test_a_conv_stem_vit_takes_other_sizes_as_before(name):
    """A diff review: the size refusal also refused faithbench's vit_tiny (timm's HybridEmbed, which asserts no
    size) on a 60 x 60 or 64 x 60 input it classifies, where every map was computed before; only timm's PatchEmbed
    asserts the size."""
    import faithbench

    torch.manual_seed(0)
    model = faithbench.create_model("vit_tiny", in_chans=1, num_classes=2, input_size=(64, 64)).eval()
    for size in ((60, 60), (64, 60)):
        x = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(3))
        out = explainers.get(name)()(model, x, torch.tensor([0, 1]))
        assert out.shape == (2, *size) and torch.isfinite(out).all() and out.abs().sum() > 0


@pytest.mark.parametrize("name", ["attention", "chefer", "gradcam"])
def test_a_dynamic_vit_given_a_side_no_multiple_of_the_patch_is_a_one_line_value_error(name):
    """A reread: a dynamic_img_size ViT without dynamic_img_pad given 60 px for 8-px patches raised timm's
    AssertionError ("should be divisible by patch size"); with dynamic_img_pad it is explained."""
    model = _timm_vit(img_size=32, dynamic_img_size=True)
    with pytest.raises(ValueError, match=rf"^{name}: expected an input whose sides are multiples of the 8x8 patch "
                                         r"\(a dynamic-size ViT without dynamic_img_pad\), got an input of 36x36$"):
        explainers.get(name)()(model, _x(36), torch.tensor([0, 1]))
    padded = _timm_vit(img_size=32, dynamic_img_size=True, dynamic_img_pad=True)
    assert explainers.get("attention")()(padded, _x(36), torch.tensor([0, 1])).shape == (2, 36, 36)
