"""Metric reliability (MetaQuantus idea) on constructed score tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faithbench.stats.reliability import (AR_MIN, MIN_RANKED, NR_MIN, RELIABILITY_COLUMNS, metric_reliability,
                                         reliability_footnote)


def _rows(metric: str, condition: str, table: dict[str, list[float]], higher_is_better: bool = True) -> list[dict]:
    return [{"metric": metric, "explainer": e, "sample_id": f"s{i}", "condition": condition, "value": v,
             "higher_is_better": higher_is_better} for e, values in table.items() for i, v in enumerate(values)]


ORIGINAL = {"e1": [1.0, 1.5, 1.2, 1.1, 1.3, 1.4], "e2": [2.0, 2.5, 2.2, 2.1, 2.3, 2.4],
            "e3": [3.0, 3.5, 3.2, 3.1, 3.3, 3.4]}  # 6 samples: MIN_RANKED


def test_reliable_metric_passes():
    rows = (_rows("good", "original", ORIGINAL) + _rows("good", "minor", ORIGINAL)
            + _rows("good", "disruptive", {e: [0.0] * 6 for e in ORIGINAL}))
    table = metric_reliability(pd.DataFrame(rows))
    assert list(table.columns) == RELIABILITY_COLUMNS
    row = table.iloc[0]
    # minor = original: tau 1, no shift -> nr 1; disruptive: constant rows (tau 0 -> 1 - 0) and every
    # value dropped (|r| = 1) -> ar 1
    assert row["nr"] == pytest.approx(1.0) and row["ar"] == pytest.approx(1.0)
    assert bool(row["passed"]) and row["n_samples"] == 6 and row["n_explainers"] == 3


def test_no_verdict_on_too_few_ranked_samples():
    """A held-out review: the verdict rested on 3 samples (a localisation metric, undefined on the
    samples without a lesion) and flipped with more. Below MIN_RANKED (6: the fewest pairs with
    which a two-sided Wilcoxon test can reach p < 0.05) the metric does not pass, and says why."""
    assert 2 / 2**MIN_RANKED < 0.05 <= 2 / 2 ** (MIN_RANKED - 1)
    few = {e: v[:5] for e, v in ORIGINAL.items()}
    undefined = {e: v[:5] + [np.nan] for e, v in ORIGINAL.items()}  # a 6th sample where the metric is undefined
    for original in (few, undefined):
        rows = (_rows("m", "original", original) + _rows("m", "minor", original)
                + _rows("m", "disruptive", {e: [0.0] * len(v) for e, v in original.items()}))
        table = metric_reliability(pd.DataFrame(rows))
        row = table.iloc[0]
        assert row["nr"] == pytest.approx(1.0) and row["ar"] == pytest.approx(1.0)  # as the 6-sample metric
        assert row["n_ranked"] == 5 and not bool(row["passed"])
        # a review: with every re-scored sample ranked, "the others giving every explainer the same value" named a
        # cause that was not there, and a metric that met both thresholds on too few samples showed neither value
        cause = ("5 re-scored, each ranking the explainers" if original is few else
                 f"5 of {row['n_samples']} ranked the explainers, the others giving every explainer the same value or "
                 "none")
        assert reliability_footnote(table, pd.DataFrame({"metric": ["m"]})).endswith(
            f"m: too few samples for a verdict: {cause} (at least 6 needed; the check re-scores the first "
            "min(reliability, batch_size) "
            "samples of each group: raise both; a localisation metric also needs samples with a lesion, subset: "
            f"positive, where it is not set); noise resilience 1.00 (≥ {NR_MIN:.2f}, on 5 ranked samples, too few to "
            f"count); adversary reactivity 1.00 (≥ {AR_MIN:.2f}, on 5 ranked samples, too few to count).")


def test_fragile_metric_fails():
    reversed_ = {"e1": ORIGINAL["e3"], "e2": ORIGINAL["e2"], "e3": ORIGINAL["e1"]}
    rows = (_rows("bad", "original", ORIGINAL) + _rows("bad", "minor", reversed_)
            + _rows("bad", "disruptive", ORIGINAL))
    row = metric_reliability(pd.DataFrame(rows)).iloc[0]
    # minor reverses every sample's order: tau -1 -> 0; |r|: e1 and e3 all moved (1), e2 not (0) -> 2/3
    assert row["nr_ranking"] == pytest.approx(0.0)
    assert row["nr_scores"] == pytest.approx(1 / 3)
    assert row["nr"] == pytest.approx(1 / 6)
    # disruptive = original: nothing reacts
    assert row["ar"] == pytest.approx(0.0)
    assert not bool(row["passed"])


def test_agreement_is_oriented_and_missing_condition():
    rows = _rows("up", "original", ORIGINAL) + _rows("down", "original", ORIGINAL, higher_is_better=False)
    table = metric_reliability(pd.DataFrame(rows)).set_index("metric")
    # same values, opposite orientation: reversed rankings
    assert table.loc["up", "agreement_tau"] == pytest.approx(-1.0)
    assert table.loc["down", "agreement_tau"] == pytest.approx(-1.0)
    assert np.isnan(table.loc["up", "nr"]) and not bool(table.loc["up", "passed"])


def test_per_dataset_model_blocks_and_validation():
    rows = pd.DataFrame(_rows("m", "original", ORIGINAL) + _rows("m", "minor", ORIGINAL)
                        + _rows("m", "disruptive", {e: [0.0] * 6 for e in ORIGINAL}))
    both = pd.concat([rows.assign(dataset="d", model="a"), rows.assign(dataset="d", model="b")])
    table = metric_reliability(both)
    assert list(table.columns[:3]) == ["dataset", "model", "metric"]
    assert table["model"].tolist() == ["a", "b"] and table["passed"].all()
    with pytest.raises(ValueError, match="conditions"):
        metric_reliability(rows.assign(condition="tiny"))
    with pytest.raises(ValueError, match="duplicate"):
        metric_reliability(pd.concat([rows, rows]))
    with pytest.raises(ValueError, match="missing"):
        metric_reliability(rows.drop(columns=["higher_is_better"]))


def test_footnote_names_failing_metrics_on_the_board():
    reliability = pd.DataFrame([
        {"metric": "deletion_auc", "nr": 0.4, "ar": 0.9, "passed": False},
        {"metric": "pointing_game", "nr": 0.9, "ar": 0.2, "passed": False},
        {"metric": "insertion_auc", "nr": 0.9, "ar": 0.9, "passed": True},
    ])
    board = pd.DataFrame({"metric": ["deletion_auc", "insertion_auc"], "explainer": ["a", "a"]})
    note = reliability_footnote(reliability, board)
    assert "deletion_auc" in note and "noise resilience 0.40 < 0.60" in note
    assert "pointing_game" not in note  # not on this board
    assert "insertion_auc" not in note
    assert reliability_footnote(reliability, board[board["metric"] == "insertion_auc"]) == ""
    assert "adversary reactivity 0.20" in reliability_footnote(reliability, pd.DataFrame({"metric": ["pointing_game"]}))


def _board_and_table(nr: list[float], ar: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A leaderboard with metric m on models a and b of dataset d, and its reliability rows."""
    board = pd.DataFrame({"dataset": ["d", "d"], "model": ["a", "b"], "metric": ["m", "m"], "explainer": ["e", "e"]})
    table = pd.DataFrame({"dataset": ["d", "d"], "model": ["a", "b"], "metric": ["m", "m"], "nr": nr, "ar": ar,
                          "passed": [bool(n >= 0.6 and r >= 0.5) for n, r in zip(nr, ar)]})
    return table, board


