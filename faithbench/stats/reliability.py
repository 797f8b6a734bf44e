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
``sample_id``, a sample's values under several seeds (a ``seed`` column) averaged first, condition by
condition, as the leaderboard does: the seeds of one image are not independent observations, so every
count below (``n_samples``, ``n_ranked``, the 6 of ``MIN_RANKED``) counts distinct samples (a
held-out review found 2 images x 3 seeds passed as 6 ranked samples):

- ranking consistency: for every sample, Kendall τ-b (Kendall 1945) between the explainers'
  values under ``original`` and under a perturbed condition (explainers defined in both, at least
  2); τ̄ its mean over samples. A sample whose original values are tied across those explainers
  ranks nothing: its τ is undefined and it is left out of τ̄ (a metric that gives every explainer
  the same value, e.g. 0 everywhere, would otherwise count as fully reactive). A varying original
  row against a tied perturbed one counts τ = 0 (the ranking is gone). No sample left: τ̄, and so
  nr or ar, is NaN and the metric does not pass; ``n_ranked`` counts the samples that enter τ̄, the
  fewer of the two conditions' counts (a review: counted over every explainer under ``original``,
  it read 6 where one explainer undefined after randomisation left 1 sample in the disruptive τ̄),
  ``n_ranked_minor`` and ``n_ranked_disruptive`` each one's own (the footnote's reason per side);
  ``n_ranked_original`` counts those whose original values rank the explainers before any condition is
  matched: with it the footnote tells a metric that ties the explainers (0) from one whose perturbed
  condition leaves explainers undefined (a review: "it gave every explainer the same value" of a metric
  that ranked them on 3 samples, Grad-CAM being NaN under the randomised model);
- score consistency: for every explainer, the matched-pairs rank-biserial correlation r (Kerby
  2014) of its original against its perturbed values; |r|̄ the mean of |r| over explainers
  (0: no systematic shift, 1: every sample moved the same way);

and

    nr = ½ (clip(τ̄_minor, 0, 1) + 1 - |r|̄_minor)          in [0, 1], higher is better
    ar = ½ (1 - clip(τ̄_disruptive, 0, 1) + |r|̄_disruptive)  in [0, 1], higher is better

