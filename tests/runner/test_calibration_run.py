"""CheXlocalize's ``threshold: val`` / ``gate: val`` through a run: the validation split is explained
with the cell's explainer, each class's threshold and gate are tuned on it (checked against
``tune_threshold`` / ``tune_gate`` run by hand on the same maps), the test split is scored with them,
``calibration.csv`` records them; the Otsu default is unchanged; a dataset without a usable
validation split is refused before any work (exit 2)."""

from pathlib import Path

import math

import pandas as pd
import pytest
import torch
import yaml
from skimage.filters import threshold_otsu

import faithbench
from faithbench.cli import main
from faithbench.config import SuiteError
from faithbench.datasets import PhantomCXRMultiLabel
from faithbench.datasets.phantoms import PhantomCXR
from faithbench.metrics.functional.chexlocalize import binarize, chexlocalize_iou, iou, tune_gate, tune_threshold
from faithbench.registry import explainers
from faithbench.runner.calibration import CALIBRATION_COLUMNS
from faithbench.store import Cache

PHANTOM = {"n": 24, "size": 32}
VAL_SAMPLES = 8  # 16 units: 2 classes each


def _weights(tmp: Path, classes: int = 2) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=classes, input_size=(32, 32), width=4)
    path = tmp / "w.pt"
    torch.save(model.state_dict(), path)
    return model.eval(), path


def _run(suite: dict, tmp: Path, name: str = "out"):
    return faithbench.run(faithbench.load_suite(suite), out_dir=tmp / name, cache=Cache(tmp / "cache"),
                          progress=False, log=lambda m: None, report=False)


def _units(dataset, n: int, classes: int) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n`` (sample, class) units of ``target: {samples: all}``: ids, x, target, the class's mask."""
    ids, xs, targets, masks = [], [], [], []
    for i in range(len(dataset)):
        s = dataset[i]
        for c in range(classes):
            ids.append(s.id)
            xs.append(s.image)
            targets.append(c)
            masks.append(s.masks[dataset.classes[c]])
    return ids[:n], torch.stack(xs[:n]), torch.tensor(targets[:n]), torch.stack(masks[:n])


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory):
    """Two classes, each unit scored against its own class's mask: both classes are tuned."""
    tmp = tmp_path_factory.mktemp("calib")
    model, weights = _weights(tmp)
    suite = {"name": "calib", "samples": 8, "batch_size": 8, "target": {"classes": ["nodule", "cavity"]},
             "datasets": [{"name": "phantom_cxr_multilabel", "params": PHANTOM}],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(weights)}],
             "explainers": ["saliency"],
             "metrics": [{"name": "chexlocalize_iou", "params": {"mask": "target", "threshold": "val", "gate": "val",
                                                                 "val_samples": VAL_SAMPLES}}]}
    result = _run(suite, tmp)
    return tmp, model, suite, result


def test_per_class_threshold_and_gate_match_tuning_by_hand(multilabel):
    tmp, model, _, result = multilabel
    assert result.status == "ok"
    table = pd.read_csv(tmp / "out" / "calibration.csv")
    assert list(table.columns) == CALIBRATION_COLUMNS
    # by hand: the first 16 validation units (8 images x 2 classes), explained by the cell's explainer
    val = PhantomCXRMultiLabel("val", **PHANTOM)
    _, x, target, mask = _units(val, 2 * VAL_SAMPLES, 2)
    maps = explainers.get("saliency")(seed=0)(model, x, target)
    with torch.no_grad():
        prob = model(x).sigmoid().gather(1, target[:, None])[:, 0]
    tuned = {}
    for c, name in enumerate(val.classes):
        sel = target == c
        has = mask[sel].flatten(1).any(1)
        assert 0 < int(has.sum()) < int(sel.sum())  # each class has findings and negatives: both are tuned
        t = tune_threshold(maps[sel], mask[sel])
        g = tune_gate(prob[sel], has, val_iou=iou(binarize(maps[sel], t), mask[sel]))
        row = table[table["class"] == name].iloc[0]
        assert (float(row["threshold"]), float(row["gate"])) == (t, g)
        assert (row["n_val"], row["n_finding"]) == (int(sel.sum()), int(has.sum()))
        tuned[c] = (t, g)
    # the test split is scored with each unit's class's threshold and gate
    test = PhantomCXRMultiLabel("test", **PHANTOM)
    ids, x, target, mask = _units(test, 16, 2)
    maps = explainers.get("saliency")(seed=0)(model, x, target)
    with torch.no_grad():
        prob = model(x).sigmoid().gather(1, target[:, None])[:, 0]
    thresholds = torch.tensor([tuned[int(c)][0] for c in target], dtype=torch.float64)
    gates = torch.tensor([tuned[int(c)][1] for c in target], dtype=torch.float64)
    expected = chexlocalize_iou(maps, mask, threshold=thresholds, prob=prob, gate=gates)
    rows = result.results.set_index(["sample_id", "target"])["value"]
    keep = ~expected.isnan()
    assert len(rows) == int(keep.sum()) > 0
    for sid, c, value in zip(ids, target.tolist(), expected.tolist()):
        if not math.isnan(value):
            assert rows[(sid, c)] == pytest.approx(value, abs=1e-6)
    cost = result.cost.set_index("stage")
    assert cost.loc["calibrate", "samples"] == 2 * VAL_SAMPLES and cost.loc["calibrate", "passes"] > 0


