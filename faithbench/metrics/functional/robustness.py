"""Robustness of explanations to small input changes (Yeh et al. 2019; Alvarez-Melis & Jaakkola
2018; Montavon et al. 2018; Dasgupta et al. 2022).

Shapes: ``x (B, C, *spatial)``, ``saliency (B, *spatial)``, 2D or 3D. A set of ``S`` perturbed
copies is ``x_perturbed (S, B, C, *spatial)`` and their re-explanations ``perturbed (S, B,
*spatial)``. Every score maps these to ``(S, B)`` (one value per draw) and a reduction (max or mean
over the draws, NaN draws left out) to ``(B,)``. Lower is better for all of them but
``consistency``.

Perturbations are drawn by :func:`uniform_noise` / :func:`gaussian_noise` from a seeded
``torch.Generator``, or one per sample (the metric classes: a sample's noise does not depend on its batch),
on the CPU, then moved to x's device; or passed in: a caller (a test, a cross-check against Quantus) can
feed identical perturbations to both sides.

Re-explaining: :func:`explain_perturbed` calls ``explain(x, target, call)`` once per group of
``draws_per_call`` draws (``call`` = the group's index, for the caller to seed a stochastic
explainer per call: each call is independent of the others). A deterministic explainer's values do not
depend on ``draws_per_call``; a stochastic one's do, since one call (one seed) then covers a group of
draws, so its random stream follows the grouping: keep ``draws_per_call`` fixed across runs you compare.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from faithbench.metrics.functional.regions import grid_edges
from faithbench.scores import as_same_prediction, decision_changed
from faithbench.seeds import Generators, draw_rows

ExplainCall = Callable[[Tensor, Tensor, int], Tensor]


# --- perturbations ----------------------------------------------------------------------
def uniform_noise(x: Tensor, n: int, radius: float, generator: Generators = None) -> Tensor:
    """``n`` copies of x plus i.i.d. U(-radius, radius) noise per element: ``(n, *x.shape)``
    (Quantus' ``batch_uniform_noise`` with ``lower_bound = radius``). One ``generator`` draws the whole
    batch; B of them draw sample i's ``n`` copies from the i-th (:func:`~faithbench.seeds.draw_rows`)."""
    u = draw_rows(generator, len(x), lambda g, rows: torch.rand((n, rows, *x.shape[1:]), generator=g), dim=1)
    return x[None] + ((u * 2 - 1) * radius).to(device=x.device, dtype=x.dtype)


def gaussian_noise(x: Tensor, n: int, std: float, generator: Generators = None) -> Tensor:
    """``n`` copies of x plus i.i.d. N(0, std²) noise per element: ``(n, *x.shape)``; ``generator`` as
    :func:`uniform_noise`'s."""
    z = draw_rows(generator, len(x), lambda g, rows: torch.randn((n, rows, *x.shape[1:]), generator=g), dim=1)
    return x[None] + (z * std).to(device=x.device, dtype=x.dtype)


def translations(x: Tensor, steps: int, fill: str | float = "min") -> Tensor:
    """Copies of x shifted along the last spatial axis (width), ``(steps, *x.shape)``.

    With W the width, dx = (2W + 1) // steps and shift_k = -W + k dx for k = 1..steps (Quantus
    0.6.0's ``Continuity``); the uncovered columns take ``fill``: ``"min"`` the sample's minimum
    (Quantus' ``"black"``) or a number.
    """
    w = x.shape[-1]
    dx = (2 * w + 1) // steps
    if dx < 1:
        raise ValueError(f"continuity: {steps} steps on a width of {w}; expected at most {2 * w + 1} steps")
    b = x.shape[0]
    if fill == "min":
        value = x.reshape(b, -1).amin(1).reshape(b, *[1] * (x.ndim - 1))
    else:
        value = torch.full((b, *[1] * (x.ndim - 1)), float(fill), dtype=x.dtype, device=x.device)
    out = []
    for k in range(1, steps + 1):
        shift = -w + k * dx
        shifted = value.expand_as(x).clone()
        if abs(shift) >= w:
            pass  # shifted out entirely: all fill
        elif shift >= 0:
            shifted[..., shift:] = x[..., : w - shift]
        else:
            shifted[..., : w + shift] = x[..., -shift:]
        out.append(shifted)
    return torch.stack(out)


def explain_perturbed(explain: ExplainCall, x_perturbed: Tensor, target: Tensor, *,
                      draws_per_call: int = 1) -> Tensor:
    """Re-explain ``x_perturbed (S, B, C, *spatial)`` for ``target (B,)``: ``(S, B, *spatial)``.
    ``draws_per_call`` draws (``draws_per_call * B`` images) go into one call of ``explain``.

    A NaN or Inf re-explanation raises ``FloatingPointError``, as a NaN saliency does in the runner:
    the reductions leave out NaN draws (those a metric defines as excluded), so a broken one would
    otherwise vanish from the max instead of making it unbounded."""
    s, b = x_perturbed.shape[:2]
    out = []
    for call, start in enumerate(range(0, s, draws_per_call)):
        group = x_perturbed[start : start + draws_per_call]
        g = group.shape[0]
        maps = explain(group.reshape(g * b, *group.shape[2:]), target.repeat(g), call)
        if not torch.isfinite(maps).all():
            raise FloatingPointError(f"the explainer returned NaN or Inf for a perturbed copy (draws {start} to "
                                     f"{start + g - 1}); a robustness value cannot leave that draw out")
        out.append(maps.reshape(g, b, *maps.shape[1:]))
    return torch.cat(out)


def prediction_changed(logits: Tensor, perturbed_logits: Tensor, target: Tensor | None = None) -> Tensor:
    """``(S, B)`` True where a perturbed copy's decision differs from the original's (``logits (B, K)``,
    ``perturbed_logits (S, B, K)``): the argmax class on a single-label model (``target`` None); on a
    multi-label one (``target (B,)``, the rows' explained classes k) the presence of class k,
    [logit_k(x') > 0] != [logit_k(x) > 0] (:func:`faithbench.scores.decision_changed`)."""
    return decision_changed(logits, perturbed_logits, target)


# --- scores per draw --------------------------------------------------------------------
def _flat(t: Tensor, lead: int) -> Tensor:
    return t.reshape(*t.shape[:lead], -1).double()


def sensitivity(saliency: Tensor, perturbed: Tensor) -> Tensor:
    """Yeh et al. (2019) sensitivity per draw, normalised as Quantus does:
    ``||Φ(x) - Φ(x')||_F / ||Φ(x)||_F`` -> ``(S, B)`` (NaN where Φ(x) is all zeros)."""
    a, pa = _flat(saliency, 1), _flat(perturbed, 2)
    num = (a[None] - pa).norm(dim=-1)
    den = a.norm(dim=-1)[None]
    return torch.where(den > 0, num / den, torch.full_like(num, float("nan")))


def lipschitz_ratio(saliency: Tensor, perturbed: Tensor, x: Tensor, x_perturbed: Tensor) -> Tensor:
    """Local Lipschitz ratio per draw (Alvarez-Melis & Jaakkola 2018):
    ``||Φ(x) - Φ(x')||_2 / (||x - x'||_2 + 1e-10)`` -> ``(S, B)``."""
    num = (_flat(saliency, 1)[None] - _flat(perturbed, 2)).norm(dim=-1)
    den = (_flat(x, 1)[None] - _flat(x_perturbed, 2)).norm(dim=-1)
    return num / (den + 1e-10)


def continuity_ratio(saliency: Tensor, perturbed: Tensor, x: Tensor, x_perturbed: Tensor) -> Tensor:
    """Continuity ratio per draw (Montavon et al. 2018): ``||R(x) - R(x')||_1 / (||x - x'||_2 + 1e-9)``
    -> ``(S, B)``; NaN where x' = x (Quantus' translations include the shift 0, which is no
    neighbour: a re-seeded stochastic explainer would score ~1e9 there)."""
    num = (_flat(saliency, 1)[None] - _flat(perturbed, 2)).abs().sum(-1)
    den = (_flat(x, 1)[None] - _flat(x_perturbed, 2)).norm(dim=-1)
    return torch.where(den > 0, num / (den + 1e-9), torch.full_like(num, float("nan")))


def reduce_draws(values: Tensor, how: str = "max", changed: Tensor | None = None) -> Tensor:
    """``(S, B)`` -> ``(B,)``: max or mean over the draws, leaving out NaN draws and those whose
    prediction ``changed (S, B)``; NaN where no draw is left."""
    values = values.double()
    keep = torch.isfinite(values)
    if changed is not None:
        keep &= ~changed.to(values.device)
    n = keep.sum(0)
    if how == "max":
        out = torch.where(keep, values, torch.full_like(values, -torch.inf)).amax(0)
    elif how == "mean":
        out = torch.where(keep, values, torch.zeros_like(values)).sum(0) / n.clamp(min=1)
    else:
        raise ValueError(f"expected reduction 'max' or 'mean', got {how!r}")
    return torch.where(n > 0, out, torch.full_like(out, float("nan"))).float()


def normalise_by_max(saliency: Tensor, lead: int = 1) -> Tensor:
    """Divide each map by its maximum |value| (over the spatial axes after ``lead`` leading axes);
    an all-zero map is left as it is. Per sample, unlike Quantus 0.6.0's ``normalise_by_max``,
    whose default axes take one maximum over the whole batch."""
    peak = saliency.reshape(*saliency.shape[:lead], -1).abs().amax(-1)
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))
    return saliency / peak.reshape(*peak.shape, *[1] * (saliency.ndim - lead))


