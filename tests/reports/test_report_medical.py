"""The medical-imaging report pieces: strata.csv from results, repeatability.csv and
reliability.csv shown when present, the reliability footnote, escaping."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest

from faithbench.reports import build_report, medical_sections, write_reliability, write_repeatability
from faithbench.reports.writer import RunFolderError, _strata
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


def test_no_files_only_the_reliability_line(tmp_path):
    """Strata appear only with their file; repeatability and metric reliability always say what
    became of them (here: no manifest, no file; a held-out review found a one-seed run's missing
    repeatability section unexplained)."""
    sections = medical_sections(tmp_path, lambda prefix: "")
    assert [(anchor, heading) for anchor, heading, _ in sections] == [
        ("repeatability", "Repeatability and reproducibility"), ("reliability", "Metric reliability")]
    assert "Not computed (no repeatability.csv): it needs two checkpoints to compare" in sections[0][2]
    assert "Metric reliability was not computed (reliability.csv is missing)." in sections[1][2]


def test_the_tuned_thresholds_appear_with_calibration_csv(tmp_path):
    """A held-out review: which threshold or gate a CheXlocalize score used, and that a class fell back to
    Otsu, was in calibration.csv only, never in the report."""
    from faithbench.runner.calibration import CALIBRATION_COLUMNS

    rows = [["d", "m", 0, "gradcam", "chexlocalize_iou", "nodule", 0.35, 0.2, 12, 6, ""],
            ["d", "m", 0, "gradcam", "chexlocalize_iou", "normal", "otsu", "", 12, 0,
             "no validation unit with a non-empty mask"]]
    pd.DataFrame(rows, columns=CALIBRATION_COLUMNS).to_csv(tmp_path / "calibration.csv", index=False)
    (anchor, heading, body), = [s for s in medical_sections(tmp_path, lambda prefix: "") if s[0] == "calibration"]
    assert heading == "Thresholds tuned on the validation split" and '<a href="calibration.csv">' in body
    assert "<td>nodule</td><td>0.350</td><td>0.200</td><td>12</td><td>6</td><td>–</td>" in body  # 'otsu' too
    assert "<td>normal</td><td>otsu</td><td>–</td><td>12</td><td>0</td><td>no validation unit with a" in body


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
    assert set(strata["stratum_kind"]) == {"lesion_size", "confidence", "correctness", "explained_class"}
    # 8 samples, area 0.01 .. 0.08: tertile edges 0.0333 and 0.0567 -> 3, 2, 3 samples
    good = strata[(strata["explainer"] == "good") & (strata["stratum_kind"] == "lesion_size")]
    assert good["n"].tolist() == [3, 2, 3]
    correct = strata[(strata["explainer"] == "good") & (strata["stratum_kind"] == "correctness")]
    assert correct["n"].tolist() == [5, 3]  # samples 0, 3, 6 wrong
    plots = sorted(p.name for p in (folder / "plots").glob("strata_*.png"))
    assert len(plots) == 4  # one per stratum kind for the single (dataset, model)
    for name in plots:  # each stratum plot is on the page
        assert name in page, name
    assert np.isfinite(strata["mean"]).all()

    # a run with results always writes samples.csv: without it the rebuild refuses and keeps the strata
    (folder / "samples.csv").unlink()
    with pytest.raises(RunFolderError, match="samples.csv is missing"):
        build_report(folder, formats=())
    assert (folder / "strata.csv").exists() and list((folder / "plots").glob("strata_*"))
    # nothing to stratify (a run without results): the stale strata table goes
    results = pd.read_parquet(folder / "results.parquet")
    assert _strata(folder, results.iloc[0:0], None, folder / "plots") == []
    assert not (folder / "strata.csv").exists()


def _reliability_table(names) -> pd.DataFrame:
    return pd.DataFrame([
        {"metric": names["down"], "nr": 0.35, "ar": 0.8, "passed": False, "nr_ranking": 0.2, "nr_scores": 0.5,
         "ar_ranking": 0.9, "ar_scores": 0.7, "agreement_tau": -0.25, "n_samples": 8, "n_explainers": 4},
        {"metric": names["up"], "nr": 0.9, "ar": 0.8, "passed": True, "nr_ranking": 0.9, "nr_scores": 0.9,
         "ar_ranking": 0.9, "ar_scores": 0.7, "agreement_tau": 0.5, "n_samples": 8, "n_explainers": 4}])


def _set_manifest(folder, **entry) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(entry)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_markdown_and_html_show_reliability_per_metric_and_name_the_failing_one(tmp_path, make_run, names):
    folder = make_run(tmp_path / "run", seeds=(0,), mprt=False)
    write_reliability(folder, _reliability_table(names))
    _set_manifest(folder, reliability={"samples": 8, "status": "computed", "note": "",
                                       "skipped": {"mprt_cascading": "a randomisation check"}})
    build_report(folder, formats=("md", "html"))
    markdown = (folder / "leaderboard.md").read_text()
    section = markdown[markdown.index("## Metric reliability"):]
    assert "| deletion\\_auc | 0.350 | 0.800 | -0.250 | **fail** |" in section
    assert "| hit\\_rate&amp;co | 0.900 | 0.800 | 0.500 | pass |" in section
    # the footnote names the failing metric only, with its reason
    assert "deletion\\_auc: noise resilience 0.35 \\< 0.60" in section and "hit\\_rate&amp;co: noise" not in section
    assert "Not re-scored: mprt\\_cascading (a randomisation check)." in section
    page = (folder / "index.html").read_text()
    assert "Not re-scored: mprt_cascading (a randomisation check)." in page
    assert f"{names['down']}: noise resilience 0.35 &lt; 0.60" in page


def test_without_reliability_the_report_says_why_in_one_line(tmp_path, make_run):
    folder = make_run(tmp_path / "run", seeds=(0,), mprt=False)
    note = "Metric reliability could not be computed: a ranking needs at least 2 explainers; d / m has 1."
    _set_manifest(folder, reliability={"samples": 8, "status": "not computed", "note": note, "skipped": {}})
    build_report(folder, formats=("md", "html"))
    assert note in (folder / "index.html").read_text()
    assert "## Metric reliability\n\n" + note.replace("_", "\\_") in (folder / "leaderboard.md").read_text()
    # a folder written before the manifest had the entry: off when its suite says reliability: 0
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["reliability"]
    manifest["suite"]["reliability"] = 0
    (folder / "manifest.json").write_text(json.dumps(manifest))
    build_report(folder, formats=("html",))
    assert "Metric reliability is off (the suite sets reliability: 0)." in (folder / "index.html").read_text()