def test_footnote_gives_each_failing_model_its_own_values():
    head = "read with caution: "
    table, board = _board_and_table([0.9, 0.9], [0.0, 0.45])  # the mean 0.22 appears in no row
    note = reliability_footnote(table, board)
    assert note.split(head)[1] == ("m (on d / a): adversary reactivity 0.00 < 0.50: it barely reacts to a randomised "
                                   "model. m (on d / b): adversary reactivity 0.45 < 0.50: it barely reacts to a "
                                   "randomised model.")
    table, board = _board_and_table([0.9, 0.3], [0.2, 0.9])  # a fails ar only, b nr only
    note = reliability_footnote(table, board).split(head)[1]
    assert note == ("m (on d / a): adversary reactivity 0.20 < 0.50: it barely reacts to a randomised model. "
                    "m (on d / b): noise resilience 0.30 < 0.60: its ranking or scores move under a minor "
                    "perturbation.")
    table, board = _board_and_table([np.nan, 0.9], [0.9, 0.9])  # nr undefined on a; b passes
    note = reliability_footnote(table, board).split(head)[1]
    assert note == ("m (on d / a): noise resilience undefined: no sample ranked by it under both the original and "
                    "the minor condition (ties across the explainers, explainers undefined under that condition, or "
                    "that condition not computed).")  # a table without the counts: every cause named


