"""Semi-synthetic data: real anatomy with planted lesions, so the truth is known (ground truth
by construction, as in Arras et al. 2022, "CLEVR-XAI: A benchmark dataset for the ground truth
evaluation of neural network explanations").

``mni_lesion``: the MNI152 2009 T1 template and its grey/white-matter maps, shipped inside the
``nilearn`` wheel (no download), varied per sample by slice (2D), a small random rotation,
scaling and shift, an intensity gain, a smooth bias field and noise. Label 1 plants a lesion,
a Gaussian blob (dark by default: a T1-hypointense white-matter lesion), centred where a ball of
its radius lies wholly in white matter (the radius shrinks, down to 1, where the white matter is
too thin for it); its exact ball is the ``lesion`` mask.

All samples come from one template brain: "patients" are synthetic (each sample its own
``patient_id``), and anatomy varies only by the deformation. The template (Fonov et al. 2011,
ICBM 2009a/c) is distributed with nilearn under its own permissive licence.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from faithbench.configurable import (AT_LEAST_ONE, NON_NEGATIVE, OPEN_UNIT, POSITIVE,
                                   Bound, ParameterError, check_bound)
from faithbench.datasets.base import BaseDataset, Split
from faithbench.datasets.phantoms import MAX_N, SEED, _SPLIT_OFFSET, _fits, _grid, check_lesion_radius, smooth_field
from faithbench.registry import datasets
from faithbench.types import Sample


@lru_cache(maxsize=1)
def mni_cube() -> Tensor:
    """``(4, S, S, S)`` float: T1 in [0, 1], grey-matter and white-matter probabilities, brain
    mask; the brain's bounding box padded to a cube at the template's 2 mm. Axes (D, H, W) =
    (superior→inferior, anterior→posterior, patient's right→left; radiological view)."""
    try:
        import numpy as np
        from nilearn import datasets as nd
    except ImportError:
        raise ValueError("mni_lesion needs the 'nilearn' package (it ships the MNI152 template): "
                         "pip install nilearn") from None
    imgs = [nd.load_mni152_template(resolution=2), nd.load_mni152_gm_template(resolution=2),
            nd.load_mni152_wm_template(resolution=2), nd.load_mni152_brain_mask(resolution=2)]
    vol = torch.from_numpy(np.stack([np.asarray(im.dataobj, dtype=np.float32) for im in imgs]))
    # nilearn's templates are RAS (x: left→right, y: posterior→anterior, z: inferior→superior).
    vol = vol.permute(0, 3, 2, 1).flip(1, 2, 3)  # (C, z, y, x), superior, anterior, right first
    vol[0] = vol[0] / vol[0].max()
    brain = vol[3] > 0.5
    idx = torch.nonzero(brain)
    lo, hi = idx.min(0).values, idx.max(0).values + 1
    vol = vol[:, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    side = max(vol.shape[1:]) + 2
    pads: list[int] = []
    for n in reversed(vol.shape[1:]):
        before = (side - n) // 2
        pads += [before, side - n - before]
    return F.pad(vol, pads).contiguous()


@lru_cache(maxsize=4)
def _template(dims: int, size: int) -> tuple[Tensor, tuple[int, int]]:
    """The cube resized to ``size`` per axis (3D), or all axial slices resized to ``size``²
    (2D) with the range of slices whose white matter is at least half its largest area."""
    cube = mni_cube()
    if dims == 3:
        return F.interpolate(cube[None], size=(size,) * 3, mode="trilinear", align_corners=False)[0], (0, 0)
    slices = F.interpolate(cube.permute(1, 0, 2, 3), size=(size, size), mode="bilinear", align_corners=False)
    wm_area = (slices[:, 2] > 0.5).flatten(1).sum(1).float()
    keep = torch.nonzero(wm_area >= 0.5 * wm_area.max()).flatten()
    return slices, (int(keep.min()), int(keep.max()) + 1)


_BOUNDS = {"size": Bound(16, 512), "n": MAX_N, "channels": AT_LEAST_ONE, "prevalence": OPEN_UNIT,
           "lesion_contrast": POSITIVE, "rotation": Bound(0, 180),
           "scale": Bound(0, 1, high_open=True),  # the zoom 1 ± scale must stay > 0
           "shift": Bound(0, 0.5, high_open=True),  # half the side or more moves half the brain out of view
           "noise": NON_NEGATIVE, "seed": SEED}
_WHY = {"prevalence": "at 0 or 1 a split has one class and the test AUC is undefined"}
# the largest lesion_radius, at the default size (scaled with size), as the phantoms': a ball where the white
# matter is too thin for it is shrunk until it fits (a review: [20, 30] gave balls of radius 6 px, 2 voxels)
_RADIUS_WHY = {2: "pixels at size 64, as phantom_cxr; a lesion is shrunk until it fits in the white matter",
               3: "voxels at size 32, the volumes3d suite's top; a lesion is shrunk until it fits in the white matter"}


def _check_params(**values: Any) -> None:
    for param, value in values.items():
        check_bound("mni_lesion", param, value, _BOUNDS[param], _WHY.get(param, ""))


@datasets.register("mni_lesion")
class MNILesion(BaseDataset):
    """Brain MRI (MNI152 T1) with a planted white-matter lesion deciding the label.

    Parameters:
        dims: 2 (axial slices, ``(C, size, size)``) or 3 (the volume, ``(C, size, size, size)``).
        size: side in pixels/voxels (default 64 in 2D, 32 in 3D).
        n: samples in this split (default: 2000/400/500 in 2D, 1000/200/250 in 3D).
        seed (0), prevalence (in (0, 1); 0.5), channels (1).
        polarity: ``dark`` (default), ``bright`` or ``both`` (random per sample). A bright lesion is added
            after the image is clipped to [0, 1], so it reaches up to 1 + ``lesion_contrast`` (clipped at 1, half
            its mask was flat on the bright white matter).
        lesion_contrast: intensity change at the lesion centre (0.3).
        lesion_radius: (min, max) radius in pixels/voxels at the default size ((2.5, 4.0) in 2D at
            64, (1.5, 2.5) in 3D at 32); scaled with ``size``.
        rotation: max rotation in degrees, in the axial plane ([0, 180]; 8). scale: max relative zoom
            ([0, 1); 0.06).
        shift: max shift as a fraction of the side ([0, 0.5); 0.04). noise: voxel noise std (0.02).

    Masks: ``lesion``; the tissue classes ``grey_matter``, ``white_matter`` and
    ``csf_background`` (the arg-max of the deformed probability maps, so they partition the
    image); ``brain``. Background 0.
    """

    classes = ("normal", "lesion")
    background = 0.0
    version = "2"  # 2: a bright lesion is not clipped at 1 (dark lesions and normal images unchanged)

    def __init__(self, split: Split = "test", *, dims: Literal[2, 3] = 2, size: int | None = None,
                 n: int | None = None, seed: int = 0, prevalence: float = 0.5, channels: int = 1,
                 polarity: Literal["dark", "bright", "both"] = "dark", lesion_contrast: float = 0.3,
                 lesion_radius: tuple[float, float] | None = None, rotation: float = 8.0,
                 scale: float = 0.06, shift: float = 0.04, noise: float = 0.02) -> None:
        if dims not in (2, 3) or not isinstance(dims, numbers.Integral) or isinstance(dims, bool):  # not 2.0
            raise ParameterError(f"mni_lesion: expected dims 2 or 3, got {dims!r}")
        ref = 64 if dims == 2 else 32
        size = ref if size is None else size
        if n is None and split in ("train", "val", "test"):  # another split: BaseDataset names it
            n = {"train": 2000, "val": 400, "test": 500}[split] // (1 if dims == 2 else 2)
        if polarity not in ("dark", "bright", "both"):
            raise ParameterError(f"mni_lesion: expected polarity dark, bright or both, got {polarity!r}")
        if lesion_radius is None:
            lesion_radius = (2.5, 4.0) if dims == 2 else (1.5, 2.5)
        lesion_radius = check_lesion_radius("mni_lesion", lesion_radius, 8.0 if dims == 2 else 4.5, _RADIUS_WHY[dims])
        _check_params(seed=seed, size=size, n=n, channels=channels, prevalence=prevalence,
                      lesion_contrast=lesion_contrast, rotation=rotation, scale=scale, shift=shift, noise=noise)
        super().__init__(split, dims=dims, size=size, n=n, seed=seed, prevalence=prevalence, channels=channels,
                         polarity=polarity, lesion_contrast=lesion_contrast, lesion_radius=list(lesion_radius),
                         rotation=rotation, scale=scale, shift=shift, noise=noise)
        self.spatial_dims = dims  # type: ignore[misc]
        self.dims, self.size, self.n, self.seed, self.channels = dims, size, n, seed, channels
        self.prevalence, self.polarity, self.lesion_contrast = prevalence, polarity, lesion_contrast
        self.lesion_radius = tuple(r * size / ref for r in lesion_radius)
        self.rotation, self.scale, self.shift, self.noise = rotation, scale, shift, noise
        self._grid = _grid((size,) * dims)

    def spec(self) -> dict[str, Any]:
        """With nilearn's version: the MNI152 template files ship in its wheel, so another release
        may hold other templates."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            nilearn = version("nilearn")
        except PackageNotFoundError:  # the images cannot be made either (mni_cube says so)
            nilearn = None
        return {**super().spec(), "nilearn": nilearn}

    def __len__(self) -> int:
        return self.n

    def _deform(self, x: Tensor, u: Any) -> Tensor:
        """A random rotation in the axial plane, zoom and shift of ``x`` ``(C, *spatial)``."""
        theta = math.radians(self.rotation) * (2 * u() - 1)
        zoom = 1 + self.scale * (2 * u() - 1)
        c, s = math.cos(theta) / zoom, math.sin(theta) / zoom
        shifts = [2 * self.shift * (2 * u() - 1) for _ in range(self.dims)]
        if self.dims == 2:  # affine_grid's coordinates are (x=W, y=H)
            mat = torch.tensor([[c, -s, shifts[0]], [s, c, shifts[1]]])
        else:  # (x=W, y=H, z=D); rotate in the axial (H, W) plane
            mat = torch.tensor([[c, -s, 0, shifts[0]], [s, c, 0, shifts[1]], [0, 0, 1 / zoom, shifts[2]]])
        grid = F.affine_grid(mat[None].float(), [1, *x.shape], align_corners=False)
        return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < self.n:
            raise IndexError(f"mni_lesion: index {i} out of range for {self.n} samples")
        gen = torch.Generator().manual_seed(self.seed * 10_000_019 + _SPLIT_OFFSET[self.split] + 13 + i)
        u = lambda: float(torch.rand((), generator=gen))  # noqa: E731 - a tiny local helper
        template, (lo, hi) = _template(self.dims, self.size)
        label = int(u() < self.prevalence)
        meta: dict[str, Any] = {}
        if self.dims == 2:
            z = lo + int(u() * (hi - lo)) % (hi - lo)
            x = template[z]
            meta["slice"] = z
        else:
            x = template
        x = self._deform(x, u)
        t1, gm, wm, brain = x[0], x[1], x[2], x[3] > 0.5
        tissue = torch.stack([(1 - gm - wm).clamp(min=0), gm, wm]).argmax(0)
        masks = {"grey_matter": tissue == 1, "white_matter": tissue == 2, "csf_background": tissue == 0,
                 "brain": brain}

        g = self._grid
        bias = smooth_field(g, gen, n_blobs=4, scale=self.size / 3)
        img = t1 * (0.85 + 0.25 * u()) * (1 + 0.05 * bias)
        lesion, bright = torch.zeros_like(brain), torch.zeros_like(img)
        if label == 1:
            r_min, r_max = self.lesion_radius
            radius = r_min + u() * (r_max - r_min)
            inside = _fits(masks["white_matter"], radius)
            while not inside.any() and radius > 1.0:  # thin white matter: a smaller lesion that fits
                radius *= 0.85
                inside = _fits(masks["white_matter"], radius)
            if not inside.any():  # hardly any white matter: centre in white matter at least
                inside = masks["white_matter"] if masks["white_matter"].any() else brain
            idx = torch.nonzero(inside)
            centre = idx[int(u() * len(idx)) % len(idx)].tolist()
            d2 = sum((gi - c) ** 2 for gi, c in zip(g, centre))
            lesion = d2 <= radius**2
            sign = {"dark": -1.0, "bright": 1.0}.get(self.polarity) or (1.0 if u() < 0.5 else -1.0)
            planted = self.lesion_contrast * torch.exp(-d2 / (2 * (radius / 1.5) ** 2))
            if sign > 0:
                bright = planted
            else:
                img = img - planted
            meta.update(lesion_centre=tuple(centre), lesion_radius=radius,
                        lesion_polarity="bright" if sign > 0 else "dark")
        masks["lesion"] = lesion
        img = img + self.noise * torch.randn(img.shape, generator=gen)
        # a bright lesion is added after the clip: on white matter of 0.91-0.99 a clip at 1 flattened half of
        # its mask and kept 0.11 of 0.3 planted (a held-out review); a dark one stays inside [0, 1]
        img = img.clamp(0.0, 1.0) + bright
        image = img.unsqueeze(0).repeat(self.channels, *([1] * self.dims))
        sid = f"mni{self.dims}d-{self.split}-{i:05d}"
        return Sample(id=sid, image=image, label=label, masks=masks, patient_id=sid, meta=meta)


__all__ = ["MNILesion", "mni_cube"]
