"""A ViT's hand-set ``target_layer`` must output its tokens (a held-out review: timm's ``blocks.0.attn.qkv``
gave a map of q, k and v read as 576 channels, ``head`` an IndexError in the token reshape, and ``attn_drop``,
never called under fused attention, "'NoneType' object has no attribute 'shape'")."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faithbench.registry import explainers

timm = pytest.importorskip("timm")

HINT = ("choose a block or its norm1 by index (e.g. 'blocks.0', 'blocks.-2.norm1'; default: the last block's, "
        "'blocks.-1.norm1')")


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, depth=2, num_classes=2).eval()


def _explain(vit, name: str, layer: str | None) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    return explainers.get(name)(target_layer=layer)(vit, x, torch.tensor([0, 1]))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("name", ["gradcam", "scorecam"])
@pytest.mark.parametrize("layer", ["blocks.0.attn.qkv", "blocks.0.attn.attn_drop", "blocks.1.attn.norm"])
def test_a_part_of_the_attention_module_is_refused(vit, name, layer):
    with pytest.raises(ValueError) as err:
        _explain(vit, name, layer)
    assert str(err.value) == (f"{name}: target_layer {layer!r} is inside the attention module '{layer[:13]}' "
                              "(Attention), whose parts output attention weights or tokens: not a block's (B, N, C) "
                              f"tokens; {HINT}")
    assert _hooks(vit) == 0


@pytest.mark.parametrize("name", ["gradcam", "ablationcam"])
def test_a_layer_whose_output_is_no_tokens_is_refused(vit, name):
    with pytest.raises(ValueError) as err:
        _explain(vit, name, "head")
    assert str(err.value) == (f"{name}: target_layer 'head' outputs (2, 2) for a batch of 2: not (B, N, C) tokens, "
                              f"N = 1 prefix + 4 x 4 grid cells = 17; {HINT}")
    assert _hooks(vit) == 0


def test_a_layer_the_forward_pass_never_calls_is_refused(vit):
    vit.spare = nn.Linear(192, 192)
    try:
        with pytest.raises(ValueError) as err:
            _explain(vit, "gradcam", "spare")
    finally:
        del vit.spare
    assert str(err.value) == ("gradcam: target_layer 'spare' is never called by VisionTransformer's forward pass, so "
                              "it has no output to read; choose a layer the forward pass runs")
    assert _hooks(vit) == 0


def test_the_default_layer_set_by_hand_gives_the_default_map(vit):
    default = _explain(vit, "gradcam", None)
    assert torch.equal(_explain(vit, "gradcam", "blocks.-1.norm1"), default)
    assert torch.equal(_explain(vit, "gradcam", "blocks.1.norm1"), default)
    assert torch.equal(_explain(vit, "gradcam", "blocks.-2.norm1"), _explain(vit, "gradcam", "blocks.0.norm1"))
    assert default.abs().max() > 0


@pytest.mark.parametrize("layer", ["blocks.-3", "blocks.-3.norm1", "blocks..0", "blocks.-0x1"])
def test_a_negative_index_past_the_first_block_names_no_layer(vit, layer):
    """Negative indices count from the end as in Python (a review: ``blocks.-2.norm1`` was "not found" though
    the default is recorded as ``blocks.-1.norm1``); the model has 2 blocks."""
    with pytest.raises(ValueError, match=re.escape(f"target_layer {layer!r} not found in VisionTransformer; modules")):
        _explain(vit, "gradcam", layer)
    assert _hooks(vit) == 0


@pytest.mark.parametrize("layer", ["blocks.0", "blocks.0.attn"])  # the attention module's own output: tokens
def test_a_block_output_gives_grad_cam_of_its_tokens(vit, layer):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    module, saved = vit.get_submodule(layer), {}
    handle = module.register_forward_hook(lambda _m, _i, out: saved.update(tokens=out))
    logits = vit(x)
    handle.remove()
    grads = torch.autograd.grad(logits[0, 0] + logits[1, 1], saved["tokens"])[0]
    acts, grads = saved["tokens"][:, 1:].detach(), grads[:, 1:]  # (B, 16, C) without the class token
    cam = (grads.mean(1, keepdim=True) * acts).sum(-1).clamp(min=0).view(2, 1, 4, 4)  # Grad-CAM on the 4 x 4 grid
    expected = F.interpolate(cam, size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    got = _explain(vit, "gradcam", layer)
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_a_negative_index_into_a_sequential_with_named_children():
    """A diff review: torchvision DenseNet's ``features`` is a Sequential of named children (conv0, ...,
    norm5), so ``features.-1`` was "not found" though ``features[-1]`` works in Python; '-01' is no index."""
    from faithbench.explainers.layers import canonical_layer

    model = nn.Sequential()
    model.add_module("stem", nn.Conv2d(1, 2, 3))
    model.add_module("act", nn.ReLU())
    model.add_module("head", nn.Sequential(nn.Flatten(), nn.Linear(2, 2)))
    assert canonical_layer(model, "-1") == "head" and canonical_layer(model, "-3") == "stem"
    assert canonical_layer(model, "head.-1") == "head.1"
    for bad in ("-4", "-01", "-0", "head.-3"):
        with pytest.raises(AttributeError):
            canonical_layer(model, bad)
