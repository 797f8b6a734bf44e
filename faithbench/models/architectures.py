"""Network builders. The function name is the registry key (as in timm).

A builder takes ``(in_chans, num_classes, input_size, **params)`` and returns an ``nn.Module``
mapping ``(B, C, *spatial)`` to logits ``(B, num_classes)``. It sets ``model.arch_family``
(``"cnn"`` or ``"vit"``) so explainers can declare and check what they support.
"""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

from faithbench.registry import models


def _tag(model: nn.Module, family: str, dims: int) -> nn.Module:
    model.arch_family = family  # type: ignore[attr-defined]
    model.spatial_dims = dims  # type: ignore[attr-defined]
    return model


def _check_2d(name: str, input_size: tuple[int, ...]) -> None:
    if len(input_size) != 2:
        raise ValueError(f"model {name!r} is 2D: expected a 2D input size (H, W), got {tuple(input_size)}")


@models.register("resnet18")
def resnet18(in_chans: int, num_classes: int, input_size: tuple[int, ...], **params: Any) -> nn.Module:
    """timm ResNet-18 (He et al. 2016). At 64 px its last stage is 2x2: Grad-CAM on
    ``layer4`` is coarse; ``layer3`` (4x4) is the default CAM layer for inputs below 128 px."""
    _check_2d("resnet18", input_size)
    return _tag(timm.create_model("resnet18", pretrained=False, in_chans=in_chans,
                                  num_classes=num_classes, **params), "cnn", 2)


@models.register("vit_tiny")
def vit_tiny(in_chans: int, num_classes: int, input_size: tuple[int, ...], *, patch_size: int = 8,
             embed_dim: int = 96, depth: int = 4, num_heads: int = 3, global_pool: str = "avg",
             **params: Any) -> nn.Module:
    """A small timm VisionTransformer (Dosovitskiy et al. 2021) sized for 64 px phantoms:
    patch 8 (an 8x8 token grid at 64 px), width 96, 4 blocks, 3 heads, a class token, and
    mean pooling of the patch tokens for the head (``global_pool="avg"``; "token" uses CLS)."""
    _check_2d("vit_tiny", input_size)
    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(img_size=tuple(input_size), patch_size=patch_size, in_chans=in_chans,
                              num_classes=num_classes, embed_dim=embed_dim, depth=depth,
                              num_heads=num_heads, global_pool=global_pool, **params)
    return _tag(model, "vit", 2)


@models.register("small_cnn")
def small_cnn(in_chans: int, num_classes: int, input_size: tuple[int, ...], *, width: int = 16,
              depth: int = 3) -> nn.Module:
    """A plain CNN for 2D or 3D inputs: ``depth`` blocks of conv-BN-ReLU (the first ``depth - 1``
    followed by 2x max-pooling), global average pooling and a linear head. Blocks are named
    ``features.block{i}``; the last keeps a grid of input/2^(depth-1) for CAMs."""
    dims = len(input_size)
    if dims not in (2, 3):
        raise ValueError(f"small_cnn: expected a 2D or 3D input size, got {tuple(input_size)}")
    conv, bn, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d)
    layers: list[nn.Module] = []
    channels = in_chans
    for i in range(depth):
        out = width * 2**i
        block = [conv(channels, out, 3, padding=1), bn(out), nn.ReLU(inplace=True)]
        if i < depth - 1:
            block.append(pool(2))
        layers.append(nn.Sequential(*block))
        channels = out
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(*layers))
    model.add_module("pool", nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool3d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("head", nn.Linear(channels, num_classes))
    return _tag(model, "cnn", dims)


def build_model(name: str, in_chans: int, num_classes: int, input_size: tuple[int, ...],
                **params: Any) -> nn.Module:
    """Build a registered architecture; unknown names raise with "did you mean"."""
    builder = models.get(name)
    model = builder(in_chans, num_classes, tuple(input_size), **params)
    if not hasattr(model, "arch_family"):
        model.arch_family = "vit" if any("attn" in n for n, _ in model.named_modules()) else "cnn"
        model.spatial_dims = len(input_size)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["build_model", "count_parameters", "resnet18", "small_cnn", "vit_tiny"]
