"""The medical-imaging report pieces: strata.csv from results, repeatability.csv and
reliability.csv shown when present, the reliability footnote, escaping."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from faithbench.reports import build_report, medical_sections, write_reliability, write_repeatability
from faithbench.reports.writer import _DERIVED_PLOTS, _strata
from faithbench.stats.repeatability import REPEATABILITY_COLUMNS


def _with_strata_columns(folder) -> None:
    """The runner's samples.csv: one row per explained (sample, target) of each checkpoint."""
    results = pd.read_parquet(folder / "results.parquet")
    samples = results[["dataset", "model", "seed", "sample_id", "target"]].drop_duplicates().copy()
    index = samples["sample_id"].str[-3:].astype(int)
    samples["lesion_area"] = 0.01 * (index + 1)
    samples["confidence"] = 0.5 + 0.05 * index
    samples["correct"] = index % 3 != 0
    samples.to_csv(folder / "samples.csv", index=False)


def test_no_files_no_sections(tmp_path):
    assert medical_sections(tmp_path, lambda prefix: "") == []


def test_sections_appear_only_with_their_files(tmp_path, make_run, names):
    folder = make_run(tmp_path / "medical", seeds=(0,), mprt=False)
    _with_strata_columns(folder)
    repeat = pd.DataFrame([{"dataset": names["alias"], "explainer": names["script"], "kind": "repeatability",
                            "model": "cnn", "a": "0", "b": "1", "metric": "ssim", "mean": 0.8, "ci_low": 0.7,
                            "ci_high": 0.9, "n": 8, "baseline_mean": 0.3, "p": 0.004}], columns=REPEATABILITY_COLUMNS)
    write_repeatability(folder, repeat)
    reliability = pd.DataFrame([
        {"metric": names["down"], "nr": 0.35, "ar": 0.8, "passed": False, "nr_ranking": 0.2, "nr_scores": 0.5,
         "ar_ranking": 0.9, "ar_scores": 0.7, "agreement_tau": 0.1, "n_samples": 8, "n_explainers": 4},
        {"metric": names["up"], "nr": 0.9, "ar": 0.8, "passed": True, "nr_ranking": 0.9, "nr_scores": 0.9,
         "ar_ranking": 0.9, "ar_scores": 0.7, "agreement_tau": 0.1, "n_samples": 8, "n_explainers": 4}])
    write_reliability(folder, reliability)
    written = build_report(folder, formats=("html",))
    page = (folder / "index.html").read_text()
    for heading in ("Repeatability and reproducibility", "Metric reliability", "Stratified analysis"):
        assert heading in page, heading
    assert "<script" not in page.lower() and html.escape(names["script"]) in page
    # the footnote names the failing metric on the leaderboard, not the passing one
    assert f"{names['down']}: noise resilience 0.35 &lt; 0.60" in page
    assert f"{names['up']}: noise" not in page
    strata = pd.read_csv(folder / "strata.csv")
    assert folder / "strata.csv" in written
    # only the faithfulness metric of the synthetic run is stratified ("localisation" is not a category name)
    assert set(strata["metric"]) == {names["down"]}
    assert set(strata["stratum_kind"]) == {"lesion_size", "confidence", "correctness"}
    # 8 samples, area 0.01 .. 0.08: tertile edges 0.0333 and 0.0567 -> 3, 2, 3 samples
    good = strata[(strata["explainer"] == "good") & (strata["stratum_kind"] == "lesion_size")]
    assert good["n"].tolist() == [3, 2, 3]
    correct = strata[(strata["explainer"] == "good") & (strata["stratum_kind"] == "correctness")]
    assert correct["n"].tolist() == [5, 3]  # samples 0, 3, 6 wrong
    plots = sorted(p.name for p in (folder / "plots").glob("strata_*.png"))
    assert len(plots) == 3  # one per stratum kind for the single (dataset, model)
    assert page.count("data:image/png;base64,") >= len(plots)
    assert np.isfinite(strata["mean"]).all()

    # a rebuild without samples.csv removes the stale strata table (and build_report the plots)
    (folder / "samples.csv").unlink()
    results = pd.read_parquet(folder / "results.parquet")
    assert _strata(folder, results, folder / "plots") == []
    assert not (folder / "strata.csv").exists()
    assert any(prefix == "strata_" for prefix in _DERIVED_PLOTS)
