"""Confidence intervals of a proportion (0/1 outcomes such as the pointing game's hits)."""

from __future__ import annotations

import math

from scipy import stats

__all__ = ["wilson_ci"]


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927; Brown, Cai & DasGupta 2001).

    With p = successes / n and z the (1 + level) / 2 normal quantile (1.96 at the default 0.95):

        (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)

    Unlike the Wald interval it stays inside [0, 1] and is not empty at p = 0 or 1. n = 0 ->
    (NaN, NaN).
    """
    if not 0 < level < 1:
        raise ValueError(f"expected 0 < level < 1, got {level}")
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"expected 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf((1 + level) / 2))
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale)
