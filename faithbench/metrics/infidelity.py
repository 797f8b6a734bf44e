"""Infidelity (Yeh et al. 2019): the registered class over ``functional/faithfulness_regions.py``,
with the options of the other perturbation metrics (``faithfulness_extra.py``'s ``ExtraFaithfulness``)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from faithbench.configurable import Bound
from faithbench.metrics.base import EvalContext, MetricOutput
from faithbench.metrics.faithfulness_extra import _BASE, SALT_SUBSETS, ExtraFaithfulness, _info
from faithbench.metrics.functional import faithfulness_regions as fr
from faithbench.metrics.functional.faithfulness_extra import feature_ids
from faithbench.registry import metrics
from faithbench.seeds import draw_rows


@metrics.register("infidelity")
class Infidelity(ExtraFaithfulness):
    """Infidelity (Yeh et al. 2019): the mean over ``runs`` perturbations I, each replacing one
    square (cube in 3D) of x by the baseline, of

        (β I^T φ - (f(x) - f(x - I)))^2,   I^T φ = Σ_{square, channels} (x - x_r) s,

    with β the optimal scale (``scaling``, as Yeh et al.'s code) or 1. Lower is better. Defaults:
    32 runs (at least 2), ``patch: 8``, ``squares: yeh``, ``zero`` baseline, target logit,
    ``scaling: true``. Cost: B (runs + 1) forwards.

    The perturbations (``squares``):

    - ``yeh`` (the default; version 2): Yeh et al.'s square removal. Per draw (seeded per image), one square
      uniform over all squares (cubes) of side 1..``patch`` (at most the smallest side) at every
      position where they fit, not aligned to any grid: Yeh et al.'s reference code
      (``infid_sen_utils``, ``pert='Square'``) enumerates every square of side 1..10 at every
      position and weighs each alike, so ours is a Monte Carlo estimate of theirs (side s drawn with
      probability proportional to its number of positions, then the position). It tests the map
      inside any square, not only its sums over fixed cells.
    - ``grid`` (version 1's only choice): one cell of the fixed, non-overlapping p x p (x p) grid per
      draw. The value then depends on the map only through its cell sums, so a map flat inside
      each cell with the right sums scores as well as the exact gradient (a held-out review: ~1e-13
      for both on a linear model, where Yeh et al.'s squares give that map 0.50 and 0.65).

    With ``scaling`` the sign of the map is ignored: β = Σ_r Δ_r I_r^T φ / Σ_r (I_r^T φ)^2 is fitted
    unconstrained, as in Yeh et al.'s reference code, so β may be negative and a map and its negation
    score the same (the exact gradient of a linear model and minus it both score 0). Use
    ``scaling: false`` to penalise a sign error (and a wrong scale). With one draw β fits it exactly
    (0 for every map), hence ``runs`` >= 2; for the same reason an input with a single perturbation
    (``squares: grid`` with ``patch`` >= its largest side, or a one-pixel input) is refused with
    ``scaling``.

    Differs from Quantus 0.6.0: Quantus' ``Infidelity`` removes every grid patch in raster order
    cumulatively (deterministic for a fixed baseline) and does not scale; fed that sequence with
    ``scaling: false`` ours agrees to 1e-4 (the test)."""

    info = _info("infidelity", False, "Yeh et al. 2019, On the (in)fidelity and sensitivity of explanations")
    # 2: Yeh et al.'s squares of any side up to patch, at any position (squares: yeh); 3: scores in float64;
    # 4: the squares (grid cells) and random baselines drawn per image (3: per batch, the same at each position)
    version: ClassVar[str] = "4"
    defaults: ClassVar[dict[str, Any]] = {**_BASE, "patch": 8, "runs": 32, "scaling": True, "score": "logit",
                                          "squares": "yeh"}
    bounds: ClassVar[dict[str, Bound]] = {"runs": Bound(2)}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {**ExtraFaithfulness.choices, "squares": ("yeh", "grid")}

    def check_dataset(self, spatial_shape: tuple[int, ...], *, multilabel: bool = False) -> str | None:
        """With ``scaling``, an input of one perturbation scores 0 for every map: refused by ``faithbench
        validate`` too (a review: it passed, then every cell failed)."""
        shape = " x ".join(map(str, spatial_shape))
        if not self.scaling:
            return None
        if self.squares == "grid" and feature_ids(tuple(spatial_shape), self.patch)[1] < 2:
            return (f"{self.name}: patch = {self.patch} gives 1 feature on the {shape} input, so every map would "
                    f"score 0; set patch below {max(spatial_shape)} (the largest side), or scaling: false")
        if math.prod(spatial_shape) < 2:
            return f"{self.name}: the {shape} input has one square, so every map would score 0; use scaling: false"
        return None

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        b, spatial = ctx.x.shape[0], tuple(ctx.x.shape[2:])
        generator = ctx.generators(SALT_SUBSETS)  # sample i's draws from its own generator (version 4)
        if self.squares == "grid":
            n = feature_ids(spatial, self.patch)[1]
            picks = draw_rows(generator, b, lambda g, rows: torch.randint(n, (rows, self.runs), generator=g))
            value = fr.infidelity(self.scorer(ctx), ctx.x, ctx.target, saliency, self.replacement(ctx), picks=picks,
                                  patch=self.patch, scaling=self.scaling)
        else:
            corners, sides = fr.square_draws(spatial, self.patch, b, self.runs, generator)
            value = fr.infidelity_squares(self.scorer(ctx), ctx.x, ctx.target, saliency, self.replacement(ctx),
                                          corners=corners, sides=sides, scaling=self.scaling)
        return MetricOutput(value=value)
