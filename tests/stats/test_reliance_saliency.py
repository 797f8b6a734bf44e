"""Saliency mass on planted evidence against the model's measured reliance (SCIENCE.md: "an
explainer's saliency mass on marker vs lesion is compared with it"; a held-out review found no
output that did)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faithbench.stats.reliance import RELIANCE_SALIENCY_COLUMNS, reliance_saliency


def _frames():
    # two seeds of one model; the model relies on the marker (drops 0.5..0.8), not the lesion (~0)
    drops = pd.DataFrame(
        [("d", "m", seed, f"s{i}", "marker", 0.5 + 0.1 * i) for seed in (0, 1) for i in range(4)]
        + [("d", "m", seed, f"s{i}", "lesion", 0.01 * i - 0.01) for seed in (0, 1) for i in range(4)],
        columns=["dataset", "model", "seed", "sample_id", "evidence", "drop"])
    mass = []
    for seed in (0, 1):
        for i in range(4):
            mass.append(("d", "m", seed, "faithful", f"s{i}", "marker", 0.3 + 0.1 * i + 0.01 * seed))
            mass.append(("d", "m", seed, "faithful", f"s{i}", "lesion", 0.05))
            mass.append(("d", "m", seed, "plausible", f"s{i}", "marker", 0.02))
            mass.append(("d", "m", seed, "plausible", f"s{i}", "lesion", [0.6, 0.4, np.nan, 0.5][i]))
    mass = pd.DataFrame(mass, columns=["dataset", "model", "seed", "explainer", "sample_id", "evidence", "mass"])
    return mass, drops


def test_known_answer_ranks_means_and_spearman():
    mass, drops = _frames()
    table = reliance_saliency(mass, drops)
    assert list(table.columns) == RELIANCE_SALIENCY_COLUMNS
    rows = table.set_index(["explainer", "evidence"])
    faithful, plausible = rows.loc["faithful"], rows.loc["plausible"]
    # the faithful map puts the most mass where the model relies most: ranks agree
    assert faithful.loc["marker", "mass"] == pytest.approx(np.mean([0.3, 0.4, 0.5, 0.6, 0.31, 0.41, 0.51, 0.61]))
    assert faithful.loc["marker", "drop"] == pytest.approx(0.65) and faithful.loc["marker", "n"] == 4  # samples
    assert (faithful.loc["marker", "mass_rank"], faithful.loc["marker", "reliance_rank"]) == (1, 1)
    assert (faithful.loc["lesion", "mass_rank"], faithful.loc["lesion", "reliance_rank"]) == (2, 2)
    # ...and follows the model sample by sample (each sample's two seeds averaged first), against scipy
    rho = stats.spearmanr([0.305, 0.405, 0.505, 0.605], [0.5, 0.6, 0.7, 0.8])[0]
    assert faithful.loc["marker", "spearman"] == pytest.approx(rho) == 1
    assert faithful.loc["marker", "p"] == pytest.approx(2 / 24)  # exact: 2 of the 4! orderings have |ρ| = 1
    assert np.isnan(faithful.loc["lesion", "spearman"])  # a constant mass: no rank correlation
    # the plausible map points at the lesion, which the model ignores: ranks disagree; a NaN mass is left out
    assert (plausible.loc["lesion", "mass_rank"], plausible.loc["lesion", "reliance_rank"]) == (1, 2)
    assert plausible.loc["lesion", "n"] == 3
    assert plausible.loc["lesion", "drop"] == pytest.approx(np.mean([-0.01, 0.0, 0.02]))


def test_seeds_of_one_sample_are_one_observation():
    """A diff review: with (seed, sample) pairs pooled, a weights-file model (the same drops under
    every seed) got p 0.0045 with one seed and below 1e-4 with three, for the same evidence."""
    mass, drops = _frames()
    one = reliance_saliency(mass[mass["seed"] == 0], drops[drops["seed"] == 0])
    copies = [(mass[mass["seed"] == 0].assign(seed=s), drops[drops["seed"] == 0].assign(seed=s)) for s in range(3)]
    three = reliance_saliency(pd.concat([m for m, _ in copies]), pd.concat([d for _, d in copies]))
    pd.testing.assert_frame_equal(one, three)


def test_a_sample_without_a_drop_is_left_out_and_columns_are_checked():
    mass, drops = _frames()
    table = reliance_saliency(mass, drops[drops["sample_id"] != "s0"])
    assert table.set_index(["explainer", "evidence"]).loc[("faithful", "marker"), "n"] == 3
    assert reliance_saliency(mass.iloc[:0], drops).empty
    with pytest.raises(ValueError, match=r"mass lacks the columns \['explainer'\]"):
        reliance_saliency(mass.drop(columns="explainer"), drops)
    with pytest.raises(ValueError, match=r"drops lacks the columns \['drop'\]"):
        reliance_saliency(mass, drops.drop(columns="drop"))


@pytest.mark.parametrize("n", [3, 4, 6, 8, 9, 12])
def test_spearman_p_is_exact_up_to_8_samples(n):
    """Helper 130: scipy's t approximation gave p = 0 for ρ = 1 on 3 samples (exact: 1/3) and 0.0070
    for an exact 0.0131 at 8. The exact p is the share of the n! orderings with at least the observed |ρ|
    (brute force with scipy's ρ below, ties included); on untied data that is scipy's exhaustive
    permutation test, whose two-sided p (twice the smaller one-sided p) can differ with ties (a diff review)."""
    import itertools

    from faithbench.stats.reliance import spearman_p

    rng = np.random.default_rng(n)
    x = np.round(rng.normal(size=n), 0 if n == 6 else 3)  # n = 6: ties
    y = x + rng.normal(size=n)
    if n <= 6:
        observed = abs(stats.spearmanr(x, y)[0])
        rhos = [abs(stats.spearmanr(x, y[list(order)])[0]) for order in itertools.permutations(range(n))]
        expected = float(np.mean(np.array(rhos) >= observed - 1e-12))
        assert n != 6 or len(set(x)) < n  # the ties are there
    elif n == 8:
        expected = stats.permutation_test((y,), lambda v: stats.spearmanr(x, v)[0], permutation_type="pairings",
                                          n_resamples=np.inf, alternative="two-sided").pvalue
    else:
        expected = stats.spearmanr(x, y)[1]
    assert spearman_p(x, y) == pytest.approx(expected, rel=1e-12)
    if n == 3:
        assert spearman_p(x, x) == pytest.approx(1 / 3) and stats.spearmanr(x, x)[1] == 0
        # no ranking to correlate: NaN, not 0 (helper 134)
        degenerate = ((x[:1], y[:1]), (np.ones(3), y), (x, np.r_[y[:2], np.nan]))
        assert all(np.isnan(spearman_p(a, b)) for a, b in degenerate)



def test_a_sample_undefined_under_one_seed_is_left_out_as_on_the_leaderboard():
    """A held-out review: a sample whose mass was NaN under seed 1 entered with seed 0's mass and drop (n 4,
    mass 0.3625, drop 0.45); the leaderboard leaves such a sample out (n 3, mass 0.5, drop 0.3)."""
    drops = pd.DataFrame([("d", "m", seed, f"s{i}", "lesion", d) for i, pair in enumerate([(0.9, 0.1), (0.2, 0.4),
                                                                                         (0.3, 0.3), (0.1, 0.5)])
                          for seed, d in enumerate(pair)],
                         columns=["dataset", "model", "seed", "sample_id", "evidence", "drop"])
    mass = pd.DataFrame([("d", "m", seed, "e", f"s{i}", "lesion", v) for i, pair in enumerate([(0.1, np.nan),
                                                                                            (0.4, 0.6), (0.5, 0.5),
                                                                                            (0.3, 0.7)])
                         for seed, v in enumerate(pair)],
                        columns=["dataset", "model", "seed", "explainer", "sample_id", "evidence", "mass"])
    row = reliance_saliency(mass, drops).iloc[0]
    assert (row["n"], row["mass"], row["drop"]) == (3, pytest.approx(0.5), pytest.approx(0.3))
