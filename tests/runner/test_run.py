"""End to end: a tiny suite runs, writes every output, and a rerun recomputes nothing."""

import json

import pandas as pd
import pytest

from faithbench.config import suite_from_dict
from faithbench.store import Cache
from faithbench.runner.run import run_suite

TINY = {
    "name": "tiny",
    "samples": 12,
    "batch_size": 8,
    "datasets": [{"name": "phantom_cxr", "params": {"n": 96, "size": 32}}],
    "models": [{"name": "small_cnn", "params": {"width": 8}, "recipe": {"epochs": 1, "batch_size": 32}}],
    "explainers": ["gradcam", {"name": "integrated_gradients", "params": {"n_steps": 8}}, "random", "sobel"],
    "metrics": [{"name": "deletion_auc", "params": {"steps": 8}}, {"name": "insertion_auc", "params": {"steps": 8}},
                "pointing_game", "relevance_mass"],
}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    suite = suite_from_dict(TINY)
    cache = Cache(root / "cache")
    first = run_suite(suite, root / "a", cache=cache, progress=False, log=lambda m: None)
    second = run_suite(suite, root / "b", cache=Cache(root / "cache"), progress=False, log=lambda m: None)
    return root, first, second


def test_outputs_and_columns(two_runs):
    root, first, _ = two_runs
    out = root / "a"
    for name in ["results.csv", "results.parquet", "curves.parquet", "leaderboard.csv", "models.csv", "cost.csv",
                 "manifest.json", "plots/curves_phantom_cxr_small_cnn.png"]:
        assert (out / name).exists(), name
    results = pd.read_csv(out / "results.csv")
    assert {"dataset", "model", "explainer", "metric", "seed", "sample_id", "value"} <= set(results.columns)
    # 4 explainers x 12 samples for the perturbation metrics; localisation only on positives
    per = results.groupby("metric").size()
    assert per["deletion_auc"] == per["insertion_auc"] == 48
    positives = int((results.query("metric == 'deletion_auc' and explainer == 'random'")["label"] == 1).sum())
    assert per["pointing_game"] == 4 * positives
    board = pd.read_csv(out / "leaderboard.csv")
    assert {"dataset", "model", "metric", "explainer", "mean", "median", "n", "rank", "higher_is_better"} <= set(board.columns)
    # one row per (metric, explainer) that has values (relevance_mass is undefined for a map with no
    # positive part, which an untrained model's Grad-CAM can be)
    assert len(board) == len(results.groupby(['metric', 'explainer'])) >= 14
    models = pd.read_csv(out / "models.csv")
    assert {"model", "dataset", "seed", "accuracy", "f1", "auc", "loss"} <= set(models.columns)
    summary = pd.read_csv(out / "models_summary.csv")
    assert summary["seeds"].tolist() == [1] and summary["accuracy_mean"].item() == pytest.approx(models["accuracy"].item())
    assert summary["accuracy_sd"].isna().all()  # one seed: no spread
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["suite"]["name"] == "tiny" and "torch" in manifest["versions"] and manifest["seeds"] == [0]
    assert manifest["cell_info"]["phantom_cxr/small_cnn/gradcam/seed0"]["target_layer"] == "features"
    from importlib import metadata

    from faithbench.configurable import package_version

    packages = manifest["plugin_packages"]  # the code in the keys: faithbench==0.1.0[+source:... in a checkout]
    assert set(packages["explainers"]) == {"gradcam", "integrated_gradients", "random", "sobel"}
    assert packages["explainers"]["gradcam"] == package_version("faithbench.explainers.cam")
    assert packages["metrics"]["deletion_auc"].startswith(f"faithbench=={metadata.version('faithbench')}")
    cost = pd.read_csv(out / "cost.csv")
    ig = cost.query("explainer == 'integrated_gradients' and stage == 'explain'")["passes"].item()
    assert ig == 12 * 8  # captum's IG: n_steps forward passes per sample
    dele = cost.query("explainer == 'random' and metric == 'deletion_auc'")["passes"].item()
    assert dele == 12 * 9  # steps + 1 images per sample


