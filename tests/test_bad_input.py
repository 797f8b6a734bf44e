"""Bad input through the CLI: one line naming the file, key or sample; exit code 2; nothing
computed before is lost. (The loader's own messages are tested in tests/test_config.py.)"""

import textwrap

import pytest
import torch
import yaml

from faithbench.cli import EXIT_BAD_INPUT, main
from faithbench.datasets import PhantomCXR
from faithbench.models import build_model
from faithbench.registry import datasets
from faithbench.store import save_tensors
from faithbench.types import Sample

GOOD = {
    "name": "bad_input",
    "samples": 8,
    "batch_size": 4,
    "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
    "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
    "explainers": ["random"],
    "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}],
}


def run(tmp_path, capsys, suite, *extra):
    path = tmp_path / "suite.yaml"
    path.write_text(suite if isinstance(suite, str) else yaml.safe_dump(suite))
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--quiet",
                 *extra])
    err = capsys.readouterr().err.strip().splitlines()
    return code, (err[-1] if err else ""), path


def with_entry(kind, index, entry):
    suite = {k: list(v) if isinstance(v, list) else v for k, v in GOOD.items()}
    suite[kind][index] = entry
    return suite


@pytest.mark.parametrize("kind, entry, expected", [
    ("datasets", "phantom_cx", "datasets[0]: unknown dataset 'phantom_cx'; did you mean 'phantom_cxr'"),
    ("models", {"name": "small_cn", "recipe": "default"}, "models[0]: unknown model 'small_cn'; did you mean 'small_cnn'"),
    ("explainers", "randon", "explainers[0]: unknown explainer 'randon'; did you mean 'random'"),
    ("metrics", "deletion_au", "metrics[0]: unknown metric 'deletion_au'; did you mean 'deletion_auc'"),
    ("metrics", {"name": "deletion_auc", "params": {"step": 4}},
     "metrics[0].params: deletion_auc: unknown parameter 'step'"),
    ("metrics", {"name": "deletion_auc", "params": {"steps": "many"}},
     "metrics[0].params: deletion_auc: parameter 'steps' expects int"),
    ("explainers", {"name": "integrated_gradients", "params": {"nsteps": 8}},
     "explainers[0].params: integrated_gradients: unknown parameter 'nsteps'"),
    ("datasets", {"name": "phantom_cxr", "params": {"sise": 32}}, "datasets[0].params: unknown parameter 'sise'"),
    ("models", {"name": "small_cnn", "weights": "no/such/weights.safetensors"},
     "models[0].weights: file not found: no/such/weights.safetensors"),
    # limits of the dataset (32 x 32 = 1024 features, width 32) and of the model, found by validation
    ("metrics", {"name": "top_k_intersection", "params": {"k": 100000000}},
     "metrics[0].params: top_k_intersection: k = 100000000 is more than the 1024 features per sample"),
    ("metrics", {"name": "faithfulness_correlation", "params": {"subset_size": 100000}},
     "metrics[0].params: faithfulness_correlation: parameter 'subset_size' = 100000 is not below the 1024 features"),
    ("metrics", {"name": "continuity", "params": {"steps": 100}},
     "metrics[0].params: continuity: parameter 'steps' = 100 is more than the 2W + 1 = 65 shifts"),
    ("metrics", {"name": "relative_representation_stability", "params": {"layer": "nosuchlayer"}},
     "metrics[0].params: relative_representation_stability: parameter 'layer' = 'nosuchlayer' is not a module"),
    ("metrics", {"name": "relative_representation_stability", "params": {"layer": 3}},
     "metrics[0].params: relative_representation_stability: parameter 'layer' expects a module name"),
    ("metrics", "class_sensitivity", "metrics[0].params: class_sensitivity: parameter 'others' is 'positive'"),
    ("metrics", {"name": "avg_sensitivity", "alias": "sparseness"},
     "metrics[0].alias: 'sparseness' is the name of another metric"),
    ("explainers", {"name": "gradcam", "alias": "random"},  # Grad-CAM's maps under the control's name
     "explainers[0].alias: 'random' is the name of another explainer"),
])
def test_bad_names_and_parameters(tmp_path, capsys, kind, entry, expected):
    code, err, path = run(tmp_path, capsys, with_entry(kind, 0, entry))
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"faithbench: error: {path}: {expected}")
    assert not (tmp_path / "cache").exists()  # refused before anything was computed


