import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faithbench.stats import (
    agreement_table,
    friedman_table,
    holm,
    leaderboard,
    nemenyi_table,
    overall_nemenyi,
    overall_ranks,
    pairwise_table,
)

N = 20  # samples per seed
SEEDS = (0, 1)


def _tidy(rng, dataset="phantom2d", model="resnet18", shift=1.0):
    """Explainers: 'good' beats 'random' by `shift` in the oriented direction, 'copy' = random.

    Metrics: 'insertion' (higher better) and 'deletion' (lower better), both on the same
    per-sample base so that 'good' is best on both.
    """
    rows = []
    for seed in SEEDS:
        base = rng.uniform(0.3, 0.7, size=N)
        noise = 0.05 * rng.normal(size=N)
        for metric, hib, sign, category in (
            ("insertion", True, 1.0, "faithfulness"),
            ("deletion", False, -1.0, "faithfulness"),
        ):
            values = {
                "random": base,
                "copy": base.copy(),
                "good": base + sign * shift * 0.2 + noise,
                "mid": base + sign * shift * 0.1 + noise,
            }
            for explainer, v in values.items():
                for sample_id in range(N):
                    rows.append(
                        {
                            "dataset": dataset,
                            "model": model,
                            "explainer": explainer,
                            "metric": metric,
                            "seed": seed,
                            "sample_id": sample_id,
                            "value": float(v[sample_id]),
                            "higher_is_better": hib,
                            "category": category,
                            "chance": 0.25 if metric == "insertion" else np.nan,
                        }
                    )
    return pd.DataFrame(rows)


@pytest.fixture
def results():
    return _tidy(np.random.default_rng(0))


def test_leaderboard_columns_and_summary(results):
    board = leaderboard(results, n_resamples=200)
    assert list(board.columns) == [
        "dataset", "model", "metric", "explainer", "mean", "ci_low", "ci_high", "median",
        "n", "chance", "rank", "n_common", "higher_is_better", "category", "p_vs_random", "beats_random",
        "p_worse_than_random",
        "worse_than_random",
    ]
    assert len(board) == 2 * 4
    row = board[(board.metric == "insertion") & (board.explainer == "good")].iloc[0]
    values = results[(results.metric == "insertion") & (results.explainer == "good")]
    per_sample = values.groupby("sample_id").value.mean()  # the seeds of a sample averaged: samples are the blocks
    assert row["mean"] == pytest.approx(values.value.mean())
    assert row["median"] == pytest.approx(per_sample.median()) and row["median"] != pytest.approx(values.value.median())
    assert row["n"] == N
    assert row["ci_low"] < row["mean"] < row["ci_high"]
    assert row["chance"] == pytest.approx(0.25)
    assert row["category"] == "faithfulness"
    assert np.isnan(board[board.metric == "deletion"].chance).all()


def test_leaderboard_ranks_oriented(results):
    board = leaderboard(results, n_resamples=100).set_index(["metric", "explainer"])
    # 'good' is best on both metrics although deletion is lower-is-better
    assert board.loc[("insertion", "good"), "rank"] == 1
    assert board.loc[("insertion", "mid"), "rank"] == 2
    assert board.loc[("deletion", "good"), "rank"] == 1
    assert board.loc[("deletion", "mid"), "rank"] == 2
    assert board.loc[("insertion", "good"), "mean"] > board.loc[("insertion", "random"), "mean"]
    assert board.loc[("deletion", "good"), "mean"] < board.loc[("deletion", "random"), "mean"]
    # random and its copy tie: both get the best shared rank ('min')
    assert board.loc[("deletion", "random"), "rank"] == 3
    assert board.loc[("deletion", "copy"), "rank"] == 3


def _cell(values, metric="relevance_mass", hib=True, dataset="d", model="m"):
    """A tidy cell from {explainer: [value per sample]} (NaN: undefined), one seed."""
    return pd.DataFrame([
        {"dataset": dataset, "model": model, "explainer": e, "metric": metric, "seed": 0, "sample_id": i,
         "value": v, "higher_is_better": hib, "category": "localization", "chance": np.nan}
        for e, vs in values.items() for i, v in enumerate(vs)])


