"""CAMs of a timm ViT inside a model of one's own (held-out review vit5 D2): a wrapper that turns grey into RGB
and runs the ViT ``net`` got every CAM at ``net.patch_embed.proj`` (the linear patch projection, before every
block), silently, and ``net.blocks.-1.norm1`` set by hand was refused. The wrapped ViT's maps must be the bare
ViT's on the same images."""

import pytest
import torch
from torch import nn

from faithbench.registry import explainers

timm = pytest.importorskip("timm")

CAMS = ["gradcam", "gradcam_pp", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam", "ablationcam"]


def _vit(**kw):
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=48,
                              depth=2, num_heads=2, num_classes=3, **kw).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


class _Grey(nn.Module):  # one child: grey -> RGB in forward
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.expand(-1, 3, -1, -1))


class _Pre(nn.Module):  # an adapter child before the network (docs/explainers.md's wrapper pattern)
    def __init__(self, net):
        super().__init__()
        self.pre, self.net = nn.Identity(), net

    def forward(self, x):
        return self.net(self.pre(x).expand(-1, 3, -1, -1))


def _inputs():
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    return x, x.expand(-1, 3, -1, -1).contiguous(), torch.tensor([0, 2, 1])


@pytest.mark.parametrize("wrapper", [_Grey, _Pre])
@pytest.mark.parametrize("name", CAMS)
def test_a_wrapped_vit_gets_the_bare_vits_cam(name, wrapper):
    vit = _vit()
    model, (x, x3, target) = wrapper(vit).eval(), _inputs()
    wrapped, bare = explainers.get(name)(), explainers.get(name)()
    got, expected = wrapped(model, x, target), bare(vit, x3, target)
    assert wrapped.last_info == {"target_layer": "net.blocks.-1.norm1", "grid": [4, 4]}
    assert bare.last_info == {"target_layer": "blocks.-1.norm1", "grid": [4, 4]}
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("layer, bare_layer", [("net.blocks.-1.norm1", "blocks.-1.norm1"),
                                               ("net.blocks.0", "blocks.0"), ("net.blocks.1.norm1", "blocks.1.norm1")])
def test_a_layer_of_the_wrapped_vit_set_by_hand_is_its_tokens(layer, bare_layer):
    vit = _vit()
    model, (x, x3, target) = _Grey(vit).eval(), _inputs()
    got = explainers.get("gradcam")(target_layer=layer)(model, x, target)
    expected = explainers.get("gradcam")(target_layer=bare_layer)(vit, x3, target)
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6 * float(expected.abs().max()))


def test_a_wrapper_tagged_vit_is_read_as_its_network():
    """With ``arch_family = 'vit'`` the CAMs refused the wrapper ("needs a timm VisionTransformer"); now its ViT."""
    vit = _vit()
    model, (x, x3, target) = _Grey(vit).eval(), _inputs()
    model.arch_family = "vit"
    got = explainers.get("gradcam")()(model, x, target)
    torch.testing.assert_close(got, explainers.get("gradcam")()(vit, x3, target), rtol=0, atol=1e-7)


def test_a_wrapped_padded_vit_reads_the_padded_grid():
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=36, patch_size=8, embed_dim=48,
                            depth=2, num_heads=2, num_classes=3, dynamic_img_size=True, dynamic_img_pad=True).eval()
    x = torch.randn(2, 1, 36, 36, generator=torch.Generator().manual_seed(5))
    target = torch.tensor([0, 1])
    wrapped = explainers.get("gradcam")()
    got = wrapped(_Grey(vit).eval(), x, target)
    expected = explainers.get("gradcam")()(vit, x.expand(-1, 3, -1, -1), target)
    assert wrapped.last_info["grid"] == [5, 5]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6 * float(expected.abs().max()))


def test_vit_network_finds_the_one_outermost_vit():
    from faithbench.types import arch_family, vit_network  # new in this fix: the other tests run on old code too

    vit = _vit()
    assert vit_network(vit) == ("", vit)
    assert vit_network(_Grey(vit)) == ("net", vit)
    assert vit_network(_Pre(_Grey(vit))) == ("net.net", vit)
    assert vit_network(nn.Sequential(nn.Conv2d(1, 8, 3))) is None
    two = nn.ModuleDict({"a": _vit(), "b": _vit()})
    assert vit_network(two) is None  # two networks: which one the CAM reads is the user's choice
    assert arch_family(_Grey(vit)) == "vit" and arch_family(two) == "cnn"


def test_attention_explainers_still_refuse_a_wrapper_in_one_line():
    model, x = _Grey(_vit()).eval(), _inputs()[0]
    reason = explainers.get("attention")().unsupported_reason(model, x)
    assert reason is not None and "needs a timm VisionTransformer" in reason and "\n" not in reason
