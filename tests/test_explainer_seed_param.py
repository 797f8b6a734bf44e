"""A held-out review: ``seed`` under an explainer's ``params:`` passed ``faithbench validate`` (exit 0), and
every cell then failed after training with ``TypeError: ... got multiple values for keyword argument 'seed'``
(the runner passes the cell's seed). validate refuses it in one line, exit 2; the Python API keeps ``seed=``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import faithbench


@pytest.mark.parametrize("entry, valid", [
    ("{name: random, params: {seed: 3}}", "none"),
    ("{name: lime, params: {seed: 5, patch: 8}}", "alpha, baseline, batch_size, kernel_width, n_samples, patch"),
])
def test_validate_refuses_a_seed_under_params(validate_entry, entry, valid):
    rc, err, _ = validate_entry(explainer=entry)
    name = entry.split(",")[0].split()[-1]
    assert (rc, err) == (2, f"explainers[0].params: {name}: parameter 'seed' is not an explainer's own: each cell's "
                            f"seed comes from the suite's seeds: (a list); valid parameters: {valid}")
    assert validate_entry(explainer=entry.replace("seed: 3", "").replace("seed: 5, ", ""))[0] == 0


def test_create_explainer_still_takes_a_seed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 2)).eval()
    x, target = torch.rand(1, 1, 16, 16), torch.tensor([1])
    maps = {seed: faithbench.create_explainer("lime", seed=seed, patch=4, n_samples=20)(model, x, target)
            for seed in (0, 5)}
    assert faithbench.create_explainer("lime", seed=5).seed == 5
    assert not torch.equal(maps[0], maps[5])  # the seed draws other coalitions
    assert torch.equal(maps[5], faithbench.create_explainer("lime", seed=5, patch=4, n_samples=20)(model, x, target))
