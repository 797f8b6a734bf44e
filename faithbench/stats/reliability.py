"""Reliability of the metrics themselves, in the spirit of MetaQuantus (Hedström et al. 2023,
"The meta-evaluation problem in explainable AI: identifying reliable estimators with
MetaQuantus", TMLR).

A metric is worth reading only if it is

- **noise resilient** (NR): a *minor* perturbation (weights + small Gaussian noise, or a little
  input noise; :func:`faithbench.metrics.reliability.perturbed_conditions`) that leaves the model
  essentially as it was should change neither the explainers' ranking nor their scores;
- **adversary reactive** (AR): a *disruptive* perturbation (weights fully re-initialised, or heavy
  noise) should change them.

From a tidy frame of scores under the three conditions ``original``, ``minor`` and ``disruptive``,
per metric (and per dataset/model when those columns exist), with samples paired by
``sample_id`` (and ``seed`` when present):

- ranking consistency: for every sample, Kendall τ-b (Kendall 1945) between the explainers'
  values under ``original`` and under a perturbed condition (explainers defined in both, at least
  2; two rows tied throughout count τ = 1, one tied row against a varying one τ = 0); τ̄ its mean
  over samples;
- score consistency: for every explainer, the matched-pairs rank-biserial correlation r (Kerby
  2014) of its original against its perturbed values; |r|̄ the mean of |r| over explainers
  (0: no systematic shift, 1: every sample moved the same way);

and

    nr = ½ (clip(τ̄_minor, 0, 1) + 1 - |r|̄_minor)          in [0, 1], higher is better
    ar = ½ (1 - clip(τ̄_disruptive, 0, 1) + |r|̄_disruptive)  in [0, 1], higher is better

(MetaQuantus combines a distribution test (IAC) and a ranking test (IEC) the same way; this is a
paired, closed-form version of that idea, not its exact estimator). ``passed`` = nr >= NR_MIN
(0.6) and ar >= AR_MIN (0.5): heuristic thresholds, chosen so that a metric whose ranking
survives minor noise only half the time, or that barely notices a randomised model, fails.
``agreement_tau`` adds the agreement between metrics: the mean Kendall τ between this metric's
ranking of explainers (mean over samples, ``original`` condition, oriented by
``higher_is_better``) and each other metric's ranking (:func:`faithbench.stats.tables.agreement_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from faithbench.stats.paired import rank_biserial
from faithbench.stats.tables import agreement_table

__all__ = ["AR_MIN", "CONDITIONS", "NR_MIN", "RELIABILITY_COLUMNS", "metric_reliability", "reliability_footnote"]

NR_MIN = 0.6
AR_MIN = 0.5
CONDITIONS = ("original", "minor", "disruptive")
RELIABILITY_COLUMNS = ["metric", "nr", "ar", "passed", "nr_ranking", "nr_scores", "ar_ranking", "ar_scores",
                       "agreement_tau", "n_samples", "n_explainers"]
_NEEDED = ["metric", "explainer", "sample_id", "condition", "value", "higher_is_better"]


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall τ-b of two rows over the entries defined in both (conventions: module docstring)."""
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size < 2:
        return np.nan
    flat_a, flat_b = np.all(a == a[0]), np.all(b == b[0])
    if flat_a and flat_b:
        return 1.0
    if flat_a or flat_b:
        return 0.0
    return float(stats.kendalltau(a, b).statistic)


def _consistency(original: pd.DataFrame, other: pd.DataFrame) -> tuple[float, float]:
    """(mean per-sample Kendall τ, mean over explainers of |rank-biserial r|) of ``other`` against
    ``original`` (wide: rows = samples, columns = explainers, aligned)."""
    taus = [_tau(original.iloc[i].to_numpy(float), other.iloc[i].to_numpy(float)) for i in range(len(original))]
    taus = [t for t in taus if not np.isnan(t)]
    shifts = [abs(rank_biserial(original[e].to_numpy(float), other[e].to_numpy(float))) for e in original.columns]
    shifts = [s for s in shifts if not np.isnan(s)]
    return (float(np.mean(taus)) if taus else np.nan, float(np.mean(shifts)) if shifts else np.nan)


def _agreement(frame: pd.DataFrame, blocks: list[str]) -> pd.Series:
    """Mean Kendall τ of each metric's explainer ranking with every other metric's, per block."""
    original = frame[frame["condition"] == "original"]
    keys = blocks + ["metric", "explainer"]
    means = original.groupby(keys, observed=True, sort=True).agg(mean=("value", "mean"),
                                                                 hib=("higher_is_better", "first")).reset_index()
    if means.empty:
        return pd.Series(dtype=float)
    means["rank"] = np.nan
    for _, index in means.groupby(blocks + ["metric"], observed=True).groups.items():
        sub = means.loc[index]
        means.loc[index, "rank"] = sub["mean"].rank(method="min", ascending=not bool(sub["hib"].iloc[0]))
    board = means.assign(dataset=means["dataset"] if "dataset" in blocks else "",
                         model=means["model"] if "model" in blocks else "")
    agreement = agreement_table(board[["dataset", "model", "metric", "explainer", "rank"]])
    both = pd.concat([agreement.rename(columns={"metric_a": "metric"}),
                      agreement.rename(columns={"metric_b": "metric"})], ignore_index=True)
    return both.groupby(["dataset", "model", "metric"], observed=True)["tau"].mean()


