"""Data types shared by every part of faithbench. Shapes are documented here once.

Conventions
-----------
- ``x`` (an image batch) is ``(B, C, H, W)`` in 2D or ``(B, C, D, H, W)`` in 3D; the spatial
  axes are ``range(2, x.ndim)``.
- ``saliency`` is ``(B, *spatial)``: one value per pixel/voxel, at input resolution, raw
  (no clipping, no min-max).
- ``mask`` is a bool tensor ``(B, *spatial)`` (in a :class:`Sample`, ``(*spatial)``).
- ``target`` is a long tensor ``(B,)`` of class indices.
- ``labels`` (multi-label datasets only) is a 0/1 long tensor ``(B, K)``, one column per class
  (in a :class:`Sample`, ``(K,)``); single-label datasets leave it ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import torch
from torch import Tensor


# The end of a skipped.csv reason that counts a (cell, metric)'s undefined values (undefined_reason):
# the metric ran; those samples have no row. Every other skipped.csv row is a skip.
UNDEFINED_EXAMPLES = "e.g. an empty mask, an all-zero map, too few regions or no comparable sample in the batch"
UNDEFINED_REASONS = ("; see the metric's docs): no row", "samples undefined (NaN, e.g. an empty mask or an all-zero "
                     "map): no row", "samples undefined (NaN, e.g. an empty mask): no row")  # and runs before it


def undefined_reason(missing: int, scored: int, *, multilabel: bool = False, hint: str = "") -> str:
    """``k of n samples undefined (NaN, <hint or UNDEFINED_EXAMPLES>; see the metric's docs): no row``; on
    multi-label data the units are ``(image, class) rows`` (a review: "6 of 18 samples" of 16 images), and
    ``hint`` is the metric's own cause (``Metric.undefined_hint``: class_sensitivity's "no other positive
    class in the image" was not among the examples)."""
    unit = "(image, class) rows" if multilabel else "samples"
    return f"{missing} of {scored} {unit} undefined (NaN, {hint or UNDEFINED_EXAMPLES}; see the metric's docs): no row"


class Category(str, Enum):
    FAITHFULNESS = "faithfulness"
    LOCALIZATION = "localization"
    RANDOMIZATION = "randomization"
    ROBUSTNESS = "robustness"
    COMPLEXITY = "complexity"
    AXIOMATIC = "axiomatic"


class MaskRole(str, Enum):
    """What a dataset's mask stands for, declared by the dataset (``BaseDataset.mask_roles``)
    so that metrics, runner and reports ask for a role, never for a name.

    TRUTH: the ground truth of the finding (``lesion``; a multi-label batch's ``target``, the
    explained class's mask). SHORTCUT: evidence planted to mislead (``marker``). CONTAINER:
    where any finding can be (``body``). VALIDITY: which frames are real, not padding (``valid``
    of a sequence). REGION: anatomy to compare (lungs, organs, tissue): the default.
    """

    TRUTH = "truth"
    SHORTCUT = "shortcut"
    CONTAINER = "container"
    VALIDITY = "validity"
    REGION = "region"


# the roles of the mask names the built-in datasets share; a dataset declares its own
DEFAULT_MASK_ROLES: dict[str, MaskRole] = {
    "lesion": MaskRole.TRUTH, "change": MaskRole.TRUTH, "target": MaskRole.TRUTH,
    "marker": MaskRole.SHORTCUT, "body": MaskRole.CONTAINER, "valid": MaskRole.VALIDITY}

# the gallery's names of the slices through axes 0, 1, 2 of a volume (D, H, W): anatomical planes for the
# canonical layout (S->I, A->P, R->L); nibabel's voxel axes i, j, k for an array as stored, whose axes
# follow the file's own layout (axis 0 of a RAS or LPS file runs across the patient: "axial" was a sagittal cut)
CANONICAL_PLANES = ("axial z", "coronal y", "sagittal x")
STORED_PLANES = ("stored i", "stored j", "stored k")


def masks_with_role(roles: dict[str, MaskRole], masks: dict[str, Any], role: MaskRole) -> list[str]:
    """The names among ``masks`` whose declared role is ``role`` (undeclared masks are regions),
    in the order of ``masks``."""
    return [name for name in masks if roles.get(name, MaskRole.REGION) == role]


@dataclass
class Sample:
    """One test item.

    image: float tensor ``(C, *spatial)`` in model input space.
    label: class index (int). Multi-label datasets: the first positive class (0 when none),
        kept for tables only; the truth is ``labels``.
    masks: named bool masks ``(*spatial)``, e.g. ``lesion``, ``lung_left``; an absent region
        is an all-False mask (a float or int mask of 0 and one positive value, 0/1 or 0/255, is read
        as bool; :meth:`Batch.collate` refuses any other, a probability map or a label map).
    labels: multi-label datasets only: the 0/1 vector ``(K,)`` of every class (long).
    """

    id: str
    image: Tensor
    label: int
    masks: dict[str, Tensor] = field(default_factory=dict)
    patient_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    labels: Tensor | None = None

    @property
    def positive(self) -> bool:
        """A non-zero label; a multi-label sample: any class present (the suite's ``subset: positive``)."""
        return bool(self.labels.any()) if self.labels is not None else int(self.label) != 0


@dataclass
class Batch:
    """A stack of samples: ``x (B, C, *spatial)``, ``label (B,)``, ``masks[name] (B, *spatial)``,
    and for multi-label samples ``labels (B, K)`` (``None`` for single-label ones); ``held (B,)`` bool, on
    multi-label (sample, class) units with the mask ``target``: whether row i's sample has a mask of its
    explained class (an absent one is empty in ``target``, and ``samples.csv`` gives its area NaN, not 0)."""

    ids: list[str]
    x: Tensor
    label: Tensor
    masks: dict[str, Tensor]
    labels: Tensor | None = None
    held: Tensor | None = None

    @classmethod
    def collate(cls, samples: list[Sample]) -> "Batch":
        if not samples:
            raise ValueError("cannot collate an empty list of samples")
        names = sorted(set().union(*(s.masks for s in samples)))
        spatial = samples[0].image.shape[1:]
        masks: dict[str, Tensor] = {}
        for name in names:
            stacked = []
            for s in samples:
                m = s.masks.get(name)
                if m is None:
                    m = torch.zeros(spatial, dtype=torch.bool)
                if tuple(m.shape) != tuple(spatial):
                    raise ValueError(
                        f"sample {s.id!r}: mask {name!r} has shape {tuple(m.shape)}, "
                        f"expected the image's spatial shape {tuple(spatial)}"
                    )
                on = m[m != 0].flatten() if m.dtype != torch.bool else None  # a review: a soft mask was read as
                if on is not None and len(on) and not (on[0] > 0 and bool((on == on[0]).all())):  # `!= 0`, silently
                    other = on[(on != on[0]) | ~(on > 0)][0].item() if on[0] > 0 else on[0].item()
                    raise ValueError(f"sample {s.id!r}: mask {name!r} is {m.dtype} with values other than 0 and 1 "
                                     f"(e.g. {other:.4g}); expected a bool mask: threshold it yourself (mask > 0.5)")
                stacked.append(m.bool())
            masks[name] = torch.stack(stacked)
        labels = None
        with_labels = [s.labels is not None for s in samples]
        if any(with_labels):
            if not all(with_labels):
                s = samples[with_labels.index(False)]
                raise ValueError(f"sample {s.id!r} has no multi-label vector 'labels' while others of the "
                                 f"batch have one")
            shapes = {tuple(s.labels.shape) for s in samples}  # type: ignore[union-attr]
            if len(shapes) > 1:
                raise ValueError(f"expected multi-label vectors of one shape, got {sorted(shapes)}")
            labels = torch.stack([s.labels for s in samples]).long()  # type: ignore[misc]
        return cls(
            ids=[s.id for s in samples],
            x=torch.stack([s.image for s in samples]).float(),
            label=torch.tensor([int(s.label) for s in samples], dtype=torch.long),
            masks=masks,
            labels=labels,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.ids, self.x.to(device), self.label.to(device),
                     {k: v.to(device) for k, v in self.masks.items()},
                     None if self.labels is None else self.labels.to(device),
                     None if self.held is None else self.held.to(device))


Postprocess = Literal["none", "abs", "relu"]


def category_name(category: Category | str) -> str:
    """A metric's category as ``results.csv`` writes it: the :class:`Category` value, or a
    plugin's own string."""
    return category.value if isinstance(category, Category) else str(category)


def arch_family(model: torch.nn.Module) -> Literal["cnn", "vit"]:
    """A model's architecture family: its ``arch_family`` tag where that is ``"cnn"`` or ``"vit"`` (faithbench's
    builders set it, a plugin's may: docs/plugins.md), else the guess the model factory tags a library model
    with: ``"vit"`` for timm's layout (``blocks`` and ``patch_embed``), of the model or of the one network it
    wraps (:func:`vit_network`), or a network with an
    ``nn.MultiheadAttention`` (torchvision's), ``"cnn"`` otherwise. The CAMs read it, so that a timm ViT built
    outside faithbench gets the ViT path (a review: "channels last" refusals instead)."""
    tag = getattr(model, "arch_family", None)
    if tag in ("cnn", "vit"):
        return tag
    vit = vit_network(model) is not None  # also a ViT inside a wrapper (a review: CAMs of its patch embedding)
    return "vit" if vit or any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules()) else "cnn"


