"""Infidelity with Yeh et al.'s square removal (``squares: yeh``, the default) and the grid cells
(``squares: grid``): known answers on a linear model, logits = (0, w . x), whose exact gradient is w."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faithbench.configurable import ParameterError
from faithbench.metrics import Infidelity
from faithbench.metrics.functional import faithfulness_extra as fx
from faithbench.metrics.functional import faithfulness_regions as fr


class Linear(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one = (x * self.w).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(one), one], dim=1)


def _review_case():
    """The held-out review's case: 16 x 16, the exact gradient and a map flat inside each 8 x 8 cell
    whose per-cell Σ x s equals the gradient's (so every grid-cell perturbation sees the same I^T φ)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(1, 16, 16, generator=gen) * 0.3
    x = torch.rand(2, 1, 16, 16, generator=gen) + 0.1
    gradient = w[0].expand(2, 16, 16).clone()
    cell = F.avg_pool2d(x * gradient[:, None], 8) / F.avg_pool2d(x, 8)
    flat = cell.repeat_interleave(8, -1).repeat_interleave(8, -2)[:, 0]
    return Linear(w).eval(), x, gradient, flat


def test_a_map_flat_in_each_cell_scores_worse_than_the_gradient_under_yeh_squares(make_ctx):
    model, x, gradient, flat = _review_case()
    metric = Infidelity()  # the defaults: squares yeh, patch 8, runs 32, scaling
    exact = metric(make_ctx(model, x, gradient)).value
    blocky = metric(make_ctx(model, x, flat)).value
    assert exact.abs().max() < 1e-8  # I^T grad = f(x) - f(x - I) exactly for every square
    assert (blocky > 0.1).all()  # the reviewer's reference (every square of side 1..10) gave 0.50 and 0.65
    # the grid cells see only the cell sums: both maps score ~0 there (version 1's default)
    grid = Infidelity(squares="grid")
    assert grid(make_ctx(model, x, flat)).value.abs().max() < 1e-8
    assert grid(make_ctx(model, x, gradient)).value.abs().max() < 1e-8


def test_square_draws_fit_anywhere_with_sides_up_to_patch():
    corners, sides = fr.square_draws((16, 12), 8, 50, 40, torch.Generator().manual_seed(1))
    assert corners.shape == (50, 40, 2) and sides.shape == (50, 40)
    assert sides.min() == 1 and sides.max() == 8  # sides 1..8
    assert (corners >= 0).all() and (corners + sides[..., None] <= torch.tensor([16, 12])).all()  # they fit
    assert (corners % 8 != 0).any() and (corners[..., 0] + sides == 16).any()  # not grid-aligned; reach the edge
    again = fr.square_draws((16, 12), 8, 50, 40, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], corners) and torch.equal(again[1], sides)  # seeded
    # a patch above the smallest side: at most that side (a square must fit)
    assert fr.square_draws((3, 20), 8, 10, 40, torch.Generator().manual_seed(2))[1].max() == 3
    corners, sides = fr.square_draws((5, 6, 7), 4, 10, 30, torch.Generator().manual_seed(3))  # cubes in 3D
    assert corners.shape == (10, 30, 3) and (corners + sides[..., None] <= torch.tensor([5, 6, 7])).all()


def test_square_draws_weigh_every_square_alike_as_yeh():
    """Yeh et al.'s reference code takes every square at every position once: on 4 x 4 with patch 4 there
    are 16, 9, 4 and 1 squares of sides 1..4, so a draw has side s with probability 16/30, 9/30, 4/30, 1/30
    (a uniform side would give 1/4 each), and each position of a side alike."""
    corners, sides = fr.square_draws((4, 4), 4, 100, 600, torch.Generator().manual_seed(5))
    freq = torch.bincount(sides.flatten(), minlength=5)[1:].double() / sides.numel()
    assert torch.allclose(freq, torch.tensor([16, 9, 4, 1], dtype=torch.float64) / 30, atol=0.01)
    ones = corners[sides == 1]  # the 16 positions of a 1 x 1 square, alike
    counts = torch.bincount(ones[:, 0] * 4 + ones[:, 1], minlength=16).double()
    assert (counts / counts.sum() - 1 / 16).abs().max() < 0.01


