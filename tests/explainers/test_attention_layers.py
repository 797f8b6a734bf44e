"""An attention matrix is no CAM layer (a held-out review: Swin's refusal named its last ``attn.attn_drop`` as the
"last channels-first output", and a hand-set ``attn.softmax`` returned a map of the (B * windows, heads, 49, 49)
attention weights upsampled as a 49 x 49 grid; on an earlier stage a shape mismatch)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench.explainers.layers import attention_parts, attention_problem, find_target_layer
from faithbench.registry import explainers


class TokenAttention(nn.Module):
    """Self-attention over (B, N, C) tokens; its softmax outputs the (B, 1, N, N) weights."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.qk = nn.Linear(channels, 2 * channels)
        self.softmax = nn.Softmax(dim=-1)
        self.drop = nn.Dropout(0.0)

    def forward(self, tokens):
        q, k = self.qk(tokens).chunk(2, dim=-1)
        weights = self.drop(self.softmax((q @ k.transpose(1, 2))[:, None] / q.shape[-1] ** 0.5))
        return tokens + weights[:, 0] @ tokens


class Stage(nn.Module):
    """(B, C, h, w) -> attention over the h * w tokens -> (B, h, w, C), channels last as Swin's stages."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.attn = TokenAttention(channels)

    def forward(self, x):
        b, c, h, w = x.shape
        return self.attn(x.flatten(2).transpose(1, 2)).view(b, h, w, c)


class Windows(nn.Module):
    """(B, C, 4, 4) -> (4 B, C, 2, 2): the four windows of each image, as Swin partitions them."""

    def forward(self, x):
        b, c = x.shape[:2]
        return x.view(b, c, 2, 2, 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(4 * b, c, 2, 2)


class PatchEmbed(nn.Module):
    """An 8-px patch convolution (4 x 4 on 32 px), then a norm channels last, as timm's Swin."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, 12, 8, stride=8)
        self.norm = nn.LayerNorm(12)

    def forward(self, x):
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class Net(nn.Module):
    """A Swin in miniature: a patch embedding (channels last), windows, one attention stage channels last (its
    weights: (B, 1, 16, 16), a "grid" of 16 for the image's 32 px), a norm, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = PatchEmbed()
        self.windows = Windows()
        self.stage = Stage(12)
        self.norm = nn.LayerNorm(12)
        self.fc = nn.Linear(12, 2)

    def forward(self, x):
        h = self.patch(x).permute(0, 3, 1, 2)
        h = h + self.windows(h).reshape(h.shape)
        return self.fc(self.norm(self.stage(h)).mean((1, 2)))


def _net() -> Net:
    torch.manual_seed(0)
    net = Net().eval()
    net.arch_family = "cnn"
    return net


def test_the_parts_of_an_attention_module_are_found_by_its_class_name():
    parts = attention_parts(_net())
    assert set(parts) == {"stage.attn.qk", "stage.attn.softmax", "stage.attn.drop"}  # not stage.attn itself
    assert "'stage.attn' (TokenAttention)" in parts["stage.attn.softmax"]
    free = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Softmax(dim=1))
    assert attention_parts(free) == {"1": "is a softmax (attention weights)"}


def test_the_refusal_names_the_last_feature_map_not_the_attention_weights():
    # no top-level feature map: the search goes into the last child that holds one, as in Swin
    with pytest.raises(ValueError, match="continues channels last past its last channels-first output 'patch.proj' "):
        find_target_layer(_net(), torch.rand(1, 1, 32, 32))  # was 'stage.attn.drop', as Swin's attn_drop


@pytest.mark.parametrize("layer", ["stage.attn.softmax", "stage.attn.drop"])
def test_a_hand_set_attention_part_is_refused(layer):
    net = _net()
    cam = explainers.get("gradcam")(target_layer=layer)
    with pytest.raises(ValueError) as err:
        cam(net, torch.rand(2, 1, 32, 32), torch.tensor([0, 1]))
    message = str(err.value)
    assert message.startswith(f"gradcam: target_layer {layer!r} is inside the attention module 'stage.attn'")
    assert "not a (B, C, *grid) feature map" in message and "\n" not in message


def test_a_hand_set_layer_of_windows_is_not_the_batchs():
    net = _net()
    with pytest.raises(ValueError, match=r"target_layer 'windows' outputs \(8, 12, 2, 2\) for an input of "
                                         r"\(2, 1, 32, 32\): not \(B, C, \*grid\)"):
        explainers.get("gradcam")(target_layer="windows")(net, torch.rand(2, 1, 32, 32), torch.tensor([0, 1]))


def test_timm_swin_is_refused_naming_its_patch_embedding():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=64, window_size=2,
                             num_classes=3, embed_dim=24, depths=(1, 1, 2, 2), num_heads=(1, 1, 2, 2)).eval()
    swin.arch_family = "cnn"
    x, target = torch.rand(1, 3, 64, 64), torch.tensor([0])
    reason = explainers.get("gradcam")().unsupported_reason(swin, x)
    assert "last channels-first output 'patch_embed.proj'" in reason
    for layer in ["layers.3.blocks.1.attn.softmax", "layers.3.blocks.1.attn.attn_drop",
                  "layers.2.blocks.1.attn.softmax"]:  # the last stage has one window: (1, 2, 4, 4) passed before
        with pytest.raises(ValueError, match="is inside the attention module 'layers.[23].blocks.1.attn' "
                                             r"\(WindowAttention\)"):
            explainers.get("gradcam")(target_layer=layer)(swin, x, target)
    assert explainers.get("gradcam")(target_layer="patch_embed.proj")(swin, x, target).shape == (1, 64, 64)


def test_a_convolution_block_named_attn_is_no_attention_module():
    """ResNeSt's ``SplitAttn`` holds its main 3 x 3 convolution (a diff review: ``layer3.0.conv2.conv`` of timm's
    resnest14d was refused as an attention part; CBAM's ``ChannelAttn`` likewise): only "Attention" counts."""

    class SplitAttn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(x).relu()

    net = nn.Sequential(SplitAttn(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    assert attention_parts(net) == {}
    assert attention_problem(net, "0.conv") is None