def metric_reliability(scores: pd.DataFrame) -> pd.DataFrame:
    """Noise resilience, adversary reactivity and a pass/fail per metric (module docstring).

    ``scores``: tidy, with columns metric, explainer, sample_id, condition ("original", "minor",
    "disruptive"), value, higher_is_better; optional dataset, model (then one row per (dataset,
    model, metric), those columns first) and seed (part of the sample key). A metric without
    the minor (disruptive) condition gets NaN nr (ar) and passed False. Columns:
    ``RELIABILITY_COLUMNS``; sorted by the keys.
    """
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"expected a tidy scores DataFrame, got {type(scores).__name__}")
    missing = [c for c in _NEEDED if c not in scores.columns]
    if missing:
        raise ValueError(f"expected the columns {_NEEDED}, missing {missing}")
    unknown = sorted(set(scores["condition"].astype(str)) - set(CONDITIONS))
    if unknown:
        raise ValueError(f"expected conditions among {list(CONDITIONS)}, got {unknown}")
    blocks = [c for c in ("dataset", "model") if c in scores.columns]
    sample = ["sample_id"] + (["seed"] if "seed" in scores.columns else [])
    frame = scores.assign(value=pd.to_numeric(scores["value"], errors="coerce"))
    duplicated = frame.duplicated(blocks + ["metric", "explainer", "condition"] + sample)
    if duplicated.any():
        raise ValueError(f"expected one value per ({', '.join(blocks + ['metric', 'explainer', 'condition'] + sample)}"
                         f"), got {int(duplicated.sum())} duplicate row(s)")
    agreement = _agreement(frame, blocks)
    rows = []
    for key, group in frame.groupby(blocks + ["metric"], observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        wide = {c: g.pivot(index=sample, columns="explainer", values="value")
                for c, g in group.groupby("condition", observed=True)}
        original = wide.get("original")
        row = dict(zip(blocks + ["metric"], key))
        row["n_samples"] = 0 if original is None else int(len(original))
        row["n_explainers"] = 0 if original is None else int(original.shape[1])
        for condition, prefix in (("minor", "nr"), ("disruptive", "ar")):
            tau, shift = np.nan, np.nan
            if original is not None and condition in wide:
                other = wide[condition]
                index = original.index.intersection(other.index)
                columns = original.columns.intersection(other.columns)
                tau, shift = _consistency(original.loc[index, columns], other.loc[index, columns])
            ranking = np.clip(tau, 0.0, 1.0)
            row[f"{prefix}_ranking"] = ranking if prefix == "nr" else 1.0 - ranking
            row[f"{prefix}_scores"] = 1.0 - shift if prefix == "nr" else shift
            row[prefix] = 0.5 * (row[f"{prefix}_ranking"] + row[f"{prefix}_scores"])
        row["passed"] = bool(row["nr"] >= NR_MIN and row["ar"] >= AR_MIN)
        block_key = tuple(row.get(c, "") for c in ("dataset", "model")) + (row["metric"],)
        row["agreement_tau"] = float(agreement.get(block_key, np.nan)) if len(agreement) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=blocks + RELIABILITY_COLUMNS)


def reliability_footnote(reliability: pd.DataFrame, board: pd.DataFrame) -> str:
    """The footnote under a leaderboard: one sentence per metric of ``board`` that failed the
    reliability check (matched on dataset/model too when both tables have them); "" when none."""
    if reliability is None or reliability.empty or board is None or board.empty:
        return ""
    failed = reliability[~reliability["passed"].astype(bool)]
    keys = [c for c in ("dataset", "model") if c in failed.columns and c in board.columns] + ["metric"]
    shown = board[keys].astype(str).drop_duplicates()
    failed = failed.assign(**{k: failed[k].astype(str) for k in keys}).merge(shown, on=keys)
    if failed.empty:
        return ""
    parts = []
    for metric, rows in failed.groupby("metric", sort=True):
        nr, ar = rows["nr"].mean(), rows["ar"].mean()
        reasons = []
        if not nr >= NR_MIN:
            reasons.append(f"noise resilience {nr:.2f} < {NR_MIN:.2f}: its ranking or scores move under a minor "
                           "perturbation")
        if not ar >= AR_MIN:
            reasons.append(f"adversary reactivity {ar:.2f} < {AR_MIN:.2f}: it barely reacts to a randomised model")
        where = ""
        if len(keys) > 1:
            where = " (on " + ", ".join(" / ".join(r[k] for k in keys[:-1]) for _, r in rows.iterrows()) + ")"
        parts.append(f"{metric}{where}: " + "; ".join(reasons or ["undefined (a condition is missing)"]))
    return ("† Failed the metric reliability check (MetaQuantus-style, Hedström et al. 2023; see "
            "reliability.csv) — read with caution: " + ". ".join(parts) + ".")
