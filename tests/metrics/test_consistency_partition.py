"""``consistency``'s discrete explanation on a true partition (version 5), and its refusal of a side of 1.

A held-out review: the cells were adaptive pooling's, which overlap by a row where ``grid`` does not divide a
side (10 rows, grid 4: [0, 3), [2, 5), [5, 8), [7, 10)); a peak on a shared row tied two cells and took a
label no single-cell map shared, so two maps peaking in the same cell scored NaN. The cells are now those of
the ``regions:`` grid ([0, 2), [2, 5), [5, 7), [7, 10)).
"""

import math

import pytest
import torch
from torch import nn

from faithbench.metrics import Consistency
from faithbench.metrics.functional import argmax_cell, cell_means, grid_edges, grid_masks


def _old_argmax_cell(saliency, grid):
    """Version 4's argmax_cell (adaptive pooling), copied to check that nothing moved where grid divides."""
    pool = torch.nn.functional.adaptive_avg_pool2d if saliency.ndim == 3 else torch.nn.functional.adaptive_avg_pool3d
    cells = pool(saliency[:, None].double(), grid)[:, 0].flatten(1)
    top = cells == cells.amax(1, keepdim=True)
    labels = cells.argmax(1)
    several = top.sum(1) > 1
    if bool(several.any()):
        labels[several] = top.shape[1] + torch.unique(top[several], dim=0, return_inverse=True)[1]
    return torch.where(top.all(1), -1, labels)


