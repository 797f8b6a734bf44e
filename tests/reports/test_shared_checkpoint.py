"""A model that no seed retrains loads one checkpoint under every seed (the same ``checkpoint`` key in
``models.csv``): ``models_summary.csv`` counts it once (``checkpoints`` 1, no sd) and every document says
why, where a held-out review read "0.945 ± 0.000" under "mean ± sd over seeds" as measured reproducibility."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from faithbench.reports import build_report
from faithbench.reports.html import _models_html
from faithbench.reports.summaries import models_summary
from faithbench.stats.chance import model_warnings, shared_checkpoint_messages


def _models(checkpoints, accuracy, auc=0.945) -> pd.DataFrame:
    return pd.DataFrame({"dataset": "d", "model": "m", "seed": range(len(checkpoints)), "accuracy": accuracy,
                         "f1": 0.5, "auc": auc, "loss": 0.8, "checkpoint": checkpoints})


def test_one_checkpoint_under_two_seeds_has_no_sd():
    summary = models_summary(_models(["k1", "k1"], [0.6875, 0.6875])).iloc[0]
    assert (summary["seeds"], summary["checkpoints"]) == (2, 1)
    assert summary["auc_mean"] == 0.945 and summary["accuracy_mean"] == 0.6875
    assert math.isnan(summary["auc_sd"]) and math.isnan(summary["accuracy_sd"])  # was 0.0: copies, no spread


def test_the_mean_and_sd_are_over_the_distinct_checkpoints():
    # seeds 0 and 1 share k1 (0.8), seed 2 trained k2 (0.9): over checkpoints mean 0.85, sd 0.1/sqrt(2);
    # over the rows it would be 0.8333 and 0.0577
    summary = models_summary(_models(["k1", "k1", "k2"], [0.8, 0.8, 0.9])).iloc[0]
    assert (summary["seeds"], summary["checkpoints"]) == (3, 2)
    assert summary["accuracy_mean"] == pytest.approx(0.85, abs=1e-12)
    assert summary["accuracy_sd"] == pytest.approx(0.0707106781, abs=1e-9)


def test_distinct_keys_a_missing_key_or_no_key_column_count_each_row():
    trained = models_summary(_models(["k1", "k2"], [0.8, 0.9])).iloc[0]
    assert trained["checkpoints"] == 2 and trained["accuracy_sd"] == pytest.approx(0.0707106781, abs=1e-9)
    unkeyed = models_summary(_models([None, None], [0.8, 0.9])).iloc[0]
    assert unkeyed["checkpoints"] == 2 and unkeyed["accuracy_sd"] == pytest.approx(0.0707106781, abs=1e-9)
    old = models_summary(_models(["k1", "k1"], [0.8, 0.9]).drop(columns=["checkpoint"])).iloc[0]
    assert old["checkpoints"] == 2 and old["seeds"] == 2


def test_the_warning_names_the_seeds_and_the_checkpoint():
    messages = shared_checkpoint_messages(_models(["k1", "k1", "k2"], [0.8, 0.8, 0.9]))
    assert messages == ["one checkpoint for several seeds: d / m (seed 0, 1) loads the same checkpoint k1 under each "
                        "seed (not trained per seed: a weights file, or pretrained without a recipe), so its test "
                        "scores are counted once, with no sd over seeds; the seeds change only the explainers' and "
                        "metrics' randomness"]
    assert messages[0] in model_warnings(_models(["k1", "k1", "k2"], [0.8, 0.8, 0.9]))
    assert shared_checkpoint_messages(_models(["k1", "k2"], [0.8, 0.9])) == []
    assert shared_checkpoint_messages(_models(["k1"], [0.8])) == []


def test_the_html_models_table_shows_no_sd_for_one_checkpoint():
    models = _models(["k1", "k1"], [0.6875, 0.6875])
    page = _models_html(models, models_summary(models))
    assert "<td>d</td><td>m</td><td>2</td><td>1</td><td>0.688</td><td>0.500</td><td>0.945</td><td>0.800</td>" in page
    assert "±" not in page.split("<details>")[0].split("</table>")[0]
    assert "one checkpoint for several seeds: d / m (seed 0, 1)" in page


def test_every_document_of_a_run_with_one_checkpoint_says_so(built: Path, tmp_path: Path):
    run = Path(shutil.copytree(built, tmp_path / "run"))
    models = pd.read_csv(run / "models.csv")
    assert len(models) == 2
    models.assign(checkpoint="same", accuracy=0.9).to_csv(run / "models.csv", index=False)
    build_report(run, progress=False)
    summary = pd.read_csv(run / "models_summary.csv")
    assert summary[["seeds", "checkpoints"]].values.tolist() == [[2, 1]] and summary["accuracy_sd"].isna().all()
    for name in ("leaderboard.md", "leaderboard.tex", "index.html"):
        assert "one checkpoint for several seeds" in (run / name).read_text(), name