def test_second_run_recomputes_nothing_and_is_identical(two_runs):
    root, first, second = two_runs
    assert first.computed["checkpoints"] == 1 and first.computed["saliency"] > 0
    assert first.computed["reliability"] == 1  # the one group's metric reliability check (default: on)
    assert second.computed == {"checkpoints": 0, "saliency": 0, "scores": 0, "reliability": 0}
    # what the second read from the cache: every batch the first computed (a walkthrough: a resumed run said
    # nothing of what it reused)
    assert first.cached == {"saliency": 0, "scores": 0, "reliability": 0}
    assert second.cached == {"saliency": first.computed["saliency"], "scores": first.computed["scores"],
                             "reliability": 1}
    assert json.loads((root / "b" / "manifest.json").read_text())["cached"] == second.cached
    a = (root / "a" / "results.csv").read_bytes()
    b = (root / "b" / "results.csv").read_bytes()
    assert a == b
    pd.testing.assert_frame_equal(pd.read_csv(root / "a" / "leaderboard.csv"), pd.read_csv(root / "b" / "leaderboard.csv"))
    # the CAM layer and grid come back with the cached saliency: the rerun's manifest records them too
    info = [json.loads((root / run / "manifest.json").read_text())["cell_info"] for run in ("a", "b")]
    assert info[1] == info[0] and info[1]["phantom_cxr/small_cnn/gradcam/seed0"]["grid"] == [8, 8]


def test_fresh_cache_gives_identical_values(two_runs, tmp_path):
    """Determinism end to end: recomputing everything from scratch reproduces the numbers."""
    root, first, _ = two_runs
    third = run_suite(suite_from_dict(TINY), tmp_path / "c", cache=Cache(tmp_path / "cache"), progress=False,
                      log=lambda m: None)
    assert third.computed["checkpoints"] == 1
    pd.testing.assert_frame_equal(first.results, third.results)


def test_corrupted_cache_entry_is_recomputed(two_runs, tmp_path):
    import shutil
    import warnings

    root, first, _ = two_runs
    cache_dir = tmp_path / "cache"
    shutil.copytree(root / "cache", cache_dir)
    victim = sorted((cache_dir / "saliency").rglob("*.safetensors"))[0]
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF  # flip a byte of tensor data
    victim.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = run_suite(suite_from_dict(TINY), tmp_path / "d", cache=Cache(cache_dir), progress=False,
                          log=lambda m: None)
    assert any("corrupted cache entry" in str(w.message) for w in caught)
    assert again.computed["saliency"] == 1
    pd.testing.assert_frame_equal(first.results, again.results)


def test_data_randomization_trains_a_permuted_twin(tmp_path):
    suite = suite_from_dict({**TINY, "name": "datarand", "samples": 6,
                             "explainers": ["saliency", "sobel"],
                             "metrics": ["data_randomization"]})
    result = run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    assert result.computed["checkpoints"] == 2  # the model and its permuted-label twin
    values = result.results.set_index(["explainer", "sample_id"])["value"]
    # sobel ignores the model: identical maps for both models, similarity 1
    assert (values.loc["sobel"] > 0.999).all()
    assert values.loc["saliency"].mean() < 0.95
    again = run_suite(suite, tmp_path / "out2", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    assert again.computed == {"checkpoints": 0, "saliency": 0, "scores": 0, "reliability": 0}
    # the twin's fit to the permuted labels it was trained on, in models.csv, and warned of below 0.9 (a review:
    # the sanity suite's twin fitted 0.539 and nothing said so)
    import torch

    from faithbench.models.checkpoint import load_checkpoint
    from faithbench.runner.group import build_dataset

    row = pd.read_csv(tmp_path / "out2" / "models.csv").iloc[0]
    train = build_dataset("phantom_cxr", "train", {"n": 96, "size": 32})
    twin = load_checkpoint(suite.models[0], train, train, train, 0, Cache(tmp_path / "cache"), permute_labels=True)
    assert twin.origin == "cache" and twin.key == row["permuted_checkpoint"]
    x, y = train.tensors()
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(7919))]  # seed 0's permutation
    with torch.no_grad():
        fit = (twin.model.eval()(x).argmax(-1) == shuffled).double().mean().item()
    assert row["permuted_fit"] == pytest.approx(fit) and 0.3 < fit < 0.9
    assert row["permuted_accuracy"] == pytest.approx(twin.metrics["accuracy"])
    warned = json.loads((tmp_path / "out2" / "manifest.json").read_text())["data_warnings"]
    assert [w for w in warned if "permuted-label twin" in w and f"fits {fit:.3f}" in w]