def test_rank_compares_the_samples_every_explainer_has():
    """A held-out review: 'a' is undefined on the two hard samples (an all-zero map) and loses to
    'b' on both samples they share, yet its mean over its own samples (0.9, n 2) beats b's (0.525,
    n 4). The rank, the bold, the overall ranks and the agreement compare the shared samples."""
    from faithbench.reports.tables import leaderboard_tables

    cell = _cell({"a": [0.9, 0.9, np.nan, np.nan], "b": [0.95, 0.95, 0.1, 0.1], "c": [0.5, 0.6, 0.2, 0.3]})
    board = leaderboard(cell, control="c", n_resamples=50).set_index("explainer")
    assert board.loc["a", "mean"] == pytest.approx(0.9) and board.loc["a", "n"] == 2
    assert board.loc["b", "mean"] == pytest.approx(0.525) and board.loc["b", "n"] == 4
    assert board.loc["b", "rank"] == 1 and board.loc["a", "rank"] == 2 and board.loc["c", "rank"] == 3
    (table,) = leaderboard_tables(board.reset_index())
    assert [e for e in table.explainers if table.cells[e]["relevance_mass"].best] == ["b"]
    lower = _cell({"a": [0.1, 0.1, np.nan, np.nan], "b": [0.05, 0.05, 0.9, 0.9], "c": [0.5, 0.6, 0.2, 0.3]},
                  hib=False)  # lower is better: a's mean 0.1 < b's 0.475, yet b is lower on the shared samples
    assert leaderboard(lower, n_resamples=50).set_index("explainer")["rank"].to_dict() == {"b": 1, "a": 2, "c": 3}
    # overall ranks: the block means compare the same samples too
    two = pd.concat([cell, _cell({"a": [0.2, 0.3, 0.1, 0.2], "b": [0.6, 0.7, 0.5, 0.6], "c": [0.1] * 4},
                                 dataset="e")], ignore_index=True)
    assert overall_ranks(two).set_index("explainer")["mean_rank"].to_dict() == {"b": 1.0, "a": 2.0, "c": 3.0}
    # without NaN the rank is the order of the means
    full = _cell({"a": [0.9, 0.8, 0.7, 0.2], "b": [0.95, 0.95, 0.1, 0.1], "c": [0.5, 0.6, 0.2, 0.3]})
    ranked = leaderboard(full, n_resamples=50).set_index("explainer")
    assert ranked["rank"].to_dict() == ranked["mean"].rank(ascending=False).to_dict()
    # no sample defined for every explainer: no rank, no bold
    disjoint = leaderboard(_cell({"a": [0.9, np.nan], "b": [np.nan, 0.1]}), n_resamples=50)
    assert disjoint["rank"].isna().all() and disjoint["mean"].notna().all()


def test_leaderboard_p_vs_random(results):
    board = leaderboard(results, n_resamples=100).set_index(["metric", "explainer"])
    for metric in ("insertion", "deletion"):
        assert board.loc[(metric, "good"), "p_vs_random"] < 1e-4
        assert board.loc[(metric, "good"), "beats_random"]
        assert board.loc[(metric, "copy"), "p_vs_random"] == 1.0
        assert not board.loc[(metric, "copy"), "beats_random"]
        assert np.isnan(board.loc[(metric, "random"), "p_vs_random"])
        assert pd.isna(board.loc[(metric, "random"), "beats_random"])  # the control: not tested
    # Holm over the three non-control explainers, one-sided, paired by sample (the seeds' mean)
    ins = _sample_means(results[results.metric == "insertion"])
    raw = [1.0] + [  # copy - random: all differences zero -> p = 1
        stats.wilcoxon(ins[e], ins["random"], alternative="greater").pvalue
        for e in ("good", "mid")
    ]
    expected = holm(raw)
    got = [board.loc[("insertion", e), "p_vs_random"] for e in ("copy", "good", "mid")]
    np.testing.assert_allclose(got, expected)