def test_a_rerun_reuses_maps_and_scores_and_a_changed_calibration_rescores(multilabel):
    tmp, _, suite, first = multilabel
    again = _run(suite, tmp, "again")
    assert again.computed["saliency"] == 0 and again.computed["scores"] == 0  # val and test maps cached
    pd.testing.assert_frame_equal(pd.read_csv(tmp / "again" / "calibration.csv"),
                                  pd.read_csv(tmp / "out" / "calibration.csv"))
    # fewer validation samples: a new spec (val_samples and the values tuned are in it), so the test is rescored
    params = {**suite["metrics"][0]["params"], "val_samples": 4}
    other = _run({**suite, "metrics": [{**suite["metrics"][0], "params": params}]}, tmp, "other")
    assert other.computed["scores"] > 0 and other.computed["saliency"] == 0  # the first 4 val units' maps: cached
    assert pd.read_csv(tmp / "other" / "calibration.csv")["n_val"].sum() == 8  # 4 images x 2 classes


def test_otsu_default_unchanged_and_no_validation_split(tmp_path, monkeypatch):
    model, weights = _weights(tmp_path)
    built = []
    original = PhantomCXR.__init__

    def spy(self, split="test", **params):
        built.append(split)
        original(self, split, **params)

    monkeypatch.setattr(PhantomCXR, "__init__", spy)
    suite = {"name": "otsu", "samples": 8, "batch_size": 8, "target": "label", "subset": "positive",
             "datasets": [{"name": "phantom_cxr", "params": PHANTOM}],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(weights)}],
             "explainers": ["saliency"], "metrics": ["chexlocalize_iou"]}
    result = _run(suite, tmp_path)
    assert set(built) == {"test"}  # no metric calibrates: the val split is never built
    assert not (tmp_path / "out" / "calibration.csv").exists()
    assert "calibrate" not in set(result.cost["stage"])
    test = PhantomCXR("test", **PHANTOM)
    samples = [test[i] for i in range(len(test)) if test[i].label == 1][:8]
    x = torch.stack([s.image for s in samples])
    maps = explainers.get("saliency")(seed=0)(model, x, torch.ones(len(samples), dtype=torch.long))
    mask = torch.stack([s.masks["lesion"] for s in samples])
    # Otsu per map as scikit-image computes it on the min-max normalised map, no gate
    expected = []
    for m, truth in zip(maps.numpy(), mask.numpy()):
        norm = (m - m.min()) / (m.max() - m.min())
        seg = norm > threshold_otsu(norm, nbins=256)
        expected.append((seg & truth).sum() / (seg | truth).sum())
    assert result.results["value"].tolist() == pytest.approx(expected, abs=1e-6)
    assert result.results["sample_id"].tolist() == [s.id for s in samples]


