"""A pretrained network's own input convention, applied in front of it.

Datasets give images in [0, 1] at their own size and channel count; a pretrained network expects
its training convention (timm: ``pretrained_cfg`` / ``resolve_data_config``; torchvision: the
weights' ``transforms()``). :class:`InputTransform` maps one to the other, in this order:

1. channels: ``channels`` picks input channels (``[1]``: the green channel of an RGB fundus
   image); then a 1-channel image is replicated to the ``in_chans`` the network needs;
2. resize to ``size`` (H, W) with ``interpolation`` (``bilinear``/``bicubic`` as PIL resizes a
   float image: torch's antialiased kernels, also when enlarging, where its plain bicubic uses
   a = -0.75 instead of PIL's -0.5; measured against PIL's mode ``F``, 28 -> 224 px: 2.4e-7 instead
   of 0.085, and 1.4e-5 for 300 -> 224; ``nearest``), when the image is not that size already
   (``TRANSFORM_VERSION`` 2; version 1 used the plain kernel when enlarging);
3. normalise per channel: ``(x - mean) / std``, on every spatial axis (images and volumes).

``size`` is 2D: volumes are not resized here (a 3D ``size`` is a suite error naming the dataset's own
``size`` as the fix; a 2D one in front of a volume is refused when the network first runs).

There is no centre crop: a crop would hide part of the image from the model while the
explanation and the masks still cover it.

The transform is attached as a forward pre-hook of the network itself
(:func:`attach_input_transform`), so the network stays the root module: every module name
(``layer4``, ``blocks.11.norm1``), ``model.blocks``, ``model.patch_embed`` and the state dict are
the library's own, and explainers and metrics see dataset space (the deletion ``zero`` baseline
stays the dataset's background). The transform is also the child ``input_transform`` (no
parameters, non-persistent buffers), so ``.to(device)`` moves it and weights files are unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor, nn

from faithbench.configurable import Float, Int
from faithbench.models.errors import InputShapeError
from faithbench.names import counted

MAX_SIDE = 8192  # pixels per side a preprocess size may ask for (a review: size [1000000, 32] was taken)

# A fuzzing review: std 1e-300 is 0 in float32, so every input became inf and the run blamed the lr.
MIN_STD, MAX_NORM = 1e-6, 1e6
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
TRANSFORM_VERSION = "2"  # in the checkpoint keys of networks with a transform: 2, bicubic enlarging as PIL


@dataclass(frozen=True)
class InputConfig:
    """What a network expects: ``in_chans`` channels, ``size`` (H, W) or None (any size),
    ``mean``/``std`` per channel (None: no normalisation), ``interpolation`` for resizing and
    ``channels`` (input channels to keep first, or None for all)."""

    in_chans: int
    size: tuple[int, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str = "bilinear"
    channels: tuple[int, ...] | None = None
    source: str = ""  # where the values came from (timm pretrained_cfg, torchvision weights, suite)

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation: expected one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and len(value) not in (1, self.in_chans):
                wanted = "1 value" if self.in_chans == 1 else f"1 or {self.in_chans} values (one per channel)"
                raise ValueError(f"{name}: expected {wanted}, got {len(value)}")
        if self.std is not None and not all(MIN_STD <= s <= MAX_NORM for s in self.std):
            raise ValueError(f"std: expected positive values from {MIN_STD:g} to {MAX_NORM:g} ((x - mean) / std of an "
                             f"input in [0, 1] overflows float32 or flattens to a constant beyond), got {self.std}")
        if self.mean is not None and not all(-MAX_NORM <= m <= MAX_NORM for m in self.mean):
            raise ValueError(f"mean: expected values from {-MAX_NORM:g} to {MAX_NORM:g} (inputs are in [0, 1]), "
                             f"got {self.mean}")

    def record(self) -> dict[str, Any]:
        """JSON-ready, for the checkpoint's info (``info["input"]``)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


class InputTransform(nn.Module):
    """``(B, C, H, W)`` in [0, 1] (dataset space) -> ``(B, in_chans, *size)`` normalised (model space)."""

    def __init__(self, config: InputConfig) -> None:
        super().__init__()
        self.config = config
        mean = torch.tensor(config.mean if config.mean is not None else (0.0,), dtype=torch.float32)
        std = torch.tensor(config.std if config.std is not None else (1.0,), dtype=torch.float32)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        cfg = self.config
        if cfg.channels is not None:
            if max(cfg.channels) >= x.shape[1]:
                raise ValueError(f"input transform: channels {list(cfg.channels)} picked from an image with "
                                 f"{x.shape[1]} channels")
            x = x[:, list(cfg.channels)]
        if x.shape[1] != cfg.in_chans:
            if x.shape[1] != 1:
                expects = counted(cfg.in_chans, "channel")
                raise ValueError(f"input transform: the network expects {expects}, the image has "
                                 f"{x.shape[1]} (only 1-channel images are replicated)")
            x = x.expand(-1, cfg.in_chans, *x.shape[2:])
        if cfg.size is not None and tuple(x.shape[2:]) != tuple(cfg.size):
            if x.ndim != 4:
                raise InputShapeError(f"input transform: size {list(cfg.size)} resizes 2D images, got an input of "
                                      f"shape {tuple(x.shape)}; for a volume leave size out of preprocess and give the "
                                      "dataset the size the network takes")
            kwargs: dict[str, Any] = {}
            if cfg.interpolation != "nearest":  # antialias also when enlarging: PIL's bicubic kernel (a = -0.5)
                kwargs = {"align_corners": False, "antialias": True}
            x = F.interpolate(x, size=tuple(cfg.size), mode=cfg.interpolation, **kwargs)
        if cfg.mean is not None or cfg.std is not None:  # per channel, on every spatial axis: 2D and 3D (a review:
            shape = (1, -1) + (1,) * (x.ndim - 2)  # a 2D view put a volume's channel means on its depth axis)
            x = (x - self.mean.to(x.device, x.dtype).view(shape)) / self.std.to(x.device, x.dtype).view(shape)
        return x

    def extra_repr(self) -> str:
        cfg = self.config
        return f"in_chans={cfg.in_chans}, size={cfg.size}, mean={cfg.mean}, std={cfg.std}, " \
               f"interpolation={cfg.interpolation!r}, channels={cfg.channels}"