def test_leaderboard_wrong_direction_is_not_significant():
    results = _tidy(np.random.default_rng(1), shift=-1.0)  # 'good' is now worse than random
    board = leaderboard(results, n_resamples=50).set_index(["metric", "explainer"])
    assert board.loc[("insertion", "good"), "p_vs_random"] > 0.5
    assert board.loc[("deletion", "good"), "p_vs_random"] > 0.5
    assert board.loc[("insertion", "good"), "rank"] == 4
    # ... and marked so by the other side's test (a review: integrated gradients below random on insertion,
    # pairwise p_holm 1.8e-11, carried no mark): Holm over the three explainers, alternative "less" on insertion
    ins = _sample_means(results[results.metric == "insertion"])
    raw = [1.0] + [stats.wilcoxon(ins[e], ins["random"], alternative="less").pvalue for e in ("good", "mid")]
    got = [board.loc[("insertion", e), "p_worse_than_random"] for e in ("copy", "good", "mid")]
    np.testing.assert_allclose(got, holm(raw))
    for metric in ("insertion", "deletion"):
        assert board.loc[(metric, "good"), "worse_than_random"] and not board.loc[(metric, "copy"), "worse_than_random"]
        assert pd.isna(board.loc[(metric, "random"), "worse_than_random"])
    fine = leaderboard(_tidy(np.random.default_rng(1)), n_resamples=50).set_index(["metric", "explainer"])
    assert not fine.loc[("deletion", "good"), "worse_than_random"] and fine.loc[("deletion", "good"), "beats_random"]


def test_leaderboard_without_control_and_single_explainer(results):
    no_control = leaderboard(results[results.explainer != "random"], n_resamples=50)
    assert no_control.p_vs_random.isna().all()
    assert no_control.beats_random.isna().all()  # not tested, rather than False (a held-out review)
    only = leaderboard(results[results.explainer == "good"], n_resamples=50)
    assert len(only) == 2 and (only["rank"] == 1).all()
    other = leaderboard(results, control="copy", n_resamples=50).set_index(["metric", "explainer"])
    assert np.isnan(other.loc[("insertion", "copy"), "p_vs_random"])
    assert other.loc[("insertion", "random"), "p_vs_random"] == 1.0


def _sample_means(frame):
    """Samples x explainers: each sample's mean over its seeds, NaN where one of them is NaN."""
    return frame.groupby(["sample_id", "explainer"]).value.agg(lambda v: v.mean(skipna=False)).unstack("explainer")


def test_nan_rows_dropped_pairwise(results):
    holed = results.copy()
    # insertion only: good loses samples 0-4 under both seeds and 5-7 under seed 0 only (undefined
    # too: a sample's mean covers all its seeds), random loses sample 10 under both seeds
    insertion = holed.metric == "insertion"
    hole_good = insertion & (holed.explainer == "good") & ((holed.sample_id < 5)
                                                           | ((holed.seed == 0) & (holed.sample_id < 8)))
    hole_random = insertion & (holed.explainer == "random") & (holed.sample_id == 10)
    holed.loc[hole_good | hole_random, "value"] = np.nan

    board = leaderboard(holed, n_resamples=50).set_index(["metric", "explainer"])
    assert board.loc[("insertion", "good"), "n"] == N - 8
    assert board.loc[("insertion", "random"), "n"] == N - 1
    assert board.loc[("insertion", "mid"), "n"] == N
    means = _sample_means(holed[insertion])
    assert np.isnan(means.good.loc[5]) and not np.isnan(means.good.loc[8])
    assert board.loc[("insertion", "good"), "mean"] == pytest.approx(means.good.mean())
    good = holed[insertion & (holed.explainer == "good")].value
    assert board.loc[("insertion", "good"), "mean"] != pytest.approx(good.mean())  # not over the rows

    pairs = pairwise_table(holed).set_index(["metric", "explainer_a", "explainer_b"])
    assert pairs.loc[("insertion", "good", "random"), "n"] == N - 9
    assert pairs.loc[("insertion", "good", "mid"), "n"] == N - 8
    assert pairs.loc[("insertion", "copy", "mid"), "n"] == N
    assert pairs.loc[("deletion", "good", "random"), "n"] == N
    both = means[["good", "random"]].dropna()
    assert pairs.loc[("insertion", "good", "random"), "p"] == pytest.approx(
        stats.wilcoxon(both.good, both.random).pvalue
    )

    fried = friedman_table(holed).set_index("metric")
    assert fried.loc["insertion", "n_blocks"] == N - 9
    assert fried.loc["deletion", "n_blocks"] == N


