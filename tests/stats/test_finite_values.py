"""The statistics tables take finite values or NaN (undefined): a held-out review passed one ``inf`` to
``leaderboard()``, which ranked its explainer first with mean inf (finite mean 0.616, 2nd), while the Friedman test
kept the sample and ``pairwise.csv`` dropped it. ``faithbench report`` refuses such a folder; the Python API now too."""

import numpy as np
import pandas as pd
import pytest

from faithbench.stats import friedman_table, leaderboard, overall_ranks, pairwise_table


def _rows(bad: float | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": "insertion", "seed": 0, "sample_id": i,
             "value": float(rng.uniform() + k), "higher_is_better": True, "category": "faithfulness", "chance": np.nan}
            for k, e in enumerate(["a", "b", "random"]) for i in range(8)]
    table = pd.DataFrame(rows)
    if bad is not None:
        table.loc[3, "value"] = bad
    return table


@pytest.mark.parametrize("function", [leaderboard, pairwise_table, friedman_table, overall_ranks])
@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_an_infinite_value_is_refused_in_one_line(function, bad):
    with pytest.raises(ValueError, match=r"^expected finite numbers \(or NaN for undefined\) in 'value', got 1 "
                                         r"row\(s\) like -?inf \(metric 'insertion'\)$"):
        function(_rows(bad))


def test_nan_stays_undefined_and_finite_values_pass():
    board = leaderboard(_rows(np.nan)).set_index("explainer")
    assert board.loc["a", "n"] == 7 and board.loc["b", "n"] == 8
    assert np.isclose(board.loc["b", "mean"], _rows().query("explainer == 'b'")["value"].mean())