def test_metric_limits_refused_by_validate(tmp_path, capsys):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(with_entry("metrics", 0, {"name": "top_k_intersection", "params": {"k": 10**8}})))
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"faithbench: error: {path}: metrics[0].params: top_k_intersection: ")


def test_top_level_key_typo_is_named(tmp_path, capsys):
    suite = {k: v for k, v in GOOD.items() if k != "metrics"} | {"metric": GOOD["metrics"]}
    code, err, path = run(tmp_path, capsys, suite)
    assert code == EXIT_BAD_INPUT
    assert err == f"faithbench: error: {path}: metric: unknown key 'metric'; did you mean 'metrics'?"


def test_metric_that_does_not_apply_is_skipped_not_failed(tmp_path, capsys):
    # a temporal metric on 2D images: a warning at validation and a clean skip in the run, as a missing mask
    code, _, _ = run(tmp_path, capsys, {**GOOD, "metrics": ["temporal_deletion", *GOOD["metrics"]]})
    assert code == 0
    skipped = (tmp_path / "out" / "skipped.csv").read_text()
    assert "temporal_deletion" in skipped and "longitudinal dataset" in skipped


def test_a_suite_of_which_nothing_applies_is_bad_input(tmp_path, capsys, monkeypatch):
    # the only metric is temporal, the only dataset 2D: validation refuses it before anything is trained
    code, err, path = run(tmp_path, capsys, {**GOOD, "metrics": ["temporal_deletion"]})
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"faithbench: error: {path}: metrics: none applies to any dataset, so the run would "
                          "compute nothing (metrics[0] 'temporal_deletion' on dataset 'phantom_cxr': a temporal")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))
    # what validation cannot tell (skipped only at run time) the run says: every (cell, metric) skipped
    import faithbench.metric_checks

    monkeypatch.setattr(faithbench.metric_checks, "_check_something_applies", lambda *args: None)
    code, err, _ = run(tmp_path, capsys, {**GOOD, "metrics": ["temporal_deletion"]})
    assert code == EXIT_BAD_INPUT
    assert err.startswith("faithbench: error: nothing computed: no result row (skipped 1 metric in cells")
    assert err.endswith("exit code 2")
    skipped = (tmp_path / "out" / "skipped.csv").read_text()  # the reason is kept
    assert "temporal_deletion" in skipped and "longitudinal dataset" in skipped


def test_malformed_yaml_names_file_and_line(tmp_path, capsys):
    text = textwrap.dedent("""
        name: broken
        datasets: [phantom_cxr
        models: [small_cnn]
    """)
    code, err, path = run(tmp_path, capsys, text)
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"faithbench: error: {path}: line ") and "malformed YAML" in err


def test_suite_key_of_the_wrong_type(tmp_path, capsys):
    code, err, path = run(tmp_path, capsys, {**GOOD, "samples": "lots"})
    assert code == EXIT_BAD_INPUT and err.startswith(f"faithbench: error: {path}: samples: ")
    code, err, path = run(tmp_path, capsys, {**GOOD, "executor": "dask"})
    assert code == EXIT_BAD_INPUT and "executor: Input should be 'local' or 'ray'" in err


def test_ray_options_with_the_local_executor_are_refused(tmp_path, capsys):
    """A held-out walkthrough: --executor local with --ray-address, --ray-cpus, --gpus-per-task ran
    locally and exited 0, the Ray options dropped without a word."""
    code, err, _ = run(tmp_path, capsys, GOOD, "--executor", "local", "--ray-address", "1.2.3.4:6379",
                       "--gpus-per-task", "1")
    assert code == EXIT_BAD_INPUT and err == ("faithbench: error: --ray-address, --gpus-per-task: Ray options, but "
                                              "the executor is local (--executor local); use --executor ray")
    code, err, _ = run(tmp_path, capsys, GOOD, "--cpus-per-task", "2")  # the suite's executor: local
    assert code == EXIT_BAD_INPUT and "(the suite's executor, local by default)" in err
    assert not (tmp_path / "cache").exists()


