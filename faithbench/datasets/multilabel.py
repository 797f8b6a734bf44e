"""A multi-label chest phantom: two findings that can co-occur, each with its exact mask.

``phantom_cxr_multilabel`` takes the anatomy, texture and noise of ``phantom_cxr`` (generated with
no lesion) and plants, independently with probability ``prevalence`` each,

- ``nodule``: a bright Gaussian blob (as ``phantom_cxr``'s lesion), mask = its disc;
- ``cavity``: a thick-walled cavity, a bright ring around a dark (air) lumen, visibly different
  from the nodule; mask = the disc of the ring's outer radius,

each wholly inside a lung, never overlapping (when both are present, at least 2 px apart). The
classes are independent, so a model must look at each finding to predict each class, and the
saliency for ``nodule`` and for ``cavity`` must differ on an image that has both (the
``class_sensitivity`` check). Generation is deterministic from (seed, split, index).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from faithbench.configurable import (AT_LEAST_ONE, NON_NEGATIVE, OPEN_UNIT, POSITIVE,
                                   Bound, check_bound, check_range_pair)
from faithbench.datasets.base import BaseDataset, Split
from faithbench.datasets.phantoms import MAX_N, SEED, _SPLIT_OFFSET, PhantomCXR, _erode
from faithbench.registry import datasets
from faithbench.types import Sample


_LESION_MASKS = ("lesion", "lung_lesion_side", "lung_contralateral")  # phantom_cxr's, of a lesion this one lacks
TAIL_CUT = 1e-6  # the nodule's Gaussian is 0 where below this share of its peak (about 5.3 sigma out)
TINY = 1e-6  # pixel values below it are 0 (a held-out review: subnormal values, down to 1.4e-45, in the
# background made relative_input_stability with zeros: skip about 1e-41 for every explainer)


@datasets.register("phantom_cxr_multilabel")
class PhantomCXRMultiLabel(BaseDataset):
    """2D multi-label chest phantom, ``(C, size, size)`` in [0, 1], background 0, no value in (0, 1e-6).

    Parameters (all explicit, all recorded in the dataset spec):
        n: samples in this split (default: 2000 train, 400 val, 500 test).
        size: image side in pixels (64; at least 32). channels: image channels (1).
        seed: generation seed (0). prevalence: P(class present), in (0, 1), the same for each class and
            independent between classes (0.5: a quarter of the images have both).
        contrast: added intensity of the nodule's centre and of the cavity's wall (0.35).
        nodule_radius: (min, max) in pixels at size 64 ((2.5, 4.0)).
        cavity_radius: (min, max) outer radius in pixels at size 64 ((4.0, 5.5)); the wall is
            40% of the radius thick and the lumen is set to 0.02 (air).
        noise: std of the pixel noise of the anatomy (0.03).

    Classes ``("nodule", "cavity")``; ``Sample.labels`` is the 0/1 vector, ``label`` the first
    positive class (0 when none). Masks: ``nodule``, ``cavity`` (all False when absent),
    ``lung_left``, ``lung_right``, ``heart``, ``spine``, ``body``. No ``lesion`` mask: localise
    against the explained class's mask with ``mask: target`` (the runner builds it per row); nor
    ``phantom_cxr``'s ``lung_lesion_side`` / ``lung_contralateral``, which belong to its lesion (a review:
    here they named a lung drawn at random, holding neither finding, and a region test on them meant nothing).
    """

    classes = ("nodule", "cavity")
    spatial_dims = 2
    multilabel = True
    background = 0.0
    version = "3"  # 2: no lung_lesion_side / lung_contralateral (a lung drawn at random, unrelated to the findings);
    # 3: values below TINY are 0 (the nodule's Gaussian tail left values down to 1e-45 in the background)
    default_n = {"train": 2000, "val": 400, "test": 500}

    def __init__(self, split: Split = "test", *, n: int | None = None, size: int = 64, channels: int = 1,
                 seed: int = 0, prevalence: float = 0.5, contrast: float = 0.35,
                 nodule_radius: tuple[float, float] = (2.5, 4.0), cavity_radius: tuple[float, float] = (4.0, 5.5),
                 noise: float = 0.03) -> None:
        owner = "phantom_cxr_multilabel"
        n = self.default_n[split] if n is None else n
        check_bound(owner, "n", n, MAX_N)
        check_bound(owner, "size", size, Bound(PhantomCXR.min_size, PhantomCXR.max_size))
        check_bound(owner, "channels", channels, AT_LEAST_ONE)
        check_bound(owner, "seed", seed, SEED)
        check_bound(owner, "prevalence", prevalence, OPEN_UNIT, "at 0 or 1 a class is never or always present "
                                                                "and its test AUC is undefined")
        check_bound(owner, "contrast", contrast, POSITIVE)
        check_range_pair(owner, "nodule_radius", nodule_radius)
        check_range_pair(owner, "cavity_radius", cavity_radius)
        check_bound(owner, "noise", noise, NON_NEGATIVE)
        # the anatomy: phantom_cxr without a lesion (prevalence 0), 1 channel (repeated at the end)
        self._anatomy = PhantomCXR.anatomy(split, n=n, size=size, seed=seed, noise=noise)
        super().__init__(split, n=n, size=size, channels=channels, seed=seed, prevalence=prevalence,
                         contrast=contrast, nodule_radius=list(nodule_radius), cavity_radius=list(cavity_radius),
                         noise=noise)
        self.n, self.size, self.channels, self.seed = n, size, channels, seed
        self.prevalence, self.contrast = prevalence, contrast
        self.nodule_radius, self.cavity_radius = tuple(nodule_radius), tuple(cavity_radius)
        self._grid = self._anatomy._grid

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < self.n:
            raise IndexError(f"phantom_cxr_multilabel: index {i} out of range for {self.n} samples")
        base = self._anatomy[i]
        # a stream of its own, so the anatomy is phantom_cxr's whatever the findings
        gen = torch.Generator().manual_seed(self.seed * 10_000_019 + _SPLIT_OFFSET[self.split] + 5_000_011 + i)
        u = lambda: float(torch.rand((), generator=gen))  # noqa: E731 - a tiny local helper
        s = self.size / 64.0
        img = base.image[0].clone()
        masks = {k: v for k, v in base.masks.items() if k not in _LESION_MASKS}
        lungs = (masks["lung_left"], masks["lung_right"])
        present = [u() < self.prevalence for _ in self.classes]
        taken = torch.zeros_like(masks["body"])
        meta: dict[str, Any] = {}
        for name, on in zip(self.classes, present):
            mask = torch.zeros_like(masks["body"])
            if on:
                lo, hi = self.nodule_radius if name == "nodule" else self.cavity_radius
                radius = (lo + u() * (hi - lo)) * s
                centre, radius = self._place(lungs, taken, radius, u)
                d2 = sum((g - c) ** 2 for g, c in zip(self._grid, centre))
                mask = d2 <= radius**2
                if name == "nodule":  # the tail cut at TAIL_CUT: it reached every pixel of the image
                    blob = torch.exp(-d2 / (2 * (radius / 1.5) ** 2))
                    img += self.contrast * torch.where(blob >= TAIL_CUT, blob, 0.0)
                else:
                    lumen = d2 <= (0.6 * radius) ** 2
                    img[mask & ~lumen] += self.contrast
                    img[lumen] = 0.02
                taken |= _dilate(mask, 2)
                meta[f"{name}_centre"], meta[f"{name}_radius"] = tuple(centre), radius
            masks[name] = mask
        img = img.clamp(0.0, 1.0)
        img[img < TINY] = 0.0  # background 0: no value in (0, TINY) (relative metrics divide by x)
        labels = torch.tensor([int(p) for p in present], dtype=torch.long)
        label = int(labels.argmax()) if bool(labels.any()) else 0
        image = img.unsqueeze(0).repeat(self.channels, 1, 1)
        return Sample(id=f"{self.split}-{i:05d}", image=image, label=label, masks=masks,
                      patient_id=f"phantom-ml-{self.split}-{i:05d}", meta=meta, labels=labels)

    def _place(self, lungs: tuple[Tensor, Tensor], taken: Tensor, radius: float, u: Any) -> tuple[list[int], float]:
        """A centre where a disc of ``radius`` lies in a lung (picked at random, the other one if it
        has no room) and clear of the findings already planted (``taken``); when neither lung has
        room (small images), the radius shrinks by 20% steps until one has."""
        first = int(u() < 0.5)
        while True:
            for lung in (lungs[first], lungs[1 - first]):
                room = _erode(lung, radius) & ~_dilate(taken, int(radius + 1))
                if room.any() or radius <= 1.0:
                    idx = torch.nonzero(room if room.any() else lung & ~taken)
                    return idx[int(u() * len(idx)) % len(idx)].tolist(), radius
            radius *= 0.8


def _dilate(mask: Tensor, k: int) -> Tensor:
    """``mask`` grown by ``k`` pixels (square neighbourhood)."""
    if k <= 0:
        return mask
    return torch.nn.functional.max_pool2d(mask.float()[None, None], 2 * k + 1, stride=1, padding=k)[0, 0] > 0
