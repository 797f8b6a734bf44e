"""The explainer protocol and base class.

An explainer maps ``(model, x (B, C, *spatial), target (B,))`` to RAW saliency
``(B, *spatial)`` at input resolution: no clipping, no absolute value, no min-max. The
runner applies any post-processing a metric asks for, and records it. One exception: a CAM's own
ReLU belongs to the method and is applied on the layer's grid, before upsampling
(:mod:`faithbench.explainers.cam`; ``relu=False`` keeps the signed grid).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from faithbench.configurable import Configurable


@runtime_checkable
class ExplainerProtocol(Protocol):
    def __call__(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor: ...


class Explainer(Configurable):
    """Base class: subclasses implement :meth:`explain` and declare their capabilities.

    Capabilities (class attributes): ``family``, ``dims`` (spatial dims supported),
    ``architectures`` (``"cnn"``, ``"vit"``), ``needs_grad``, ``paper``.
    Randomness: :meth:`__call__` seeds torch's and NumPy's global generators from ``seed`` (and
    restores both afterwards; captum's GradientSHAP draws from NumPy), so every explainer is
    deterministic given the cell's seed.
    """

    family: ClassVar[str] = "other"
    dims: ClassVar[frozenset[int]] = frozenset({2, 3})
    architectures: ClassVar[frozenset[str]] = frozenset({"cnn", "vit"})
    needs_grad: ClassVar[bool] = True
    input_grad: ClassVar[bool] = True  # needs d score / d x (CAMs need gradients at a layer only)
    paper: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        super().__init__(**params)
        self.seed = int(seed)
        self.last_info: dict[str, Any] = {}

    def unsupported_reason(self, model: nn.Module, x: Tensor) -> str | None:
        """Why this explainer cannot run on (model, x), or None if it can."""
        dims = x.ndim - 2
        if dims not in self.dims:
            return f"{self.name} supports {sorted(self.dims)}D inputs, got {dims}D"
        family = getattr(model, "arch_family", "cnn")
        if family not in self.architectures:
            return f"{self.name} supports {sorted(self.architectures)} models, got {family}"
        return None

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        if target.shape != (x.shape[0],):
            raise ValueError(f"{self.name}: expected target of shape ({x.shape[0]},), got {tuple(target.shape)}")
        model.eval()
        if self.needs_grad and self.input_grad:
            # a leaf that requires grad, so gradient libraries need not flip it (and warn)
            x = x.detach().clone().requires_grad_(True)
        devices = [x.device] if x.device.type != "cpu" else []
        numpy_state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                np.random.seed(self.seed % 2**32)
                saliency = self.explain(model, x, target.long())
        finally:
            np.random.set_state(numpy_state)
        expected = (x.shape[0], *x.shape[2:])
        if tuple(saliency.shape) != expected:
            raise ValueError(f"{self.name}: expected saliency of shape {expected}, got {tuple(saliency.shape)}")
        return saliency.detach().float()