def test_an_unreachable_ray_cluster_is_bad_input(tmp_path, capsys, monkeypatch):
    ray = pytest.importorskip("ray")

    def refuse(*args, **kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 1.2.3.4:6379 after 5 attempts.")

    import faithbench.runner.executors as executors

    monkeypatch.setattr(executors, "_check_reachable", lambda address: None)  # a cluster that takes the connection
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    code, err, _ = run(tmp_path, capsys, GOOD, "--ray-address", "1.2.3.4:6379")
    assert code == EXIT_BAD_INPUT
    assert err.startswith("faithbench: error: --ray-address 1.2.3.4:6379: cannot connect to a Ray cluster there "
                          "(Failed to connect to Ray cluster at 1.2.3.4:6379 after 5 attempts.)")


def test_a_ray_address_that_takes_no_connection_is_refused_at_once(tmp_path, capsys, monkeypatch):
    """A review: Ray 2.60 retried an unreachable address for about 14 minutes before its error; a port
    that refuses the connection is bad input before Ray is asked."""
    import socket

    ray = pytest.importorskip("ray")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init called for a refused address"))
    code, err, _ = run(tmp_path, capsys, GOOD, "--ray-address", f"127.0.0.1:{port}")
    assert code == EXIT_BAD_INPUT and err.startswith(f"faithbench: error: --ray-address 127.0.0.1:{port}: cannot "
                                                     "connect to a Ray cluster there (")


class FaultyPhantom(PhantomCXR):
    """phantom_cxr whose sample 5 of the test split is broken (``fault``: mask or file)."""

    def __init__(self, split="test", *, fault="mask", **params):
        super().__init__(split, **params)
        self.fault = fault

    def __getitem__(self, i):
        sample = super().__getitem__(i)
        if self.split != "test" or i != 5:
            return sample
        if self.fault == "file":
            raise FileNotFoundError(f"no such file: images/{sample.id}.png")
        return Sample(sample.id, sample.image, sample.label, {**sample.masks, "lesion": torch.zeros(16, 16, dtype=bool)})


class EmptyPhantom(PhantomCXR):
    def __len__(self):
        return 0 if self.split == "test" else super().__len__()


@pytest.fixture
def faulty_datasets():
    datasets.register("test_faulty_phantom")(FaultyPhantom)
    datasets.register("test_empty_phantom")(EmptyPhantom)
    try:
        yield
    finally:
        datasets.unregister("test_faulty_phantom")
        datasets.unregister("test_empty_phantom")


@pytest.mark.parametrize("fault, expected", [
    ("mask", "mask 'lesion' has shape (16, 16), expected the image's spatial shape (32, 32)"),
    ("file", "no such file: images/test-00005.png"),
])
def test_a_bad_sample_stops_the_run_and_keeps_what_was_computed(tmp_path, capsys, faulty_datasets, fault,
                                                                expected):
    suite = {**GOOD, "datasets": [GOOD["datasets"][0],
                                  {"name": "test_faulty_phantom", "params": {"n": 32, "size": 32, "fault": fault}}]}
    code, err, path = run(tmp_path, capsys, suite)
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"faithbench: error: {path}: dataset 'test_faulty_phantom'")  # the suite file named
    assert expected in err and err.endswith("(finished cells are cached; a rerun resumes)")
    if fault == "mask":
        assert "(test split): sample 'test-00005': mask 'lesion'" in err  # the sample is named by its id
    # the good dataset's cell came first and is in the cache: a rerun of it computes nothing
    code, _, _ = run(tmp_path, capsys, GOOD)
    assert code == 0
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "out2"), "--cache",
                 str(tmp_path / "cache"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "computed 0 checkpoints, 0 saliency batches, 0 score batches" in err
    assert " on cpu; " in err  # helper 129: `device: auto` fell back to the CPU without a word


def test_an_empty_dataset_is_refused_before_training(tmp_path, capsys, faulty_datasets):
    code, err, _ = run(tmp_path, capsys, with_entry("datasets", 0, {"name": "test_empty_phantom",
                                                                    "params": {"n": 32, "size": 32}}))
    assert code == EXIT_BAD_INPUT
    assert err == "faithbench: error: dataset 'test_empty_phantom': the test split is empty"
    assert not (tmp_path / "cache" / "checkpoints").exists()


def test_checkpoint_whose_classes_do_not_match(tmp_path, capsys):
    weights = tmp_path / "three_classes.safetensors"
    save_tensors(weights, build_model("small_cnn", 1, 3, (32, 32), width=4).state_dict())
    code, err, path = run(tmp_path, capsys, with_entry("models", 0, {"name": "small_cnn", "params": {"width": 4},
                                                                     "weights": str(weights)}))
    assert code == EXIT_BAD_INPUT  # found by validation, before anything is trained
    assert err == (f"faithbench: error: {path}: models[0].weights: {weights} does not fit model 'small_cnn' for "
                   f"dataset 'phantom_cxr' (1 channel, 2 classes): shape mismatch: head.weight (3, 16) where the "
                   f"model has (2, 16), head.bias (3,) where the model has (2,)")
    assert not (tmp_path / "cache").exists()


def test_checkpoint_whose_channels_do_not_match(tmp_path, capsys):
    weights = tmp_path / "rgb.safetensors"
    save_tensors(weights, build_model("small_cnn", 3, 2, (32, 32), width=4).state_dict())
    code, err, path = run(tmp_path, capsys, with_entry("models", 0, {"name": "small_cnn", "params": {"width": 4},
                                                                     "weights": str(weights)}))
    assert code == EXIT_BAD_INPUT and err.startswith(f"faithbench: error: {path}: models[0].weights: {weights} ")
    assert err.endswith("(1 channel, 2 classes): shape mismatch: features.0.0.weight (4, 3, 3, 3) where the model "
                        "has (4, 1, 3, 3) (the file's features.0.0.weight takes 3 input channels, the model built "
                        "here 1: build it for 3 (a timm model: params: {in_chans: 3}), give the dataset 3 channels "
                        "where it has that parameter, or pick 3 of the image's channels with preprocess: "
                        "{channels: [...]})")


def test_a_data_root_that_does_not_exist(tmp_path, capsys, monkeypatch):
    if "medmnist" not in datasets:
        pytest.skip("no dataset reads files from the data root yet")
    monkeypatch.setenv("FAITHBENCH_DATA", str(tmp_path / "nowhere"))
    code, err, path = run(tmp_path, capsys, with_entry("datasets", 0, {"name": "medmnist"}))
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"faithbench: error: {path}: datasets[0].params: ")
    assert f"data root {tmp_path / 'nowhere'} (from the environment variable FAITHBENCH_DATA) does not exist" in err


