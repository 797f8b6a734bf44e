import math

import pytest
import torch

from faithbench.metrics.functional import area_fraction, dilate, pointing_game, relevance_mass


def test_pointing_game_hand_masks():
    sal = torch.zeros(3, 4, 4)
    sal[0, 1, 1] = 5.0  # max inside
    sal[1, 3, 3] = 5.0  # max outside
    sal[2, 0, 0] = 1.0
    mask = torch.zeros(3, 4, 4, dtype=torch.bool)
    mask[:, 1:3, 1:3] = True
    mask[2] = False  # empty mask: undefined
    out = pointing_game(sal, mask)
    assert out[:2].tolist() == [1.0, 0.0] and math.isnan(out[2].item())


def test_pointing_game_tolerance():
    sal = torch.zeros(1, 6, 6)
    sal[0, 0, 0] = 1.0
    mask = torch.zeros(1, 6, 6, dtype=torch.bool)
    mask[0, 1, 1] = True
    assert pointing_game(sal, mask).item() == 0.0
    assert pointing_game(sal, mask, tolerance=1).item() == 1.0
    assert area_fraction(dilate(mask, 1)).item() == pytest.approx(9 / 36)


def test_pointing_game_ties_random():
    sal = torch.ones(1, 10, 10)  # every pixel is a maximum
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, :5] = True  # half the image
    hits = [pointing_game(sal, mask, generator=torch.Generator().manual_seed(s)).item() for s in range(200)]
    assert 0.35 < sum(hits) / 200 < 0.65  # index order would always hit (pixel 0 is in the mask)


def test_relevance_mass_hand():
    sal = torch.tensor([[[3.0, 1.0], [-4.0, 0.0]]])
    mask = torch.tensor([[[True, False], [True, False]]])
    # positive mass 4, inside 3 (the negative -4 is ignored)
    assert relevance_mass(sal, mask).item() == pytest.approx(0.75)
    assert math.isnan(relevance_mass(-sal.abs(), mask).item())  # nothing positive
    assert area_fraction(mask).item() == 0.5


def test_relevance_mass_3d_and_shape_error():
    sal = torch.rand(2, 3, 4, 5)
    mask = torch.ones(2, 3, 4, 5, dtype=torch.bool)
    assert torch.allclose(relevance_mass(sal, mask), torch.ones(2))
    with pytest.raises(ValueError, match=r"expected mask of shape \(2, 3, 4, 5\)"):
        relevance_mass(sal, mask[:, :2])
