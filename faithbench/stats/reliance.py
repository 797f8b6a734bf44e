"""Does an explainer point at what the model relies on? Saliency mass on each planted piece of
evidence against the model's measured reliance on it.

The spec (SCIENCE.md, "Ground truth by construction"): the model's real reliance on the lesion
and on a shortcut marker is measured by intervention (:mod:`faithbench.models.reliance`: the drop
of the predicted class's probability when the evidence is removed), and an explainer's saliency
mass on marker vs lesion is compared with it (Adebayo et al. 2022, "Post hoc Explanations may be
Ineffective for Detecting Unknown Spurious Correlation"). Two readings, per (dataset, model,
explainer):

- across evidence: the evidence with the most mass should be the one the model relies on most
  (``mass_rank`` against ``reliance_rank``; a shortcut model relies on the marker, so a faithful
  map puts more mass on it than on the lesion);
- across samples: Spearman ρ between each sample's mass on the evidence and the model's drop on
  that sample (the samples on which the model relies more on the marker should get more mass on
  it); with its two-sided p: exact (:func:`spearman_p`: over every ordering) up to 8 samples,
  ``scipy.stats.spearmanr``'s t approximation above (a review: p = 0 for ρ = 1 on 3 samples, whose
  exact p is 1/3; 0.0070 for 0.0131 at 8).

Mass is the relevance mass (Arras et al. 2022): the share of the positive saliency inside the
evidence's mask (:func:`faithbench.metrics.functional.relevance_mass`, the raw map: the relu is
in the definition), NaN where the map has no positive value. A sample's mass and drop are first
averaged over its seeds, as the leaderboard averages them: seeds explain the same images, and a
model loaded from a weights file has the same drops under every seed, so pooling (seed, sample)
pairs made p shrink with the number of seeds (0.0045 with one, below 1e-4 with three; a diff
review). The drop is on the class the model predicts; with ``target: label`` a map of a wrongly
predicted sample explains another class.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["RELIANCE_SALIENCY_COLUMNS", "reliance_saliency"]

RELIANCE_SALIENCY_COLUMNS = ["dataset", "model", "explainer", "evidence", "n", "mass", "drop", "mass_rank",
                             "reliance_rank", "spearman", "p"]
_KEY = ["dataset", "model", "seed", "sample_id", "evidence"]


def reliance_saliency(mass: pd.DataFrame, drops: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, explainer, evidence) (module docstring).

    ``mass``: columns dataset, model, seed, explainer, sample_id, evidence, mass (one row per
    explained sample that holds the evidence). ``drops``: dataset, model, seed, sample_id,
    evidence, drop (:func:`faithbench.models.reliance.sample_drops` with the group's keys).
    Columns: ``n`` (samples with a mass and a drop under every seed that has the sample; each sample's seeds
    averaged first),
    ``mass`` and ``drop`` (their means),
    ``mass_rank`` (1: the evidence on which this explainer puts the most mean mass) and
    ``reliance_rank`` (1: the evidence the model relies on most: the largest mean drop over the
    same samples), ``spearman`` and ``p`` (NaN with fewer than 3 samples or a constant side).
    Ranks use ``min`` for ties. Sorted by dataset, model, explainer, evidence.
    """
    for name, frame, needed in (("mass", mass, ["explainer", "mass"]), ("drops", drops, ["drop"])):
        missing = [c for c in _KEY + needed if c not in frame.columns]
        if missing:
            raise ValueError(f"reliance_saliency: {name} lacks the columns {missing}")
    both = mass.merge(drops[_KEY + ["drop"]], on=_KEY, how="inner", validate="many_to_one")
    keys = ["dataset", "model", "explainer", "evidence", "sample_id"]
    # a sample undefined under one seed is undefined, as on the leaderboard (a review: it entered with the other
    # seed's mass and drop only)
    defined = both.assign(_ok=np.isfinite(both["mass"].astype(float)) & np.isfinite(both["drop"].astype(float)))
    both = both[defined.groupby(keys, observed=True)["_ok"].transform("all").to_numpy(bool)]
    both = both.groupby(keys, observed=True, sort=True)[["mass", "drop"]].mean().reset_index()  # seeds: one
    rows = []
    for (dataset, model, explainer, evidence), part in both.groupby(
            ["dataset", "model", "explainer", "evidence"], sort=True, observed=True):
        m, d = part["mass"].to_numpy(float), part["drop"].to_numpy(float)
        rho, p = np.nan, np.nan
        if len(m) >= 3 and np.ptp(m) > 0 and np.ptp(d) > 0:
            rho, p = float(stats.spearmanr(m, d)[0]), spearman_p(m, d)
        rows.append({"dataset": dataset, "model": model, "explainer": explainer, "evidence": evidence,
                     "n": len(m), "mass": float(m.mean()), "drop": float(d.mean()), "spearman": rho, "p": p})
    table = pd.DataFrame(rows, columns=[c for c in RELIANCE_SALIENCY_COLUMNS if c not in ("mass_rank",
                                                                                           "reliance_rank")])
    if table.empty:
        return pd.DataFrame(columns=RELIANCE_SALIENCY_COLUMNS)
    by = table.groupby(["dataset", "model", "explainer"], observed=True)
    table["mass_rank"] = by["mass"].rank(method="min", ascending=False).astype(int)
    table["reliance_rank"] = by["drop"].rank(method="min", ascending=False).astype(int)
    return table[RELIANCE_SALIENCY_COLUMNS].reset_index(drop=True)


EXACT_UP_TO = 8  # 8! = 40320 orderings


def spearman_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p of Spearman's ρ between ``x`` and ``y`` (1D, equal length): up to
    :data:`EXACT_UP_TO` samples the share of the n! orderings of ``y`` whose |ρ| is at least the
    observed one (ties enter as average ranks, as in ρ itself), above it scipy's t approximation."""
    n = len(x)
    x, y = np.asarray(x, float), np.asarray(y, float)
    if n < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")  # no ranking to correlate (a review: 0.0 was returned)
    if n > EXACT_UP_TO:
        return float(stats.spearmanr(x, y)[1])
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    orders = np.array(list(itertools.permutations(range(n))), dtype=np.int8)
    rx, shuffled = rx - rx.mean(), ry[orders] - ry.mean()
    rho = shuffled @ rx / (np.sqrt((shuffled ** 2).sum(1)) * np.sqrt((rx ** 2).sum()))
    observed = abs(float((ry - ry.mean()) @ rx / (np.linalg.norm(ry - ry.mean()) * np.linalg.norm(rx))))
    return float(np.mean(np.abs(rho) >= observed - 1e-12))

