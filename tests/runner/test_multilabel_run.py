"""End to end on multi-label data: one row per (image, positive class), sigmoid training, per-class
masks and tables, on the multi-label phantom and on a hand-made ChestMNIST file."""

import numpy as np
import pandas as pd
import pytest

from faithbench.config import suite_from_dict
from faithbench.datasets import PhantomCXRMultiLabel
from faithbench.store import Cache
from faithbench.runner.run import run_suite

PHANTOM = {"n": 64, "size": 32}
TINY = {
    "name": "tiny_multilabel",
    "samples": 10,
    "batch_size": 8,
    "target": "each_positive",
    "datasets": [{"name": "phantom_cxr_multilabel", "params": PHANTOM}],
    "models": [{"name": "small_cnn", "params": {"width": 8}, "recipe": {"epochs": 1, "batch_size": 32}}],
    "explainers": ["gradcam", "random", "sobel"],
    "metrics": [{"name": "deletion_auc", "params": {"steps": 4}},
                {"name": "pointing_game", "params": {"mask": "target"}}, "class_sensitivity"],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml")
    result = run_suite(suite_from_dict(TINY), root / "out", cache=Cache(root / "cache"), progress=False,
                       log=lambda m: None)
    return root / "out", result


def test_one_row_per_image_and_positive_class(run):
    out, result = run
    assert result.status == "ok"
    test = PhantomCXRMultiLabel("test", **PHANTOM)
    expected = {(test[i].id, c) for i in range(10) for c in range(2) if test[i].labels[c]}
    results = pd.read_csv(out / "results.csv")
    rows = results.query("metric == 'deletion_auc' and explainer == 'sobel'")
    assert set(zip(rows["sample_id"], rows["target"])) == expected and len(rows) == len(expected)
    assert (rows["class"] == rows["target"].map({0: "nodule", 1: "cavity"})).all()
    assert (rows["label"] == 1).all()  # each_positive: the explained class is present
    # one curve per (image, explained class): 4 steps + the unperturbed image
    curves = pd.read_parquet(out / "curves.parquet").query("explainer == 'sobel'")
    per_curve = curves.groupby(["sample_id", "class"]).size()
    assert len(per_curve) == len(expected) and set(per_curve) == {5}
    assert sorted(p.name for p in (out / "plots").glob("curves_*.png")) == [
        "curves_phantom_cxr_multilabel_small_cnn_cavity.png", "curves_phantom_cxr_multilabel_small_cnn_nodule.png"]


def test_per_class_masks_and_class_sensitivity(run):
    out, _ = run
    results = pd.read_csv(out / "results.csv")
    test = PhantomCXRMultiLabel("test", **PHANTOM)
    by_id = {test[i].id: test[i] for i in range(10)}
    pg = results.query("metric == 'pointing_game' and explainer == 'random'")
    for row in pg.to_dict("records"):  # the chance level is the area of the explained class's own mask
        assert row["chance"] == pytest.approx(float(by_id[row["sample_id"]].masks[row["class"]].float().mean()))
    cs = results.query("metric == 'class_sensitivity'")
    both = {sid for sid, s in by_id.items() if s.labels.all()}
    assert set(cs["sample_id"]) == both  # only images where both classes are present
    assert (cs.query("explainer == 'sobel'")["value"] == 1.0).all()  # sobel ignores the class
    assert (cs.query("explainer == 'gradcam'")["value"] < 1.0).all()


def test_skipped_counts_image_class_rows_and_gives_class_sensitivity_its_cause(run):
    """A held-out review: skipped.csv said "6 of 18 samples undefined (NaN, e.g. an empty mask, ...)" for
    class_sensitivity on 16 images: the 18 are (image, class) rows, and the cause (no other positive class
    in the image) was not among the reasons."""
    out, _ = run
    test = PhantomCXRMultiLabel("test", **PHANTOM)
    labels = [test[i].labels for i in range(10)]
    pairs, alone = sum(int(y.sum()) for y in labels), sum(int(y.sum()) for y in labels if y.sum() == 1)
    skipped = pd.read_csv(out / "skipped.csv")
    reasons = skipped[skipped["cell"].str.contains("sobel") & (skipped["metric"] == "class_sensitivity")]["reason"]
    assert reasons.tolist() == [f"{alone} of {pairs} (image, class) rows undefined (NaN, the explained class absent "
                                "from the image, no other positive class in it, or a constant map; see the metric's "
                                "docs): no row"]
    assert 0 < alone < pairs


def test_models_and_tables_per_class(run):
    out, _ = run
    models = pd.read_csv(out / "models.csv")
    assert {"auc_nodule", "auc_cavity", "f1_nodule", "accuracy_cavity"} <= set(models.columns)
    assert models["auc"].item() == pytest.approx((models["auc_nodule"] + models["auc_cavity"]).item() / 2)
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["class"]) == {"nodule", "cavity"}
    assert (out / "plots" / "distributions_phantom_cxr_multilabel_small_cnn_cavity.png").exists()
    assert "phantom_cxr_multilabel / small_cnn / nodule" in (out / "index.html").read_text()