def test_a_tied_original_sample_is_left_out_of_tau():
    """Sample s6 gives every explainer 1.0 on the real model: it ranks nothing. Under the
    disruptive condition it varies; counted as τ = 0 it would make the metric look reactive."""
    tied = {e: v + [1.0] for e, v in ORIGINAL.items()}
    moved = {"e1": ORIGINAL["e1"] + [1.0], "e2": ORIGINAL["e2"] + [2.0], "e3": ORIGINAL["e3"] + [3.0]}
    rows = _rows("m", "original", tied) + _rows("m", "minor", tied) + _rows("m", "disruptive", moved)
    row = metric_reliability(pd.DataFrame(rows)).iloc[0]
    assert row["n_samples"] == 7 and row["n_ranked"] == 6
    assert row["ar_ranking"] == pytest.approx(0.0)  # τ = 1 on s0..s5; s6 left out (else τ̄ = 6/7 -> 1/7)
    assert row["nr_ranking"] == pytest.approx(1.0)


def test_a_metric_constant_over_explainers_has_no_reliability_and_no_verdict():
    rng = np.random.default_rng(0)
    zeros = {e: [0.0] * 4 for e in ORIGINAL}
    noisy = {e: rng.random(4).tolist() for e in ORIGINAL}
    rows = _rows("zero", "original", zeros) + _rows("zero", "minor", zeros) + _rows("zero", "disruptive", noisy)
    table = metric_reliability(pd.DataFrame(rows))
    row = table.iloc[0]
    assert np.isnan(row["nr"]) and np.isnan(row["ar"]) and not bool(row["passed"])
    assert row["n_ranked"] == 0 and row["n_samples"] == 4
    note = reliability_footnote(table, pd.DataFrame({"metric": ["zero"]}))
    # a held-out review: "it ranks nothing" read as a statement about the leaderboard, which ranked them apart
    assert note.endswith("zero: no verdict: on its 4 re-scored samples it gave every explainer the same value "
                         "wherever it is defined, so none of them ranks the explainers (the leaderboard covers every "
                         "sample; the check re-scores the first min(reliability, batch_size) samples of each group: "
                         "raise both; a localisation metric also needs samples with a lesion, subset: positive, "
                         "where it is not set).")
    from faithbench.stats.reliability import verdicts

    assert verdicts(table).tolist() == ["no verdict"]


def test_verdicts_tell_no_verdict_from_fail():
    """The report's verdict: "no verdict" on 0 to MIN_RANKED - 1 ranked samples (too few to pass or
    fail), "fail" on enough samples, "pass" as ``passed``."""
    from faithbench.stats.reliability import verdicts

    table = pd.DataFrame({"metric": list("abcd"), "nr": [0.9, 0.3, 0.9, np.nan], "ar": [0.9, 0.9, 0.9, np.nan],
                          "passed": [True, False, False, False], "n_ranked": [8, 8, MIN_RANKED - 1, 0]})
    assert verdicts(table).tolist() == ["pass", "fail", "no verdict", "no verdict"]
    note = reliability_footnote(table, pd.DataFrame({"metric": list("abcd")}))
    assert note.startswith("‡ Failed the metric reliability check or had too few samples for its verdict (")
    only_fails = reliability_footnote(table.iloc[:2], pd.DataFrame({"metric": list("ab")}))
    assert only_fails.startswith("‡ Failed the metric reliability check (MetaQuantus")


