"""Temporal models: a frozen 2D backbone on every visit and a trainable sequence head.

The temporal study's design: per-visit features from a frozen backbone (the layer before its
classifier), then a small sequence model. Input ``(B, C, T, H, W)`` (time as the first spatial
axis, see :mod:`faithbench.datasets.longitudinal`), output logits ``(B, num_classes)``.

Structure (top-level children, so explainers see a 3D feature map):

- ``encoder`` (:class:`VisitEncoder`): the 2D backbone's last feature map of every visit,
  ``(B, C, T, H, W) -> (B, F, T, h, w)``. A CAM explainer finds it as the model's feature-map
  layer: Grad-CAM then weighs its channels over (T, h, w) and returns a (T, H, W) map.
- ``pool``: global average over (h, w) -> ``(B, T, F)``: the backbone's pre-logit features per
  visit (small_cnn and timm's CNNs pool by the mean).
- ``head``: :class:`SequenceMLP` (the study's "DNN": flatten (T, F), Linear to ``hidden`` (64),
  ReLU, dropout (0.1), Linear) or :class:`SequenceGRU` (a GRU over the visits, its last state,
  dropout, Linear).

The backbone is a checkpoint of a recipe, trained on the dataset's single visits
(:meth:`~faithbench.datasets.longitudinal.LongitudinalDataset.visits`) and cached by its own hash:
:func:`attach_backbone`, called by :func:`~faithbench.models.checkpoint.load_checkpoint` before the
head is trained. It stays frozen: only the head is trained, on the backbone's features computed
once (:func:`~faithbench.models.training.train_on_frozen_features`), and the backbone's BatchNorm
stays in eval mode. Padding frames go through
the backbone like any visit (an all-background image): the head sees them.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor, nn

from faithbench.configurable import AT_LEAST_ONE, DROPOUT, check_bound
from faithbench.models.dependencies import Dependency
from faithbench.registry import models


def feature_map(backbone: nn.Module, x: Tensor) -> Tensor:
    """The last feature map ``(N, F, h, w)`` of a 2D backbone: ``forward_features`` (timm CNNs) or
    ``features`` (``small_cnn``)."""
    if hasattr(backbone, "forward_features"):
        out = backbone.forward_features(x)
    elif hasattr(backbone, "features"):
        out = backbone.features(x)
    else:
        raise ValueError(f"temporal backbone {type(backbone).__name__}: expected a 2D CNN with "
                         f"forward_features (timm) or features (small_cnn)")
    if out.ndim != 4:
        raise ValueError(f"temporal backbone {type(backbone).__name__}: expected a feature map (N, F, h, w), "
                         f"got shape {tuple(out.shape)} (a ViT's tokens are not supported)")
    return out


class VisitEncoder(nn.Module):
    """``(B, C, T, H, W) -> (B, F, T, h, w)``: the backbone's feature map of every visit."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: Tensor) -> Tensor:
        b, c, t = x.shape[:3]
        frames = x.movedim(2, 1).reshape(b * t, c, *x.shape[3:])
        fmap = feature_map(self.backbone, frames)
        return fmap.reshape(b, t, *fmap.shape[1:]).movedim(1, 2)


class VisitPool(nn.Module):
    """``(B, F, T, h, w) -> (B, T, F)``: mean over space, per visit."""

    def forward(self, fmap: Tensor) -> Tensor:
        return fmap.mean(dim=(3, 4)).transpose(1, 2)


