"""``faithbench report`` on damaged or partial run folders (held-out review round 5): unreadable per-sample
columns of ``samples.csv`` are refused (F2), an explainer that failed everywhere is named in
``overall_ranks.csv`` (F3)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from faithbench.cli import main
from faithbench.reports import build_report


@pytest.mark.parametrize(("column", "cell", "said"), [
    ("confidence", "abc", "column confidence holds 1 value(s) that are not numbers (e.g. 'abc')"),
    ("lesion_area", "big", "column lesion_area holds 1 value(s) that are not numbers (e.g. 'big')"),
    ("correct", "maybe", "column correct holds 1 value(s) that are not True/False (e.g. 'maybe')"),
])
def test_unreadable_strata_columns_of_samples_csv_are_refused(run, capsys, column, cell, said):
    """The review set every confidence to "abc": exit 0, and the confidence strata and plots vanished."""
    samples = pd.read_csv(run / "samples.csv")
    samples[column] = samples[column].astype(object)
    samples.loc[3, column] = cell
    samples.to_csv(run / "samples.csv", index=False)
    strata = (run / "strata.csv").read_bytes()
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"faithbench: error: cannot read {run / 'samples.csv'}: {said}; rerun `faithbench run` into this "
                   "folder to rebuild it")
    assert (run / "strata.csv").read_bytes() == strata  # refused before writing


def test_empty_cells_of_samples_csv_are_read_as_a_run_writes_them(run):
    """A sample without a lesion has an empty lesion_area (the synthetic run's every sample); an empty
    confidence or correct is undefined too, not unreadable."""
    samples = pd.read_csv(run / "samples.csv")
    assert samples["lesion_area"].isna().all()
    samples["correct"] = samples["correct"].astype(object)
    samples.loc[0, ["confidence", "correct"]] = [None, None]
    samples.to_csv(run / "samples.csv", index=False)
    build_report(run, formats=("md",))
    assert (pd.read_csv(run / "strata.csv")["stratum_kind"] == "confidence").any()


def test_an_explainer_failed_in_every_group_is_named_in_overall_ranks(run):
    """The review's partial run: ``boom`` failed on the only (dataset, model) and had no row; overall_ranks.csv
    ranked the others with ``left_out`` empty. A failed metric names the explainer for that metric only."""
    pd.DataFrame([{"cell": "d/cnn/boom/seed0", "dataset": "d", "model": "cnn", "explainer": "boom", "seed": 0,
                   "stage": "explain", "metric": "", "error_type": "RuntimeError", "message": "boom"},
                  {"cell": "d/cnn/zap/seed0", "dataset": "d", "model": "cnn", "explainer": "zap", "seed": 0,
                   "stage": "metric", "metric": "deletion_auc", "error_type": "RuntimeError", "message": "zap"}]
                 ).to_csv(run / "failures.csv", index=False)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "partial", "failed_cells": 2}))
    build_report(run, formats=("md",))
    overall = pd.read_csv(run / "overall_ranks.csv", keep_default_na=False)
    assert "boom" not in set(overall["explainer"]) and set(overall["metric"]) >= {"deletion_auc"}
    for metric, left_out in overall.groupby("metric")["left_out"].first().items():
        names = "boom, zap" if metric == "deletion_auc" else "boom"
        assert f"{names}: failed in every group, no row (failures.csv)" in left_out, (metric, left_out)
