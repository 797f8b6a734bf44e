"""Relative stability of explanations (Agarwal et al. 2022, "Rethinking stability for attribution-
based explanations").

For an input x, a perturbed copy x', their explanations e_x, e_x' ``(B, *spatial)``:

    RIS = ||(e_x - e_x') / e_x||_2 / max(||(x - x') / x||_2, ε_min)
    RRS = ||(e_x - e_x') / e_x||_2 / max(||(L_x - L_x') / L_x||_2, ε_min)
    ROS = ||(e_x - e_x') / e_x||_2 / max(||h(x) - h(x')||_2, ε_min)

with L a representation (a layer's output) and h the logits. The metric is the maximum over the
perturbed copies. Shapes: each function maps ``(B, ...)`` originals and ``(S, B, ...)`` perturbed
copies to ``(S, B)``. Lower is better.

Exact zeros. The elementwise relative change (a - a') / a is undefined where a = 0: in e_x for
all three, in x for RIS, in L_x for RRS (the paper's ε_min guards only the denominator's norm).
``zeros`` says what to do there: ``"nan"`` (default) makes the sample's value NaN, for every
draw: the metric is not defined for that sample (a Grad-CAM map after its ReLU, a Sobel map on
a flat background, an image with a black background); ``"skip"`` leaves those entries out of
the norm, so each relative change is taken over the entries where it is defined (NaN only where
the divisor is zero everywhere; a choice of this benchmark, not the paper's); ``"eps_min"``
replaces each zero divisor entry by ε_min, as Quantus 0.6.0 does, so that a map with k zeros gets
a numerator of order about sqrt(k) |e_x'| / ε_min whatever the explanation does (for parity with
Quantus only). Under ``"nan"`` and ``"skip"`` a zero is an entry with |a| below float32's smallest
normal number (:data:`TINY`, 1.2e-38): a subnormal value, what an underflow leaves, divides as badly
as 0 (a held-out review: background pixels of 1e-45 made RIS with ``"skip"`` about 1e-41 for every
explainer); ``"eps_min"`` replaces exact zeros only, as Quantus.

:func:`representation` reads a layer with a forward hook: by default (``layer=None``) the input
of the last ``nn.Linear`` the forward pass calls, i.e. the pre-logit features (timm nets'
``head``/``fc`` input, the built-in ``small_cnn``'s pooled features, ``vit_tiny``'s pooled
token); or the output of the module named ``layer`` (a name of ``model.named_modules()``).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


ZEROS = ("nan", "skip", "eps_min")
TINY = torch.finfo(torch.float32).tiny  # below it (subnormal) an entry counts as 0 under zeros "nan" and "skip"


def _zero(a: Tensor, zeros: str) -> Tensor:
    return a == 0 if zeros == "eps_min" else a.abs() < TINY


def _relative(diff: Tensor, base: Tensor, eps_min: float, zeros: str) -> Tensor:
    """(a - a') / a elementwise; where a = 0 (:func:`_zero`): 0 under ``zeros="skip"`` (the entry leaves
    the norm), diff / ε_min otherwise (made NaN later under ``"nan"``)."""
    zero = _zero(base, zeros)
    if zeros == "skip":
        return torch.where(zero, 0, diff / torch.where(zero, 1, base))
    return torch.where(zero, diff / eps_min, diff / torch.where(zero, 1, base))


def _undefined(values: Tensor, zeros: str, *divisors: Tensor) -> Tensor:
    """``values (S, B)`` with NaN for the samples whose divisors hold an exact zero, under
    ``zeros="nan"``, or are zero everywhere, under ``"skip"``; unchanged under ``"eps_min"``."""
    if zeros not in ZEROS:
        raise ValueError(f"relative stability: zeros must be one of {', '.join(ZEROS)}, got {zeros!r}")
    if zeros == "eps_min":
        return values
    bad = torch.zeros(values.shape[1], dtype=torch.bool, device=values.device)
    for d in divisors:
        flat = _zero(d.reshape(d.shape[0], -1), zeros)
        bad |= (flat.all(-1) if zeros == "skip" else flat.any(-1)).to(values.device)
    return torch.where(bad[None], torch.full_like(values, float("nan")), values)


def _l2(t: Tensor, lead: int) -> Tensor:
    return t.reshape(*t.shape[:lead], -1).double().norm(dim=-1)


def _numerator(saliency: Tensor, perturbed: Tensor, eps_min: float, zeros: str) -> Tensor:
    e = saliency.double()[None]
    return _l2(_relative(e - perturbed.double(), e, eps_min, zeros), 2)


def _ratio(num: Tensor, den: Tensor, eps_min: float) -> Tensor:
    """num / max(den, ε_min), the paper's guard (Quantus 0.6.0 replaces only a zero den by ε_min:
    for 0 < den < ε_min its value is larger by ε_min / den)."""
    return (num / den.clamp(min=eps_min)).float()


def relative_input_stability(x: Tensor, x_perturbed: Tensor, saliency: Tensor, perturbed: Tensor, *,
                             eps_min: float = 1e-6, zeros: str = "nan") -> Tensor:
    """RIS per draw ``(S, B)``; NaN for a sample with a zero in e_x or x under ``zeros="nan"``
    (see the module docstring)."""
    xd = x.double()[None]
    den = _l2(_relative(xd - x_perturbed.double(), xd, eps_min, zeros), 2)
    return _undefined(_ratio(_numerator(saliency, perturbed, eps_min, zeros), den, eps_min), zeros, saliency, x)


def relative_representation_stability(features: Tensor, perturbed_features: Tensor, saliency: Tensor,
                                      perturbed: Tensor, *, eps_min: float = 1e-6, zeros: str = "nan") -> Tensor:
    """RRS per draw ``(S, B)``: ``features (B, F)``, ``perturbed_features (S, B, F)``; NaN for a
    sample with a zero in e_x or L_x under ``zeros="nan"``."""
    f = features.double()[None]
    den = _l2(_relative(f - perturbed_features.double(), f, eps_min, zeros), 2)
    return _undefined(_ratio(_numerator(saliency, perturbed, eps_min, zeros), den, eps_min), zeros, saliency,
                      features)


def relative_output_stability(logits: Tensor, perturbed_logits: Tensor, saliency: Tensor, perturbed: Tensor, *,
                              eps_min: float = 1e-6, zeros: str = "nan") -> Tensor:
    """ROS per draw ``(S, B)``: ``logits (B, K)``, ``perturbed_logits (S, B, K)``; NaN for a sample
    with a zero in e_x under ``zeros="nan"``."""
    den = _l2(logits.double()[None] - perturbed_logits.double(), 2)
    return _undefined(_ratio(_numerator(saliency, perturbed, eps_min, zeros), den, eps_min), zeros, saliency)


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
        captured: list[Tensor] = []  # of the model's completed forwards (a chunk retried after running out
        pending: list[Tensor] = []   # of memory is read once); pending: the forward in progress
        most = 0  # the module's most calls in one forward of the model (a chunked forward makes several)

        def start(_m: nn.Module, _args: tuple) -> None:
            pending.clear()

        def hook(_m: nn.Module, args: tuple, out: Tensor) -> None:
            value = args[0] if use_input else out
            pending.append(value.detach().reshape(value.shape[0], -1))

        def done(_m: nn.Module, _args: tuple, _out: Tensor) -> None:
            nonlocal most
            most = max(most, len(pending))
            captured.extend(pending)
            pending.clear()

        handles = [model.register_forward_pre_hook(start), module.register_forward_hook(hook),
                   model.register_forward_hook(done)]
        try:
            forward(xs)
        finally:
            for h in handles:
                h.remove()
        captured.extend(pending)  # a forward that does not call the model as a module (no hooks of its own)
        name = repr(layer) if layer is not None else "null (the input of the last nn.Linear)"
        if most > 1:  # a held-out review: a shared activation (torchvision's BasicBlock relu, MONAI's
            # ResNetBlock act) was read twice and failed every cell with a tensor size mismatch
            raise ValueError(f"relative_representation_stability: layer {name} runs {most} times per "
                             f"forward of {type(model).__name__} (a module used more than once, as a shared "
                             f"activation), so it has no single output to read; name a module that runs once "
                             f"(e.g. the block that holds it)")
        if not captured:
            raise ValueError(f"relative_representation_stability: layer {name} did not run in the forward of "
                             f"{type(model).__name__}; name a module of its forward pass")
        return torch.cat(captured)
    return read


__all__ = ["TINY", "ZEROS", "relative_input_stability", "relative_output_stability",
           "relative_representation_stability", "representation_reader"]