class SequenceMLP(nn.Module):
    """``(B, T, F) -> (B, K)``: flatten, Linear(T F, hidden), ReLU, Dropout, Linear(hidden, K)."""

    def __init__(self, seq_len: int, features: int, num_classes: int, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(seq_len * features, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class SequenceGRU(nn.Module):
    """``(B, T, F) -> (B, K)``: a one-layer GRU (``hidden``) over the visits, oldest first; its
    state after the last visit, Dropout, Linear(hidden, K)."""

    def __init__(self, seq_len: int, features: int, num_classes: int, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, z: Tensor) -> Tensor:
        _, h = self.gru(z)
        return self.out(self.drop(h[-1]))


class TemporalClassifier(nn.Module):
    """encoder -> pool -> head; see the module docstring. ``backbone_spec`` (architecture, params,
    recipe) is the checkpoint dependency ``backbone``: trained on single visits (the dataset's
    ``visits()``) and attached frozen before the head is trained."""

    arch_family = "cnn"
    spatial_dims = 3
    temporal = True

    def __init__(self, backbone: nn.Module, head: nn.Module, backbone_spec: dict[str, Any]) -> None:
        super().__init__()
        self.encoder = VisitEncoder(backbone)
        self.pool = VisitPool()
        self.head = head
        self.backbone_spec = backbone_spec
        self.freeze_backbone()

    def checkpoint_dependencies(self) -> dict[str, Dependency]:
        spec = self.backbone_spec
        return {"backbone": Dependency(spec["name"], dict(spec["params"]), dict(spec["recipe"]), data_view="visits")}

    def attach_dependency(self, name: str, model: nn.Module) -> None:
        if name != "backbone":
            raise KeyError(f"a temporal model depends on 'backbone' only, got {name!r}")
        self.encoder.backbone.load_state_dict(model.state_dict())
        self.freeze_backbone()

    def freeze_backbone(self) -> None:
        """BatchNorm of the backbone in eval mode for good. Its weights stay frozen because only
        ``head`` is trained (on :meth:`frozen_features`); they keep ``requires_grad`` so that
        explainers can take gradients at the backbone's layers (a CAM at ``encoder``)."""
        self.encoder.eval()

    def train(self, mode: bool = True) -> "TemporalClassifier":
        super().train(mode)
        self.encoder.eval()  # frozen: BatchNorm statistics never move
        return self

    @torch.no_grad()
    def frozen_features(self, x: Tensor) -> Tensor:
        """``(B, C, T, H, W) -> (B, T, F)``: what the head is trained on."""
        return self.pool(self.encoder(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.encoder(x)))


def _temporal(head_cls: type, in_chans: int, num_classes: int, input_size: tuple[int, ...], backbone: str,
              backbone_params: dict[str, Any] | None, backbone_recipe: dict[str, Any] | None, hidden: int,
              dropout: float, name: str) -> TemporalClassifier:
    from faithbench.models.architectures import build_model
    from faithbench.models.training import Recipe

    if len(input_size) != 3:
        raise ValueError(f"model {name!r} is temporal: expected an input size (T, H, W), got {tuple(input_size)}")
    if backbone.startswith("temporal_"):
        raise ValueError(f"model {name!r}: the backbone must be a 2D architecture, got {backbone!r}")
    check_bound(name, "hidden", hidden, AT_LEAST_ONE)
    check_bound(name, "dropout", dropout, DROPOUT)
    try:  # validated here, so a typo fails at suite validation, in one line naming the key
        recipe = Recipe(**(backbone_recipe or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where, why = ".".join(map(str, first["loc"])), first["msg"].removeprefix("Value error, ")
        raise ValueError(f"model {name!r}: backbone_recipe.{where}: {why}") from None
    seq_len, space = input_size[0], tuple(input_size[1:])
    net = build_model(backbone, in_chans, num_classes, space, **(backbone_params or {}))
    net.eval()
    with torch.no_grad():
        features = feature_map(net, torch.zeros(1, in_chans, *space)).shape[1]
    head = head_cls(seq_len, features, num_classes, hidden=hidden, dropout=dropout)
    spec = {"name": backbone, "params": dict(backbone_params or {}), "recipe": recipe.model_dump()}
    return TemporalClassifier(net, head, spec)


@models.register("temporal_mlp")
def temporal_mlp(in_chans: int, num_classes: int, input_size: tuple[int, ...], *, backbone: str = "small_cnn",
                 backbone_params: dict[str, Any] | None = None, backbone_recipe: dict[str, Any] | None = None,
                 hidden: int = 64, dropout: float = 0.1) -> nn.Module:
    """The temporal study's model: a frozen 2D ``backbone`` (trained by ``backbone_recipe`` on single
    visits) and an MLP over the flattened (T, F) sequence (hidden 64, dropout 0.1)."""
    return _temporal(SequenceMLP, in_chans, num_classes, input_size, backbone, backbone_params, backbone_recipe,
                     hidden, dropout, "temporal_mlp")


@models.register("temporal_gru")
def temporal_gru(in_chans: int, num_classes: int, input_size: tuple[int, ...], *, backbone: str = "small_cnn",
                 backbone_params: dict[str, Any] | None = None, backbone_recipe: dict[str, Any] | None = None,
                 hidden: int = 64, dropout: float = 0.1) -> nn.Module:
    """A frozen 2D ``backbone`` and a GRU over the visits (hidden 64, dropout 0.1)."""
    return _temporal(SequenceGRU, in_chans, num_classes, input_size, backbone, backbone_params, backbone_recipe,
                     hidden, dropout, "temporal_gru")


__all__ = ["SequenceGRU", "SequenceMLP", "TemporalClassifier", "VisitEncoder", "VisitPool", "feature_map", "temporal_gru", "temporal_mlp"]
