"""A model at chance is marked in every table; n and undefined (NaN) values are shown."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from faithbench.reports import build_report
from faithbench.stats.chance import mark_models_at_chance, models_at_chance, undefined_counts
from faithbench.stats.proportions import wilson_ci


def test_wilson_ci_known_values():
    # Brown, Cai & DasGupta (2001) style check by hand: 8 of 10 at 95%
    z = 1.959963984540054
    p, n = 0.8, 10
    centre, half = p + z * z / 20, z * math.sqrt(p * (1 - p) / n + z * z / 400)
    assert wilson_ci(8, 10) == pytest.approx(((centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)))
    assert wilson_ci(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    low, high = wilson_ci(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)  # not empty at p = 0
    assert np.isnan(wilson_ci(0, 0)).all()
    with pytest.raises(ValueError, match="successes <= n"):
        wilson_ci(3, 2)


def test_models_at_chance_when_any_seed_ci_contains_half():
    models = pd.DataFrame({"dataset": ["d", "d", "d", "e"], "model": ["m", "m", "k", "m"], "seed": [0, 1, 0, 0],
                           "auc_ci_low": [0.7, 0.45, 0.51, np.nan], "auc_ci_high": [0.9, 0.62, 0.8, np.nan]})
    table = models_at_chance(models)
    assert table[["dataset", "model", "seeds"]].values.tolist() == [["d", "m", "1"]]
    board = pd.DataFrame({"dataset": ["d", "d", "e"], "model": ["m", "k", "m"], "mean": [1.0, 2.0, 3.0]})
    assert mark_models_at_chance(board, models)["model_at_chance"].tolist() == [True, False, False]
    assert not mark_models_at_chance(board, pd.DataFrame())["model_at_chance"].any()  # no CI: not flagged


def test_undefined_counts():
    results = pd.DataFrame({"dataset": "d", "model": "m", "explainer": ["a"] * 4 + ["b"] * 2,
                            "metric": "x", "value": [1.0, np.nan, np.nan, 0.0, 1.0, 2.0]})
    assert undefined_counts(results).values.tolist() == [["d", "m", "a", "x", 2, 4]]


@pytest.fixture
def chance_run(tmp_path, make_run):
    run = make_run(tmp_path / "run", seeds=(0,), mprt=False)  # one seed, 8 samples: a quick build
    models = pd.read_csv(run / "models.csv")
    models["auc_ci_low"], models["auc_ci_high"] = 0.41, 0.6  # at chance
    models.to_csv(run / "models.csv", index=False)
    results = pd.read_parquet(run / "results.parquet")
    undefined = (results["explainer"] == "good") & (results["metric"] == "deletion_auc") & (results["seed"] == 0)
    results.loc[undefined[undefined].index[:3], "value"] = np.nan  # 3 of 8 samples undefined
    results.to_parquet(run / "results.parquet", index=False)
    return run


def test_model_at_chance_marked_and_counts_shown_in_every_table(chance_run, caplog):
    with caplog.at_level(logging.WARNING, logger="faithbench.reports.writer"):
        build_report(chance_run)
    assert any("model at chance" in r.message and "cnn" in r.message for r in caplog.records)
    board = pd.read_csv(chance_run / "leaderboard.csv")
    assert board["model_at_chance"].all() and not board["beats_random"].any()  # withheld as in the tables
    assert (board["p_vs_random"] < 0.05).any()  # ...while the test's p is kept
    md = (chance_run / "leaderboard.md").read_text()
    good = "".join(line for line in md.splitlines() if line.startswith("| good "))
    assert "\\*" not in good and "†" in md  # ...but no table shows the mark
    tex = (chance_run / "leaderboard.tex").read_text()
    assert r"$^{\dagger}$" in tex and r"$^{*}$" not in tex.split(r"\midrule")[1]
    page = (chance_run / "index.html").read_text()
    assert 'class="warn"' in page and "† (model at chance)" in page and "<sup>*</sup>" not in page
    assert "cnn †" in page  # the models table too
    # nothing vanishes: n per metric (and per cell below it), undefined values and skipped cells counted
    headers = [line for line in md.splitlines() if line.startswith("| explainer")]  # one table per category
    # review paper4 F5: good's n = 5 and the others' 8: the rank (bold) was taken on the 5 samples they share
    assert headers == ["| explainer | deletion\\_auc ↓ (n ≤ 8; rank 1: on the 5 samples every explainer with a value "
                       "has) |",
                       "| explainer | hit\\_rate&amp;co ↑ (n = 8) |"]
    goods = [line for line in md.splitlines() if line.startswith("| good ")]
    assert "(n = 5)" in goods[0] and "(n = 5)" not in goods[1]
    assert "## NaN values held in results.parquet (left out of n): 3" in md and "| 3 | 8 |" in md  # as the page
    assert "## Skipped: 1" in md
    assert "NaN values held in results.parquet (3)" in page and "Skipped cells and metrics (1)" in page
    assert "(n = 5)" in page
    assert pd.read_csv(chance_run / "leaderboard.csv").query("explainer == 'good' and metric == 'deletion_auc'")[
        "n"].item() == 5


def test_an_undefined_test_auc_is_marked_at_chance(tmp_path, make_run, caplog):
    run = make_run(tmp_path / "run", seeds=(0,), mprt=False)
    models = pd.read_csv(run / "models.csv")
    models["auc"], models["auc_ci_low"], models["auc_ci_high"] = np.nan, np.nan, np.nan  # one class in the test split
    models.to_csv(run / "models.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="faithbench.reports.writer"):
        build_report(run)
    assert pd.read_csv(run / "leaderboard.csv")["model_at_chance"].all()
    assert any("model at chance" in r.message and "cnn" in r.message for r in caplog.records)
    assert "† (model at chance)" in (run / "index.html").read_text()
    # a checkpoint cached before the CI columns: an AUC, no CI; not marked
    models["auc"] = 0.9
    models.to_csv(run / "models.csv", index=False)
    build_report(run)
    assert not pd.read_csv(run / "leaderboard.csv")["model_at_chance"].any()


def test_undefined_samples_are_not_called_skipped(tmp_path):
    from faithbench.reports.tables import leaderboard_markdown, split_skipped

    undefined = "5 of 8 samples undefined (NaN, e.g. an empty mask): no row"
    skipped = pd.DataFrame({"cell": ["a/m/e/seed0", "a/m/e/seed0", "a/m/f/seed0"],
                            "metric": ["focus", "pointing_game", "pointing_game"],
                            "reason": ["needs 2 classes", undefined, undefined]})
    skips, partly = split_skipped(skipped)
    assert list(skips["metric"]) == ["focus"] and list(partly["cell"]) == ["a/m/e/seed0", "a/m/f/seed0"]
    md = leaderboard_markdown(pd.DataFrame(), skipped=skipped)
    assert "## Skipped: 1" in md and "## Metrics with undefined samples (no row): 2" in md
    assert split_skipped(None)[0].empty and split_skipped(skipped.iloc[0:0])[1].empty


def test_each_seed_at_chance_shows_its_own_ci_and_a_one_class_model_is_warned_of(tmp_path, make_run, caplog):
    """A held-out review: the log and index.html printed one interval over the seeds, [min low, max high],
    that belonged to no checkpoint; and a checkpoint predicting one class for every test sample was not
    warned of. Each seed's own CI now; the one-class warning in the log and the page, the marks unchanged."""
    run = make_run(tmp_path / "run", seeds=(0, 1), mprt=False)
    models = pd.read_csv(run / "models.csv")
    models["auc_ci_low"], models["auc_ci_high"] = [0.482, 0.458], [0.645, 0.619]
    models["predicted_classes"], models["accuracy"] = 1, [0.514, 0.486]
    models.to_csv(run / "models.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="faithbench.reports.writer"):
        build_report(run)
    messages = " ".join(r.message for r in caplog.records)
    assert "(seed 0: [0.482, 0.645]; seed 1: [0.458, 0.619])" in messages and "[0.458, 0.645]" not in messages
    assert "model predicts one class:" in messages and "test accuracy 0.514, 0.486" in messages
    page = (run / "index.html").read_text()
    assert "test AUC 95% CI seed 0: [0.482, 0.645]; seed 1: [0.458, 0.619]" in page and "[0.458, 0.645]" not in page
    assert "model predicts one class for every test sample" in page
    # helper 114: and in the files a paper's author copies from, not in the log and the page only
    md, tex = (run / "leaderboard.md").read_text(), (run / "leaderboard.tex").read_text()
    assert "\n## Model warnings\n" in md and "model predicts one class:" in md and "0.458, 0.619" in md
    assert "% WARNING: model predicts one class:" in tex and "% WARNING: model at chance:" in tex


def test_a_multilabel_class_at_chance_gets_its_dagger_on_the_page(tmp_path, make_run):
    """A held-out review: one class of a multi-label model at chance was marked † in leaderboard.md, the LaTeX
    caption and the figures, but not on index.html's heading of that class nor in its models table."""
    run = make_run(tmp_path / "run", seeds=(0,), mprt=False)
    results = pd.read_parquet(run / "results.parquet")
    results = pd.concat([results.assign(**{"class": c}) for c in ("cavity", "nodule")], ignore_index=True)
    results.to_parquet(run / "results.parquet", index=False)
    models = pd.read_csv(run / "models.csv")
    for c, (low, high) in {"cavity": (0.8, 0.95), "nodule": (0.4, 0.6)}.items():  # nodule at chance only
        models[f"auc_{c}"], models[f"auc_ci_low_{c}"], models[f"auc_ci_high_{c}"] = (low + high) / 2, low, high
    models.to_csv(run / "models.csv", index=False)
    build_report(run)
    board = pd.read_csv(run / "leaderboard.csv")
    assert board.groupby("class")["model_at_chance"].all().to_dict() == {"cavity": False, "nodule": True}
    page = (run / "index.html").read_text()
    headings = [h.split("</h3>")[0] for h in page.split("<h3>")[1:] if "/ cnn /" in h.split("</h3>")[0]]
    assert len(headings) == 2 and headings[0].endswith("/ cavity")
    assert headings[1].endswith("/ nodule † (model at chance)")
    assert "cnn †" in page  # the models table's row of the model
