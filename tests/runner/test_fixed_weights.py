"""A checkpoint with fixed weights needs only the test split: no train or val split is built."""

import pytest
import torch

import faithbench
from faithbench.store import Cache


def test_fixed_weights_run_on_a_dataset_with_only_a_test_split(tmp_path, test_only_dataset):
    torch.manual_seed(0)
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(32, 32), width=4)
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    suite = {"name": "fixed", "samples": 4, "batch_size": 4, "subset": "positive",
             "datasets": [{"name": test_only_dataset, "params": {"n": 16, "size": 32}}],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(weights)}],
             "explainers": ["saliency", "random"], "metrics": ["pointing_game"]}
    result = faithbench.run(faithbench.load_suite(suite), out_dir=tmp_path / "out", cache=Cache(tmp_path / "c"),
                            progress=False, log=lambda m: None, report=False)
    assert result.status == "ok" and len(result.results) == 8
    assert result.models["origin"].tolist() == [str(weights)]
    # a recipe needs the train split: the same dataset is then bad input, named
    with pytest.raises(Exception, match="train split.*no items in split 'train'"):
        faithbench.run(faithbench.load_suite({**suite, "models": [{"name": "small_cnn", "recipe": {"epochs": 1}}]}),
                       out_dir=tmp_path / "out2", cache=Cache(tmp_path / "c"), progress=False, log=lambda m: None)


def test_a_model_returning_probabilities_is_recorded_in_the_run_folder(tmp_path, monkeypatch):
    """A review: the softmax warning reached the console only; a run folder keeps its numbers, so it keeps the
    warning too (manifest.json's data_warnings, which the report shows)."""
    import json

    (tmp_path / "softnet.py").write_text(
        "from torch import nn\n\n\n"
        "def build(in_chans, num_classes):\n"
        "    return nn.Sequential(nn.Conv2d(in_chans, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(4, num_classes), nn.Softmax(1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import softnet

    torch.manual_seed(0)
    weights = tmp_path / "w.pt"
    torch.save(softnet.build(1, 2).state_dict(), weights)
    suite = {"name": "soft", "samples": 4, "batch_size": 4,
             "datasets": [{"name": "phantom_cxr", "params": {"n": 16, "size": 32}}],
             "models": [{"name": "softnet:build", "weights": str(weights)}],
             "explainers": ["saliency"], "metrics": ["pointing_game"]}
    faithbench.run(faithbench.load_suite(suite), out_dir=tmp_path / "out", cache=Cache(tmp_path / "c"),
                   progress=False, log=lambda m: None, report=False)
    warnings = json.loads((tmp_path / "out" / "manifest.json").read_text())["data_warnings"]
    assert [w for w in warnings if "returns probabilities" in w] == [
        "model 'softnet:build' returns probabilities, not logits (every test output is >= 0 and each row sums to 1: "
        "a final softmax): the metrics apply softmax to the model's outputs, so every probability they read is "
        "squashed; return the logits (drop the final softmax)"]