def test_gallery_and_reliance_are_written(two_runs):
    root, first, _ = two_runs
    out = root / "a"
    assert (out / "plots" / "gallery_phantom_cxr_small_cnn.png").exists()
    reliance = pd.read_csv(out / "reliance.csv")
    assert list(reliance["evidence"]) == ["lesion"]  # no marker without a shortcut
    assert {"dataset", "model", "seed", "n", "mean_drop", "flip_rate"} <= set(reliance.columns)
    assert "Measured reliance" in (out / "index.html").read_text()


def test_metric_needing_an_absent_mask_is_skipped_with_reason(tmp_path):
    suite = suite_from_dict({**TINY, "name": "nomarker", "samples": 4, "explainers": ["random"],
                             "metrics": ["pointing_game",
                                         {"name": "relevance_mass", "alias": "mass_on_marker",
                                          "params": {"mask": "marker"}}]})
    result = run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    assert set(result.results["metric"]) == {"pointing_game"}
    row = result.skipped.query("metric == 'mass_on_marker'").iloc[0]
    assert row["cell"] == "phantom_cxr/small_cnn/random/seed0" and "no mask 'marker'" in row["reason"]
    assert result.failures.empty


def test_positive_subset_explains_only_abnormal_cases(tmp_path):
    suite = suite_from_dict({**TINY, "name": "positives", "samples": 10, "subset": "positive",
                             "explainers": ["random"], "metrics": ["pointing_game", {"name": "deletion_auc",
                                                                                     "params": {"steps": 4}}]})
    result = run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    dele = result.results.query("metric == 'deletion_auc'")
    assert len(dele) == 10 and (dele["label"] == 1).all()
    # the same ten samples for both metrics, the first ten positives in index order
    assert sorted(dele["sample_id"]) == sorted(result.results.query("metric == 'pointing_game'")["sample_id"])


def test_model_origin_keeps_the_whole_target():
    """A held-out review: my_pkg.models:build_net was recorded as module:build_net."""
    from faithbench.runner.output import model_origin

    assert model_origin("my_pkg.models:build_net") == "module:my_pkg.models:build_net"
    assert model_origin("timm:resnet18") == "timm:resnet18"
    assert model_origin("small_cnn") == "builtin"


def test_the_explainer_info_is_written_before_the_maps(tmp_path):
    """A held-out review: the maps were written first, so a run stopped between the two writes left
    cached maps without their info (the CAM layer), and every rerun's manifest lacked it."""
    class InfoFails(Cache):
        def put_json(self, kind, key, payload):
            if kind == "saliency_info":
                raise RuntimeError("stopped between the writes")
            return super().put_json(kind, key, payload)

    suite = suite_from_dict({**TINY, "samples": 8, "explainers": ["gradcam"], "metrics": ["relevance_mass"],
                             "reliability": 0})  # one batch
    run_suite(suite, tmp_path / "a", cache=InfoFails(tmp_path / "cache"), progress=False, log=lambda m: None)
    rerun = run_suite(suite, tmp_path / "b", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    assert rerun.computed["saliency"] > 0  # no map was cached without its info
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["cell_info"]["phantom_cxr/small_cnn/gradcam/seed0"]["target_layer"] == "features"


@pytest.mark.parametrize("where", ["tables", "report", "clear"])
def test_a_full_output_disk_is_exit_2_naming_the_folder(two_runs, tmp_path, monkeypatch, where):
    """A held-out review: --out on a full file system gave exit 1, 'OSError: [Errno 28] No space left on
    device', naming neither folder nor file (the cache's own case was already exit 2)."""
    import errno

    import faithbench.reports.writer as writer
    from faithbench.runner.errors import UsageError

    import faithbench.runner.run as run_module

    root, _, _ = two_runs
    out = tmp_path / "out"

    def full(out_dir, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / ".leaderboard.csv.x1.tmp"))

    if where == "clear":  # a diff review: an earlier run's manifest (status ok) made this say "tables written"
        out.mkdir()
        (out / "manifest.json").write_text('{"suite": {}, "status": "ok"}')
        monkeypatch.setattr(run_module, "clear_owned", full)
    else:
        monkeypatch.setattr(writer, "write_outputs" if where == "tables" else "build_report", full)
    with pytest.raises(UsageError) as info:  # the CLI's exit code 2
        run_suite(suite_from_dict(TINY), out, cache=Cache(root / "cache"), progress=False, log=lambda m: None)
    what = f"No space left on device ({out}/.leaderboard.csv.x1.tmp)"
    if where in ("tables", "clear"):
        assert str(info.value) == (f"--out {out}: cannot write the run's tables: {what}; every result is cached: "
                                   "rerun `faithbench run` into a folder that can be written")
        if where == "tables":
            assert json.loads((out / "manifest.json").read_text())["status"] == "writing"  # the report refuses it
    else:
        assert str(info.value) == (f"--out {out}: the tables are written but not the report: {what}; rebuild it "
                                   f"with `faithbench report {out}` once the folder can be written")


