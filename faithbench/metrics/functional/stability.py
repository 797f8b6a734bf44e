"""Relative stability of explanations (Agarwal et al. 2022, "Rethinking stability for attribution-
based explanations").

For an input x, a perturbed copy x', their explanations e_x, e_x' ``(B, *spatial)``:

    RIS = ||(e_x - e_x') / e_x||_2 / max(||(x - x') / x||_2, ε_min)
    RRS = ||(e_x - e_x') / e_x||_2 / max(||(L_x - L_x') / L_x||_2, ε_min)
    ROS = ||(e_x - e_x') / e_x||_2 / max(||h(x) - h(x')||_2, ε_min)

with L a representation (a layer's output) and h the logits; a zero entry of a divisor is
replaced by ε_min (Quantus 0.6.0's convention). The metric is the maximum over the perturbed
copies. Shapes: each function maps ``(B, ...)`` originals and ``(S, B, ...)`` perturbed copies to
``(S, B)``. Lower is better.

:func:`representation` reads a layer with a forward hook: by default (``layer=None``) the input
of the last ``nn.Linear`` the forward pass calls, i.e. the pre-logit features (timm nets'
``head``/``fc`` input, the built-in ``small_cnn``'s pooled features, ``vit_tiny``'s pooled
token); or the output of the module named ``layer`` (a name of ``model.named_modules()``).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


def _relative(diff: Tensor, base: Tensor, eps_min: float) -> Tensor:
    return diff / (base + (base == 0) * eps_min)


def _l2(t: Tensor, lead: int) -> Tensor:
    return t.reshape(*t.shape[:lead], -1).double().norm(dim=-1)


def _numerator(saliency: Tensor, perturbed: Tensor, eps_min: float) -> Tensor:
    e = saliency.double()[None]
    return _l2(_relative(e - perturbed.double(), e, eps_min), 2)


def _ratio(num: Tensor, den: Tensor, eps_min: float) -> Tensor:
    return (num / (den + (den == 0) * eps_min)).float()


def relative_input_stability(x: Tensor, x_perturbed: Tensor, saliency: Tensor, perturbed: Tensor, *,
                             eps_min: float = 1e-6) -> Tensor:
    """RIS per draw ``(S, B)``; see the module docstring."""
    xd = x.double()[None]
    den = _l2(_relative(xd - x_perturbed.double(), xd, eps_min), 2)
    return _ratio(_numerator(saliency, perturbed, eps_min), den, eps_min)


def relative_representation_stability(features: Tensor, perturbed_features: Tensor, saliency: Tensor,
                                      perturbed: Tensor, *, eps_min: float = 1e-6) -> Tensor:
    """RRS per draw ``(S, B)``: ``features (B, F)``, ``perturbed_features (S, B, F)``."""
    f = features.double()[None]
    den = _l2(_relative(f - perturbed_features.double(), f, eps_min), 2)
    return _ratio(_numerator(saliency, perturbed, eps_min), den, eps_min)


def relative_output_stability(logits: Tensor, perturbed_logits: Tensor, saliency: Tensor, perturbed: Tensor, *,
                              eps_min: float = 1e-6) -> Tensor:
    """ROS per draw ``(S, B)``: ``logits (B, K)``, ``perturbed_logits (S, B, K)``."""
    den = _l2(logits.double()[None] - perturbed_logits.double(), 2)
    return _ratio(_numerator(saliency, perturbed, eps_min), den, eps_min)


def _last_linear(model: nn.Module, x: Tensor, forward: Callable[[Tensor], Tensor]) -> nn.Module:
    called: list[nn.Module] = []
    handles = [m.register_forward_pre_hook(lambda mod, _a: called.append(mod))
               for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.inference_mode():
            forward(x[:1])
    finally:
        for h in handles:
            h.remove()
    if not called:
        raise ValueError(f"relative_representation_stability: {type(model).__name__} calls no nn.Linear; "
                         "name the representation layer with the parameter 'layer'")
    return called[-1]


def representation_reader(model: nn.Module, x: Tensor, layer: str | None = None,
                          forward: Callable[[Tensor], Tensor] | None = None
                          ) -> Callable[[Callable[[Tensor], Tensor], Tensor], Tensor]:
    """A function ``read(forward, xs) -> (N, F)`` that runs ``forward(xs)`` (the caller's counted
    forward) and returns the flattened representation captured on the way (see the module
    docstring for ``layer``). Finding the default layer traces one forward of ``x[:1]`` through
    ``forward`` (default: the model itself)."""
    if layer is None:
        module, use_input = _last_linear(model, x, forward or model), True
    else:
        modules = dict(model.named_modules())
        if layer not in modules:
            names = ", ".join(n for n in modules if n) or "(none)"
            raise ValueError(f"relative_representation_stability: no layer {layer!r} in "
                             f"{type(model).__name__}; layers: {names}")
        module, use_input = modules[layer], False

    def read(forward: Callable[[Tensor], Tensor], xs: Tensor) -> Tensor:
        captured: list[Tensor] = []

        def hook(_m: nn.Module, args: tuple, out: Tensor) -> None:
            value = args[0] if use_input else out
            captured.append(value.detach().reshape(value.shape[0], -1))

        handle = module.register_forward_hook(hook)
        try:
            forward(xs)
        finally:
            handle.remove()
        return torch.cat(captured)
    return read


__all__ = ["relative_input_stability", "relative_output_stability", "relative_representation_stability",
           "representation_reader"]