def _write_chestmnist(folder):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.zeros((8, 14), dtype=np.uint8)
    labels[0, [2, 5]] = 1
    labels[1, 13] = 1
    labels[3, [0, 2]] = 1
    labels[4:, 2] = [1, 0, 1, 0]
    arrays = {f"{s}_images": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8) for s in ("train", "val", "test")}
    arrays.update({f"{s}_labels": labels for s in ("train", "val", "test")})
    np.savez(folder / "chestmnist.npz", **arrays)


def test_chestmnist_each_positive_through_the_loader(tmp_path):
    pytest.importorskip("medmnist")
    _write_chestmnist(tmp_path / "data" / "medmnist")
    suite = suite_from_dict({
        "name": "chest", "samples": 8, "batch_size": 4, "target": "each_positive",
        "datasets": [{"name": "medmnist", "params": {"flag": "chestmnist", "root": str(tmp_path / "data")}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["saliency"], "metrics": [{"name": "deletion_auc", "params": {"steps": 2}}, "pointing_game"]})
    result = run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None,
                       report=False)
    rows = result.results
    pairs = list(zip(rows["sample_id"].str[-1].astype(int), rows["target"]))
    assert pairs == [(0, 2), (0, 5), (1, 13), (3, 0), (3, 2), (4, 2), (6, 2)]
    assert list(rows["class"][:3]) == ["effusion", "nodule", "hernia"]
    assert "no mask 'lesion'" in result.skipped["reason"].iloc[0]  # ChestMNIST has no masks
    assert "auc_hernia" in result.models.columns


def test_the_runner_tells_consistency_which_rows_are_one_image(tmp_path, monkeypatch):
    """A held-out review: consistency counted an image's other class row as another sample (the runner
    did not pass the rows' sample ids); the rows of images 0 and 3 (two classes each) are one image."""
    pytest.importorskip("medmnist")
    import faithbench.metrics.robustness as robustness

    seen = []

    def recording(discrete, predicted, same_sample=None):
        seen.append(same_sample)
        return consistency(discrete, predicted, same_sample)

    consistency = robustness.consistency
    monkeypatch.setattr(robustness, "consistency", recording)
    _write_chestmnist(tmp_path / "data" / "medmnist")
    suite = suite_from_dict({
        "name": "chest", "samples": 8, "batch_size": 8, "target": "each_positive",
        "datasets": [{"name": "medmnist", "params": {"flag": "chestmnist", "root": str(tmp_path / "data")}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["sobel"], "metrics": [{"name": "consistency", "params": {"grid": 2}}]})
    run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None,
              report=False)
    image = [0, 0, 1, 3, 3, 4, 6]  # the rows (image, class) as in the test above
    assert len(seen) == 1 and seen[0] is not None
    assert seen[0].cpu().tolist() == [[a == b for b in image] for a in image]
