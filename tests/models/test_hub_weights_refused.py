"""An ``hf-hub:`` or ``local-dir:`` name brings its own pretrained weights, so a ``weights:`` file
beside it is a suite error, as an explicit ``pretrained: true`` with ``weights`` is (a held-out
review: validate said ok, and a local-dir folder's weights were silently replaced by the file)."""

from __future__ import annotations

import pytest
import timm
import yaml

from faithbench.cli import main
from faithbench.store import save_tensors


def _suite(folder, model: dict) -> str:
    suite = {"name": "t", "samples": 4, "batch_size": 4,
             "datasets": [{"name": "phantom_cxr", "params": {"n": 8, "size": 32}}], "models": [model],
             "explainers": ["random"], "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return str(path)


@pytest.fixture
def weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FAITHBENCH_OFFLINE", "1")
    model = timm.create_model("resnet18", pretrained=False, num_classes=2)
    save_tensors(tmp_path / "w.safetensors", model.state_dict())
    return tmp_path


@pytest.mark.parametrize("name", ["hf-hub:timm/resnet18.a1_in1k", "local-dir:ld_r18", "hf-hub:./ld_r18"])
def test_hub_name_with_weights_is_a_suite_error(weights_file, capsys, name):
    path = _suite(weights_file, {"name": name, "weights": "w.safetensors"})
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err.strip()
    prefix = name.partition(":")[0]
    assert err == (f"faithbench: error: {path}: models[0]: model {name!r}: an {prefix}: name brings its own "
                   f"pretrained weights, so give either it or 'weights', not both: drop 'weights', or name the "
                   f"architecture as timm:ARCH with 'weights'")


def test_timm_architecture_with_weights_still_validates(weights_file, capsys):
    path = _suite(weights_file, {"name": "timm:resnet18", "weights": "w.safetensors"})  # auto: 3 channels
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ok")


def test_a_hub_name_with_pretrained_false_may_take_weights(weights_file):
    """``pretrained: false`` builds the named architecture without its weights: a file is no second source
    (a diff review: refused with "brings its own pretrained weights", the entry saying otherwise)."""
    from faithbench.models.checkpoint import ModelSpec

    spec = ModelSpec(name="hf-hub:timm/resnet18.a1_in1k", pretrained=False, weights=str(weights_file / "w.safetensors"))
    assert spec.weights is not None and spec.uses_pretrained is False
    with pytest.raises(ValueError, match="brings its own pretrained weights"):
        ModelSpec(name="hf-hub:timm/resnet18.a1_in1k", weights=str(weights_file / "w.safetensors"))
