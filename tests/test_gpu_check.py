"""benchmarks/perf/gpu_check.py's CPU half (review gpuread F1: its CUDA run retrained every recipe model, since
a recipe checkpoint trained off the CPU is keyed by its device type, and compared two different models).
The check now exports the CPU run's checkpoints as weights files and runs both devices on suites whose
models load them; here: the rewriting, the weights file's key on two device types, and that the rewritten
suite gives the trained run's numbers on the CPU."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import faithbench
from faithbench.models import checkpoint as ck
from faithbench.store import Cache

ROOT = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "perf" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = {"name": "tiny_gpu", "samples": 4, "batch_size": 4, "seeds": [0, 1], "reliability": 0,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}},
                     {"name": "phantom_cxr", "alias": "shortcut", "params": {"n": 32, "size": 32, "shortcut": 0.9},
                      "models": ["cnn"]}],
        "models": [{"name": "small_cnn", "alias": "cnn", "params": {"width": 4}, "recipe": {"epochs": 1}},
                   {"name": "small_cnn", "alias": "cnn2", "params": {"width": 2}, "recipe": {"epochs": 1}}],
        "explainers": ["saliency", "random"], "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}


def _checkpoints(cache: Cache, suite) -> pd.DataFrame:
    """models.csv rows naming a distinct checkpoint per (dataset, model, seed), stored in ``cache``."""
    rows = []
    for i, (dataset, model, seed) in enumerate([("phantom_cxr", "cnn", 0), ("phantom_cxr", "cnn", 1),
                                                ("phantom_cxr", "cnn2", 0), ("phantom_cxr", "cnn2", 1),
                                                ("shortcut", "cnn", 0), ("shortcut", "cnn", 1)]):
        key = f"key{i}"
        cache.put_tensors("checkpoints", key, {"w": torch.full((2, 3), float(i)), "b": torch.arange(3.0)})
        rows.append({"dataset": dataset, "model": model, "seed": seed, "checkpoint": key})
    return pd.DataFrame(rows)


def test_each_dataset_and_seed_gets_a_suite_whose_models_load_the_trained_checkpoints(tmp_path):
    gpu_check = _gpu_check()
    suite = faithbench.load_suite(TINY)
    cache = Cache(tmp_path / "cache")
    suites = gpu_check.weights_suites(suite, _checkpoints(cache, suite), cache, tmp_path / "weights")
    assert sorted(suites) == ["tiny_gpu__phantom_cxr__seed0", "tiny_gpu__phantom_cxr__seed1",
                              "tiny_gpu__shortcut__seed0", "tiny_gpu__shortcut__seed1"]
    shortcut = suites["tiny_gpu__shortcut__seed1"]
    assert shortcut["seeds"] == [1] and [d.get("alias") for d in shortcut["datasets"]] == ["shortcut"]
    assert [m["alias"] for m in shortcut["models"]] == ["cnn"]  # the dataset pairs with cnn only
    model = shortcut["models"][0]
    assert "recipe" not in model and model["params"] == {"width": 4}
    from safetensors.torch import load_file
    assert torch.equal(load_file(model["weights"])["w"], torch.full((2, 3), 5.0))  # key5: shortcut, cnn, seed 1
    plain = suites["tiny_gpu__phantom_cxr__seed0"]
    assert [m["alias"] for m in plain["models"]] == ["cnn", "cnn2"]
    assert torch.equal(load_file(plain["models"][1]["weights"])["w"], torch.full((2, 3), 2.0))
    assert yaml.safe_load(yaml.safe_dump(shortcut)) == shortcut  # written as YAML for the CLI as it is


def test_a_checkpoint_missing_from_the_cache_is_named(tmp_path):
    gpu_check = _gpu_check()
    suite = faithbench.load_suite(TINY)
    cache = Cache(tmp_path / "cache")
    models = _checkpoints(cache, suite)
    with pytest.raises(SystemExit, match=r"no trained checkpoint of 'cnn2' on 'phantom_cxr' \(seed 1\)"):
        gpu_check.weights_suites(suite, models.drop(index=3), cache, tmp_path / "weights")


@pytest.mark.filterwarnings("ignore:.*meta parameter")
def test_a_weights_file_model_has_the_same_key_on_the_cpu_and_another_device(tmp_path, monkeypatch):
    """What the check relies on: a recipe checkpoint's key holds the device type ('meta' takes the branch
    'cuda' takes), a weights file's does not."""
    test = faithbench.create_dataset("phantom_cxr", "test", n=32, size=32)
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(32, 32), width=4)
    from safetensors.torch import save_file
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    monkeypatch.setattr(ck, "evaluate_model", lambda *a, **k: {})  # no forward pass on 'meta'
    keys = {}
    for device in ("cpu", "meta"):
        spec = ck.ModelSpec(name="small_cnn", params={"width": 4}, weights=str(tmp_path / "w.safetensors"))
        keys[device] = ck.load_checkpoint(spec, test, test, test, 0, Cache(tmp_path / "c"), device=device).key
    assert keys["cpu"] == keys["meta"]
    monkeypatch.setattr(ck, "_train_or_read", lambda spec, model, key, *a: key)  # the key it would look up
    spec = ck.ModelSpec(name="small_cnn", params={"width": 4}, recipe={"epochs": 1})
    recipe = {device: ck.load_checkpoint(spec, test, test, test, 0, Cache(tmp_path / "c"), device=device)
              for device in ("cpu", "meta")}
    assert recipe["cpu"] != recipe["meta"]  # why the copied CPU checkpoints were never read on CUDA


def test_the_weights_suites_give_the_trained_runs_numbers_on_the_cpu(tmp_path):
    """The exported weights are the trained model: the rewritten suite's CPU rows equal the training run's."""
    gpu_check = _gpu_check()
    one = {**TINY, "seeds": [0], "datasets": TINY["datasets"][:1], "models": TINY["models"][:1]}
    suite = faithbench.load_suite(one)
    trained = faithbench.run(suite, out_dir=tmp_path / "train", cache=Cache(tmp_path / "cache_train"),
                             device="cpu", progress=False, log=lambda m: None, report=False)
    suites = gpu_check.weights_suites(suite, trained.models, Cache(tmp_path / "cache_train"), tmp_path / "weights")
    (name, data), = suites.items()
    again = faithbench.run(faithbench.load_suite(data), out_dir=tmp_path / "w", cache=Cache(tmp_path / "cache_w"),
                           device="cpu", progress=False, log=lambda m: None, report=False)
    assert again.models["origin"].str.endswith(".safetensors").all()  # loaded, not trained
    keys = ["dataset", "model", "explainer", "metric", "seed", "sample_id"]
    both = trained.results.merge(again.results, on=keys, suffixes=("_trained", "_weights"))
    assert len(both) == len(trained.results) == len(again.results) > 0
    assert (both["value_trained"] - both["value_weights"]).abs().max() == 0.0