def _constant_model(features):
    """Always predicts class 0: every pair of samples agrees in prediction."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(features, 2)).eval()
    torch.nn.init.zeros_(model[1].weight)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([1.0, 0.0]))
    return model


def _peaks(shape, points):
    sal = torch.zeros(len(points), *shape)
    for i, point in enumerate(points):
        sal[(i, *point)] = 1.0
    return sal


def test_grid_edges_is_the_regions_split():
    assert grid_edges(10, 4) == [0, 2, 5, 7, 10]
    assert grid_edges(16, 4) == [0, 4, 8, 12, 16]
    assert grid_edges(5, 2) == [0, 2, 5]


def test_peaks_in_one_cell_of_an_undivided_side_agree(make_ctx):
    """The review's maps (1 x 10 x 16, same prediction): rows 2 and 3 lie in cell [2, 5). Version 4 put row 2
    in [0, 3) and [2, 5) too, a tie that row 3 did not share: [nan, nan]."""
    x = torch.rand(2, 1, 10, 16)
    model = _constant_model(160)
    value = Consistency(grid=4)(make_ctx(model, x, _peaks((10, 16), [(2, 1), (3, 1)]))).value
    assert value.tolist() == [1.0, 1.0]
    # columns: 10 columns, cells [0, 2), [2, 5), ...: columns 2 and 4 share a cell (version 4: column 2 tied)
    x = torch.rand(2, 1, 16, 10)
    value = Consistency(grid=4)(make_ctx(model, x, _peaks((16, 10), [(1, 2), (1, 4)]))).value
    assert value.tolist() == [1.0, 1.0]
    # the review's rows 1 and 2 are now in different cells, [0, 2) and [2, 5): no other map shares either
    x = torch.rand(2, 1, 10, 16)
    value = Consistency(grid=4)(make_ctx(model, x, _peaks((10, 16), [(1, 1), (2, 1)]))).value
    assert value.isnan().all()
    assert argmax_cell(_peaks((10, 16), [(1, 1), (2, 1), (2, 1), (4, 15)]), 4).tolist() == [0, 4, 4, 7]


def test_a_3d_partition_known_answer(make_ctx):
    """5 x 6 x 7, grid 2: depth [0, 2), [2, 5); rows [0, 3), [3, 6); columns [0, 3), [3, 7). Cell index
    = 4 d + 2 r + c."""
    sal = torch.zeros(3, 5, 6, 7)
    sal[0, 2, 0, 3] = 6.0  # d 1, r 0, c 1: cell 5, 3 x 3 x 4 = 36 voxels, mean 1/6
    sal[1, 4, 2, 6] = 6.0  # the same cell, its far corner
    sal[2, 1, 3, 2] = 6.0  # d 0, r 1, c 0: cell 2, 2 x 3 x 3 = 18 voxels
    means = cell_means(sal, 2)
    assert means.shape == (3, 8)
    assert means[0, 5].item() == 6.0 / 36 and means[0].sum().item() == 6.0 / 36
    assert means[2, 2].item() == 6.0 / 18
    assert argmax_cell(sal, 2).tolist() == [5, 5, 2]
    assert _old_argmax_cell(sal, 2)[0] != _old_argmax_cell(sal, 2)[1]  # version 4: depth 2 was in both halves
    model = _constant_model(5 * 6 * 7)
    value = Consistency(grid=2)(make_ctx(model, torch.rand(3, 1, 5, 6, 7), sal)).value
    assert value[:2].tolist() == [1.0, 1.0] and math.isnan(value[2].item())
    # a cell's mean, not its mass: 5 in the 18-voxel cell (mean 0.28) beats 6 spread over the 36-voxel one (0.17)
    sal[0, 0, 4, 0] = 5.0
    assert argmax_cell(sal[:1], 2).item() == 2


@pytest.mark.parametrize("shape, grid", [((10, 13), 4), ((9, 11), 3), ((6, 8, 10), 4), ((7, 5, 9), 2)])
def test_cell_means_cross_check_the_regions_grid(shape, grid):
    gen = torch.Generator().manual_seed(0)
    sal = torch.rand((3, *shape), generator=gen, dtype=torch.float64)
    masks = grid_masks(shape, [grid] * len(shape)).double()  # (cells, *shape), same row-major order
    expected = (sal[:, None] * masks).flatten(2).sum(-1) / masks.flatten(1).sum(-1)
    assert torch.allclose(cell_means(sal, grid), expected, rtol=1e-12, atol=0)
    assert masks.sum(0).eq(1).all()  # a partition: every pixel in exactly one cell


@pytest.mark.parametrize("shape, grid", [((16, 16), 4), ((16, 16), 2), ((12, 12), 4), ((8, 8, 8), 4),
                                         ((8, 12, 16), 4), ((6, 6, 6), 3), ((64, 64), 4)])
def test_labels_unchanged_where_the_grid_divides_every_side(shape, grid):
    gen = torch.Generator().manual_seed(1)
    rand = torch.rand((16, *shape), generator=gen)
    peaks = torch.zeros(16, math.prod(shape))
    peaks[torch.arange(16), torch.randint(math.prod(shape), (16,), generator=gen)] = 1.0
    blocky = torch.nn.functional.interpolate(torch.rand((16, 1, *[2] * len(shape)), generator=gen),
                                             size=shape, mode="nearest")[:, 0]  # whole cells tie
    for sal in (rand, peaks.reshape(16, *shape), blocky, torch.zeros(2, *shape), rand * 1e38, rand ** 8):
        assert torch.equal(argmax_cell(sal, grid), _old_argmax_cell(sal, grid))


@pytest.mark.parametrize("shape, grid", [((6, 6), 2), ((8, 12), 2), ((12, 12), 3), ((4, 4, 8), 2)])
def test_tied_cells_of_integer_maps_stay_tied_where_the_grid_divides(shape, grid):
    """A diff review: dividing by the cell's size one axis at a time rounded equal means apart (8/9 and 8/9 with
    the mass in other rows: labels [0, 4] instead of the tie's, consistency NaN); 299 of 3000 maps lost a tie.
    Integer maps of 0-2 (exact sums) tie often; their labels must be version 4's on every map."""
    gen = torch.Generator().manual_seed(2)
    maps = torch.randint(0, 3, (400, *shape), generator=gen).double()
    assert torch.equal(argmax_cell(maps, grid), _old_argmax_cell(maps, grid))
    two = torch.zeros(1, 6, 6, dtype=torch.float64)
    two[0, 0, 0] = two[0, 1, 2] = two[0, 2, 1] = 1  # 3/9 in the top-left cell, spread over three rows
    two[0, 5, 3] = two[0, 5, 4] = two[0, 5, 5] = 1  # 3/9 in the bottom-right cell, in one row
    means = cell_means(two, 2)[0]
    assert means[0] == means[3] and int(argmax_cell(two, 2)) == 4 + 0  # the tie's label: n_cells + its set


def test_an_image_with_a_side_of_one_is_refused_in_one_line(make_ctx):
    """A review: 'set grid <= 1', then grid 1 was refused as below 2."""
    metric = Consistency(grid=4)
    for shape in ((1, 16), (1, 5, 7), (4, 1, 4)):
        message = metric.check_dataset(shape)
        assert message == (f"consistency: expected an image with every side >= 2 (its grid needs at least 2 cells "
                           f"along every axis), got shape {shape}")
        assert Consistency(grid=2).check_dataset(shape) == message
    model = _constant_model(16)
    with pytest.raises(ValueError, match=r"^consistency: expected an image with every side >= 2 \(its grid needs at "
                                         r"least 2 cells along every axis\), got shape \(1, 16\)$"):
        metric(make_ctx(model, torch.rand(4, 1, 1, 16), torch.rand(4, 1, 16)))
    assert metric.check_dataset((2, 16)) == ("consistency: parameter 'grid' = 4 is more than the smallest image "
                                             "side 2 (shape (2, 16)); set grid <= 2")
    assert Consistency(grid=2).check_dataset((2, 16)) is None


def test_version_bumped_for_the_new_cells():
    assert Consistency.version == "5"