def vit_network(model: torch.nn.Module) -> tuple[str, torch.nn.Module] | None:
    """(dotted name, module) of the timm ViT (``blocks`` and ``patch_embed``) ``model`` is or wraps: ``("",
    model)`` where it has that layout itself, else the one outermost submodule that has it (a model of one's own
    that adapts the input, then runs a timm ViT ``net``: ``("net", model.net)``; a held-out review: every CAM of
    such a wrapper read ``net.patch_embed.proj``, silently); None where there is none or more than one."""
    def timm_layout(module: torch.nn.Module) -> bool:
        return hasattr(module, "blocks") and hasattr(module, "patch_embed")

    if timm_layout(model):
        return "", model
    found: list[tuple[str, torch.nn.Module]] = []
    for name, module in model.named_modules():  # outer modules first: a ViT's own submodules are skipped
        if name and timm_layout(module) and not any(name.startswith(f"{outer}.") for outer, _ in found):
            found.append((name, module))
    return found[0] if len(found) == 1 else None


# Column order of the leaderboard's categories; any other category (a plugin's) follows, alphabetically,
# then OTHER (metrics whose rows give no category).
CATEGORY_ORDER = tuple(c.value for c in Category)
OTHER = "other"


def category_key(category: str) -> tuple[int, str]:
    """Sort key of a category: :data:`CATEGORY_ORDER`, then any other alphabetically, then :data:`OTHER`."""
    if category in CATEGORY_ORDER:
        return CATEGORY_ORDER.index(category), ""
    return len(CATEGORY_ORDER) + (category == OTHER), category


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the single-character insertions, deletions and substitutions from a to b."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


