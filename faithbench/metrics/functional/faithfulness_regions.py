"""Faithfulness over patches and explanation neighbourhoods: IROF (Rieger & Hansen 2020),
selectivity (Montavon et al. 2018), infidelity (Yeh et al. 2019) and sufficiency (Dasgupta et al.
2022). Shapes: ``x (B, C, *spatial)``, ``saliency (B, *spatial)``, 2D or 3D; patches are
non-overlapping p x p (x p) cells of the grid of
:func:`~faithbench.metrics.functional.faithfulness_extra.feature_ids`; infidelity's squares
(:func:`square_draws`) are not: any side up to p, at any position where they fit.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from faithbench.metrics.functional.faithfulness_extra import Scorer, feature_attribution, feature_ids
from faithbench.metrics.functional.perturbation import _check_saliency, feature_ranks, perturbation_curve
from faithbench.scores import as_same_prediction
from faithbench.seeds import Generators, draw_rows


def patch_removal_curve(scorer: Scorer, x: Tensor, target: Tensor, ranks: Tensor, replacement: Tensor) -> Tensor:
    """f(x with its k first-ranked patches replaced), k = 0..L (every patch): ``(B, L + 1)``.
    ``ranks``: per-pixel patch ranks (0 = removed first)."""
    n = int(ranks.flatten(1).max()) + 1
    curve, _ = perturbation_curve(scorer.predict, x, target, ranks, replacement, insertion=False,
                                  score=scorer.score, max_batch=scorer.max_batch, counts=torch.arange(n + 1))
    return curve




def mean_ranks(saliency: Tensor, patch: int, generator: Generators) -> Tensor:
    """Per-pixel ranks of patches by mean saliency, descending, seeded tie-break: :func:`feature_ranks`,
    which ranks an edge patch smaller than p^d by its own mean too."""
    return feature_ranks(saliency, patch=patch, generator=generator)


def irof(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacement: Tensor, *, patch: int = 8,
         generator: Generators) -> tuple[Tensor, Tensor]:
    """IROF, iterative removal of features (Rieger & Hansen 2020, "IROF: a low resource evaluation
    metric for explanation methods", ICLR workshop): segments are removed (replaced by the
    baseline, default each sample's mean) one more at a time in descending order of their MEAN
    saliency, and

        IROF = 1 - trapezoid_k ( f(x^(k)) / f(x) ,  k / L ),   k = 0..L,

    the area over the normalised score curve over the fraction of segments removed. Higher is
    better. Segments: a regular p x p (x p) grid (2D and 3D alike, no superpixel dependency).
    Returns the value ``(B,)`` and the curve f(x^(k)) / f(x) ``(B, L + 1)``. Ties: ``generator`` as in
    :func:`feature_ranks` (the class: one per image, ``seeded_rows(seed, SALT_RANKS, x)``)."""
    _check_saliency(x, saliency)
    ranks = feature_ranks(saliency.to(x.device).float(), patch=patch, generator=generator)
    curve = patch_removal_curve(scorer, x, target, ranks, replacement)
    curve = curve / curve[:, :1]
    fractions = torch.linspace(0, 1, curve.shape[1], device=curve.device)
    return 1 - torch.trapezoid(curve, fractions, dim=1), curve


def selectivity(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacement: Tensor, *, patch: int = 8,
                generator: Generators) -> tuple[Tensor, Tensor]:
    """Selectivity (Montavon et al. 2018, "Methods for interpreting and understanding deep neural
    networks", Digital Signal Processing): patches are removed one more at a time in descending
    order of their saliency (summed; an edge patch by its mean, :func:`feature_ranks`; seeded tie-break), and

        selectivity = trapezoid_k ( f(x^(k)) ,  k / L ),   k = 0..L,

    the area under the score curve over the fraction of patches removed. Lower is better (a
    faithful map makes the score fall fast). Returns the value ``(B,)`` and the curve ``(B, L + 1)``. Ties:
    ``generator`` as in :func:`feature_ranks` (the class: one per image, ``seeded_rows(seed, SALT_RANKS, x)``)."""
    _check_saliency(x, saliency)
    ranks = feature_ranks(saliency.to(x.device).float(), patch=patch, generator=generator)
    curve = patch_removal_curve(scorer, x, target, ranks, replacement)
    fractions = torch.linspace(0, 1, curve.shape[1], device=curve.device)
    return torch.trapezoid(curve, fractions, dim=1), curve


def infidelity_terms(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacement: Tensor,
                     removed: Tensor, *, patch: int = 1) -> tuple[Tensor, Tensor]:
    """The two sides of infidelity for perturbations that replace features: ``removed (B, R, n)``
    bool (the features, pixels/voxels or patches, of perturbation r), I_r = x - x_r, returns

        I_r^T φ = Σ_{pixels, channels} (x - x_r) s   and   Δ_r = f(x) - f(x_r),   each ``(B, R)``."""
    _check_saliency(x, saliency)
    ids, n = feature_ids(tuple(x.shape[2:]), patch, x.device)
    if removed.shape[0] != x.shape[0] or removed.shape[2] != n:
        raise ValueError(f"expected removed of shape ({x.shape[0]}, R, {n}), got {tuple(removed.shape)}")
    removed = removed.to(x.device)
    flat_ids = ids.flatten()
    view = (-1, 1, *ids.shape)

    def build(i: Tensor, r: Tensor) -> Tensor:
        return torch.where(removed[i, r][:, flat_ids].view(view), replacement[i], x[i])

    f0 = scorer(x, target)
    deltas = f0[:, None] - scorer.perturbed(x, target, removed.shape[1], build)
    per_feature = feature_attribution(((x - replacement).sum(1) * saliency.to(x.device)), patch)
    dots = (removed.float() * per_feature[:, None, :]).sum(-1)
    return dots, deltas


def infidelity_from_terms(dots: Tensor, deltas: Tensor, *, scaling: bool = True) -> Tensor:
    """mean_r (β I_r^T φ - Δ_r)^2 per sample; β = Σ Δ I^T φ / Σ (I^T φ)^2 (the optimal scale of
    Yeh et al.'s code, ``scaling``; unconstrained, so it may be negative and the map's sign is
    ignored) or 1. β = 1 where every I^T φ is 0."""
    dots, deltas = dots.double(), deltas.double()
    if scaling:
        den = dots.square().sum(1, keepdim=True)
        beta = torch.where(den > 0, (dots * deltas).sum(1, keepdim=True) / den.clamp(min=1e-300), 1.0)
        dots = dots * beta
    return (dots - deltas).square().mean(1).float()


def infidelity(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacement: Tensor, *, picks: Tensor,
               patch: int = 8, scaling: bool = True) -> Tensor:
    """Infidelity (Yeh et al. 2019, "On the (in)fidelity and sensitivity of explanations",
    NeurIPS), per sample ``(B,)``, with one cell of the fixed patch grid removed per perturbation
    (the metric's ``squares: grid``; Yeh et al.'s squares of any size and position are
    :func:`infidelity_squares`):

        INFD = E_I [ (I^T φ(x) - (f(x) - f(x - I)))^2 ],

    where x - I replaces one p x p (x p) grid cell by the baseline: ``picks (B, R)`` are the cell
    indices of the R perturbations (uniform, seeded draws in the metric), and I^T φ = Σ (x - x_r) s.
    The value depends on the map only through its sums over the cells: a map flat inside each cell
    with the right cell sums scores as well as the exact attribution.
    With ``scaling`` (the default, as in Yeh et al.'s code) the explanation is first scaled by the β
    that minimises INFD (:func:`infidelity_from_terms`), so the value does not depend on the
    saliency's scale, nor on its sign: β may be negative, and φ and -φ score the same. With
    ``scaling=False`` (β = 1) a sign error is penalised. Lower is better.

    With ``scaling`` an input of a single patch is refused (ValueError): every draw is then the same
    perturbation, which β fits exactly, so every map would score 0."""
    n = feature_ids(tuple(x.shape[2:]), patch)[1]
    if scaling and n < 2:
        spatial = tuple(x.shape[2:])
        raise ValueError(f"infidelity: patch = {patch} gives {n} feature on the {' x '.join(map(str, spatial))} "
                         "input, so every draw removes the same patch and the scaled value is 0 for every map; "
                         f"set patch below {max(spatial)} (the largest side), or scaling: false")
    removed = torch.nn.functional.one_hot(picks, n).bool()
    dots, deltas = infidelity_terms(scorer, x, target, saliency, replacement, removed, patch=patch)
    return infidelity_from_terms(dots, deltas, scaling=scaling)


def square_draws(spatial: tuple[int, ...], patch: int, batch: int, runs: int,
                 generator: Generators) -> tuple[Tensor, Tensor]:
    """Yeh et al.'s square removal, drawn: per (sample, draw) one square (cube) uniform over all the
    squares of side 1..min(``patch``, the smallest side) that fit, at any position (not aligned to
    any grid), as Yeh et al.'s reference code weighs them (it enumerates every one): the side s with
    probability proportional to its number of positions prod_i (n_i - s + 1), then a corner uniform
    over those positions. Returns ``corners (B, R, d)`` and ``sides (B, R)``, long, on the CPU. One ``generator``
    draws the whole batch; B of them draw sample i's squares from the i-th (a sample's draws then do not depend
    on its batch)."""
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    top = min(patch, *spatial)
    side = torch.arange(1, top + 1, dtype=torch.float64)
    positions = torch.stack([n - side + 1 for n in spatial]).prod(0)  # squares of each side

    def draw(g: torch.Generator | None, rows: int) -> Tensor:  # (rows, runs, d + 1): the corner, then the side
        sides = 1 + torch.multinomial(positions.expand(rows, -1), runs, replacement=True, generator=g)
        room = torch.tensor(spatial)[None, None] - sides[..., None] + 1  # the positions along each axis, >= 1
        u = torch.rand((rows, runs, len(spatial)), generator=g, dtype=torch.float64)
        return torch.cat([torch.minimum((u * room).long(), room - 1), sides[..., None]], dim=-1)

    drawn = draw_rows(generator, batch, draw)
    return drawn[..., :-1].contiguous(), drawn[..., -1].contiguous()


def square_masks(spatial: tuple[int, ...], corners: Tensor, sides: Tensor) -> Tensor:
    """The squares (cubes) of ``corners (P, d)`` and ``sides (P,)`` as ``(P, *spatial)`` bool."""
    mask = torch.ones((len(sides), *[1] * len(spatial)), dtype=torch.bool, device=corners.device)
    for axis, size in enumerate(spatial):
        coord = torch.arange(size, device=corners.device)
        start = corners[:, axis: axis + 1]
        inside = (coord >= start) & (coord < start + sides[:, None])
        shape = [len(sides)] + [1] * len(spatial)
        shape[axis + 1] = size
        mask = mask & inside.view(shape)
    return mask


def box_sums(values: Tensor, corners: Tensor, sides: Tensor) -> Tensor:
    """Σ of ``values (B, *spatial)`` over each square of ``corners (B, R, d)``, ``sides (B, R)``: ``(B, R)``
    float64, by a summed-area table (inclusion-exclusion over the 2^d corners of each square)."""
    d = values.ndim - 1
    table = values.double()
    for axis in range(1, d + 1):  # table[i] = Σ values[< i] along every axis (a leading row of zeros)
        table = torch.nn.functional.pad(table.cumsum(axis), [0, 0] * (d - axis) + [1, 0])
    strides = torch.tensor(table.stride()[1:], device=values.device)
    flat = table.reshape(table.shape[0], -1)
    corners, sides = corners.to(values.device), sides.to(values.device)
    total = torch.zeros(sides.shape, dtype=torch.float64, device=values.device)
    for bits in itertools.product((0, 1), repeat=d):
        index = ((corners + torch.tensor(bits, device=values.device) * sides[..., None]) * strides).sum(-1)
        total += (-1) ** (d - sum(bits)) * flat.gather(1, index)
    return total


def infidelity_squares(scorer: Scorer, x: Tensor, target: Tensor, saliency: Tensor, replacement: Tensor, *,
                       corners: Tensor, sides: Tensor, scaling: bool = True) -> Tensor:
    """Infidelity (Yeh et al. 2019) with their square-removal perturbation, per sample ``(B,)``:

        INFD = E_I [ (β I^T φ(x) - (f(x) - f(x - I)))^2 ],   I^T φ = Σ_{square, channels} (x - x_r) s,

    where x - I replaces the square (cube) of ``corners (B, R, d)`` and ``sides (B, R)`` (drawn by
    :func:`square_draws`) by the baseline, and β is the optimal scale (``scaling``) or 1
    (:func:`infidelity_from_terms`). Lower is better."""
    _check_saliency(x, saliency)
    spatial = tuple(x.shape[2:])
    corners, sides = corners.to(x.device), sides.to(x.device)
    if corners.shape != (*sides.shape, len(spatial)) or sides.shape[0] != x.shape[0]:
        raise ValueError(f"expected corners ({x.shape[0]}, R, {len(spatial)}) and sides ({x.shape[0]}, R), got "
                         f"{tuple(corners.shape)} and {tuple(sides.shape)}")

    def build(i: Tensor, r: Tensor) -> Tensor:
        return torch.where(square_masks(spatial, corners[i, r], sides[i, r])[:, None], replacement[i], x[i])

    deltas = scorer(x, target)[:, None] - scorer.perturbed(x, target, sides.shape[1], build)
    dots = box_sums((x - replacement).sum(1) * saliency.to(x.device), corners, sides)
    return infidelity_from_terms(dots, deltas, scaling=scaling)


def sufficiency(saliency: Tensor, predicted: Tensor, *, threshold: float = 0.6,
                same_sample: Tensor | None = None) -> Tensor:
    """Sufficiency (Dasgupta et al. 2022, "Framework for evaluating faithfulness of local
    explanations", ICML), per sample ``(B,)``: the explanations of a batch are compared by the
    standardised Euclidean distance

        d_ij = sqrt( Σ_f (s_if - s_jf)^2 / V_f ),   V_f = the batch variance of feature f (ddof 1),

    divided by the largest d in the batch; j is a neighbour of i when d_ij <= ``threshold`` (j != i),
    and sufficiency_i = the share of i's neighbours j with f(x_j) = f(x_i) (``predicted (B,)`` class
    labels, or ``(B, B)`` bool, ``[i, j]`` whether f(x_j) = f(x_i) for row i:
    :func:`faithbench.scores.same_prediction`, on a multi-label batch the decision on row i's explained
    class). Higher is better. NaN
    for a sample without neighbours. Features constant over the batch (V_f = 0) carry no distance
    and are left out. ``same_sample (B, B)`` bool: rows of one sample (a multi-label batch's class
    rows), never neighbours of each other; default: the diagonal."""
    b = saliency.shape[0]
    flat = saliency.flatten(1).double()
    if b < 2:
        return torch.full((b,), float("nan"), device=saliency.device)
    variance = flat.var(dim=0)
    keep = variance > 0
    scaled = flat[:, keep] / variance[keep].sqrt()
    dist = torch.cdist(scaled, scaled, compute_mode="donot_use_mm_for_euclid_dist")
    dist = dist / dist.max() if dist.max() > 0 else dist
    if same_sample is None:
        same_sample = torch.eye(b, dtype=torch.bool, device=saliency.device)
    near = (dist <= threshold) & ~same_sample.to(saliency.device)
    same = as_same_prediction(predicted).to(near.device)
    count = near.sum(1)
    return torch.where(count > 0, (near & same).sum(1).double() / count.clamp(min=1), float("nan")).float()