def test_a_sample_without_rows_under_one_seed_for_every_explainer_is_undefined(results):
    """A held-out review: the runner writes no row for an undefined value, so a sample undefined under
    seed 0 for every explainer (relative_input_stability where seed 0's model flips its prediction)
    lost that seed and was averaged over seed 1 alone. The other metric's rows say seed 0 explained it."""
    gone = (results.metric == "insertion") & (results.seed == 0) & (results.sample_id == 3)
    board = leaderboard(results[~gone], n_resamples=20).set_index(["metric", "explainer"])
    assert (board.loc["insertion", "n"] == N - 1).all() and (board.loc["deletion", "n"] == N).all()
    pairs = pairwise_table(results[~gone]).set_index(["metric", "explainer_a", "explainer_b"])
    assert pairs.loc[("insertion", "good", "random"), "n"] == N - 1
    assert friedman_table(results[~gone]).set_index("metric").loc["insertion", "n_blocks"] == N - 1


def test_explainers_are_compared_over_the_same_seeds():
    """Two explainers with equal values everywhere; seed 1 scores 1.0 higher (another checkpoint),
    and 'a' is undefined under seed 1 for half the samples (or has no rows there: a failed cell).
    Averaging each explainer over its own defined seeds would test seed 0 of 'a' against the mean
    of both seeds of 'b' (p 6e-5 in a review); a sample's value covers all its seeds, so the
    compared samples are those where both are defined, and they tie."""
    rng = np.random.default_rng(7)
    base = rng.uniform(0, 1, 16)
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": "x", "seed": seed, "sample_id": i,
             "value": float(base[i] + seed), "higher_is_better": True, "category": "faithfulness", "chance": np.nan}
            for e in ("a", "b") for seed in (0, 1) for i in range(16)]
    table = pd.DataFrame(rows)
    undefined = (table.explainer == "a") & (table.seed == 1) & (table.sample_id < 8)
    for broken in (table.assign(value=table.value.mask(undefined)), table[~undefined]):
        pair = pairwise_table(broken).iloc[0]
        assert (pair["n"], pair["p"], pair["effect_size"]) == (8, 1.0, 0.0)
        board = leaderboard(broken, control="b", n_resamples=20).set_index("explainer")
        assert board.loc["a", "n"] == 8 and board.loc["b", "n"] == 16
        assert board.loc["a", "p_vs_random"] == 1.0


def test_pairwise_table(results):
    table = pairwise_table(results)
    assert list(table.columns) == [
        "dataset", "model", "metric", "explainer_a", "explainer_b",
        "statistic", "p", "p_holm", "effect_size", "n",
    ]
    assert len(table) == 2 * 6  # 4 explainers -> 6 pairs per metric
    table = table.set_index(["metric", "explainer_a", "explainer_b"])
    same = table.loc[("insertion", "copy", "random")]
    assert same.p == 1.0 and same.effect_size == 0.0
    dominant = table.loc[("insertion", "good", "random")]
    assert dominant.p < 0.01 and dominant.effect_size == 1.0
    assert table.loc[("deletion", "good", "random"), "effect_size"] == -1.0
    single = pairwise_table(results[results.explainer == "good"])
    assert single.empty and list(single.columns)[-1] == "n"


def test_friedman_and_nemenyi_tables(results):
    fried = friedman_table(results)
    assert list(fried.columns)[:8] == [
        "dataset", "model", "metric", "statistic", "p", "n_blocks", "k", "cd",
    ]
    row = fried.set_index("metric").loc["insertion"]
    ins = _sample_means(results[results.metric == "insertion"])
    expected = stats.friedmanchisquare(*ins.to_numpy().T)
    assert row.statistic == pytest.approx(expected.statistic)
    assert row.p < 1e-6 and row.k == 4 and row.n_blocks == N
    # q_0.05(k=4) = 2.569 (Demšar 2006, Table 5a)
    assert row.cd == pytest.approx(2.569 * np.sqrt(4 * 5 / (6 * N)), abs=1e-3)

    nem = nemenyi_table(results)
    assert list(nem.columns) == ["dataset", "model", "metric", "explainer_a", "explainer_b", "p"]
    assert len(nem) == 12
    nem = nem.set_index(["metric", "explainer_a", "explainer_b"])
    assert nem.loc[("insertion", "good", "random"), "p"] < 0.001
    assert nem.loc[("insertion", "copy", "random"), "p"] == pytest.approx(1.0)

    two = friedman_table(results[results.explainer.isin(["good", "random"])])
    assert two.p.isna().all() and (two.k == 2).all() and (two.reason != "").all()
    single = nemenyi_table(results[results.explainer == "good"])
    assert single.empty and list(single.columns)[-1] == "p"


