"""The check of the p-values given to a multiple-comparison adjustment (Holm, Bonferroni)."""

from __future__ import annotations

import numpy as np

__all__ = ["p_values"]


def p_values(p, where: str) -> np.ndarray:
    """``p`` as a float array, each value in [0, 1] or NaN (a test not defined: it stays NaN and does not
    count). Anything else is a ValueError that begins with ``where`` and names the first such value: an
    adjustment of a value that is not a p-value gives a number that looks like one (a review:
    ``holm([1.5, -0.2])`` returned ``[1.0, -0.4]``)."""
    p = np.asarray(p, dtype=float)
    bad = np.flatnonzero(~np.isnan(p.ravel()) & ~((p.ravel() >= 0) & (p.ravel() <= 1)))
    if bad.size:
        raise ValueError(f"{where}: expected p-values in [0, 1] (NaN for a test not defined), got "
                         f"{p.ravel()[bad[0]]:g} at index {int(bad[0])}")
    return p