def test_agreement_ranks_on_the_samples_every_explainer_has():
    """As the leaderboard's rank: e1, undefined on the hard samples, is not ranked on its easy ones.
    'partial' ranks e2 > e1 > e3 on the shared samples (its means over each one's own samples would
    put e1 first); 'full' ranks e2 > e1 > e3 too: agreement τ 1."""
    partial = {"e1": [0.9, 0.9, 0.9, np.nan, np.nan, np.nan], "e2": [1.0, 1.0, 1.0, 0.1, 0.1, 0.1],
               "e3": [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]}
    full = {"e1": [2.0] * 6, "e2": [3.0] * 6, "e3": [1.0] * 6}
    rows = _rows("partial", "original", partial) + _rows("full", "original", full)
    table = metric_reliability(pd.DataFrame(rows)).set_index("metric")
    assert table.loc["partial", "agreement_tau"] == pytest.approx(1.0)
    assert table.loc["full", "agreement_tau"] == pytest.approx(1.0)


def test_the_verdict_counts_samples_not_seed_sample_pairs():
    """A held-out review: 2 images x 3 seeds counted as 6 ranked samples and passed (no ‡), and the
    footnote said "18 re-scored samples" of 6 images x 3 seeds. A sample's seeds are averaged first,
    as in the leaderboard: 2 samples rank, no verdict."""
    rows = []
    for seed in range(3):
        two = {e: v[:2] for e, v in ORIGINAL.items()}
        rows += [dict(r, seed=seed) for r in _rows("m", "original", two) + _rows("m", "minor", two)
                 + _rows("m", "disruptive", {e: [0.0, 0.0] for e in two})]
    row = metric_reliability(pd.DataFrame(rows)).iloc[0]
    assert row["n_samples"] == 2 and row["n_ranked"] == 2 and not bool(row["passed"])
    assert row["nr"] == pytest.approx(1.0) and row["ar"] == pytest.approx(1.0)
    zeros = [dict(r, seed=seed, value=0.0) for seed in range(3) for r in _rows("z", "original", ORIGINAL)]
    table = metric_reliability(pd.DataFrame(zeros))
    assert reliability_footnote(table, pd.DataFrame({"metric": ["z"]})).count("on its 6 re-scored samples") == 1


def test_seeds_of_a_sample_are_averaged_before_tau():
    """Under seed 0 e1 < e2 on sample s0, under seed 1 e1 > e2 by less: the sample's means keep e1 < e2,
    and the minor condition (the same means) keeps the ranking: τ 1, not a mix of per-seed τ."""
    rows = []
    for seed, (a, b) in enumerate([(1.0, 3.0), (2.5, 2.0)]):
        for condition in ("original", "minor"):
            rows += [dict(r, seed=seed) for r in _rows("m", condition, {"e1": [a] * 6, "e2": [b] * 6})]
    row = metric_reliability(pd.DataFrame(rows)).iloc[0]
    assert row["nr_ranking"] == pytest.approx(1.0) and row["n_samples"] == 6


def test_a_sample_undefined_under_one_seed_is_undefined():
    """A held-out review: one value NaN under seed 1 in the original condition only; averaging the seeds
    that have a value compared seed 0 of the original with seeds 0 and 1 of a minor condition identical
    to it (nr 0.77). As the leaderboard, the sample is undefined for that explainer: nr 1."""
    rng = np.random.default_rng(0)
    seeds = {seed: {e: list(rng.random(8)) for e in ("a", "b", "c")} for seed in (0, 1)}
    seeds[0]["a"][0], seeds[1]["a"][0] = 0.9, 0.1  # the two checkpoints disagree on s0
    rows = []
    for seed, table in seeds.items():
        for condition in ("original", "minor", "disruptive"):
            rows += [dict(r, seed=seed) for r in _rows("m", condition, table)]
    rows[0 + 24 * 3]["value"] = np.nan  # seed 1, original, explainer a, sample s0
    assert rows[24 * 3]["seed"] == 1 and rows[24 * 3]["condition"] == "original" and rows[24 * 3]["sample_id"] == "s0"
    row = metric_reliability(pd.DataFrame(rows)).iloc[0]
    assert row["nr"] == pytest.approx(1.0) and row["nr_scores"] == pytest.approx(1.0)
    assert row["n_samples"] == 8