@pytest.mark.parametrize("spatial", [(6, 7), (4, 5, 6)])
def test_box_sums_equal_the_masked_sums(spatial):
    gen = torch.Generator().manual_seed(4)
    values = torch.randn(2, *spatial, generator=gen)
    corners, sides = fr.square_draws(spatial, 3, 2, 9, gen)
    masks = fr.square_masks(spatial, corners.flatten(0, 1), sides.flatten())
    expected = (masks.view(2, 9, *spatial) * values[:, None]).flatten(2).sum(-1)
    assert torch.allclose(fr.box_sums(values, corners, sides).float(), expected, atol=1e-5)
    # one hand case: the 2 x 2 square at (1, 2) of a 6 x 7 ramp
    if len(spatial) == 2:
        ramp = torch.arange(42.0).view(1, 6, 7)
        total = fr.box_sums(ramp, torch.tensor([[[1, 2]]]), torch.tensor([[2]]))
        assert total.item() == 9 + 10 + 16 + 17
        assert fr.square_masks((6, 7), torch.tensor([[1, 2]]), torch.tensor([2])).sum() == 4


def test_infidelity_squares_hand_computed():
    gen = torch.Generator().manual_seed(5)
    w = torch.rand(1, 8, 8, generator=gen) + 0.1
    x = torch.rand(3, 1, 8, 8, generator=gen) + 0.1
    model, target, zero = Linear(w).eval(), torch.ones(3, dtype=torch.long), torch.zeros(3, 1, 8, 8)
    corners, sides = fr.square_draws((8, 8), 5, 3, 6, gen)
    gradient = w[0].expand(3, 8, 8)

    def infd(sal, scaling):
        return fr.infidelity_squares(fx.Scorer(model, "logit"), x, target, sal, zero, corners=corners, sides=sides,
                                     scaling=scaling)

    # unscaled 2 x gradient: (2Δ - Δ)^2 = Δ^2 per square, Δ = Σ_square w x
    contributions = [[(w[0] * x[b, 0])[tuple(slice(int(c), int(c) + int(s)) for c in corners[b, r])].sum()
                      for r, s in enumerate(sides[b])] for b in range(3)]
    expected = torch.tensor(contributions).square().mean(1)
    assert torch.allclose(infd(2 * gradient, False), expected, rtol=1e-5)
    assert torch.allclose(infd(2 * gradient, True), torch.zeros(3), atol=1e-8)  # β = 1/2 fits exactly
    assert torch.allclose(infd(-gradient, True), torch.zeros(3), atol=1e-8)  # the sign is ignored with scaling


def test_yeh_squares_in_3d_and_the_forward_count(make_ctx):
    gen = torch.Generator().manual_seed(6)
    w = torch.randn(1, 6, 6, 6, generator=gen)
    x = torch.rand(2, 1, 6, 6, 6, generator=gen)
    model = Linear(w).eval()
    ctx = make_ctx(model, x, w[0].expand(2, 6, 6, 6))
    assert Infidelity(patch=4, runs=5)(ctx).value.abs().max() < 1e-8
    assert ctx.predict.passes == 2 * (5 + 1)  # B (runs + 1), as with the grid cells


def test_squares_is_a_validated_choice():
    assert Infidelity().squares == "yeh" and Infidelity.version == "4"  # 4: the draws per image (test_row_draws)
    with pytest.raises(ParameterError, match="squares"):
        Infidelity(squares="square")
    for shape in itertools.product((1, 2), repeat=2):  # only a one-pixel input has a single square
        problem = Infidelity(patch=1).check_dataset(shape)
        assert (problem is not None) == (shape == (1, 1)), shape
