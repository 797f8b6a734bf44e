"""The built-in 3D suites end to end, in miniature: their explainers and metrics as written, on a
few small volumes and a one-epoch model (the full suites train for minutes to hours)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import yaml

from faithbench.config import BUILTIN_DIR, suite_from_dict
from faithbench.store import Cache
from faithbench.runner.run import run_suite

pytest.importorskip("nilearn")


def _builtin(name: str) -> dict:
    return yaml.safe_load((BUILTIN_DIR / f"{name}.yaml").read_text())


def _run(tmp_path, data: dict):
    suite = suite_from_dict(data)
    return run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None,
                     report=False)


def test_volumes3d_in_miniature(tmp_path):
    data = _builtin("volumes3d")
    root = os.environ.get("FAITHBENCH_DATA", "")
    have_adrenal = bool(root) and os.path.exists(os.path.join(root, "medmnist", "adrenalmnist3d.npz"))
    kept = [spec for spec in data["datasets"] if spec["name"] != "medmnist" or have_adrenal]
    for spec in kept:
        spec["params"]["n"] = 16
    data.update(datasets=kept, samples=1, batch_size=1)
    for model in data["models"]:
        model["recipe"] = {**model["recipe"], "epochs": 1}
        if model["name"] == "resnet18_3d":
            model["params"] = {**model.get("params", {}), "widen_factor": 0.125}
    result = _run(tmp_path, data)
    assert result.status == "ok", result.failures
    rows = result.results
    pairs = {("phantom_organ3d", "small_cnn"), ("mni_lesion_3d", "small_cnn_maxpool")}
    if have_adrenal:
        pairs |= {("adrenalmnist3d_28", "small_cnn"), ("adrenalmnist3d_28", "resnet18_3d")}
    assert set(zip(rows["dataset"], rows["model"])) == pairs  # the suite's per-dataset model lists
    metric_labels = [m if isinstance(m, str) else m.get("alias") or m["name"] for m in data["metrics"]]
    phantom = rows[rows["dataset"] == "phantom_organ3d"]
    # every explainer x every metric on the positive volume (localisation has the lesion mask)
    n_explainers = len(data["explainers"])
    assert phantom.groupby("metric").size().to_dict() == {m: n_explainers for m in metric_labels}
    assert set(rows["label"]) == {1}  # subset: positive
    curves = result.curves
    for metric in ("deletion_auc", "deletion_auc_cube4"):
        per_curve = curves[curves["metric"] == metric].groupby(["dataset", "model", "explainer", "sample_id"]).size()
        assert set(per_curve) == {51}  # 50 steps + the unperturbed volume
    # voxels vs 4^3 cubes: different features, so different curves for a real map
    grad = curves[(curves["explainer"] == "saliency") & (curves["dataset"] == "phantom_organ3d")]
    vox = grad[grad["metric"] == "deletion_auc"].sort_values(["sample_id", "step"])["score"].to_numpy()
    cube = grad[grad["metric"] == "deletion_auc_cube4"].sort_values(["sample_id", "step"])["score"].to_numpy()
    assert vox.shape == cube.shape and abs(vox - cube).max() > 0
    if have_adrenal:
        skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
        adrenal = skipped[skipped["cell"].str.startswith("adrenalmnist3d_28/")]
        assert set(adrenal["metric"]) == {"pointing_game", "relevance_mass"}
        assert adrenal["reason"].str.contains("lesion").all()


def test_scorecam3d_protocol_in_miniature(tmp_path, real_data):
    real_data("medmnist/adrenalmnist3d_64.npz")
    pytest.importorskip("monai")
    data = _builtin("scorecam3d")
    data["datasets"][0]["params"]["n"] = 8
    data.update(samples=1, batch_size=1)
    model = data["models"][0]
    model["params"] = {"widen_factor": 0.125}
    model["recipe"] = {**model["recipe"], "epochs": 1, "batch_size": 8}
    result = _run(tmp_path, data)
    assert result.status == "ok", result.failures
    rows, curves = result.results, result.curves
    assert set(rows["explainer"]) == {"scorecam", "gradcam", "random", "sobel"}
    assert rows.groupby("metric").size().to_dict() == {"deletion_auc": 4, "insertion_auc": 4}
    # RISE's AUC over 129 points of a 0/1 correctness score
    assert set(curves.groupby(["explainer", "metric", "sample_id"]).size()) == {129}
    assert set(curves["score"].unique()) <= {0.0, 1.0}
    assert rows["value"].between(0, 1).all()
    # the first point of every curve: deletion starts from the volume (correct = 1 for the
    # predicted target), insertion from the baseline
    first = curves[(curves["step"] == 0) & (curves["metric"] == "deletion_auc")]["score"]
    assert (first == 1.0).all()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    info = manifest["cell_info"]["adrenalmnist3d_64/resnet18_3d/scorecam/seed0"]
    assert info["target_layer"] == "layer4" and tuple(info["grid"]) == (4, 4, 4)