(MetaQuantus combines a distribution test (IAC) and a ranking test (IEC) the same way; this is a
paired, closed-form version of that idea, not its exact estimator). The scores half measures a
*systematic* shift, not its size: values that move by 1e-9 or by 1 standard deviation in random
directions give the same mean |r| (0.32 on 8 samples, 0.23 on 16, 0.13 on 48: simulated), as a
Wilcoxon test would not tell them apart either, so a continuous metric's nr_scores sits below 1
under any perturbation (a 0/1 metric whose values do not move gets 1), and a
shift that moves every sample the same way gives |r| = 1 however small. ``passed`` = nr >= NR_MIN
(0.6), ar >= AR_MIN (0.5) and ``n_ranked`` >= MIN_RANKED (6): heuristic thresholds, chosen so that
a metric whose ranking survives minor noise only half the time, or that barely notices a
randomised model, fails; and no verdict on fewer than 6 ranked samples, the fewest pairs with
which a two-sided Wilcoxon signed-rank test can reach p < 0.05 (2 / 2^6 = 0.031; 0.0625 with 5):
such a metric does not pass, and the footnote says it had too few samples (a localisation metric
is undefined on the samples without a lesion, so the default 8 samples may rank only 3, or none).
``agreement_tau`` adds the agreement between metrics: the mean Kendall τ between this metric's
ranking of explainers (mean over the samples every explainer has, ``original`` condition,
oriented by ``higher_is_better``; the leaderboard's rank) and each other metric's ranking
(:func:`faithbench.stats.tables.agreement_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from faithbench.stats.paired import common_means, rank_biserial
from faithbench.stats.tables import agreement_table, per_sample

__all__ = ["AR_MIN", "CONDITIONS", "MIN_RANKED", "NR_MIN", "RELIABILITY_COLUMNS", "RELIABILITY_MARK",
           "metric_reliability",
           "reliability_footnote", "verdicts"]

RELIABILITY_MARK = "‡"  # the footnote's mark, on the failing metrics' headers too (a model at chance: †)
NR_MIN = 0.6
AR_MIN = 0.5
MIN_RANKED = 6  # no verdict on fewer ranked samples (module docstring)
CONDITIONS = ("original", "minor", "disruptive")
RELIABILITY_COLUMNS = ["metric", "nr", "ar", "passed", "nr_ranking", "nr_scores", "ar_ranking", "ar_scores",
                       "agreement_tau", "n_samples", "n_ranked", "n_explainers", "n_ranked_original",
                       "n_defined_original", "n_ranked_minor", "n_ranked_disruptive"]
_NEEDED = ["metric", "explainer", "sample_id", "condition", "value", "higher_is_better"]


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall τ-b of the original row ``a`` and a perturbed row ``b`` over the entries defined in
    both: NaN when fewer than 2 or when ``a`` is tied throughout (no ranking), 0 when only ``b`` is."""
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size < 2 or np.all(a == a[0]):
        return np.nan
    if np.all(b == b[0]):
        return 0.0
    return float(stats.kendalltau(a, b).statistic)


def _n_ranked(original: pd.DataFrame) -> int:
    """The samples (rows) whose original values over the explainers are defined for at least 2 and
    not all tied."""
    return int(sum(np.unique(row[~np.isnan(row)]).size >= 2 for row in original.to_numpy(float)))


def _n_defined(original: pd.DataFrame) -> int:
    """The samples (rows) with original values for at least 2 explainers, tied or not."""
    return int((original.notna().sum(axis=1) >= 2).sum())


def _consistency(original: pd.DataFrame, other: pd.DataFrame) -> tuple[float, float, int]:
    """(mean per-sample Kendall τ, mean over explainers of |rank-biserial r|, the samples in that τ̄)
    of ``other`` against ``original`` (wide: rows = samples, columns = explainers, aligned)."""
    taus = [_tau(original.iloc[i].to_numpy(float), other.iloc[i].to_numpy(float)) for i in range(len(original))]
    taus = [t for t in taus if not np.isnan(t)]
    shifts = [abs(rank_biserial(original[e].to_numpy(float), other[e].to_numpy(float))) for e in original.columns]
    shifts = [s for s in shifts if not np.isnan(s)]
    return (float(np.mean(taus)) if taus else np.nan, float(np.mean(shifts)) if shifts else np.nan, len(taus))


def _by_sample(frame: pd.DataFrame, units: pd.DataFrame | None = None) -> pd.DataFrame:
    """Wide: rows = sample_id, columns = explainers, each value the mean over the sample's seeds, NaN
    where any of them is undefined (the leaderboard's rule, :func:`~faithbench.stats.tables.per_sample`:
    a held-out review found seed 0 of the original compared with seeds 0 and 1 of a perturbed condition,
    nr 0.77 for a condition identical to the original). ``units``: the (sample_id, seed) pairs of every
    condition; one without a row here (the metric failed under that seed) is undefined too (a review)."""
    if "seed" in frame.columns:
        frame = per_sample(frame, ["explainer", "sample_id"], lenient=(), units=units)
    return frame.pivot(index="sample_id", columns="explainer", values="value").astype(float)


def _block_units(frame: pd.DataFrame, blocks: list[str], key: tuple) -> pd.DataFrame | None:
    """The (seed, sample_id) pairs with a row of any metric in the block ``key`` (its first values): a seed
    explained the sample when any metric has a row for it there, the leaderboard's rule (a review: a sample
    undefined under one seed for every explainer of a metric was averaged over its other seed)."""
    if "seed" not in frame.columns:
        return None
    rows = frame[(frame[blocks] == pd.Series(key[:len(blocks)], index=blocks)).all(axis=1)] if blocks else frame
    return rows[["seed", "sample_id"]].drop_duplicates()


def _agreement(frame: pd.DataFrame, blocks: list[str]) -> pd.Series:
    """Mean Kendall τ of each metric's explainer ranking with every other metric's, per block."""
    original = frame[frame["condition"] == "original"]
    tables = []
    for key, cell in original.groupby(blocks + ["metric"], observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        means = common_means(_by_sample(cell, _block_units(frame, blocks, key)))
        rank = means.rank(method="min", ascending=not bool(cell["higher_is_better"].iloc[0]))
        tables.append(pd.DataFrame({**dict(zip(blocks + ["metric"], key)), "explainer": rank.index, "rank": rank}))
    if not tables:
        return pd.Series(dtype=float)
    means = pd.concat(tables, ignore_index=True)
    board = means.assign(dataset=means["dataset"] if "dataset" in blocks else "",
                         model=means["model"] if "model" in blocks else "")
    agreement = agreement_table(board[["dataset", "model", "metric", "explainer", "rank"]])
    both = pd.concat([agreement.rename(columns={"metric_a": "metric"}),
                      agreement.rename(columns={"metric_b": "metric"})], ignore_index=True)
    tau = both.groupby(["dataset", "model", "metric"], observed=True)["tau"].mean()
    return tau.mask(tau.abs() <= 1e-12, 0.0)  # a mean of -1, 1/3, 1/3, 1/3 is 0, not 2.78e-17 (a review)


def metric_reliability(scores: pd.DataFrame) -> pd.DataFrame:
    """Noise resilience, adversary reactivity and a pass/fail per metric (module docstring).

    ``scores``: tidy, with columns metric, explainer, sample_id, condition ("original", "minor",
    "disruptive"), value, higher_is_better; optional dataset, model (then one row per (dataset,
    model, metric), those columns first) and seed (a sample's seeds averaged first). A metric without
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
        units = _block_units(frame, blocks, key)
        wide = {c: _by_sample(g, units) for c, g in group.groupby("condition", observed=True)}
        original = wide.get("original")
        row = dict(zip(blocks + ["metric"], key))
        row["n_samples"] = 0 if original is None else int(len(original))
        row["n_ranked"] = row["n_ranked_original"] = 0 if original is None else _n_ranked(original)
        row["n_explainers"] = 0 if original is None else int(original.shape[1])
        row["n_defined_original"] = 0 if original is None else _n_defined(original)
        for condition, prefix in (("minor", "nr"), ("disruptive", "ar")):
            tau, shift, row[f"n_ranked_{condition}"] = np.nan, np.nan, 0
            if original is not None and condition in wide:
                other = wide[condition]
                index = original.index.intersection(other.index)
                columns = original.columns.intersection(other.columns)
                tau, shift, n_taus = _consistency(original.loc[index, columns], other.loc[index, columns])
                row[f"n_ranked_{condition}"] = min(row["n_ranked_original"], n_taus)
                row["n_ranked"] = min(row["n_ranked"], n_taus)
            ranking = np.clip(tau, 0.0, 1.0)
            row[f"{prefix}_ranking"] = ranking if prefix == "nr" else 1.0 - ranking
            row[f"{prefix}_scores"] = 1.0 - shift if prefix == "nr" else shift
            row[prefix] = 0.5 * (row[f"{prefix}_ranking"] + row[f"{prefix}_scores"])
        row["passed"] = bool(row["nr"] >= NR_MIN and row["ar"] >= AR_MIN and row["n_ranked"] >= MIN_RANKED)
        block_key = tuple(row.get(c, "") for c in ("dataset", "model")) + (row["metric"],)
        row["agreement_tau"] = float(agreement.get(block_key, np.nan)) if len(agreement) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=blocks + RELIABILITY_COLUMNS)


def _too_few(row: pd.Series) -> bool:
    """The row's metric ranked the explainers on 0 to ``MIN_RANKED`` - 1 of its re-scored samples
    (some were re-scored): no verdict either way (a table without ``n_ranked``, older or hand-made,
    is not checked)."""
    ranked = pd.to_numeric(row.get("n_ranked", MIN_RANKED), errors="coerce")
    return bool(0 <= ranked < MIN_RANKED and pd.to_numeric(row.get("n_samples", 1), errors="coerce") > 0)


def verdicts(reliability: pd.DataFrame) -> pd.Series:
    """Per row of ``reliability`` (``passed`` a boolean): "pass", "fail", or "no verdict" where the
    metric ranked the explainers on too few samples (0 to ``MIN_RANKED`` - 1) to pass or fail."""
    too_few = reliability.apply(_too_few, axis=1) if len(reliability) else pd.Series(dtype=bool)
    verdict = np.where(reliability["passed"].astype(bool), "pass", np.where(too_few, "no verdict", "fail"))
    return pd.Series(verdict, index=reliability.index, dtype=object)


def _count(row: pd.Series, column: str) -> int | None:
    value = pd.to_numeric(row.get(column), errors="coerce")
    return None if value is None or pd.isna(value) else int(value)


def _ranks_original(row: pd.Series) -> bool | None:
    """Whether some re-scored sample ranks the explainers under the original condition: from
    ``n_ranked_original``, or, in a table without it (older), True where a perturbed ranking is defined
    (it needs one), else None (unknown)."""
    original = _count(row, "n_ranked_original")
    if original is not None:
        return original > 0
    rankings = [pd.to_numeric(row.get(c), errors="coerce") for c in ("nr_ranking", "ar_ranking")]
    return True if any(r is not None and not pd.isna(r) for r in rankings) else None


def _why_unranked(row: pd.Series) -> str:
    """Why no re-scored sample ranks the explainers under the original condition (``n_ranked_original`` 0):
    ties, or fewer than two explainers with a value (a review: "it gave every explainer the same value" where
    Grad-CAM was undefined on every sample and saliency alone had values), from ``n_defined_original``; a
    table without it (older) keeps the tie sentence."""
    defined, n = _count(row, "n_defined_original"), _count(row, "n_samples")
    if defined is None or (n is not None and defined >= n):
        return "it gave every explainer the same value wherever it is defined"
    if defined == 0:
        return "fewer than two explainers have a value (skipped.csv counts the undefined rows)"
    return (f"fewer than two explainers have a value on {'some' if n is None else n - defined}, and it gave every "
            f"explainer the same value on the {defined} others")


def _undefined(row: pd.Series, name: str, prefix: str, condition: str) -> str:
    """Why ``name`` (nr or ar, by ``prefix``) is NaN, each cause told apart (a review: the footnote blamed
    ties where an explainer undefined under the disruptive condition left no sample ranked)."""
    ranking = pd.to_numeric(row.get(f"{prefix}_ranking"), errors="coerce")
    ranked, original = _count(row, "n_ranked"), _count(row, "n_ranked_original")
    if ranking is not None and not pd.isna(ranking):  # τ̄ defined: no explainer has a value under both
        return f"{name} undefined: no explainer has a value under both the original and the {condition} condition"
    if ranked is not None and ranked > 0:  # n_ranked counts this condition's τ̄ when it was computed
        return f"{name} undefined: the {condition} condition was not computed"
    if _ranks_original(row) is False:
        return (f"{name} undefined: no re-scored sample ranks the explainers under the original condition (on them "
                f"{_why_unranked(row)})")
    if _ranks_original(row):
        of = "some of " if original is None else f"{original} of "
        n = _count(row, "n_samples")
        return (f"{name} undefined: {of}the {'' if n is None else f'{n} '}re-scored samples rank the explainers under "
                f"the original condition, none of them once the explainers undefined under the {condition} "
                "condition are left out (or that condition was not computed)")
    return (f"{name} undefined: no sample ranked by it under both the original and the {condition} condition (ties "
            "across the explainers, explainers undefined under that condition, or that condition not computed)")


def _halves(row: pd.Series, prefix: str) -> str:
    """`` (ranking 0.89, scores 0.06)``: the two halves of nr or ar, where the row has them (a review: a ranking
    unchanged under the perturbation failed on its scores alone, and the footnote said "ranking or scores")."""
    halves = [pd.to_numeric(row.get(f"{prefix}_{half}"), errors="coerce") for half in ("ranking", "scores")]
    return "" if any(pd.isna(h) for h in halves) else f" (ranking {halves[0]:.2f}, scores {halves[1]:.2f})"


def _reasons(row: pd.Series) -> list[str]:
    """Why one (dataset, model, metric) row failed, each condition with its own value; a NaN
    condition is "undefined", with why."""
    nr, ar = float(row["nr"]), float(row["ar"])
    checks = ((nr, NR_MIN, "noise resilience", "nr", "minor", "its ranking or scores move under a minor perturbation"),
              (ar, AR_MIN, "adversary reactivity", "ar", "disruptive", "it barely reacts to a randomised model"))
    reasons = []
    advice = ("the check re-scores the first min(reliability, batch_size) samples of each group: raise both; a "
              "localisation metric also needs samples with a lesion, subset: positive, where it is not set")
    too_few = _too_few(row)
    if too_few:
        ranked = int(float(row["n_ranked"]))
        n = pd.to_numeric(row.get("n_samples"), errors="coerce")
        its = f"on its {'' if pd.isna(n) else f'{int(n)} '}re-scored samples"
        if ranked == 0 and _ranks_original(row) is False:  # a review: "it ranks nothing" was read as about the board
            return [f"no verdict: {its} {_why_unranked(row)}, so none of them ranks the explainers (the leaderboard "
                    f"covers every sample; {advice})"]
        if ranked == 0 and _ranks_original(row) is None:  # an older table: ties and undefined cannot be told apart
            return [f"no verdict: {its} none ranks the explainers under both the original and a perturbed condition: "
                    "it gives every explainer the same value wherever it is defined, or the explainers are undefined "
                    f"under the perturbed conditions (the leaderboard covers every sample; {advice})"]
        if ranked == 0:  # the original ranks some: a perturbed condition left too few explainers defined (a review)
            undefined = [c for v, _, _, _, c, _ in checks if np.isnan(v)] or ["minor", "disruptive"]
            reasons.append(f"no verdict: no re-scored sample ranks the explainers under both the original and the "
                           f"{' and the '.join(undefined)} condition")
        elif not pd.isna(n) and ranked == int(n):  # a review: "the others" read as ties where every sample ranked
            reasons.append(f"too few samples for a verdict: {ranked} re-scored, each ranking the explainers (at least "
                           f"{MIN_RANKED} needed; {advice})")
        else:
            of = "" if pd.isna(n) else f" of {int(n)}"
            reasons.append(f"too few samples for a verdict: {ranked}{of} ranked the explainers, the others giving "
                           f"every explainer the same value or none (at least {MIN_RANKED} needed; {advice})")
    for (value, low, name, prefix, condition, meaning), other in zip(checks, checks[::-1]):
        if np.isnan(value):
            reasons.append(_undefined(row, name, prefix, condition))
        elif value < low:
            reasons.append(f"{name} {value:.2f} < {low:.2f}: {meaning}{_halves(row, prefix)}")
        elif too_few:  # a review: a metric that met both thresholds on too few samples showed neither value
            reasons.append(f"{name} {value:.2f} (≥ {low:.2f}{_short_side(row, condition, other)})")
    return reasons or [f"noise resilience {nr:.2f}, adversary reactivity {ar:.2f}"]


def _short_side(row: pd.Series, condition: str, other: tuple) -> str:
    """Why a value that meets its threshold gives no verdict: its own condition's ranked samples
    (``n_ranked_<condition>``) too few, or, with enough, the other condition's value (a review: "on too few
    samples to count" of a noise resilience on 8 ranked samples, where only adversary reactivity was undefined)."""
    own, value, name = _count(row, f"n_ranked_{condition}"), other[0], other[2]
    if own is not None and own < MIN_RANKED:
        return f", on {own} ranked sample{'' if own == 1 else 's'}, too few to count"
    counted = "" if own is None else f" on {own} ranked samples"
    if np.isnan(value):
        return f"{counted}; no verdict without {name}"
    if own is None:  # an older table: only the fewer of the two conditions' counts
        return f"; {int(float(row['n_ranked']))} ranked under both perturbations, too few to count"
    return f"{counted}; no verdict: {name} rests on too few"


def reliability_footnote(reliability: pd.DataFrame, board: pd.DataFrame) -> str:
    """The reliability footnote of the leaderboards: one sentence per (dataset, model, metric) row
    of ``reliability`` that failed the check, for the metrics of ``board`` (matched on dataset/model
    too when both tables have them, and then naming them), each with that row's own nr and ar
    (NaN: "undefined" and why); "" when none."""
    if reliability is None or reliability.empty or board is None or board.empty:
        return ""
    failed = reliability[~reliability["passed"].astype(bool)]
    keys = [c for c in ("dataset", "model") if c in failed.columns and c in board.columns] + ["metric"]
    shown = board[keys].astype(str).drop_duplicates()
    failed = failed.assign(**{k: failed[k].astype(str) for k in keys}).merge(shown, on=keys)
    if failed.empty:
        return ""
    parts = []
    for _, row in failed.sort_values(keys, kind="stable").iterrows():
        where = f" (on {' / '.join(row[k] for k in keys[:-1])})" if len(keys) > 1 else ""
        parts.append(f"{row['metric']}{where}: " + "; ".join(_reasons(row)))
    what = "Failed the metric reliability check"
    if failed.apply(_too_few, axis=1).any():
        what += " or had too few samples for its verdict"
    return (f"{RELIABILITY_MARK} {what} (MetaQuantus-style, Hedström et al. 2023; "
            "see reliability.csv) — read with caution: " + ". ".join(parts) + ".")