# --- consistency ------------------------------------------------------------------------
def cell_means(saliency: Tensor, grid: int = 4) -> Tensor:
    """The mean of each cell of a ``grid``-per-axis partition of each map, in float64: ``(B, *spatial)`` ->
    ``(B, grid**dims)``, cells in row-major order. Along a side of n pixels, cell j covers ``[floor(j n / grid),
    floor((j+1) n / grid))`` (:func:`~faithbench.metrics.functional.regions.grid_edges`, the ``regions:`` grid's
    split): the cells tile the map and differ in size by at most one per axis; where ``grid`` divides the side
    they are the equal cells of adaptive average pooling (version 4 of ``consistency`` pooled adaptively on
    every side, whose cells overlap where ``grid`` does not divide it, n = 10: [0, 3), [2, 5), [5, 8), [7, 10))."""
    cells, counts = saliency.double(), torch.ones((), dtype=torch.float64, device=saliency.device)
    for axis in range(1, saliency.ndim):  # sums first, one division by the pixel count at the end: equal means stay
        edges = grid_edges(saliency.shape[axis], grid)  # equal (a diff review: a division per axis lost ties)
        cells = torch.stack([part.sum(axis) for part in cells.tensor_split(edges[1:-1], dim=axis)], dim=axis)
        sizes = torch.tensor([b - a for a, b in zip(edges, edges[1:])], dtype=cells.dtype, device=cells.device)
        counts = counts.unsqueeze(-1) * sizes
    return (cells / counts).flatten(1)