def test_overall_ranks():
    """Each dataset is one block (Demšar 2006): the ranks of its (dataset, model) groups averaged."""
    rng = np.random.default_rng(2)
    results = pd.concat(
        [
            _tidy(rng, dataset=d, model=m)
            for d in ("phantom2d", "phantom3d") for m in ("resnet18", "vit")
        ],
        ignore_index=True,
    )
    table = overall_ranks(results)
    assert list(table.columns) == ["metric", "explainer", "mean_rank", "n_blocks", "n_groups", "friedman_p", "cd",
                                   "left_out"]
    for metric in ("deletion", "insertion"):
        sub = table[table.metric == metric].set_index("explainer")
        assert sub.loc["good", "mean_rank"] == 1.0
        assert sub.loc["mid", "mean_rank"] == 2.0
        assert sub.loc["random", "mean_rank"] == 3.5  # tied with copy in every block
        assert (sub.n_blocks == 2).all() and (sub.n_groups == 4).all() and (sub.left_out == "").all()
        # Friedman over the 2 datasets with rank sums [2, 4, 7, 7]:
        # chi2 = 12/(2*4*5) * (4+16+49+49) - 3*2*5 = 5.4, tie-corrected by
        # 1 - 2*(2^3-2)/(2*4*(4^2-1)) = 0.9 -> 6.0
        assert sub.loc["good", "friedman_p"] == pytest.approx(stats.chi2.sf(6.0, 3))
        # Demšar's Table 5a: q_0.05 = 2.569 for k = 4; CD = 2.569 sqrt(4 * 5 / (6 * 2))
        assert sub.cd.to_numpy() == pytest.approx(2.569 * np.sqrt(20 / 12), abs=1e-3)
    assert list(table.metric) == ["deletion"] * 4 + ["insertion"] * 4
    single = overall_ranks(results[results.explainer == "good"])
    assert (single.mean_rank == 1.0).all() and single.friedman_p.isna().all() and single.cd.isna().all()
    one_block = results[(results.dataset == results.dataset.iloc[0]) & (results.model == results.model.iloc[0])]
    assert one_block[["dataset", "model"]].drop_duplicates().shape[0] == 1
    one = overall_ranks(one_block)  # a single (dataset, model): nothing to compare a ranking with
    assert (one.n_blocks == 1).all() and one.friedman_p.isna().all() and one.cd.isna().all()


def test_overall_ranks_a_model_listed_twice_changes_nothing():
    """A held-out review (helper 125): the same model under three names counted as three blocks took the
    overall Friedman p from 0.145 to 0.001; the groups of one dataset share its images."""
    rng = np.random.default_rng(5)
    once = pd.concat([_tidy(rng, dataset=d, model="m") for d in ("d1", "d2", "d3")], ignore_index=True)
    noise = rng.normal(0, 0.3, len(once))  # values that do not rank the same way in every dataset
    once = once.assign(value=once["value"] + noise)
    thrice = pd.concat([once.assign(model=name) for name in ("m", "m_copy", "m_again")], ignore_index=True)
    for function in (overall_ranks, overall_nemenyi):
        a, b = function(once), function(thrice)
        assert (a.n_blocks == 3).all() and (b.n_blocks == 3).all()
        columns = [c for c in a.columns if c != "n_groups"]
        pd.testing.assert_frame_equal(a[columns], b[columns])
    assert (overall_ranks(thrice).n_groups == 9).all() and (overall_ranks(once).n_groups == 3).all()
    # the (dataset, model) pairs as blocks would have given a much smaller p: what the review saw
    wide = thrice[thrice.metric == "deletion"].groupby(["dataset", "model", "explainer"])["value"].mean().unstack()
    assert stats.friedmanchisquare(*wide.to_numpy().T).pvalue < overall_ranks(thrice).friedman_p.iloc[0]


