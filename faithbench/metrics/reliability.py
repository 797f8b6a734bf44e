"""The perturbed conditions of the metric reliability check (MetaQuantus idea; Hedström et al.
2023): the runner re-runs explainers and metrics on each and hands the tidy scores to
:func:`faithbench.stats.reliability.metric_reliability`.

- ``original``: the model and input as they are;
- ``minor``: every parameter tensor p of a deep copy gets additive noise N(0, (σ_minor · std(p))²)
  (default σ_minor = 0.01; tensors with one value or std 0 are kept), and optionally the input
  x + N(0, (σ_input · std(x))²) (default σ_input = 0: weights only). Meant to leave the model's
  function essentially unchanged (MetaQuantus' "minor perturbation");
- ``disruptive``: ``"weights"`` (default) re-initialises every parameter tensor of a deep copy
  from N(mean(p), std(p)²) of its own values, as the cascading randomisation check does at full
  randomisation (:func:`~faithbench.metrics.functional.randomization.randomize_block`), so the
  learned structure is gone; ``"noise"`` keeps the model and replaces the input by
  x + N(0, (σ_disruptive · std(x))²) (default σ_disruptive = 1).

All draws are seeded (``torch.Generator`` from ``seed``, one stream per condition); the model
passed in is never modified.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from faithbench.metrics.functional.randomization import randomize_block

__all__ = ["DISRUPTIVE", "perturb_weights", "perturbed_conditions"]

DISRUPTIVE = ("weights", "noise")
SALT_MINOR, SALT_MINOR_INPUT, SALT_DISRUPTIVE = 31, 32, 33


def _generator(seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + salt)


@torch.no_grad()
def perturb_weights(model: nn.Module, sigma: float, generator: torch.Generator) -> nn.Module:
    """A deep copy of ``model`` with every parameter p + N(0, (sigma · std(p))²) (seeded)."""
    work = copy.deepcopy(model)
    for p in work.parameters():
        if p.numel() < 2:
            continue
        std = p.detach().double().std()
        if not std > 0:
            continue
        noise = torch.randn(p.shape, generator=generator, dtype=torch.float64) * (sigma * std.cpu())
        p.add_(noise.to(device=p.device, dtype=p.dtype))
    return work


def _input_noise(x: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64) * (sigma * float(x.double().std()))
    return x + noise.to(device=x.device, dtype=x.dtype)


def perturbed_conditions(model: nn.Module, x: Tensor, seed: int = 0, *, sigma_minor: float = 0.01,
                         sigma_input: float = 0.0, disruptive: str = "weights",
                         sigma_disruptive: float = 1.0) -> dict[str, tuple[nn.Module, Tensor]]:
    """``{"original": (model, x), "minor": (model', x'), "disruptive": (model'', x'')}`` for a
    batch ``x (B, C, *spatial)`` (see the module docstring for each condition and the defaults)."""
    if disruptive not in DISRUPTIVE:
        raise ValueError(f"expected disruptive in {DISRUPTIVE}, got {disruptive!r}")
    for name, value in (("sigma_minor", sigma_minor), ("sigma_input", sigma_input),
                        ("sigma_disruptive", sigma_disruptive)):
        if value < 0:
            raise ValueError(f"expected {name} >= 0, got {value}")
    minor_model = perturb_weights(model, sigma_minor, _generator(seed, SALT_MINOR))
    minor_x = _input_noise(x, sigma_input, _generator(seed, SALT_MINOR_INPUT)) if sigma_input > 0 else x
    if disruptive == "weights":
        random_model = copy.deepcopy(model)
        randomize_block(list(random_model.parameters()), _generator(seed, SALT_DISRUPTIVE))
        disrupted = (random_model, x)
    else:
        disrupted = (model, _input_noise(x, sigma_disruptive, _generator(seed, SALT_DISRUPTIVE)))
    return {"original": (model, x), "minor": (minor_model, minor_x), "disruptive": disrupted}