def test_a_seed_without_rows_in_a_condition_leaves_its_samples_undefined():
    """A review of the mend above: a seed with no row at all in the minor condition (the metric failed there
    for every explainer) still compared seed 0 there with seeds 0 and 1 of the original (nr 0.745)."""
    rng = np.random.default_rng(0)
    seeds = {seed: {e: list(rng.random(8)) for e in ("a", "b", "c")} for seed in (0, 1)}
    rows = []
    for seed, table in seeds.items():
        for condition in ("original", "minor", "disruptive"):
            if (seed, condition) != (1, "minor"):
                rows += [dict(r, seed=seed) for r in _rows("m", condition, table)]
    row = metric_reliability(pd.DataFrame(rows)).iloc[0]
    assert np.isnan(row["nr"]) and not row["passed"] and row["n_samples"] == 8


def test_n_ranked_counts_the_samples_of_the_thinner_tau_mean():
    """A review: ``n_ranked`` counted samples ranked over every explainer under ``original``; with one
    explainer undefined after randomisation and the other two tied on 5 of 6 samples, the disruptive
    τ̄ rested on 1 sample while the metric passed on ``n_ranked`` 6."""
    tied = {"A": [0.5, 0.5, 0.5, 0.5, 0.5, 0.2], "B": [0.5, 0.5, 0.5, 0.5, 0.5, 0.8],
            "C": [0.1, 0.9, 0.1, 0.9, 0.1, 0.9]}
    disruptive = {"A": [0.3, 0.2, 0.1, 0.4, 0.6, 0.9], "B": [0.6, 0.7, 0.8, 0.9, 0.1, 0.1], "C": [np.nan] * 6}
    rows = _rows("m", "original", tied) + _rows("m", "minor", tied) + _rows("m", "disruptive", disruptive)
    row = metric_reliability(pd.DataFrame(rows)).iloc[0]
    assert row["ar_ranking"] == pytest.approx(1.0)  # A < B reversed on the one sample that ranks A, B: τ -1
    assert row["n_ranked"] == 1 and not bool(row["passed"])
    # the same table with C defined under disruptive: every sample enters both means
    rows = (_rows("m", "original", tied) + _rows("m", "minor", tied)
            + _rows("m", "disruptive", {**disruptive, "C": tied["C"]}))
    assert metric_reliability(pd.DataFrame(rows)).iloc[0]["n_ranked"] == 6


def test_the_footnote_tells_an_undefined_perturbed_condition_from_ties():
    """Held-out review round 5 (F1): relevance mass ranked Grad-CAM above saliency on the 3 lesion samples
    under original and minor, but Grad-CAM was NaN on every sample under the disruptive condition, so
    n_ranked was 0 and ar NaN; the footnote said the metric "gave every explainer the same value wherever it
    is defined". It now names the disruptive condition and keeps nr."""
    original = {"gradcam": [0.048, 0.050, 0.026] + [np.nan] * 5, "saliency": [0.014, 0.021, 0.011] + [np.nan] * 5}
    disruptive = {"gradcam": [np.nan] * 8, "saliency": [0.012, 0.020, 0.013] + [np.nan] * 5}
    rows = (_rows("relevance_mass", "original", original) + _rows("relevance_mass", "minor", original)
            + _rows("relevance_mass", "disruptive", disruptive))
    table = metric_reliability(pd.DataFrame(rows))
    row = table.iloc[0]
    assert row["n_ranked"] == 0 and row["n_ranked_original"] == 3 and row["n_samples"] == 8
    assert row["nr_ranking"] == pytest.approx(1.0) and np.isnan(row["ar"])
    note = reliability_footnote(table, pd.DataFrame({"metric": ["relevance_mass"]}))
    assert "same value" not in note
    assert note.endswith("relevance_mass: no verdict: no re-scored sample ranks the explainers under both the "
                         "original and the disruptive condition; noise resilience 1.00 (≥ 0.60, on 3 ranked samples, "
                         "too few to count); adversary reactivity undefined: 3 of the 8 re-scored samples rank the "
                         "explainers "
                         "under the original condition, none of them once the explainers undefined under the "
                         "disruptive condition are left out (or that condition was not computed).")
    # a reliability.csv written before n_ranked_original: the defined nr ranking shows the original ranked some
    older = reliability_footnote(table.drop(columns="n_ranked_original"), pd.DataFrame({"metric": ["relevance_mass"]}))
    assert "same value" not in older and "undefined: some of the 8 re-scored samples rank the explainers" in older
    # ties under the original condition keep the tie sentence, now backed by n_ranked_original 0
    zeros = {e: [0.0] * 4 for e in ORIGINAL}
    tied = metric_reliability(pd.DataFrame(_rows("z", "original", zeros) + _rows("z", "minor", zeros)
                                           + _rows("z", "disruptive", disruptive)))
    assert tied.iloc[0]["n_ranked_original"] == 0
    assert "z: no verdict: on its 4 re-scored samples it gave every explainer the same value" in reliability_footnote(
        tied, pd.DataFrame({"metric": ["z"]}))


