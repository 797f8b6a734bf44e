"""Docstrings that state a computation are checked against the computation.

FullGrad's normalisation (per image and channel, then resize: the library's, not the authors' code),
LIME's distance (captum's cosine between images, not between binary coalitions as ``lime_image``)
and ``small_cnn``'s layer names.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from faithbench.models.architectures import small_cnn
from faithbench.registry import explainers


def _minmax(a: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    lo = a.amin(dim=dims, keepdim=True)
    a = a - lo
    return a / (1e-7 + a.amax(dim=dims, keepdim=True))  # pytorch-grad-cam's scale_cam_image


def test_fullgrad_normalises_per_channel_then_sums():
    """Conv(1->3, 3x3, pad 1) + bias -> ReLU -> avg pool -> Linear, at input resolution (no resize)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(3, 2)).eval()
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([0.5, -0.2, 0.05]))
        model[4].weight.mul_(torch.tensor([[1.0, 10.0, 0.1]]))  # channels on different scales
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    z = model[0](x)
    score = model[4](model[3](model[2](model[1](z))))[:, 1].sum()
    gx, gz = torch.autograd.grad(score, (x, z))
    input_term = _minmax((x * gx).abs(), (2, 3)).sum(1)
    bias_maps = (model[0].bias[None, :, None, None] * gz).abs()
    per_channel = input_term + _minmax(bias_maps, (2, 3)).sum(1)
    authors = input_term + _minmax(bias_maps, (1, 2, 3)).sum(1)  # fullgrad-saliency: joint over channels
    ours = explainers.get("fullgrad")()(model, x.detach(), torch.tensor([1, 1]))
    assert torch.allclose(ours, per_channel.detach(), atol=1e-5)
    assert (ours - authors.detach()).abs().max() > 0.1
    doc = " ".join(explainers.get("fullgrad").__doc__.split())
    assert "ONE channel's map of one image, then resize" in doc and "not the authors' code" in doc


def test_integrated_gradients_default_is_gauss_legendre_not_a_midpoint_mean():
    """A held-out review: the docstring gave mean_k at (k - 0.5) / n, the midpoint rule; the default is captum's
    Gauss-Legendre rule, with its own nodes and weights."""
    import numpy as np

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).eval()
    x = torch.rand(1, 1, 2, 2, generator=torch.Generator().manual_seed(1)) * 5

    def path_sum(alphas, weights):
        points = (torch.as_tensor(alphas, dtype=torch.float32)[:, None, None, None] * x).requires_grad_(True)
        grads, = torch.autograd.grad(model(points)[:, 1].sum(), points)
        return (x * (torch.as_tensor(weights, dtype=torch.float32)[:, None, None, None] * grads).sum(0)).sum(1)

    nodes, weights = np.polynomial.legendre.leggauss(2)
    gauss = path_sum((nodes + 1) / 2, weights / 2)
    midpoint = path_sum((np.arange(1, 3) - 0.5) / 2, np.full(2, 0.5))
    ours = explainers.get("integrated_gradients")(n_steps=2)(model, x, torch.tensor([1]))
    assert torch.allclose(ours, gauss, atol=1e-6) and (ours - midpoint).abs().max() > 1e-3
    doc = " ".join(explainers.get("integrated_gradients").__doc__.split())
    assert "Gauss-Legendre nodes and weights" in doc and "mean_{k=1..n}" not in doc


def test_lime_distance_is_cosine_between_images():
    lime = explainers.get("lime")(kernel_width=0.25)
    similarity = lime.surrogate(nn.Identity()).similarity_func
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5
    x[..., :4, :4] += 3.0  # the kept patch holds most of the energy: close in angle, far in coalition
    kept = torch.ones(1, 4)
    coalition = torch.tensor([[1.0, 0.0, 0.0, 0.0]])  # 3 of 4 patches removed
    perturbed = x.clone()
    perturbed[..., 4:, :] = 0.0
    perturbed[..., :4, 4:] = 0.0
    d_images = 1 - torch.nn.functional.cosine_similarity(x.flatten(), perturbed.flatten(), dim=0)
    d_coalitions = 1 - torch.nn.functional.cosine_similarity(kept.flatten(), coalition.flatten(), dim=0)
    got = float(similarity(x, perturbed, coalition))
    assert abs(got - float(torch.exp(-d_images**2 / (2 * 0.25**2)))) < 1e-6
    assert abs(got - float(torch.exp(-d_coalitions**2 / (2 * 0.25**2)))) > 0.1
    doc = " ".join(explainers.get("lime").__doc__.split())
    assert "between the original and the perturbed image" in doc


def test_small_cnn_docstring_names_real_layers():
    model = small_cnn(1, 2, (16, 16), depth=3)
    names = {n for n, _ in model.named_modules()}
    quoted = re.findall(r"``((?:features|pool|flatten|head)[\w.{}]*)``", small_cnn.__doc__)
    assert quoted, "the docstring names the layers"
    for name in quoted:
        for i in range(3):
            assert name.replace("{i}", str(i)) in names, f"{name} is not a module of small_cnn"