def argmax_cell(saliency: Tensor, grid: int = 4) -> Tensor:
    """A discrete explanation per sample, ``(B,)`` long: the index of the cell, of a ``grid``-per-axis
    partition (:func:`cell_means`; a mean, so that cells one pixel apart in size compete evenly), with the
    largest mean saliency (in float64); where several cells share it (a piecewise-constant
    map whose best patch spans them), one label for that set of cells, n_cells + k for the call's
    k-th distinct set (labels compare within one call: one batch); -1 where every cell shares it, a
    map that singles out no cell (all-zero or constant: version 1 took the first cell, so all-zero
    maps agreed and :func:`consistency` gave them its best value, a held-out review). 2D: grid²
    cells; 3D: grid³. ``grid`` at most the smallest side (above it a cell would be empty)."""
    cells = cell_means(saliency, grid)
    top = cells == cells.amax(1, keepdim=True)
    labels = cells.argmax(1)
    several = top.sum(1) > 1
    if bool(several.any()):
        labels[several] = top.shape[1] + torch.unique(top[several], dim=0, return_inverse=True)[1]
    return torch.where(top.all(1), -1, labels)


def consistency(discrete: Tensor, predicted: Tensor, same_sample: Tensor | None = None) -> Tensor:
    """Consistency (Dasgupta et al. 2022): for each sample i, the share of the other samples j
    of the batch with the same discrete explanation e_j = e_i that also have the same predicted
    class, P(f(x_j) = f(x_i) | e(x_j) = e(x_i), j != i) -> ``(B,)``; NaN where no other sample
    shares e_i, and where e_i is -1 (no explanation: :func:`argmax_cell` of a constant map), such
    samples matching none. ``discrete (B,)``: a label per sample as integers; ``predicted (B,)``
    class labels, or ``(B, B)`` bool, ``[i, j]`` whether f(x_j) = f(x_i) for row i
    (:func:`faithbench.scores.same_prediction`: on a multi-label batch, the decision on row i's
    explained class). ``same_sample (B, B)`` bool: rows of one sample (a multi-label batch's class
    rows), never j of each other; default: the diagonal."""
    same_e = (discrete[None] == discrete[:, None]) & (discrete != -1)[:, None]
    if same_sample is None:
        same_e.fill_diagonal_(False)
    else:
        same_e &= ~same_sample.to(same_e.device)
    same_y = as_same_prediction(predicted).to(same_e.device)
    n = same_e.sum(1)
    value = (same_e & same_y).sum(1).double() / n.clamp(min=1)
    return torch.where(n > 0, value, torch.full_like(value, float("nan"))).float()


__all__ = ["argmax_cell", "cell_means", "consistency", "continuity_ratio", "explain_perturbed", "gaussian_noise",
           "lipschitz_ratio", "normalise_by_max", "prediction_changed", "reduce_draws", "sensitivity",
           "translations", "uniform_noise"]