def test_bad_run_options(tmp_path, capsys):
    code, err, _ = run(tmp_path, capsys, GOOD, "--cpus-per-task", "-1")
    assert code == EXIT_BAD_INPUT
    assert err == "faithbench: error: --cpus-per-task: expected a finite number > 0, got -1.0"
    code, err, _ = run(tmp_path, capsys, GOOD, "--executor", "ray", "--cpus-per-task", "0")  # helper 137: no limit
    assert code == EXIT_BAD_INPUT and err == "faithbench: error: --cpus-per-task: expected a finite number > 0, got 0.0"
    code, err, _ = run(tmp_path, capsys, GOOD, "--gpus-per-task", "-0.5")
    assert code == EXIT_BAD_INPUT
    assert err == "faithbench: error: --gpus-per-task: expected a finite number >= 0, got -0.5"


@pytest.mark.parametrize("flag", ["--cpus-per-task", "--gpus-per-task"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_ray_task_resources(tmp_path, capsys, monkeypatch, flag, value):
    """A review: --gpus-per-task nan passed the '< 0' check, started Ray and failed there (exit 1,
    "cannot convert float NaN to integer"); inf started Ray before its error. Now exit 2 before Ray starts."""
    from faithbench.runner import executors

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(executors, "ray_session", no_ray)
    code, err, _ = run(tmp_path, capsys, GOOD, "--executor", "ray", f"{flag}={value}")  # -inf: not an option
    sign = ">" if flag == "--cpus-per-task" else ">="
    assert code == EXIT_BAD_INPUT
    assert err == f"faithbench: error: {flag}: expected a finite number {sign} 0, got {float(value)}"


def test_a_trained_model_needs_the_train_split_of_a_volume_dataset(tmp_path, capsys):
    """A held-out review: volumes listed without a train split passed validate with a recipe, and the
    run stopped at its start; validate now builds the splits training needs where that is cheap."""
    nib = pytest.importorskip("nibabel")
    import numpy as np

    for name in ("a", "b"):
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8)).astype(np.float32), np.eye(4)),
                 tmp_path / f"{name}.nii.gz")
    items = [{"image": str(tmp_path / "a.nii.gz"), "label": 1}, {"image": str(tmp_path / "b.nii.gz"), "label": 0}]
    suite = with_entry("datasets", 0, {"name": "volume", "params": {"items": items}})
    code, err, path = run(tmp_path, capsys, suite)
    assert code == EXIT_BAD_INPUT
    assert err == (f"faithbench: error: {path}: datasets[0] 'volume': a model is trained here (a recipe, or the "
                   "permuted-label twin), which needs its train split: volume: no items in split 'train' (2 items "
                   "in all; items without a 'split' are test items)")
    assert not (tmp_path / "cache").exists()