def _pre_hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (module.input_transform(args[0]), *args[1:])


def attach_input_transform(model: nn.Module, config: InputConfig) -> nn.Module:
    """Put ``InputTransform(config)`` in front of ``model`` (in place; returns ``model``).

    A forward pre-hook, not a wrapper module, so module names and attributes stay the
    network's own (see the module docstring). An ``nn.Sequential`` runs every child in turn, so
    there the transform is an attribute, not a child (a review: as its last child it also ran on
    the logits); its buffers follow the input's device (``forward``)."""
    if hasattr(model, "input_transform"):
        raise ValueError(f"{type(model).__name__} already has an input_transform")
    transform = InputTransform(config)
    if isinstance(model, nn.Sequential):
        object.__setattr__(model, "input_transform", transform)  # outside _modules: not a layer of the sequence
    else:
        model.add_module("input_transform", transform)
    model.register_forward_pre_hook(_pre_hook)
    return model


def input_config_from_timm(model: nn.Module, in_chans: int) -> InputConfig:
    """The timm model's own convention (``timm.data.resolve_data_config``: ``input_size``,
    ``mean``, ``std``, ``interpolation`` of its ``pretrained_cfg``); ``in_chans``: the channels
    it was built with (mean/std are dropped to their channel mean when it is not 3)."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config(model=model)
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if len(mean) != in_chans:
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    interpolation = cfg.get("interpolation", "bilinear")
    return InputConfig(in_chans=in_chans, size=tuple(cfg["input_size"][1:]), mean=mean, std=std,
                       interpolation=interpolation if interpolation in INTERPOLATIONS else "bilinear",
                       source="timm pretrained_cfg")


def input_config_from_torchvision(weights: Any, size: int = 224) -> InputConfig:
    """torchvision's convention: the weights' ``transforms()`` (crop size, mean, std,
    interpolation) or, without weights, ImageNet's mean/std at ``size``."""
    if weights is None:
        return InputConfig(in_chans=3, size=(size, size), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                           source="torchvision ImageNet defaults")
    t = weights.transforms()
    crop = tuple(t.crop_size) if len(t.crop_size) == 2 else (t.crop_size[0],) * 2
    mode = getattr(t.interpolation, "value", str(t.interpolation))
    return InputConfig(in_chans=3, size=crop, mean=tuple(t.mean), std=tuple(t.std),
                       interpolation=mode if mode in INTERPOLATIONS else "bilinear",
                       source=f"torchvision {weights}")




Side = Annotated[Int, Field(ge=1, le=MAX_SIDE)]


class PreprocessSpec(BaseModel):
    """A model entry's ``preprocess:`` mapping; each key given overrides the default input config
    (``size: [224, 224]``, ``mean: [0.5]``, ``std: [0.25]``, ``interpolation: bicubic``,
    ``channels: [1]`` (keep the green channel of RGB))."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: tuple[Side, Side] | None = None
    mean: tuple[Float, ...] | None = None
    std: tuple[Float, ...] | None = None
    interpolation: Literal["bilinear", "bicubic", "nearest"] | None = None
    channels: tuple[Annotated[Int, Field(ge=0)], ...] | None = Field(None, min_length=1)  # -1 is no last channel

    @field_validator("size", mode="before")
    @classmethod
    def _two_sides(cls, value: Any) -> Any:
        """``size`` is (H, W): the transform resizes 2D images, not volumes (a review: [64, 64, 64] for a MONAI 3D
        network got pydantic's "Tuple should have at most 2 items")."""
        if isinstance(value, (list, tuple)) and len(value) != 2:
            got = f"{counted(len(value), 'side')} {list(value)}"
            raise ValueError(f"expected [H, W], got {got}: the input transform resizes 2D images, not volumes; "
                             "for a 3D network give the dataset the size it takes (medmnist: size: 64; volume: "
                             "size: [D, H, W]) and leave size out here" if len(value) == 3 else
                             f"expected [H, W], got {got}")
        return value


def resolve_input_config(default: InputConfig | None, preprocess: Any, in_chans: int) -> InputConfig | None:
    """The entry's input config: ``"auto"`` -> ``default``; ``"none"`` -> no transform; a
    :class:`PreprocessSpec` -> ``default`` (or a plain ``in_chans`` config) with its keys replaced."""
    if preprocess == "none":
        return None
    if preprocess == "auto" or preprocess is None:
        return default
    base = default or InputConfig(in_chans=in_chans)
    updates = preprocess.model_dump(exclude_none=True)
    return replace(base, **updates, source=f"{base.source or 'identity'} + suite preprocess {updates}")


__all__ = ["InputConfig", "InputTransform", "PreprocessSpec", "attach_input_transform", "input_config_from_timm",
           "input_config_from_torchvision", "resolve_input_config"]
