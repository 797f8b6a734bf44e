"""Region scores and grid regions against hand-computed values."""

import math

import pytest
import torch

from faithbench.metrics.functional import grid_masks, grid_names, region_scores, stack_regions


def test_grid_1x3_gives_three_vertical_strips():
    masks = grid_masks((4, 6), [1, 3])
    assert masks.shape == (3, 4, 6) and masks.dtype == torch.bool
    for j in range(3):
        expected = torch.zeros(4, 6, dtype=torch.bool)
        expected[:, 2 * j:2 * j + 2] = True
        assert torch.equal(masks[j], expected)
    assert grid_names([1, 3]) == ["grid_r0_c0", "grid_r0_c1", "grid_r0_c2"]


def test_grid_uneven_sizes_tile_the_image():
    # 5 rows in 2 parts: [0, 2), [2, 5); 7 columns in 3 parts: [0, 2), [2, 4), [4, 7)
    masks = grid_masks((5, 7), [2, 3])
    assert torch.equal(masks.sum(0), torch.ones(5, 7, dtype=torch.long))  # no gap, no overlap
    assert [int(m.sum()) for m in masks] == [2 * 2, 2 * 2, 2 * 3, 3 * 2, 3 * 2, 3 * 3]
    names = grid_names([2, 3])
    assert names[5] == "grid_r1_c2" and bool(masks[5][4, 6]) and not bool(masks[5][1, 6])


def test_grid_3d():
    masks = grid_masks((4, 3, 4), [2, 1, 2])
    names = grid_names([2, 1, 2])
    assert names == ["grid_d0_r0_c0", "grid_d0_r0_c1", "grid_d1_r0_c0", "grid_d1_r0_c1"]
    assert masks.shape == (4, 4, 3, 4)
    assert torch.equal(masks.sum(0), torch.ones(4, 3, 4, dtype=torch.long))
    assert all(int(m.sum()) == 2 * 3 * 2 for m in masks)
    # voxel (depth 3, row 1, column 0) is in the back-left cell only
    assert [bool(m[3, 1, 0]) for m in masks] == [False, False, True, False]


@pytest.mark.parametrize("shape, grid", [((8, 8), [1, 2, 3]), ((8, 8, 8), [2, 2]), ((4, 6), [5, 1]),
                                         ((4, 6), [0, 3])])
def test_grid_errors(shape, grid):
    with pytest.raises(ValueError, match="grid"):
        grid_masks(shape, grid)


def test_region_scores_known_answer():
    sal = torch.tensor([[[1.0, -2.0, 3.0], [0.0, 4.0, -1.0]]])  # (1, 2, 3); positive mass 1+3+4 = 8
    row0 = torch.tensor([[True, True, True], [False, False, False]])
    col2 = torch.tensor([[False, False, True], [False, False, True]])
    empty = torch.zeros(2, 3, dtype=torch.bool)
    out = region_scores(sal, torch.stack([row0, col2, empty])[None])
    assert out["mean"][0, :2].tolist() == pytest.approx([2 / 3, 1.0])
    assert out["sum"][0].tolist() == pytest.approx([2.0, 2.0, 0.0])
    assert out["max"][0, :2].tolist() == [3.0, 3.0]
    assert out["share"][0].tolist() == pytest.approx([4 / 8, 3 / 8, 0.0])
    assert out["area"][0].tolist() == pytest.approx([3 / 6, 2 / 6, 0.0])
    assert math.isnan(out["mean"][0, 2]) and math.isnan(out["max"][0, 2])


def test_share_is_nan_without_positive_mass_and_grid_shares_sum_to_one():
    torch.manual_seed(0)
    sal = torch.randn(3, 9, 12)
    sal[2] = -sal[2].abs()  # no positive part
    regions = grid_masks((9, 12), [3, 4])[None].expand(3, -1, -1, -1)
    out = region_scores(sal, regions)
    assert out["share"][:2].sum(1).tolist() == pytest.approx([1.0, 1.0])
    assert out["sum"].sum(1).tolist() == pytest.approx(sal.flatten(1).sum(1).double().tolist())
    assert torch.isnan(out["share"][2]).all()
    assert out["max"].amax(1).tolist() == pytest.approx(sal.flatten(1).amax(1).tolist())


def test_region_scores_3d_and_shape_error():
    sal = torch.zeros(2, 4, 4, 4)
    sal[:, 0] = 1.0  # all mass in the first depth slab
    regions = grid_masks((4, 4, 4), [2, 1, 1])[None].expand(2, -1, -1, -1, -1)
    out = region_scores(sal, regions)
    assert out["share"].tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert out["mean"].tolist() == [[0.5, 0.0], [0.5, 0.0]]
    with pytest.raises(ValueError, match=r"expected regions of shape \(B, R, \*spatial\)"):
        region_scores(sal, regions[:, :, :2])


def test_stack_regions_masks_then_grid():
    masks = {"a": torch.zeros(2, 4, 6, dtype=torch.bool), "b": torch.ones(2, 4, 6, dtype=torch.bool)}
    names, regions = stack_regions(masks, ["b", "a"], grid=[1, 3], batch_shape=(2, 4, 6))
    assert names == ["b", "a", "grid_r0_c0", "grid_r0_c1", "grid_r0_c2"]
    assert regions.shape == (2, 5, 4, 6) and bool(regions[1, 0].all()) and not bool(regions[1, 1].any())
    assert torch.equal(regions[1, 3], grid_masks((4, 6), [1, 3])[1])
    with pytest.raises(ValueError, match="no mask 'lung'; available: a, b"):
        stack_regions(masks, ["lung"], batch_shape=(2, 4, 6))
