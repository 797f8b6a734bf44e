"""Bootstrap confidence intervals (Efron 1979; Efron & Tibshirani 1993, ch. 13)."""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_ci"]

# Resample in chunks of at most this many drawn indices, so that memory stays bounded
# (about 16 MB) whatever the sample size.
_MAX_DRAWS_PER_CHUNK = 2_000_000


def bootstrap_ci(
    values, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (Efron 1979).

    NaNs are dropped first. Draw ``n_resamples`` resamples of size n with replacement from
    the n values (indices from ``numpy.random.default_rng(seed)``), take each resample's
    mean m*_b, and return the empirical quantiles

        (Q_{(1-level)/2}(m*), Q_{(1+level)/2}(m*))

    (numpy's default linear interpolation). Defaults: 1000 resamples, level 0.95, seed 0,
    so the same values always give the same interval. No value -> (NaN, NaN); a single
    value v -> (v, v).
    """
    if not 0 < level < 1:
        raise ValueError(f"expected 0 < level < 1, got {level}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"expected a positive integer n_resamples, got {n_resamples}")
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return float("nan"), float("nan")
    if n == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_resamples))
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // n)
    for start in range(0, int(n_resamples), chunk):
        stop = min(start + chunk, int(n_resamples))
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)