def test_a_sample_undefined_under_one_seed_for_every_explainer_stays_undefined_as_on_the_leaderboard():
    """A held-out review (stats6 F4): metric m had no row for s0 under seed 1 (every explainer, every condition)
    while m2 had; the leaderboard gave m n = 5, metric_reliability averaged s0 over seed 0 and ranked 6."""
    rng = np.random.default_rng(0)
    rows = [{"dataset": "d", "model": "net", "seed": seed, "sample_id": f"s{s}", "explainer": e, "metric": metric,
             "condition": condition, "higher_is_better": True,
             "value": base + rng.normal(0, 0.05) if condition != "disruptive" else rng.uniform()}
            for seed in (0, 1) for s in range(6) for e, base in (("a", 0.6), ("b", 0.4), ("c", 0.2))
            for metric in ("m", "m2") if not (metric == "m" and seed == 1 and s == 0)
            for condition in ("original", "minor", "disruptive")]
    rel = metric_reliability(pd.DataFrame(rows)).set_index("metric")
    assert rel.at["m", "n_ranked"] == 5 and rel.at["m", "n_ranked_original"] == 5 and rel.at["m2", "n_ranked"] == 6


def test_footnote_gives_the_two_halves_of_a_failing_value():
    """A held-out review (stats6 F6): phantom_cxr deletion_auc failed nr with its ranking stable (nr_ranking
    0.89) and its scores shifted together (nr_scores 0.06); "its ranking or scores move" did not say which."""
    table, board = _board_and_table([0.47, 0.9], [0.9, 0.9])
    table = table.assign(nr_ranking=[0.89, 0.9], nr_scores=[0.06, 0.9])
    note = reliability_footnote(table, board).split("read with caution: ")[1]
    assert note == ("m (on d / a): noise resilience 0.47 < 0.60: its ranking or scores move under a minor "
                    "perturbation (ranking 0.89, scores 0.06).")


def test_the_footnote_says_fewer_than_two_explainers_have_a_value_not_ties():
    """Review 8 (F3): Grad-CAM undefined on every re-scored sample and saliency alone with values gave
    n_ranked_original 0, and the footnote said the metric "gave every explainer the same value"."""
    alone = {"gradcam": [np.nan] * 8, "saliency": [0.1, 0.3, 0.2, 0.5, 0.4, 0.7, 0.6, 0.8]}
    rows = sum((_rows("relevance_mass", c, alone) for c in ("original", "minor", "disruptive")), [])
    table = metric_reliability(pd.DataFrame(rows))
    row = table.iloc[0]
    assert (row["n_ranked_original"], row["n_defined_original"], row["n_explainers"]) == (0, 0, 2)
    note = reliability_footnote(table, pd.DataFrame({"metric": ["relevance_mass"]}))
    assert "same value" not in note
    assert "relevance_mass: no verdict: on its 8 re-scored samples fewer than two explainers have a value " \
           "(skipped.csv counts the undefined rows), so none of them ranks the explainers" in note
    # 5 samples with saliency alone, 3 where both are defined and tied
    mixed = {"gradcam": [np.nan] * 5 + [0.5] * 3, "saliency": [0.1, 0.3, 0.2, 0.5, 0.4] + [0.5] * 3}
    rows = sum((_rows("m", c, mixed) for c in ("original", "minor", "disruptive")), [])
    table = metric_reliability(pd.DataFrame(rows))
    assert table.iloc[0]["n_defined_original"] == 3
    assert "m: no verdict: on its 8 re-scored samples fewer than two explainers have a value on 5, and it gave " \
           "every explainer the same value on the 3 others, so none" in reliability_footnote(
               table, pd.DataFrame({"metric": ["m"]}))


