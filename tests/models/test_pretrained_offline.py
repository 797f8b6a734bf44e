"""Offline, a pretrained entry whose weights are not cached stops the run at once: exit code 2,
one line naming the model and how to provide the weights, nothing trained. The seeds' built-in
suites validate offline."""

from __future__ import annotations

import pytest
import yaml

from faithbench.cli import main
from faithbench.config import load_suite
from faithbench.datasets.phantoms import PhantomCXR
from faithbench.models.checkpoint import ModelSpec, load_checkpoint
from faithbench.models.factory import check_pretrained_available
from faithbench.models.hub import PretrainedUnavailableError
from faithbench.store import Cache


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty Hugging Face and torch hub caches, offline."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


@pytest.mark.parametrize("name, expected", [
    ("timm:resnet18", "pretrained weights hf-hub timm/resnet18.a1_in1k"),
    ("timm:vit_base_patch16_224.dino", "pretrained weights hf-hub timm/vit_base_patch16_224.dino"),
    ("torchvision:alexnet", "pretrained weights AlexNet_Weights.IMAGENET1K_V1"),
    ("hf-hub:timm/resnet50.a1_in1k", "pretrained weights hf-hub timm/resnet50.a1_in1k"),
])
def test_offline_error_names_model_and_remedy(empty_caches, name, expected):
    spec = ModelSpec.model_validate({"name": name, "pretrained": True, "replace_head": True, "recipe": "default"})
    with pytest.raises(PretrainedUnavailableError) as info:
        check_pretrained_available(spec)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"model {name!r}: {expected}")
    assert "offline" in message and "pre-fill" in message
    assert "weights:" not in message  # with a recipe and replace_head, weights: would be a suite error (a review)
    assert ("local-dir:<folder>" in message) == (not name.startswith("torchvision:"))  # timm format only
    splits = [PhantomCXR(s, n=4, size=32) for s in ("train", "val", "test")]
    with pytest.raises(PretrainedUnavailableError):  # loading raises it before building or training
        load_checkpoint(spec, *splits, seed=0, cache=Cache(empty_caches / "cache"))


FOLDER = (", or where there is a network save it with timm.models.save_for_hf(model, '<folder>', "
          "safe_serialization=True) and name the entry 'local-dir:<folder>' (the offline twin of hf-hub:)")
REPLACE = ", or replace 'pretrained: true' with 'weights: <file.safetensors>' (a local weights file)"


@pytest.mark.parametrize("entry, advice", [
    ({"name": "hf-hub:timm/resnet18.a1_in1k"},
     FOLDER + ", or name the architecture 'timm:<arch>' with 'weights: <file.safetensors>' (a local weights file)"),
    ({"name": "hf-hub:timm/resnet18.a1_in1k", "replace_head": True, "recipe": {"linear_probe": True}}, FOLDER),
    ({"name": "timm:resnet18", "pretrained": True}, FOLDER + REPLACE),
    ({"name": "timm:resnet18", "pretrained": True, "recipe": "default"}, FOLDER),
    ({"name": "torchvision:alexnet", "pretrained": True}, REPLACE),
    ({"name": "torchvision:alexnet", "pretrained": True, "replace_head": True, "recipe": "default"}, ""),
])
def test_offline_advice_fits_the_entry(empty_caches, monkeypatch, entry, advice):
    """weights: only where the entry may have one (no recipe, no replace_head; under an hf-hub: name, for a
    timm: architecture); local-dir: for timm networks (a review: an entry with a recipe was told to add
    weights:, a suite error, and hf-hub: names were never told of local-dir:)."""
    monkeypatch.setenv("FAITHBENCH_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailableError) as info:
        check_pretrained_available(ModelSpec.model_validate(entry))
    message = str(info.value)
    assert "\n" not in message and message.endswith(" and copy it here" + advice)


def test_online_the_check_leaves_it_to_the_download(empty_caches, monkeypatch):
    spec = ModelSpec.model_validate({"name": "timm:resnet18", "pretrained": True})
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("FAITHBENCH_OFFLINE", "0")
    check_pretrained_available(spec)  # online: the download is tried when the model is built


def test_run_stops_at_once_with_exit_2(empty_caches, capsys):
    suite = {"name": "byo", "samples": 4, "batch_size": 4,
             "datasets": [{"name": "phantom_cxr", "params": {"n": 8, "size": 32}}],
             "models": [{"name": "timm:resnet18", "pretrained": True, "replace_head": True,
                         "recipe": {"linear_probe": True, "epochs": 1}}],
             "explainers": ["gradcam"], "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}
    path = empty_caches / "byo.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    cache = empty_caches / "cache"
    code = main(["run", str(path), "--out", str(empty_caches / "out"), "--cache", str(cache), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("faithbench: error: model 'timm:resnet18': pretrained weights")
    assert not list(cache.rglob("*.safetensors"))  # nothing trained


@pytest.mark.parametrize("suite", ["attention_vit", "linear_probe", "retina_alexnet"])
def test_seed_suites_validate_offline(suite):
    loaded = load_suite(suite)
    names = {m.name for m in loaded.models}
    expected = {"attention_vit": {"timm:vit_base_patch16_224", "timm:vit_base_patch16_224.dino",
                                  "timm:vit_base_patch16_224.mae"},
                "linear_probe": {"timm:resnet18", "timm:vit_base_patch16_224"},
                "retina_alexnet": {"torchvision:alexnet"}}[suite]
    assert names == expected
    if suite == "attention_vit":
        assert [m.uses_pretrained for m in loaded.models] == [True, True, True, False]
        assert {e.name for e in loaded.explainers} == {"attention", "gradcam", "chefer", "random"}
    if suite == "linear_probe":
        assert all(m.recipe.linear_probe and m.replace_head for m in loaded.models)


def test_a_monai_network_whose_download_fails_gets_one_line(monkeypatch):
    """``monai:`` with ``params: {pretrained: true}``: MONAI downloads torchvision's weights in its
    constructor; a failed download is the one-line error with advice (a diff review: the raw urlopen
    error, no advice)."""
    import urllib.error

    import monai.networks.nets.densenet as densenet

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(densenet, "load_state_dict_from_url", no_network)  # imported by name there
    spec = ModelSpec(name="monai:DenseNet121", params={"spatial_dims": 2, "pretrained": True}, recipe={"epochs": 1})
    from faithbench.models.factory import build_network

    with pytest.raises(PretrainedUnavailableError) as caught:
        build_network(spec, 1, 2, (32, 32))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("model 'monai:DenseNet121': pretrained weights of "
                                                      "monai:DenseNet121 are not available (download failed: URLError")
    assert message.endswith("copy it here, or drop pretrained from params (random init)")
