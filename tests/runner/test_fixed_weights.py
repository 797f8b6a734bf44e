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
