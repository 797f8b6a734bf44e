"""The perturbed conditions of the metric reliability check."""

from __future__ import annotations

import pytest
import torch

from faithbench.metrics.reliability import perturbed_conditions


def test_conditions(tiny_cnn):
    torch.manual_seed(0)
    model = tiny_cnn(classes=3)
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.rand(4, 1, 8, 8)
    conditions = perturbed_conditions(model, x, seed=1)
    assert list(conditions) == ["original", "minor", "disruptive"]
    assert conditions["original"][0] is model and conditions["original"][1] is x
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # never modified
    with torch.no_grad():
        base = model(x)
        minor = conditions["minor"][0](conditions["minor"][1])
        disrupted = conditions["disruptive"][0](conditions["disruptive"][1])
    # minor: weights moved by ~1% of their spread, the logits barely
    conv, minor_conv = model.conv.weight, conditions["minor"][0].conv.weight
    relative = (minor_conv - conv).std() / conv.std()
    assert 0.005 < relative.item() < 0.02
    assert (minor - base).abs().max() < 0.05 * base.abs().max()
    # disruptive: fresh draws, the same spread, no correlation with the trained values
    rand_conv = conditions["disruptive"][0].conv.weight
    corr = torch.corrcoef(torch.stack([conv.flatten(), rand_conv.flatten()]))[0, 1]
    assert abs(corr.item()) < 0.5
    assert not torch.allclose(disrupted, base)
    # seeded
    again = perturbed_conditions(model, x, seed=1)
    assert torch.equal(again["minor"][0].conv.weight, minor_conv)
    assert not torch.equal(perturbed_conditions(model, x, seed=2)["minor"][0].conv.weight, minor_conv)


def test_input_noise_options(tiny_cnn):
    model = tiny_cnn()
    x = torch.rand(2, 1, 8, 8)
    conditions = perturbed_conditions(model, x, seed=0, sigma_input=0.05, disruptive="noise")
    dx = conditions["minor"][1] - x
    assert 0.02 < (dx.std() / x.std()).item() < 0.08
    assert conditions["disruptive"][0] is model
    assert ((conditions["disruptive"][1] - x).std() / x.std()).item() > 0.7
    with pytest.raises(ValueError, match="disruptive"):
        perturbed_conditions(model, x, disruptive="fgsm")
