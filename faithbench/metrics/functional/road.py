"""ROAD: remove and debias (Rong et al. 2022, "A consistent and efficient evaluation strategy for
attribution methods", ICML), with noisy linear imputation, 2D and 3D.

A removed pixel takes the weighted mean of its in-image neighbours (removed or not), which makes
the removed values the solution of a sparse linear system (the neighbour weights: 1/6 for the 4
direct and 1/12 for the 4 diagonal neighbours in 2D, as Rong et al.; in 3D weights proportional to
1 / distance^2 over the 26 neighbours, normalised to sum 1), plus Gaussian noise (std ``noise``).
The system is solved on x's device, batched over images and channels, by preconditioned conjugate
gradients (:mod:`faithbench.metrics.functional.imputation`: Jacobi for scattered holes, aggregation
multigrid for large ones) instead of a sparse direct solver on the CPU. The solver starts from a
push-pull pyramid fill and stops at a relative residual of 1e-5: measured against Quantus'
``spsolve`` on a 3 x 224 x 224 image with 50 % / 90 % of the pixels removed in large blobs, the
largest difference was 1.8e-4 / 3.3e-4 (Jacobi-CG), far below the imputation noise (std 0.01); the
tests ask 1e-4 on small images.
"""

from __future__ import annotations

import torch
from torch import Tensor

from faithbench.metrics.functional.faithfulness_extra import Scorer
from faithbench.metrics.functional.imputation import linear_imputation
from faithbench.seeds import row_seeds


def road_curve(scorer: Scorer, x: Tensor, target: Tensor, ranks: Tensor, *, percentages: list[float],
               noise: float = 0.01, seed: int = 0) -> Tensor:
    """Scores ``(B, K)`` after removing the first-ranked ``int(N p / 100)`` pixels/voxels (``ranks``:
    0 = removed first) by noisy linear imputation, for each p in ``percentages``. The noise of
    (sample i, percentage k) is drawn from a generator seeded s_i K + k, with s_i the seed of (``seed``,
    the bytes of image i) (:func:`faithbench.seeds.row_seeds`), so it depends neither on the chunking nor
    on the image's batch or position in it (before ROAD version 7: seed + i K + k, so position i of every
    batch had the same noise)."""
    n = ranks[0].numel()
    counts = torch.tensor([int(n * p / 100) for p in percentages], device=x.device)
    k = len(percentages)
    ranks = ranks.to(x.device)
    image_seeds = row_seeds(seed, x) if noise > 0 else []

    def build(i: Tensor, r: Tensor) -> Tensor:
        removed = ranks[i] < counts[r].view(-1, *[1] * (ranks.ndim - 1))
        images = linear_imputation(x[i], removed)
        if noise > 0:
            draws = [torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(image_seeds[a] * k + b))
                     for a, b in zip(i.tolist(), r.tolist())]
            images = images + noise * torch.stack(draws).to(x.device, x.dtype) * removed[:, None]
        return images

    return scorer.perturbed(x, target, k, build)


def road_score(scorer: Scorer, x: Tensor, target: Tensor, ranks: Tensor, *, percentages: list[float],
               noise: float = 0.01, seed: int = 0) -> tuple[Tensor, Tensor]:
    """ROAD (Rong et al. 2022) per sample: the mean of :func:`road_curve` over the percentages
    (with ``score: correct``, the accuracy averaged over the removal levels), and the curve.
    MoRF (ranks of saliency, descending): lower is better; LeRF (ranks of -saliency): higher."""
    curve = road_curve(scorer, x, target, ranks, percentages=percentages, noise=noise, seed=seed)
    return curve.mean(dim=1), curve