def test_single_label_class_without_findings_falls_back_to_otsu(tmp_path):
    _, weights = _weights(tmp_path)
    logs: list[str] = []
    suite = faithbench.load_suite({
        "name": "fallback", "samples": 8, "batch_size": 8, "target": "label", "subset": "all",
        "datasets": [{"name": "phantom_cxr", "params": PHANTOM}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(weights)}],
        "explainers": ["saliency"],
        "metrics": [{"name": "chexlocalize_iou", "params": {"threshold": "val", "val_samples": VAL_SAMPLES}},
                    {"name": "chexlocalize_hit", "params": {"gate": "val", "val_samples": VAL_SAMPLES}}]})
    faithbench.run(suite, out_dir=tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False,
                   log=logs.append, report=False)
    table = pd.read_csv(tmp_path / "out" / "calibration.csv").set_index(["metric", "class"])
    # "normal" units have an empty lesion mask: Otsu (IoU) / no gate (hit), with a note and a log line
    assert table.loc[("chexlocalize_iou", "normal"), "threshold"] == "otsu"
    assert table.loc[("chexlocalize_iou", "normal"), "note"].endswith(": Otsu")
    assert table.loc[("chexlocalize_hit", "normal"), "note"].endswith(": no gate")
    assert float(table.loc[("chexlocalize_iou", "lesion"), "threshold"]) in [round(0.1 * i, 1) for i in range(1, 10)]
    assert table["n_val"].groupby("metric").sum().tolist() == [VAL_SAMPLES, VAL_SAMPLES]
    assert sum("class 'normal'" in line and "Otsu" in line for line in logs) == 1


def test_no_validation_split_is_refused_before_any_work(tmp_path, test_only_dataset, capsys):
    _, weights = _weights(tmp_path)
    suite = {"name": "refused", "samples": 4, "batch_size": 4,
             "datasets": [{"name": test_only_dataset, "params": PHANTOM}],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(weights)}],
             "explainers": ["saliency"], "metrics": [{"name": "chexlocalize_iou", "params": {"threshold": "val"}}]}
    with pytest.raises(SuiteError, match=r"metrics\[0\] 'chexlocalize_iou' is tuned on the validation split .*"
                                         rf"dataset '{test_only_dataset}' has no validation split \(no items in split"):
        faithbench.load_suite(suite)
    path = tmp_path / "refused.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no validation split" in err[0]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))
    # the default (Otsu) needs no validation split: the same dataset runs
    ok = {**suite, "metrics": ["chexlocalize_iou"]}
    assert _run(ok, tmp_path).status == "ok"


def test_validation_split_without_a_finding_is_refused(tmp_path):
    _, weights = _weights(tmp_path)
    suite = {"name": "nomask", "samples": 4, "batch_size": 4,
             # a rare finding: none among the 24 validation images (prevalence 0 is refused outright)
             "datasets": [{"name": "phantom_cxr", "params": {**PHANTOM, "prevalence": 0.05, "seed": 4}}],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(weights)}],
             "explainers": ["saliency"], "metrics": [{"name": "chexlocalize_hit", "params": {"gate": "val"}}]}
    with pytest.raises(SuiteError, match="no non-empty 'lesion' mask in the first 24 samples of its validation split"):
        faithbench.load_suite(suite)
    # a dataset without the mask at all: the metric is skipped there (a warning, as before), not refused
    with pytest.warns(UserWarning, match="needs mask 'nodule'"):
        faithbench.load_suite({**suite, "metrics": [{"name": "chexlocalize_hit",
                                                     "params": {"gate": "val", "mask": "nodule"}}, "deletion_auc"]})


def test_a_multi_label_class_the_suite_does_not_explain_gets_no_calibration_row(tmp_path):
    """A review: ``target: {classes: [nodule]}`` wrote 'no validation unit of class cavity ... Otsu' rows and log
    lines for a class no unit explains; only the explained class is calibrated (its values as with both classes)."""
    _, weights = _weights(tmp_path)
    metric = {"name": "chexlocalize_iou", "params": {"mask": "target", "threshold": "val", "val_samples": 4}}
    suite = {"name": "one", "samples": 4, "batch_size": 8, "target": {"classes": ["nodule"]}, "reliability": 0,
             "datasets": [{"name": "phantom_cxr_multilabel", "params": PHANTOM}],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(weights)}],
             "explainers": ["saliency"], "metrics": [metric]}
    lines: list[str] = []
    result = faithbench.run(faithbench.load_suite(suite), out_dir=tmp_path / "one", cache=Cache(tmp_path / "cache"),
                            progress=False, log=lines.append, report=False)
    table = pd.read_csv(tmp_path / "one" / "calibration.csv")
    assert result.status == "ok" and table["class"].tolist() == ["nodule"]
    assert not any("calibration" in line and "cavity" in line for line in lines)
    both = _run({**suite, "target": {"classes": ["nodule", "cavity"]}}, tmp_path, "both")
    assert both.status == "ok"
    wide = pd.read_csv(tmp_path / "both" / "calibration.csv").set_index("class")
    assert sorted(wide.index) == ["cavity", "nodule"]
    for column in ("threshold", "n_val", "n_finding"):  # the same first 4 validation images tune nodule
        assert table.iloc[0][column] == wide.loc["nodule", column], column