def test_the_train_split_check_follows_the_pairing_and_optional_datasets(tmp_path):
    """A review of the check above: it refused a test-only volume dataset because a model paired
    with another dataset trained, and an optional dataset whose train files are absent (which the
    run skips)."""
    nib = pytest.importorskip("nibabel")
    import numpy as np

    import faithbench

    for name in ("a", "b"):
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 16)).astype(np.float32), np.eye(4)),
                 tmp_path / f"{name}.nii.gz")
    items = [{"image": str(tmp_path / "a.nii.gz"), "label": 1}, {"image": str(tmp_path / "b.nii.gz"), "label": 0}]
    weights = tmp_path / "w3.pt"
    torch.save(faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(16, 16, 16),
                                       width=4).state_dict(), weights)
    suite = dict(GOOD, datasets=[{"name": "phantom_cxr", "params": {"n": 32, "size": 32}, "models": ["trained"]},
                                 {"name": "volume", "params": {"items": items}, "models": ["fixed3d"]}],
                 models=[dict(GOOD["models"][0], alias="trained"),
                         {"name": "small_cnn", "alias": "fixed3d", "params": {"width": 4}, "weights": str(weights)}])
    faithbench.load_suite(suite)  # the volume model has fixed weights: only the test split is read
    missing = items + [{"image": str(tmp_path / "absent.nii.gz"), "split": "train", "label": 0}]
    optional = dict(GOOD, datasets=[GOOD["datasets"][0],
                                    {"name": "volume", "params": {"items": missing}, "optional": True}])
    faithbench.load_suite(optional)  # the run skips it: "optional dataset not available"
    with pytest.raises(ValueError, match="needs its train split: volume image not found"):
        faithbench.load_suite(dict(optional, datasets=[{"name": "volume", "params": {"items": missing}}]))


class UnopenablePhantom(PhantomCXR):
    """Raises ``error`` (an exception class's name) while building the ``failing`` split."""

    def __init__(self, split="test", *, error="OSError", failing="test", **params):
        if split == failing:
            raise {"OSError": OSError, "RuntimeError": RuntimeError, "KeyError": KeyError, "ImportError": ImportError,
                   "FileNotFoundError": FileNotFoundError}[error](f"cannot open /data/{split}.npz")
        super().__init__(split, **params)


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("error", ["OSError", "RuntimeError", "KeyError", "ImportError", "FileNotFoundError"])
def test_a_dataset_plugin_raising_while_built_names_the_file_and_entry(tmp_path, capsys, command, error):
    """A held-out review: a dataset plugin that could not open its files (OSError), or raised any error but a
    ValueError, was "validate failed: OSError: ..." (exit 1) or "error: no such file" naming no dataset; an
    explainer's is named with its entry (config.validate_plugins)."""
    datasets.register("test_unopenable")(UnopenablePhantom)
    try:
        suite = with_entry("datasets", 0, {"name": "test_unopenable", "params": {"error": error, "n": 32, "size": 32}})
        path = tmp_path / "suite.yaml"
        path.write_text(yaml.safe_dump(suite))
        extra = ["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--quiet"] \
            if command == "run" else []
        code = main([command, str(path), *extra])
        err = capsys.readouterr().err.strip().splitlines()
    finally:
        datasets.unregister("test_unopenable")
    assert code == EXIT_BAD_INPUT
    shown = "'cannot open /data/test.npz'" if error == "KeyError" else "cannot open /data/test.npz"
    assert err == [f"faithbench: error: {path}: datasets[0]: dataset 'test_unopenable' (module:{__name__}) cannot be "
                   f"built: {error}: {shown}"]


class CostlyUnopenablePhantom(UnopenablePhantom):
    cheap_splits = False  # validation builds only its test split


def test_a_dataset_plugin_raising_on_its_train_split_only_names_the_dataset(tmp_path, capsys):
    """The same error where validation does not see it (it builds only the test split of a dataset
    whose splits are costly): the run's preflight names the dataset and the split, exit 2 (was exit 1,
    "run failed"), before anything is trained."""
    datasets.register("test_unopenable")(CostlyUnopenablePhantom)
    try:
        code, err, _ = run(tmp_path, capsys, with_entry("datasets", 0, {
            "name": "test_unopenable", "params": {"error": "RuntimeError", "failing": "train", "n": 32, "size": 32}}))
    finally:
        datasets.unregister("test_unopenable")
    assert code == EXIT_BAD_INPUT
    assert err == ("faithbench: error: dataset 'test_unopenable' (train split): cannot be built: RuntimeError: "
                   "cannot open /data/train.npz")
    assert not (tmp_path / "cache" / "checkpoints").exists()
