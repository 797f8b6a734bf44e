"""The check of the p-values given to a multiple-comparison adjustment (Holm, Bonferroni), and Holm's."""

from __future__ import annotations

import numpy as np

__all__ = ["holm", "p_values"]


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


def holm(p, m: int | None = None) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values (Holm 1979).

    With the non-NaN p-values sorted ascending, p_(1) <= p_(2) <= ..., and m the comparisons of the family,

        p_holm_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j)),

    returned in the original order. The running maximum makes the adjusted values
    monotone in the raw ones. NaNs stay NaN; a value outside [0, 1] is a ValueError. ``m``: by default the
    non-NaN values; given, the comparisons planned, some of them left without a p (a failed cell, a held-out
    review: counting only the others gave another explainer a ``*``), which count as p = 1 would.

    Example: p = [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02]; with m = 5, [0.04, 0.09, 0.09, 0.025].
    """
    p = p_values(p, "holm")
    out = np.full(p.shape, np.nan)
    flat = p.ravel()
    valid = np.flatnonzero(~np.isnan(flat))
    if m is not None and m < valid.size:
        raise ValueError(f"holm: expected m at least the {valid.size} p-values given, got {m}")
    m = valid.size if m is None else int(m)
    if valid.size == 0:
        return out
    # A stable sort keeps equal p-values in input order, so the result is deterministic.
    order = valid[np.argsort(flat[valid], kind="stable")]
    scaled = (m - np.arange(valid.size)) * flat[order]
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out.ravel()[order] = adjusted  # out is contiguous: ravel is a view
    return out
