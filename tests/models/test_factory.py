"""Bring your own model: every ``name:`` form, heads, the input transform, and weights files.

Random-init networks only (no hub here); tiny inputs. The hub-format form is tested on a folder
written by timm's own ``save_for_hf``."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

from faithbench.config import SuiteError, suite_from_dict
from faithbench.datasets.phantoms import PhantomCXR
from faithbench.models.checkpoint import ModelSpec, build_for_dataset, load_checkpoint
from faithbench.models.errors import CheckpointError
from faithbench.models.factory import classifier_outputs, parse_model_name, replace_classifier
from faithbench.store import Cache, save_tensors

SUITE = {"name": "t", "datasets": [{"name": "phantom_cxr", "params": {"n": 4, "size": 32}}],
         "explainers": ["gradcam"], "metrics": ["deletion_auc"]}


def spec(**kw) -> ModelSpec:
    return ModelSpec.model_validate(kw)


def test_parse_names():
    assert parse_model_name("resnet18").source == "builtin"
    got = {n: (parse_model_name(n).source, parse_model_name(n).target) for n in
           ("timm:densenet121", "torchvision:alexnet", "monai:DenseNet121", "hf-hub:timm/resnet50.a1_in1k",
            "hf-hub:/tmp/x", "local-dir:./x", "my_pkg.models:build_net")}
    assert got == {"timm:densenet121": ("timm", "densenet121"), "torchvision:alexnet": ("torchvision", "alexnet"),
                   "monai:DenseNet121": ("monai", "DenseNet121"),
                   "hf-hub:timm/resnet50.a1_in1k": ("hf-hub", "timm/resnet50.a1_in1k"),
                   "hf-hub:/tmp/x": ("local-dir", "/tmp/x"), "local-dir:./x": ("local-dir", "./x"),
                   "my_pkg.models:build_net": ("module", "my_pkg.models:build_net")}
    with pytest.raises(ValueError, match="expected a built-in name, one of the prefixes"):
        parse_model_name("foo bar:baz")


def test_entry_needs_a_weights_source():
    with pytest.raises(SuiteError, match=r"models\[0\]: model 'resnet18': no weights source.*recipe: default"):
        suite_from_dict({**SUITE, "models": [{"name": "resnet18"}]})
    ok = suite_from_dict({**SUITE, "models": [{"name": "resnet18", "recipe": "default"}]})
    assert ok.models[0].recipe.epochs == 4  # the default recipe, as asked
    assert spec(name="hf-hub:timm/resnet50.a1_in1k").uses_pretrained  # a hub repo brings its weights
    with pytest.raises(ValueError, match="replace_head: true leaves an untrained head"):
        spec(name="timm:resnet18", pretrained=True, replace_head=True)
    # a held-out review: weights + replace_head asked for a recipe, weights + recipe refused the recipe
    for extra in ({"replace_head": True}, {"replace_head": True, "recipe": "default"}, {"recipe": "default"}):
        with pytest.raises(ValueError, match=r"a weights file is used as it is, never trained further \(to "
                                             r"fine-tune or re-head your own timm weights, .*local-dir:FOLDER"):
            spec(name="timm:resnet18", weights="w.safetensors", **extra)
    # the three traps: each now a one-line suite error that says what to write
    with pytest.raises(ValueError, match=r"'pretrained' is a key of the entry.*\{name: 'timm:resnet18', pretrained: true\}"):
        spec(name="resnet18", params={"pretrained": True}, recipe="default")
    with pytest.raises(ValueError, match=r"built-ins have no hub weights.*'timm:resnet18'"):
        spec(name="resnet18", pretrained=True, recipe="default")
    with pytest.raises(ValueError, match=r"weights: 'hf-hub:timm/resnet50.a1_in1k' is a model name"):
        spec(name="timm:resnet50", weights="hf-hub:timm/resnet50.a1_in1k")


def test_validation_names_unknown_models():
    def err(entry):
        with pytest.raises(SuiteError) as info:
            suite_from_dict({**SUITE, "models": [entry]})
        return str(info.value)

    assert "unknown timm model 'densnet121'; did you mean 'densenet121'" in err(
        {"name": "timm:densnet121", "pretrained": True})
    assert "has no pretrained tag 'foo'" in err({"name": "timm:resnet18.foo", "pretrained": True})
    assert "unknown torchvision model 'alexnett'; did you mean 'alexnet'" in err(
        {"name": "torchvision:alexnett", "recipe": "default"})
    assert "unknown MONAI network 'DenseNet12'" in err({"name": "monai:DenseNet12", "recipe": "default"})
    assert "for 'monai:DenseNet121' give weights" in err({"name": "monai:DenseNet121", "pretrained": True})
    # DenseNet121(..., **kwargs) passes them to DenseNet: the build's TypeError names the close match
    assert ("got an unexpected keyword argument 'spatial_dim' (did you mean 'spatial_dims'?)") in err(
        {"name": "monai:DenseNet121", "recipe": "default",
         "params": {"spatial_dim": 3, "in_channels": 1, "out_channels": 2}})
    # TorchVisionFCModel passes its **kwargs to the torchvision builder, not its parent: not refused (a diff review)
    message = err({"name": "monai:TorchVisionFCModel", "recipe": "default",
                   "params": {"model_name": "resnet18", "num_classes": 2, "zero_init_residual": True}})
    assert "zero_init_residual" not in message and "its first convolution takes 3 channels" in message  # built
    for name in ("timm:densenet121", "timm:vit_base_patch16_224.dino", "hf-hub:timm/resnet50.a1_in1k"):
        suite_from_dict({**SUITE, "models": [{"name": name, "pretrained": True, "replace_head": True,
                                              "recipe": {"linear_probe": True}}]})  # offline: validates


def test_timm_random_init_takes_dataset_shape():
    model, info = build_for_dataset(spec(name="timm:resnet18", recipe="default"), 1, 3, (32, 32))
    assert model.conv1.in_channels == 1 and model.fc.out_features == 3
    assert info["input"] is None and not hasattr(model, "input_transform")  # nothing in front: trained here
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 3)
    kept = spec(name="timm:resnet18", params={"num_classes": 5, "in_chans": 2}, recipe="default")
    model, _ = build_for_dataset(kept, 1, 3, (32, 32))
    assert model.conv1.in_channels == 2 and model.fc.out_features == 5  # params win over the dataset


def test_torchvision_alexnet_head_and_replication():
    torch.manual_seed(0)
    model, info = build_for_dataset(spec(name="torchvision:alexnet", recipe="default"), 1, 2, (64, 64))
    assert classifier_outputs(model) == 2 and model.features[0].in_channels == 3
    assert info["input"]["in_chans"] == 3 and info["input"]["mean"] is None  # replication only
    replace_classifier(model, 5)  # what replace_head does to a non-timm network: its last Linear
    assert classifier_outputs(model) == 5 and tuple(model.classifier[6].weight.shape) == (5, 4096)
    x = torch.rand(1, 1, 64, 64)
    model.eval()  # dropout
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.expand(-1, 3, -1, -1)))


def test_torchvision_weights_file_uses_the_architecture_input_config(tmp_path):
    entry = spec(name="torchvision:alexnet", weights=str(tmp_path / "a.safetensors"),
                 preprocess={"channels": [1], "size": [64, 64]})
    model, info = build_for_dataset(entry, 3, 2, (32, 32))
    assert info["input"]["mean"] == [0.485, 0.456, 0.406] and info["input"]["size"] == [64, 64]
    assert info["input"]["channels"] == [1] and "torchvision AlexNet_Weights.IMAGENET1K_V1" in info["input"]["source"]
    x = torch.rand(1, 3, 32, 32)
    green = x[:, 1:2].expand(-1, 3, -1, -1)
    green = torch.nn.functional.interpolate(green, size=(64, 64), mode="bilinear", align_corners=False)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(model.input_transform(x), (green - mean) / std, atol=1e-6)


def test_a_timm_vit_built_for_its_size_from_a_weights_file_takes_that_size(tmp_path):
    """A held-out review: `img_size: 64` with a weights file kept the pretrained_cfg's 224 in front of the
    network, and validation failed with "Input height (224) doesn't match model (64)"."""
    entry = spec(name="timm:vit_tiny_patch16_224", params={"img_size": 64, "in_chans": 1, "depth": 1},
                 weights=str(tmp_path / "v.safetensors"))
    model, info = build_for_dataset(entry, 1, 2, (64, 64))
    assert info["input"]["size"] == [64, 64] and info["input"]["source"].endswith("size: img_size [64, 64]")
    assert info["input"]["mean"] == [0.5] and model(torch.rand(2, 1, 64, 64)).shape == (2, 2)  # cfg's mean kept
    _, info = build_for_dataset(spec(name="timm:vit_tiny_patch16_224", params={"in_chans": 1, "depth": 1},
                                     weights=str(tmp_path / "v.safetensors")), 1, 2, (64, 64))
    assert info["input"]["size"] == [224, 224]  # built at its cfg's size: resized to it, as before


def test_monai_densenet_3d():
    entry = spec(name="monai:DenseNet121", params={"init_features": 4, "growth_rate": 4, "block_config": [1, 1, 1, 1]},
                 recipe="default")
    model, info = build_for_dataset(entry, 1, 2, (32, 32, 32))
    assert info["input"] is None and model.spatial_dims == 3 and model.arch_family == "cnn"
    assert model(torch.rand(2, 1, 32, 32, 32)).shape == (2, 2)


def test_own_module(tmp_path, monkeypatch):
    (tmp_path / "my_pkg_fb").mkdir()
    (tmp_path / "my_pkg_fb" / "__init__.py").write_text("")
    (tmp_path / "my_pkg_fb" / "models.py").write_text(textwrap.dedent("""
        from torch import nn
        def build_net(in_chans, num_classes, width=4):
            return nn.Sequential(nn.Conv2d(in_chans, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(width, num_classes))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    weights = tmp_path / "mine.safetensors"
    torch.manual_seed(1)
    reference = nn.Sequential(nn.Conv2d(1, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
    save_tensors(weights, reference.state_dict())
    entry = {"name": "my_pkg_fb.models:build_net", "params": {"width": 6}, "weights": str(weights)}
    suite_from_dict({**SUITE, "models": [entry]})
    with pytest.raises(SuiteError, match="unknown parameter 'widht'"):
        suite_from_dict({**SUITE, "models": [{**entry, "params": {"widht": 6}}]})
    splits = [PhantomCXR(s, n=8, size=32) for s in ("train", "val", "test")]
    ckpt = load_checkpoint(spec(**entry), *splits, seed=0, cache=Cache(tmp_path / "cache"))
    x = splits[2].tensors()[0][:3]
    assert ckpt.origin == str(weights) and torch.equal(ckpt.model(x), reference(x))
    sys.modules.pop("my_pkg_fb.models", None)
    sys.modules.pop("my_pkg_fb", None)


def _hub_folder(tmp_path):
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=3, in_chans=3)
    net.pretrained_cfg = {**net.pretrained_cfg, "input_size": (3, 40, 40), "mean": (0.5, 0.4, 0.3),
                          "std": (0.2, 0.25, 0.3), "interpolation": "bilinear"}
    folder = tmp_path / "hubmodel"
    save_for_hf(net, str(folder), safe_serialization=True)
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    return net.eval(), folder


def test_local_hub_folder_loads_offline_with_its_input_config(tmp_path):
    net, folder = _hub_folder(tmp_path)
    splits = [PhantomCXR(s, n=6, size=32) for s in ("train", "val", "test")]
    for name in (f"local-dir:{folder}", f"hf-hub:{folder}"):
        entry = {"name": name, "replace_head": True, "recipe": {"epochs": 1}}
        suite_from_dict({**SUITE, "models": [{"name": name}]})  # weights implied by the folder
        with pytest.raises(CheckpointError, match=r"head has 3 outputs, the dataset has 2 classes; set replace_head"):
            load_checkpoint(spec(name=name), *splits, seed=0, cache=Cache(tmp_path / "c"))
        model, info = build_for_dataset(spec(**entry), 1, 3, (32, 32))  # 3 classes: the folder's head kept
        record = info["input"]
        assert record["size"] == [40, 40] and record["mean"] == [0.5, 0.4, 0.3] and record["in_chans"] == 3
        x = torch.rand(2, 1, 32, 32)
        expected = torch.nn.functional.interpolate(x.expand(-1, 3, -1, -1), size=(40, 40), mode="bilinear",
                                                   align_corners=False)
        expected = (expected - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
        with torch.no_grad():
            assert torch.allclose(model.eval()(x), net(expected), atol=1e-5)  # the saved weights, preprocessed
        assert set(model.state_dict()) == set(net.state_dict())  # the transform adds no weights
        model, _ = build_for_dataset(spec(**entry), 1, 2, (32, 32))
        assert model.fc.out_features == 2  # replaced
        assert torch.equal(model.layer1[0].conv1.weight, net.layer1[0].conv1.weight)


def test_pretrained_head_of_wrong_size_is_one_line_error_and_checkpoint_records_input(tmp_path):
    _net, folder = _hub_folder(tmp_path)
    splits = [PhantomCXR(s, n=6, size=32) for s in ("train", "val", "test")]
    entry = spec(name=f"local-dir:{folder}", replace_head=True, recipe={"epochs": 1, "linear_probe": True})
    ckpt = load_checkpoint(entry, *splits, seed=0, cache=Cache(tmp_path / "c"))
    assert ckpt.origin == "trained" and ckpt.info["input"]["size"] == [40, 40]
    assert ckpt.info["input"]["source"] == "timm pretrained_cfg"
    again = load_checkpoint(entry, *splits, seed=0, cache=Cache(tmp_path / "c"))
    x = splits[2].tensors()[0][:2]
    assert again.origin == "cache" and torch.equal(again.model(x), ckpt.model(x))


def test_cam_layer_names_resolve_through_the_transform(tmp_path):
    from faithbench.explainers.cam import GradCAMExplainer

    _net, folder = _hub_folder(tmp_path)
    model, _ = build_for_dataset(spec(name=f"local-dir:{folder}", replace_head=True, recipe="default"), 1, 2, (32, 32))
    model.eval()
    x = torch.rand(2, 1, 32, 32)
    for layer in ("layer4", None):
        cam = GradCAMExplainer(target_layer=layer) if layer else GradCAMExplainer()
        saliency = cam(model, x, torch.tensor([0, 1]))
        assert saliency.shape == (2, 32, 32) and saliency.abs().sum() > 0
        # the auto-selected layer is the network's, never the transform (its output is not a feature map)
        assert cam.last_info["target_layer"] != "input_transform"


def test_vit_explainers_run_through_the_resize(tmp_path):
    """A timm ViT has a fixed input size: a 32 px dataset is resized to its 224 px in front of it, and
    attention, Chefer and Grad-CAM (blocks.-1.norm1) still find its blocks; maps come back at 32 px."""
    entry = spec(name="timm:vit_tiny_patch16_224", params={"depth": 2}, recipe="default")
    model, info = build_for_dataset(entry, 1, 2, (32, 32))
    assert info["input"]["size"] == [224, 224] and info["input"]["mean"] is None and model.arch_family == "vit"
    model.eval()
    x = torch.rand(2, 1, 32, 32)
    assert model(x).shape == (2, 2)
    from faithbench.registry import explainers

    for name in ("attention", "chefer", "gradcam"):
        saliency = explainers.get(name)()(model, x, torch.tensor([0, 1]))
        assert saliency.shape == (2, 32, 32) and torch.isfinite(saliency).all() and saliency.std() > 0, name


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("side", [28, 300])
def test_input_transform_resizes_as_pil(interpolation, side):
    """A held-out review: enlarging by bicubic used torch's plain kernel (a = -0.75), 0.085 off PIL's
    (a = -0.5) on a noise image 28 -> 224; both directions now agree with PIL's float resize."""
    import numpy as np
    from PIL import Image

    from faithbench.models.preprocess import InputConfig, InputTransform

    image = np.random.default_rng(0).random((side, side), dtype=np.float32)
    pil = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[interpolation]
    expected = np.asarray(Image.fromarray(image, mode="F").resize((224, 224), pil))
    got = InputTransform(InputConfig(in_chans=1, size=(224, 224), interpolation=interpolation))(
        torch.from_numpy(image)[None, None])[0, 0].numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_your_builders_code_is_in_the_checkpoint_key(tmp_path, monkeypatch):
    """A held-out review edited its ``pkg.module:callable`` builder: models.csv showed the new model's
    accuracy beside the old model's cached maps and scores. The builder's source (and its local
    helpers) is now part of the checkpoint key; faithbench's own models keep their keys."""
    import importlib

    from faithbench.configurable import package_version

    (tmp_path / "fb_builder_k.py").write_text(
        "from torch import nn\ndef build(in_chans, num_classes):\n    return nn.Conv2d(in_chans, num_classes, 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("fb_builder_k")
    spec = ModelSpec(name="fb_builder_k:build", recipe={"epochs": 1})
    try:
        package_version.cache_clear()
        before = spec.key_extras()
        assert before and before[0]["builder"].startswith("source:")
        (tmp_path / "fb_builder_k.py").write_text(
            "from torch import nn\ndef build(in_chans, num_classes):\n    return nn.Conv2d(in_chans, num_classes, 3)\n")
        package_version.cache_clear()
        assert spec.key_extras() != before
    finally:
        package_version.cache_clear()
    assert ModelSpec(name="small_cnn", recipe={"epochs": 1}).key_extras() == []
    assert ModelSpec(name="timm:resnet18", recipe={"epochs": 1}).key_extras() == []


def test_preprocess_on_a_sequential_network_runs_on_the_image_only():
    """A review: small_cnn is an nn.Sequential, so the transform added as a child became its last layer and
    ran again on the logits (any preprocess: on small_cnn was refused, 'the image has 2' channels: the classes)."""
    torch.manual_seed(0)
    plain, _ = build_for_dataset(spec(name="small_cnn", params={"width": 4}, recipe="default"), 1, 2, (32, 32))
    entry = spec(name="small_cnn", params={"width": 4}, recipe="default", preprocess={"mean": [0.5], "std": [0.25]})
    model, info = build_for_dataset(entry, 1, 2, (32, 32))
    assert info["input"]["mean"] == [0.5]
    assert isinstance(model, nn.Sequential) and all(m is not model.input_transform for m in model)
    model.load_state_dict(plain.state_dict())  # same keys: the transform holds no state
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), plain.eval()((x - 0.5) / 0.25), atol=1e-6)
    from faithbench.explainers.layers import find_target_layer

    assert find_target_layer(model, x)[0] == find_target_layer(plain, x)[0] != "input_transform"


def test_monai_networks_do_not_download_their_default_weights():
    """A review: MONAI's EfficientNetBN loads ImageNet weights by default, so validate tried a download even
    offline, and params: {pretrained: false} was refused with a message to write pretrained: true."""
    entry = spec(name="monai:EfficientNetBN", params={"model_name": "efficientnet-b0", "spatial_dims": 2},
                 recipe="default")
    with torch.device("meta"):
        model, _ = build_for_dataset(entry, 1, 2, (32, 32))  # no download: faithbench passes pretrained=False
    assert classifier_outputs(model) == 2
    assert entry.key_extras() == [{"monai_pretrained": False}]  # checkpoints cached with MONAI's default retrain
    assert spec(name="monai:DenseNet121", recipe="default").key_extras() == []  # its default was False already
    spec(name="monai:EfficientNetBN", params={"model_name": "efficientnet-b0", "pretrained": False}, recipe="default")
    with pytest.raises(ValueError, match=r"'pretrained' is a key of the entry, not a parameter: write "
                                         r"\{name: 'timm:resnet18', pretrained: false\}"):
        spec(name="timm:resnet18", params={"pretrained": False}, recipe="default")


def test_a_registered_builder_that_returns_no_module_is_named_with_what_it_returned():
    """A held-out review: a builder returning a function gave "'function' object has no attribute
    'named_modules'", not that it must return a torch.nn.Module."""
    from faithbench.registry import models

    models.register("test_not_a_module")(lambda in_chans, num_classes, input_size: (lambda x: x))
    try:
        with pytest.raises(SuiteError, match=r"models\[0\]: cannot build 'test_not_a_module' for dataset 'phantom_cxr' "
                                             r"\(1 channel, size \(32, 32\)\): model 'test_not_a_module': its builder "
                                             rf"\(module:{__name__}\) returned function, expected a torch\.nn\.Module"):
            suite_from_dict({**SUITE, "models": [{"name": "test_not_a_module", "recipe": "default"}]})
    finally:
        models.unregister("test_not_a_module")