def test_overall_ranks_leave_out_groups_at_chance_and_incomplete_ones_by_name():
    """A held-out review: a model at chance (†) decided the overall winner, and an explainer missing
    from one model's groups dropped them for every explainer without a word."""
    rng = np.random.default_rng(2)
    results = pd.concat([_tidy(rng, dataset=d, model=m) for d in ("d1", "d2") for m in ("ok", "flat")],
                        ignore_index=True)
    flat = results.model == "flat"
    results.loc[flat & (results.explainer == "good"), "value"] = 0.99  # "good" worst on the model at chance
    both = overall_ranks(results).set_index(["metric", "explainer"])
    # in each dataset: good (1 + 4) / 2 = 2.5, mid (2 + 1) / 2 = 1.5, random and copy (3.5 + 2.5) / 2 = 3
    assert both.loc["deletion", "mean_rank"].to_dict() == {"mid": 1.0, "good": 2.0, "copy": 3.5, "random": 3.5}
    table = overall_ranks(results, at_chance=[("d1", "flat"), ("d2", "flat")]).set_index(["metric", "explainer"])
    assert table.loc[("deletion", "good"), "mean_rank"] == 1.0 and (table.n_groups == 2).all()
    assert table.loc[("deletion", "good"), "left_out"] == "d1 / flat: model at chance; d2 / flat: model at chance"
    partial = results[~(flat & (results.explainer == "mid"))]  # "mid" has no value on the model "flat"
    table = overall_ranks(partial).set_index(["metric", "explainer"])
    assert (table.n_groups == 2).all() and table.loc[("deletion", "good"), "mean_rank"] == 1.0
    assert table.loc[("deletion", "copy"), "left_out"] == "d1 / flat: no value for mid; d2 / flat: no value for mid"
    # a diff review (helper 127): an explainer with values only on the groups at chance emptied every rank
    only = pd.concat([results, results[flat & (results.explainer == "good")].assign(explainer="vit_only")])
    table = overall_ranks(only, at_chance=[("d1", "flat"), ("d2", "flat")]).set_index(["metric", "explainer"])
    assert table.loc[("deletion", "good"), "mean_rank"] == 1.0 and "vit_only" not in table.loc["deletion"].index
    assert table.loc[("deletion", "good"), "left_out"].endswith("; vit_only: values only on groups left out")
    # ... and named "no value for a, b, c" an explainer with every value when no sample had them all
    disjoint = results[results.model == "ok"].copy()
    in_d1 = disjoint.dataset == "d1"
    disjoint.loc[in_d1 & (disjoint.explainer == "mid") & (disjoint.sample_id % 2 == 0), "value"] = np.nan
    disjoint.loc[in_d1 & (disjoint.explainer == "good") & (disjoint.sample_id % 2 == 1), "value"] = np.nan
    table = overall_ranks(disjoint)
    assert (table.left_out == "d1 / ok: no sample with a value for every explainer").all()
    assert (table.n_groups == 1).all()
    gone = overall_ranks(results, at_chance=[("d1", "ok"), ("d2", "ok"), ("d1", "flat"), ("d2", "flat")])
    assert len(gone) == 8 and gone.mean_rank.isna().all() and (gone.n_groups == 0).all()
    assert overall_nemenyi(results, at_chance=[("d1", "flat")]).n_blocks.eq(2).all()


def test_overall_ranks_keep_a_metric_without_a_shared_sample_in_any_group():
    """A held-out review (helper 170): with no sample that every explainer shares in any group,
    common_means gave NaN everywhere and the metric had no row at all, though the docstring
    promises its rows with mean_rank NaN and ``left_out`` says why."""
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": "x", "seed": 0, "sample_id": f"s{i}",
             "value": float(i), "higher_is_better": True, "category": "faithfulness", "chance": np.nan}
            for e, samples in {"a": range(0, 4), "b": range(4, 8), "random": range(8)}.items() for i in samples]
    results = pd.DataFrame(rows)
    table = overall_ranks(results)
    assert list(table.explainer) == ["a", "b", "random"] and (table.metric == "x").all()
    assert table.mean_rank.isna().all() and (table.n_groups == 0).all() and (table.n_blocks == 0).all()
    assert (table.left_out == "d / m: no sample with a value for every explainer").all()
    pairs = overall_nemenyi(results)
    assert len(pairs) == 3 and pairs.p.isna().all()
    # the same with a second group whose model is at chance: both named
    chance = results.assign(model="c")
    both = overall_ranks(pd.concat([results, chance]), at_chance=[("d", "c")])
    assert len(both) == 3 and both.mean_rank.isna().all()
    assert (both.left_out == "d / c: model at chance; d / m: no sample with a value for every explainer").all()


