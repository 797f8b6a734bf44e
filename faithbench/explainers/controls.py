"""Control explainers: they do not look at the model, so a faithful metric must rank them low.

``random`` sets the chance level of every metric; ``sobel`` is an edge detector that looks
plausible on anatomy and must fail the randomisation checks (Adebayo et al. 2018, "Sanity Checks
for Saliency Maps": the edge detector is the check of the check);
``center_prior`` is the centre bias every saliency benchmark must beat.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faithbench.configurable import POSITIVE, Bound
from faithbench.explainers.base import Explainer, image_seed
from faithbench.registry import explainers


@explainers.register("random")
class RandomExplainer(Explainer):
    """Uniform noise in [0, 1), drawn per image from the cell's seed and the image's bytes
    (:func:`~faithbench.explainers.base.image_seed`): the chance-level control. An image's map does
    not depend on its batch, its position there, the target or the model, so a re-explanation of
    the same image (class sensitivity, the randomisation checks) returns the same map, and
    different images get independent noise."""

    family = "control"
    needs_grad = False
    version = "2"  # 2: noise per image (1: one draw per batch, so batch position k got the same map in every batch)
    description = "seeded uniform noise (chance level)"
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        out = torch.empty((x.shape[0], *x.shape[2:]))
        for i, image in enumerate(x):
            torch.rand(x.shape[2:], generator=torch.Generator().manual_seed(image_seed(self.seed, image)), out=out[i])
        return out.to(x.device)


def sobel_magnitude(image: Tensor) -> Tensor:
    """Gradient magnitude by Sobel filters: ``(B, *spatial)`` -> ``(B, *spatial)``, 2D or 3D.

    Replicate padding, so a constant image gives exactly 0 everywhere.
    """
    dims = image.ndim - 1
    smooth = torch.tensor([1.0, 2.0, 1.0], dtype=image.dtype, device=image.device)
    deriv = torch.tensor([-1.0, 0.0, 1.0], dtype=image.dtype, device=image.device)
    x = image[:, None]
    x = F.pad(x, [1, 1] * dims, mode="replicate")
    conv = F.conv2d if dims == 2 else F.conv3d
    total = torch.zeros_like(image)
    for axis in range(dims):
        kernel = torch.ones([1] * dims, dtype=image.dtype, device=image.device)
        for a in range(dims):
            vec = deriv if a == axis else smooth
            shape = [1] * dims
            shape[a] = 3
            kernel = kernel * vec.reshape(shape)
        total = total + conv(x, kernel[None, None])[:, 0] ** 2
    return total.sqrt()


@explainers.register("sobel")
class SobelExplainer(Explainer):
    """Sobel edge magnitude of the channel-mean image; model-independent by construction."""

    family = "control"
    needs_grad = False
    description = "edge detector on the image (model-independent control)"
    defaults: ClassVar[dict[str, Any]] = {}

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        return sobel_magnitude(x.mean(dim=1))


def center_gaussian(spatial: tuple[int, ...], sigma: float, device: torch.device | None = None) -> Tensor:
    """exp(-sum_a (i_a - c_a)^2 / (2 (sigma * n_a)^2)), c_a = (n_a - 1) / 2: a Gaussian centred in a
    grid of shape ``spatial`` (2D or 3D), its std a fraction ``sigma`` of each axis' size; max 1."""
    total = torch.zeros((), device=device)
    for size in spatial:
        axis = torch.arange(size, dtype=torch.float32, device=device)
        total = total[..., None] + ((axis - (size - 1) / 2) / (sigma * size)) ** 2
    return torch.exp(-0.5 * total)


@explainers.register("center_prior")
class CenterPriorExplainer(Explainer):
    """A Gaussian centred in the image, std = ``sigma`` (0.25) x each spatial size; the same map for
    every input and model (the centre-bias baseline of saliency benchmarks, Judd et al. 2009)."""

    family = "control"
    needs_grad = False
    paper = "Judd et al. 2009, Learning to Predict Where Humans Look (centre prior)"
    description = "centred Gaussian (model- and image-independent control)"
    defaults: ClassVar[dict[str, Any]] = {"sigma": 0.25}
    bounds: ClassVar[dict[str, Bound]] = {"sigma": POSITIVE}

    def check_input(self, shape: tuple[int, ...]) -> str | None:
        """A ``sigma`` whose prior is constant on the input in float32 (a fuzzing review: 1e-12 gave all 0, 1e12 all 1,
        so relevance_mass read the mask's area): exp underflows to 0 at every pixel (only on even sides: an odd one
        has a centre pixel at 1), or rounds to 1 at every pixel. Computed on the input's shape, as explained."""
        prior = center_gaussian(tuple(shape[1:]), float(self.sigma))
        if prior.numel() and bool(prior.max() == prior.min()):
            value, side = float(prior.max()), " x ".join(map(str, shape[1:]))
            if 0 < value < 1:  # a diff review: on 2 x 2 every pixel is as far from the centre, whatever sigma
                return (f"{self.name}: the {side} input has every pixel as far from its centre, so the prior is "
                        f"constant whatever sigma; expected an input with a centre pixel or more than 2 per side")
            return (f"{self.name}: parameter 'sigma' = {self.sigma:g} makes the prior "
                    f"{'0 (it underflows)' if value == 0 else 1} at every pixel of the {side} input in float32: a "
                    f"constant map; expected a {'larger' if value == 0 else 'smaller'} sigma (default 0.25)")
        return None

    def explain(self, model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        prior = center_gaussian(tuple(x.shape[2:]), float(self.sigma), x.device)
        return prior.expand(x.shape[0], *prior.shape).clone()