def _three_conditions(minor_nan: int = 0, disruptive_nan: int = 0) -> pd.DataFrame:
    """8 samples that rank 3 explainers under original and minor (minor = original); disruptive reverses them,
    with explainers b and c undefined on its last ``disruptive_nan`` samples (and minor's on ``minor_nan``)."""
    original = {"a": [3.0 + i / 10 for i in range(8)], "b": [2.0 + i / 10 for i in range(8)],
                "c": [1.0 + i / 10 for i in range(8)]}

    def cut(table: dict[str, list[float]], n: int) -> dict[str, list[float]]:
        return {e: v if e == "a" or not n else v[:8 - n] + [np.nan] * n for e, v in table.items()}
    reversed_ = {"a": original["c"], "b": original["b"], "c": original["a"]}
    return pd.DataFrame(_rows("m", "original", original) + _rows("m", "minor", cut(original, minor_nan))
                        + _rows("m", "disruptive", cut(reversed_, disruptive_nan)))


def test_the_footnote_gives_each_side_its_own_reason_for_no_verdict():
    """Held-out review stats9 (L1): noise resilience on 8 ranked samples was said to rest "on too few samples to
    count" where only adversary reactivity was undefined (no sample ranked under the disruptive condition)."""
    board = pd.DataFrame({"metric": ["m"]})
    table = metric_reliability(_three_conditions(disruptive_nan=8))
    row = table.iloc[0]
    assert (row["n_ranked_minor"], row["n_ranked_disruptive"], row["n_ranked"]) == (8, 0, 0)
    assert row["nr"] == pytest.approx(0.5 * (1.0 + 1.0)) and np.isnan(row["ar"])  # minor = original: τ 1, no shift
    note = reliability_footnote(table, board)
    assert "too few samples to count" not in note and "too few to count" not in note
    assert (f"noise resilience 1.00 (≥ {NR_MIN:.2f} on 8 ranked samples; no verdict without adversary reactivity); "
            "adversary reactivity undefined: 8 of the 8 re-scored samples rank") in note
    # the disruptive condition ranks 4 samples: ar has a value, on too few; nr on 8 is enough, and waits on ar
    table = metric_reliability(_three_conditions(disruptive_nan=4))
    row = table.iloc[0]
    assert (row["n_ranked_minor"], row["n_ranked_disruptive"], row["n_ranked"]) == (8, 4, 4)
    # ar: every ranked sample reversed (τ -1 -> ranking 1); scores: a moves down by 2 on all 8 samples (|r| 1),
    # c up by 2 on its 4 (|r| 1), b not at all (r 0): mean |r| 2/3
    assert row["ar"] == pytest.approx(0.5 * (1.0 + 2 / 3))
    note = reliability_footnote(table, board)
    assert (f"noise resilience 1.00 (≥ {NR_MIN:.2f} on 8 ranked samples; no verdict: adversary reactivity rests on "
            f"too few); adversary reactivity 0.83 (≥ {AR_MIN:.2f}, on 4 ranked samples, too few to count)") in note
    # minor ranks 1 sample, disruptive 8: the singular, and ar's reason is nr's
    table = metric_reliability(_three_conditions(minor_nan=7))
    assert tuple(table.iloc[0][["n_ranked_minor", "n_ranked_disruptive"]]) == (1, 8)
    note = reliability_footnote(table, board)
    assert (f"noise resilience 1.00 (≥ {NR_MIN:.2f}, on 1 ranked sample, too few to count); adversary reactivity "
            f"0.83 (≥ {AR_MIN:.2f} on 8 ranked samples; no verdict: noise resilience rests on too few)") in note
    # a reliability.csv written before the per-condition counts: true, if less precise
    older = reliability_footnote(table.drop(columns=["n_ranked_minor", "n_ranked_disruptive"]), board)
    assert "adversary reactivity 0.83 (≥ 0.50; 1 ranked under both perturbations, too few to count)" in older
    older = reliability_footnote(metric_reliability(_three_conditions(disruptive_nan=8)).drop(
        columns=["n_ranked_minor", "n_ranked_disruptive"]), board)
    assert "noise resilience 1.00 (≥ 0.60; no verdict without adversary reactivity)" in older
