"""Tiny models and contexts shared by the metric tests (as fixtures: ``tiny_cnn``, ``make_ctx``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench.metrics.base import EvalContext, ForwardCounter


class TinyCNN(nn.Module):
    """conv -> relu -> pool -> linear; 2D or 3D."""

    def __init__(self, dims: int = 2, channels: int = 1, classes: int = 3, width: int = 4) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        pool = nn.AdaptiveAvgPool2d if dims == 2 else nn.AdaptiveAvgPool3d
        self.conv = conv(channels, width, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = pool(2)
        self.fc = nn.Linear(width * 2**dims, classes)
        self.arch_family = "cnn"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


def make_ctx(model: nn.Module, x: torch.Tensor, saliency: torch.Tensor, *, target: torch.Tensor | None = None,
             masks: dict[str, torch.Tensor] | None = None, explainer=None, seed: int = 0, **kw) -> EvalContext:
    if target is None:
        target = torch.ones(x.shape[0], dtype=torch.long)
    return EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks=masks or {},
                       predict=ForwardCounter(model), explainer=explainer, seed=seed, **kw)


@pytest.fixture
def tiny_cnn() -> type[TinyCNN]:
    return TinyCNN


@pytest.fixture(name="make_ctx")
def make_ctx_fixture():  # noqa: ANN201
    return make_ctx