def test_overall_ranks_name_an_explainer_that_never_shares_a_sample():
    """Diff review 15: with a shared sample in another group, an explainer that shares none in any
    group was dropped from overall_ranks.csv without a word."""
    row = lambda d, e, s, v: {"dataset": d, "model": "m", "explainer": e, "metric": "x", "seed": 0,  # noqa: E731
                              "sample_id": f"s{s}", "value": float(v), "higher_is_better": True,
                              "category": "faithfulness", "chance": np.nan}
    rows = [r for s in range(4) for r in (row("d1", "a", s, s + 1), row("d1", "b", s, s))]
    rows += [row("d2", "a", 10, 1), row("d2", "b", 11, 2), row("d2", "c", 12, 3)]  # d2: no shared sample
    table = overall_ranks(pd.DataFrame(rows))
    assert list(table.explainer) == ["a", "b"] and list(table.mean_rank) == [1.0, 2.0]
    assert (table.left_out == "c: no value on a sample shared with the others in any group; "
                              "d2 / m: no sample with a value for every explainer").all()


def test_nemenyi_tables_give_no_p_from_one_block(results):
    """A held-out review (helper 170): nemenyi.csv and overall_nemenyi.csv gave p-values from a single
    ranking, where friedman.csv / overall_ranks.csv have cd (and p) empty."""
    one_sample = results[results.sample_id == 0]
    assert friedman_table(one_sample).cd.isna().all()
    table = nemenyi_table(one_sample)
    assert len(table) == 12 and table.p.isna().all()
    one_dataset = overall_nemenyi(results)
    assert len(one_dataset) == 12 and (one_dataset.n_blocks == 1).all() and one_dataset.p.isna().all()
    assert overall_ranks(results).cd.isna().all()


def test_overall_nemenyi_over_the_blocks():
    """Friedman/Nemenyi over the datasets as blocks; the post-hoc p-values are scikit-posthocs' on the
    blocks' averaged ranks, and the documented Nemenyi statistic."""
    rng = np.random.default_rng(2)
    results = pd.concat([_tidy(rng, dataset=d, model=m) for d in ("d1", "d2", "d3", "d4", "d5")
                         for m in ("resnet18", "vit")], ignore_index=True)
    table = overall_nemenyi(results)
    assert list(table.columns) == ["metric", "explainer_a", "explainer_b", "p", "n_blocks"]
    assert len(table) == 2 * 6 and (table.n_blocks == 5).all()
    deletion = table[table.metric == "deletion"].set_index(["explainer_a", "explainer_b"]).p
    # mean ranks (lower is better): good 1, mid 2, copy = random 3.5; the statistic |R_i - R_j| /
    # sqrt(k (k+1) / (6 N)) referred to the studentized range with k groups, infinite df
    scale = np.sqrt(4 * 5 / (6 * 5))
    for (a, b), gap in {("good", "random"): 2.5, ("good", "mid"): 1.0, ("copy", "random"): 0.0}.items():
        expected = stats.studentized_range.sf(gap / scale * np.sqrt(2), 4, np.inf)
        assert deletion[(a, b)] == pytest.approx(expected, rel=1e-6)
    assert deletion[("good", "random")] < 0.05 < deletion[("good", "mid")]
    assert overall_nemenyi(results[results.explainer == "good"]).empty


def test_agreement_table():
    board = pd.DataFrame(
        {
            "dataset": "d",
            "model": "m",
            "metric": ["ins"] * 4 + ["del"] * 4 + ["point"] * 4,
            "explainer": list("abcd") * 3,
            "rank": [1, 2, 3, 4] + [1, 2, 3, 4] + [4, 3, np.nan, 1],
        }
    )
    table = agreement_table(board)
    assert list(table.columns) == [
        "dataset", "model", "metric_a", "metric_b", "tau", "p", "n_explainers",
    ]
    table = table.set_index(["metric_a", "metric_b"])
    assert list(table.index) == [("del", "ins"), ("del", "point"), ("ins", "point")]
    assert table.loc[("del", "ins"), "tau"] == pytest.approx(1.0)
    assert table.loc[("del", "ins"), "n_explainers"] == 4
    # point ranks a, b, d as 4, 3, 1 (c NaN): fully reversed on the 3 shared explainers
    assert table.loc[("ins", "point"), "tau"] == pytest.approx(-1.0)
    assert table.loc[("ins", "point"), "n_explainers"] == 3


