import math

import pytest
import torch

from faithbench.explainers import center_gaussian
from faithbench.registry import explainers


def test_center_gaussian_values_2d_and_3d():
    g = center_gaussian((9, 5), 0.25)
    assert g.shape == (9, 5) and g[4, 2] == 1.0 and g.argmax() == 4 * 5 + 2
    # sigma = 0.25 * 9 = 2.25 pixels along the first axis; 2 pixels from the centre
    assert math.isclose(g[6, 2].item(), math.exp(-0.5 * (2 / 2.25) ** 2), rel_tol=1e-6)
    assert torch.allclose(g, g.flip(0)) and torch.allclose(g, g.flip(1))
    v = center_gaussian((4, 6, 8), 0.5)
    assert v.shape == (4, 6, 8) and torch.allclose(v, v.flip(0).flip(1).flip(2))


def test_center_prior_ignores_model_and_input(linear_logit):
    prior = explainers.get("center_prior")(sigma=0.1)
    a = prior(linear_logit(torch.ones(1, 1, 8, 8)), torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
    b = prior(linear_logit(-torch.ones(1, 1, 8, 8)), torch.rand(2, 1, 8, 8), torch.tensor([1, 1]))
    assert torch.equal(a, b) and torch.equal(a[0], a[1])
    assert a[0, 3:5, 3:5].min() > a[0, 0, 0] * 10  # narrow: the corners are far in units of sigma
    with pytest.raises(ValueError, match="center_prior: parameter 'sigma' must be > 0, got 0.0"):
        explainers.get("center_prior")(sigma=0.0)
