"""Localisation of saliency against a mask of the target-relevant region.

Every function maps ``saliency (B, *spatial)`` and a bool ``mask (B, *spatial)`` to ``(B,)`` float32;
a sample whose mask is empty gets NaN (the score is undefined there). Tie-breaks draw from ``generator``:
one ``torch.Generator`` draws the whole batch at once (position i of two batches gets the same draw), a
sequence of B generators draws row i from its i-th (the metric classes: one per image, seeded from the
cell's seed and the image's bytes, :meth:`~faithbench.metrics.base.EvalContext.generators`); None (the
default) seeds each row from 0 and that row's map and mask (:func:`~faithbench.seeds.or_row_generators`), so
the same inputs give the same value on every call, alone or in any batch. Maps are compared in float64 when
they come as float64, else in float32 (:func:`_precise`): a float64 map whose unique maximum differs
from the next value below float32 resolution stays unique (a held-out review: cut to float32 it tied,
and ``pointing_game`` hit 45 % of the time).
"""

from __future__ import annotations

import torch
from torch import Tensor

from faithbench.metrics.functional.perturbation import feature_ranks
from faithbench.seeds import Generators, or_row_generators, uniform_keys


def _check(saliency: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    if saliency.shape != mask.shape:
        raise ValueError(f"expected mask of shape {tuple(saliency.shape)} to match the saliency, "
                         f"got {tuple(mask.shape)}")
    return _precise(saliency.flatten(1)), mask.flatten(1).bool()


def _precise(saliency: Tensor) -> Tensor:
    """float64 stays float64; any other dtype (half, bfloat16, integer) becomes float32."""
    return saliency if saliency.dtype == torch.float64 else saliency.float()


def dilate(mask: Tensor, tolerance: int) -> Tensor:
    """The pixels/voxels of ``(B, *spatial)`` at a Euclidean distance below ``tolerance`` from a
    bool mask, the mask included: the acceptance region of the pointing game in TorchRay
    (``PointingGame.evaluate``, ``(v + u) < tolerance**2``), the benchmark code of Zhang et al.'s
    protocol. So tolerance 1 keeps the mask, 15 admits offsets up to 14.9 px; tolerance 0 keeps it
    too (TorchRay's 0 accepts no point, so never hits). By the exact
    Euclidean distance transform (``scipy.ndimage.distance_transform_edt``), per sample on the CPU."""
    mask = mask.bool()
    if tolerance <= 1:
        return mask
    from scipy import ndimage

    out = torch.zeros_like(mask)
    for i, m in enumerate(mask.cpu().numpy()):
        if m.any():  # an empty mask stays empty (its transform has no zero to measure from)
            out[i] = torch.from_numpy(ndimage.distance_transform_edt(~m) < tolerance).to(mask.device)
    return out


def area_fraction(mask: Tensor) -> Tensor:
    """Fraction of features inside the mask: the chance level of most localisation scores."""
    return mask.flatten(1).float().mean(dim=1)


def auprc_chance(mask: Tensor) -> Tensor:
    """The expected AUPRC (average precision) of a map that orders the N features uniformly at random
    (no ties), P = |M| of them in the mask, ``(B,)``: with pos_k = 1 when the feature at rank k is in M,
    AP = (1/P) Σ_k pos_k (1/k) Σ_{j<=k} pos_j, and E[pos_k] = P/N, E[pos_j pos_k] = P(P-1)/(N(N-1))
    for j < k, so E[AP] = (H_N + (P - 1)/(N - 1) (N - H_N)) / N with H_N = Σ_{k<=N} 1/k (Bestgen
    2015). Above the prevalence P/N, which is the AP of a constant map: on 64 x 64 images by about
    0.0019, 27 % for a 29-pixel mask (a held-out review, 2000 random maps per mask). NaN for P = 0."""
    n = mask[0].numel()
    p = mask.flatten(1).sum(dim=1).double()
    harmonic = torch.reciprocal(torch.arange(1, n + 1, dtype=torch.float64)).sum().item()
    share = (p - 1) / (n - 1) if n > 1 else torch.zeros_like(p)
    expected = (harmonic + share * (n - harmonic)) / n
    return torch.where(p > 0, expected, torch.full_like(p, float("nan"))).float()


def pointing_game(saliency: Tensor, mask: Tensor, *, tolerance: int = 0, generator: Generators = None) -> Tensor:
    """1.0 if the maximum of the saliency falls inside the mask or, with ``tolerance`` t, closer
    than t pixels (Euclidean) to it, else 0.0 (Zhang et al. 2018; :func:`dilate`, as TorchRay).
    Ties among maxima: one is chosen by a seeded random draw (per row with a sequence of generators or
    the default, see the module; one per batch with one generator). Chance level: the dilated mask's
    area fraction, which a constant map scores in expectation."""
    m = dilate(mask, tolerance)
    s, m = _check(saliency, m)
    is_max = s == s.max(dim=1, keepdim=True).values
    keys = uniform_keys(tuple(s.shape), or_row_generators(generator, saliency, mask)).to(s.device)
    pick = torch.where(is_max, keys, torch.full_like(keys, -1.0)).argmax(dim=1)
    hit = m.gather(1, pick[:, None])[:, 0].float()
    defined = m.any(dim=1) & torch.isfinite(s).all(dim=1)  # a NaN map has no maximum
    return torch.where(defined, hit, torch.full_like(hit, float("nan")))


def relevance_mass(saliency: Tensor, mask: Tensor) -> Tensor:
    """Share of the positive saliency inside the mask (Arras et al. 2022, relevance mass
    accuracy; Wang et al. 2020, energy-based pointing game):

        sum_{i in M} max(s_i, 0) / sum_i max(s_i, 0).

    NaN if the mask is empty or no saliency is positive. Chance level: the area fraction."""
    s, m = _check(saliency, mask)
    pos = s.clamp(min=0)
    total = pos.sum(dim=1)
    inside = (pos * m).sum(dim=1)
    value = (inside / total).float()
    undefined = (total <= 0) | ~m.any(dim=1)
    return torch.where(undefined, torch.full_like(value, float("nan")), value)


def _top_ranks(s: Tensor, generator: Generators) -> Tensor:
    """Rank of every feature of ``s (B, N)``, 0 = largest; ties by a seeded permutation."""
    return feature_ranks(s, generator=generator)


def relevance_rank(saliency: Tensor, mask: Tensor, *, generator: Generators = None) -> Tensor:
    """Relevance rank accuracy (Arras et al. 2022): with K = |M|, the fraction of the K
    highest-saliency features that lie in M,

        |top_K(s) ∩ M| / K.

    Ties at the K-th value are broken by a seeded random permutation (Quantus' argsort breaks
    them by index order, which favours masks near the top-left corner). NaN for an empty mask.
    Chance level: the mask's area fraction (the expected value for a random map)."""
    s, m = _check(saliency, mask)
    k = m.sum(dim=1, keepdim=True)
    top = _top_ranks(s, or_row_generators(generator, saliency, mask)).to(s.device) < k
    value = (top & m).sum(dim=1).float() / k[:, 0].clamp(min=1)
    return torch.where(k[:, 0] > 0, value, torch.full_like(value, float("nan")))


def top_fraction(saliency: Tensor, fraction: float, *, generator: Generators = None) -> Tensor:
    """Bool map ``(B, *spatial)`` of the round(fraction * N) highest-saliency features
    (at least one), ties broken by a seeded random permutation."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    flat = _precise(saliency.flatten(1))
    k = max(1, round(fraction * flat.shape[1]))
    return (_top_ranks(flat, generator).to(flat.device) < k).reshape(saliency.shape)


def bounding_box(region: Tensor) -> Tensor:
    """The axis-aligned bounding box of all True features of each sample, ``(B, *spatial)``
    bool (all components boxed together, as the attention-map study did); empty stays empty."""
    out = torch.ones_like(region, dtype=torch.bool)
    spatial = region.ndim - 1
    for axis in range(spatial):
        other = tuple(a + 1 for a in range(spatial) if a != axis)
        hit = region.any(dim=other) if other else region
        size = region.shape[axis + 1]
        idx = torch.arange(size, device=region.device).expand_as(hit)
        lo = torch.where(hit, idx, size).amin(dim=1)
        hi = torch.where(hit, idx, -1).amax(dim=1)
        inside = (idx >= lo[:, None]) & (idx <= hi[:, None])
        shape = [region.shape[0]] + [1] * spatial
        shape[axis + 1] = size
        out = out & inside.reshape(shape)
    return out & region.flatten(1).any(dim=1).reshape(-1, *[1] * spatial)


def iou_top_k(saliency: Tensor, mask: Tensor, *, percent: float, bbox: bool = False,
              generator: Generators = None) -> Tensor:
    """IoU of the top ``percent`` % features (seeded tie-break) with the mask:
    |A ∩ M| / |A ∪ M|, A = top_k(s) (or its bounding box with ``bbox=True``). NaN for an empty
    mask. Chance level: :func:`iou_chance`."""
    _check(saliency, mask)
    top = top_fraction(saliency, percent / 100, generator=or_row_generators(generator, saliency, mask))
    if bbox:
        top = bounding_box(top)
    a, m = top.flatten(1), mask.flatten(1).bool()
    inter = (a & m).sum(1).float()
    union = (a | m).sum(1).float()
    value = inter / union.clamp(min=1)
    return torch.where(m.any(dim=1), value, torch.full_like(value, float("nan")))


def iou_chance(mask: Tensor, percent: float, *, bbox: bool = False) -> Tensor:
    """Expected IoU of k = round(percent% N) features drawn at random with the mask
    (ratio of expectations): E|A∩M| = k |M| / N; chance = E|A∩M| / (k + |M| - E|A∩M|).
    Not the area fraction: IoU is bounded by min(k, |M|) / max(k, |M|).

    With ``bbox=True`` (A replaced by its bounding box, as :func:`iou_top_k`) the area fraction
    |M| / N: k features scattered at random reach every edge of the image, so their box is the
    image and IoU = |M| / N (a held-out review: a random map scored 0.500 on a half-image mask, the
    no-box formula said 0.286). Exact in the limit of many features: with 500 random maps on 48 x 80
    and 16 x 20 x 24 the mean was within 0.001 of it at k = 5-40 %; with few features the box can miss
    edge rows: on 16 x 16 at k = 5 % (13 features) 0.043 for a central 3.5 % blob (above) and 0.092
    for a 2-row border mask at 0.125 (below)."""
    m = mask.flatten(1).bool()
    n = m.shape[1]
    k = max(1, round(percent / 100 * n))
    size = m.sum(1).double()
    inter = k * size / n
    value = size / n if bbox else inter / (k + size - inter)
    return torch.where(size > 0, value, torch.full_like(value, float("nan"))).float()


def auprc(saliency: Tensor, mask: Tensor) -> Tensor:
    """Area under the precision-recall curve of the saliency as a per-feature score for the
    mask (Arun et al. 2021), as average precision:

        AP = sum_n (R_n - R_{n-1}) P_n

    over the distinct saliency values as thresholds, descending (tied values enter together, so
    no tie-break is needed; identical to ``sklearn.metrics.average_precision_score``). NaN for
    an empty mask. Chance level: :func:`auprc_chance`, the expected AP of a map in random order (above
    the prevalence |M| / N, the AP of a constant score)."""
    s, m = _check(saliency, mask)
    b, n = s.shape
    s_sorted, order = s.double().sort(dim=1, descending=True)
    hits = m.gather(1, order).double()
    tp = hits.cumsum(dim=1)
    positives = tp[:, -1:]
    last = torch.ones_like(s_sorted, dtype=torch.bool)  # the last position of each tied group
    last[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
    precision = tp / torch.arange(1, n + 1, device=s.device, dtype=torch.float64)
    tp_at = torch.where(last, tp, torch.zeros_like(tp))
    prev = torch.cat([torch.zeros_like(tp[:, :1]), tp_at.cummax(dim=1).values[:, :-1]], dim=1)
    gain = torch.where(last, tp - prev, torch.zeros_like(tp))
    value = (gain * precision).sum(dim=1) / positives[:, 0].clamp(min=1)
    return torch.where(positives[:, 0] > 0, value, torch.full_like(value, float("nan"))).float()