@dataclass(frozen=True)
class MetricInfo:
    """Metadata that travels with a metric, so every table can orient its ranks.

    requires: a subset of {"model", "explainer", "mask:<name>", "permuted_model"} (the last: the
        same recipe trained on permuted labels, which the runner trains when a metric asks).
    postprocess: what the runner applies to raw saliency before this metric (``none``, ``abs``
        or ``relu``; :func:`faithbench.metrics.base.postprocess`).
    """

    name: str
    higher_is_better: bool
    category: Category | str  # a plugin may name a category of its own (a string): tables put it last
    requires: frozenset[str] = frozenset()
    postprocess: Postprocess = "none"
    paper: str = ""

    def __post_init__(self) -> None:
        """Refuse, when the plugin is loaded, what would otherwise fail at the end of a run or sort a
        metric apart (a review: ``higher_is_better="False"``, a string, showed as ↑, passed validate
        and stopped the run's tables; ``"localisation"`` became a category of its own)."""
        where = f"MetricInfo {self.name!r}"
        if not isinstance(self.higher_is_better, bool):
            raise TypeError(f"{where}: expected higher_is_better True or False, got {self.higher_is_better!r}")
        if self.postprocess not in ("none", "abs", "relu"):
            raise ValueError(f"{where}: expected postprocess 'none', 'abs' or 'relu', got {self.postprocess!r}")
        name = category_name(self.category)
        close = [c for c in CATEGORY_ORDER if edit_distance(name.lower(), c) <= 2]
        if name not in CATEGORY_ORDER and close:
            raise ValueError(f"{where}: category {name!r} is a near-miss of the built-in {close[0]!r}: use "
                             f"Category.{close[0].upper()} (a category of its own must differ from the built-in ones)")
