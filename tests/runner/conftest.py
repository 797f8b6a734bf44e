"""Plugins that misbehave on purpose, and a dataset with a test split only, registered for one
test and unregistered after."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from faithbench.datasets.phantoms import PhantomCXR
from faithbench.explainers.base import Explainer
from faithbench.metrics.base import EvalContext, Metric
from faithbench.registry import datasets, explainers, metrics
from faithbench.types import Category, MetricInfo


class Boom(Explainer):
    """Raises on every batch."""

    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        raise RuntimeError("boom: this explainer always fails")


class NaNMap(Explainer):
    """Returns NaN saliency."""

    needs_grad = False
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        return torch.full((x.shape[0], *x.shape[2:]), float("nan"))


class HalfMap(Explainer):
    """Returns a map of half the image's size."""

    needs_grad = False
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        return x[:, 0, ::2, ::2]


class OutOfMemory(Explainer):
    """Runs out of (GPU) memory."""

    needs_grad = False
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class InfMetric(Metric):
    """Returns +Inf for the second sample of every batch."""

    info = MetricInfo("test_inf_metric", higher_is_better=True, category=Category.FAITHFULNESS)
    defaults: ClassVar[dict[str, Any]] = {}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        value = torch.zeros(ctx.x.shape[0])
        value[1:2] = float("inf")
        return {"value": value}


class Mutator(Explainer):
    """Zeroes the model's weights through ``.data`` (no version counter bump), leaves it in train
    mode and forwards a batch there (batch-norm buffers move), then returns a plain map."""

    needs_grad = False
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        for p in model.parameters():
            p.data.mul_(0)
        model.train()
        model(x)
        return x.mean(1)


class MutatingMetric(Metric):
    """Adds 1 to the first parameter in place, then returns 0."""

    info = MetricInfo("test_mutating_metric", higher_is_better=True, category=Category.FAITHFULNESS)
    defaults: ClassVar[dict[str, Any]] = {}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            next(ctx.model.parameters()).add_(1)
        return {"value": torch.zeros(ctx.x.shape[0])}


class InputMutator(Explainer):
    """Zeroes the shared batch through NumPy (no version counter bump), then returns a plain map."""

    needs_grad = False
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        x.numpy()[:] = 0.0
        return torch.rand(x.shape[0], *x.shape[2:])


class DoubleMutator(Explainer):
    """Changes the model's weights and the shared batch in place, then returns a plain map."""

    needs_grad = False
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            next(model.parameters()).add_(1)
        x.mul_(0)
        return torch.rand(x.shape[0], *x.shape[2:])


class RaisingInputMutatingMetric(Metric):
    """Fills the masks in place, then raises: its own error, the input still restored."""

    info = MetricInfo("test_raising_input_metric", higher_is_better=True, category=Category.FAITHFULNESS)
    defaults: ClassVar[dict[str, Any]] = {}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        ctx.x.mul_(0)
        raise RuntimeError("after changing x")


class InputMutatingMetric(Metric):
    """Fills the masks and the saliency in place, adds a mask and replaces the context's x; returns 0."""

    info = MetricInfo("test_input_mutating_metric", higher_is_better=True, category=Category.FAITHFULNESS)
    defaults: ClassVar[dict[str, Any]] = {}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> dict[str, Tensor]:
        for mask in ctx.masks.values():
            mask.fill_(True)
        ctx.saliency.fill_(1.0)
        ctx.masks["extra"] = torch.ones_like(ctx.saliency, dtype=torch.bool)
        ctx.x = torch.zeros_like(ctx.x)
        return {"value": torch.zeros(ctx.x.shape[0])}


FAILING_EXPLAINERS = {"test_boom": Boom, "test_nan_map": NaNMap, "test_half_map": HalfMap, "test_oom": OutOfMemory,
                      "test_mutator": Mutator,
                      "test_input_mutator": InputMutator, "test_double_mutator": DoubleMutator}


@pytest.fixture
def failing_plugins():
    for name, cls in FAILING_EXPLAINERS.items():
        explainers.register(name)(cls)
    metrics.register("test_inf_metric")(InfMetric)
    metrics.register("test_mutating_metric")(MutatingMetric)
    metrics.register("test_input_mutating_metric")(InputMutatingMetric)
    metrics.register("test_raising_input_metric")(RaisingInputMutatingMetric)
    try:
        yield
    finally:
        for name in FAILING_EXPLAINERS:
            explainers.unregister(name)
        metrics.unregister("test_inf_metric")
        metrics.unregister("test_mutating_metric")
        metrics.unregister("test_input_mutating_metric")
        metrics.unregister("test_raising_input_metric")


class PhantomTestSplitOnly(PhantomCXR):
    """phantom_cxr with a test split only: nothing to train or calibrate on."""

    def __init__(self, split: str = "test", **params: Any) -> None:
        if split != "test":
            raise ValueError(f"no items in split {split!r}")
        super().__init__(split, **params)


@pytest.fixture
def test_only_dataset():  # noqa: ANN201
    """The registered name of :class:`PhantomTestSplitOnly`, for one test."""
    datasets.register("zz_test_only")(PhantomTestSplitOnly)
    try:
        yield "zz_test_only"
    finally:
        datasets.unregister("zz_test_only")