def test_maps_drawn_on_a_gpus_generator_do_not_share_the_cpus_cache_entry(tmp_path, monkeypatch):
    """Helper 112: captum's NoiseTunnel draws SmoothGrad's noise on the input's device, whose generator
    gives other draws for the same seed, and the saliency key had no device: a cache shared by a CPU and
    a GPU machine kept whichever map came first. Such an explainer names its device (draws_on)."""
    import torch

    from faithbench.explainers.gradient import GradientSHAPExplainer, SmoothGradExplainer
    assert SmoothGradExplainer().draws_on(torch.device("cuda", 0)) == "cuda"
    assert SmoothGradExplainer().draws_on(torch.device("cpu")) is None
    assert SmoothGradExplainer(noise_level=0.0).draws_on(torch.device("cuda")) is None
    assert GradientSHAPExplainer().draws_on(torch.device("cuda")) is None  # noise_level 0: no draw matters
    assert GradientSHAPExplainer(noise_level=0.1).draws_on(torch.device("mps")) == "mps"
    suite = suite_from_dict({**TINY, "samples": 8, "explainers": [{"name": "smoothgrad", "params": {"n_samples": 2}}],
                             "metrics": ["relevance_mass"], "reliability": 0})
    quiet = {"progress": False, "log": lambda m: None}
    assert run_suite(suite, tmp_path / "a", cache=Cache(tmp_path / "cache"), **quiet).computed["saliency"] == 1
    assert run_suite(suite, tmp_path / "b", cache=Cache(tmp_path / "cache"), **quiet).cached["saliency"] == 1
    monkeypatch.setattr(SmoothGradExplainer, "draws_on", lambda self, device: "cuda")  # as on a GPU
    assert run_suite(suite, tmp_path / "c", cache=Cache(tmp_path / "cache"), **quiet).computed["saliency"] == 1


def test_a_gallery_row_names_the_class_its_maps_explain():
    """A held-out review (helper 126): with 8 classes and ``target: predicted`` a row read "label: lymphocyte,
    p = 0.21", where 0.21 was P(platelet) and every map explained platelet."""
    from faithbench.runner.gallery import gallery_label

    classes = ("erythroblast", "lymphocyte", "platelet")
    assert gallery_label(classes, 1, 2, multilabel=False) == "lymphocyte (explains platelet)"
    assert gallery_label(classes, 1, 1, multilabel=False) == "lymphocyte"
    # multi-label: the explained class and whether the image has it (label = its 0/1 presence)
    assert gallery_label(classes, 1, 0, multilabel=True) == "erythroblast present"
    assert gallery_label(classes, 0, 2, multilabel=True) == "platelet absent"
    assert gallery_label((), 3, 1, multilabel=False) == "3 (explains 1)"