def test_agreement_table_from_leaderboard(results):
    table = agreement_table(leaderboard(results, n_resamples=20))
    assert len(table) == 1
    assert table.tau.iloc[0] == pytest.approx(1.0)  # same oriented order on both metrics


def test_deterministic(results):
    shuffled = results.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(
        leaderboard(results, n_resamples=50), leaderboard(shuffled, n_resamples=50)
    )
    pd.testing.assert_frame_equal(pairwise_table(results), pairwise_table(shuffled))


def test_rejects_bad_input(results):
    with pytest.raises(ValueError, match="missing"):
        leaderboard(results.drop(columns="chance"))
    with pytest.raises(ValueError, match="duplicate"):
        pairwise_table(pd.concat([results, results.iloc[:1]]))
    mixed = results.copy()
    mixed.loc[mixed.index[0], "higher_is_better"] = not mixed.loc[mixed.index[0], "higher_is_better"]
    with pytest.raises(ValueError, match="constant per metric"):
        friedman_table(mixed)


def test_means_equal_up_to_float_rounding_share_a_rank():
    """A held-out review: two explainers with the same per-sample seed means (0/1 hits over 3 seeds)
    on different samples have equal means, whose floats differ in the last bit with the sample order;
    1087 of 2000 such cases got ranks 1 and 2 (one bold), overall ranks 2.0 and 2.5."""
    from faithbench.stats.paired import snap_ties

    rng = np.random.default_rng(1)
    for _ in range(60):
        hits = rng.integers(0, 2, size=(3, 16)).astype(float)  # seeds x samples
        permuted = hits[:, rng.permutation(16)]
        rows = [dict(dataset="d", model=model, explainer=name, metric="pointing_game", seed=s, sample_id=f"s{i:02d}",
                     value=h[s, i], chance=0.01, higher_is_better=True, category="localization")
                for model in ("m1", "m2") for name, h in (("a", hits), ("b", permuted))
                for s in range(3) for i in range(16)]
        board = leaderboard(pd.DataFrame(rows), control="none", n_resamples=10)
        assert board["rank"].tolist() == [1.0] * 4
        assert overall_ranks(pd.DataFrame(rows))["mean_rank"].tolist() == [1.5, 1.5]
    snapped = snap_ties(pd.Series([0.1 + 0.2, 0.3, 0.5, np.nan, 0.3 * (1 + 1e-9)], index=list("abcde")))
    assert snapped.iloc[:2].tolist() == [0.3, 0.3] and snapped["e"] > 0.3 and np.isnan(snapped["d"])


def test_means_zero_up_to_float_rounding_share_a_rank():
    """A held-out review: the same signed values in two sample orders sum to 1.1e-16 and 5.6e-17
    (0 exactly), means 1.1e-17 apart, never within a relative 1e-12: ranks 1 and 2, one bold."""
    values = {"a": [0.2, 0.4, -0.6, 0.4, -0.4], "b": [0.4, -0.6, 0.4, 0.2, -0.4]}
    assert sum(values["a"]) != sum(values["b"])  # the float noise this is about
    rows = [dict(dataset="d", model="m", explainer=name, metric="rho", seed=0, sample_id=f"s{i}", value=v,
                 chance=np.nan, higher_is_better=True, category="faithfulness")
            for name, vs in values.items() for i, v in enumerate(vs)]
    rows += [dict(rows[0], explainer="c", sample_id=f"s{i}", value=v) for i, v in enumerate([0.0, 0, 0, 0, 1e-9])]
    board = leaderboard(pd.DataFrame(rows), control="none", n_resamples=10).set_index("explainer")
    assert board["rank"].to_dict() == {"c": 1.0, "a": 2.0, "b": 2.0}  # 2e-10 above 0 is not noise
    # the floor is each explainer's own magnitude: one explainer's outlier (4e10) ties no other two (a review)
    rows += [dict(rows[0], explainer="d", sample_id=f"s{i}", value=v) for i, v in enumerate([1.0, 2, 3, 4, 4e10])]
    rows += [dict(rows[0], explainer="e", sample_id=f"s{i}", value=v + 0.01) for i, v in enumerate(values["a"])]
    board = leaderboard(pd.DataFrame(rows), control="none", n_resamples=10).set_index("explainer")
    assert board["rank"].to_dict() == {"d": 1.0, "e": 2.0, "c": 3.0, "a": 4.0, "b": 4.0}
