"""Awkward real-world weights files and networks (held-out review ownmodels7, F1-F6): files without BatchNorm's
step counters, the error class of unusable weights, a network the meta device cannot run that returns a tuple,
a Lightning checkpoint with pickled hyper-parameters, wrapper prefixes, and a builder that ignores num_classes."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import faithbench
from faithbench.cli import main
from faithbench.config import SuiteError
from faithbench.models import CheckpointError, ModelSpec, build_model, load_checkpoint
from faithbench.models.checkpoint import load_weights_file
from faithbench.models.errors import weights_mismatch
from faithbench.store import Cache, save_tensors

NETS = """
    import torch
    from torch import nn


    class BNNet(nn.Module):
        def __init__(self, in_chans, num_classes, out="tensor", classes=None):
            super().__init__()
            self.conv1 = nn.Conv2d(in_chans, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.head = nn.Linear(4, classes or num_classes)
            self.out = out

        def forward(self, x):
            z = self.head(torch.relu(self.bn1(self.conv1(x))).amax((2, 3)))
            return (z, x.mean()) if self.out == "tuple" else z


    class ItemNet(BNNet):
        def forward(self, x):  # Tensor.item(): the meta device cannot run it, so validate cannot tell
            float(x.sum().item())
            return super().forward(x)


    def bn_net(in_chans, num_classes, *, classes=None):
        return BNNet(in_chans, num_classes, classes=classes)


    def item_net(in_chans, num_classes, *, out="tuple"):
        return ItemNet(in_chans, num_classes, out=out)
"""


@pytest.fixture
def nets(tmp_path, monkeypatch):
    (tmp_path / "awkward_nets.py").write_text(textwrap.dedent(NETS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "awkward_nets", raising=False)
    import awkward_nets

    return awkward_nets


def _suite(model: dict, **extra) -> dict:
    return {"name": "own", "samples": 4, "batch_size": 4, "reliability": 0,
            "datasets": [{"name": "phantom_cxr", "params": {"n": 16, "size": 32}}],
            "models": [model], "explainers": ["saliency"], "metrics": ["pointing_game"], **extra}


def _trained_bn_net(nets) -> nn.Module:
    torch.manual_seed(0)
    model = nets.bn_net(1, 2)
    model.train()(torch.rand(8, 1, 32, 32))  # running statistics and a counter of 1
    return model.eval()


def test_a_file_without_batchnorm_counters_loads_as_in_torch(nets, tmp_path):
    """F1: torch's strict load_state_dict and timm fill BatchNorm's num_batches_tracked; the loader refused
    the file ("missing: bn1.num_batches_tracked")."""
    src = _trained_bn_net(nets)
    state = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_tensors(tmp_path / "w.safetensors", state)
    torch.save(state, tmp_path / "w.pt")
    with_meta = src.state_dict()  # torch's own state dict: its _metadata marks BatchNorm version 2
    del with_meta["bn1.num_batches_tracked"]
    torch.save(with_meta, tmp_path / "meta.pt")
    for name in ["w.safetensors", "w.pt", "meta.pt"]:
        dst = nets.bn_net(1, 2)
        dst.bn1.num_batches_tracked.fill_(5)
        load_weights_file(dst, tmp_path / name)
        assert all(torch.equal(v, dst.state_dict()[k]) for k, v in state.items()), name
        assert int(dst.bn1.num_batches_tracked) == 5, name  # the model's own counter is kept
        x = torch.rand(2, 1, 32, 32)
        assert torch.allclose(dst.eval()(x), src(x)), name
    # any other missing tensor is still refused, and only it is named
    save_tensors(tmp_path / "no_var.safetensors", {k: v for k, v in state.items() if k != "bn1.running_var"})
    with pytest.raises(CheckpointError, match=r"does not fit the model .*: missing: bn1.running_var$"):
        load_weights_file(nets.bn_net(1, 2), tmp_path / "no_var.safetensors")
    # validate (the meta check of the names) accepts it, and the run scores it
    suite = faithbench.load_suite(_suite({"name": "awkward_nets:bn_net", "weights": str(tmp_path / "w.safetensors"),
                                          "preprocess": "none"}))
    result = faithbench.run(suite, out_dir=tmp_path / "out", cache=Cache(tmp_path / "c"), progress=False,
                            log=lambda m: None, report=False)
    assert result.status == "ok"


def test_unusable_weights_of_a_suite_are_checkpoint_errors(nets, tmp_path, capsys):
    """F2: docs/api.md says unusable weights raise CheckpointError; faithbench.run raised a SuiteError only."""
    model = nets.bn_net(1, 2)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dp.pt")
    torch.save(model, tmp_path / "whole.pt")
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), tmp_path / "ts.pt")
    save_tensors(tmp_path / "three.safetensors", nets.bn_net(1, 3).state_dict())
    cases = {"nope.pt": "file not found", "dp.pt": "does not fit", "whole.pt": "refused to load",
             "ts.pt": "TorchScript", "three.safetensors": "shape mismatch"}
    for name, what in cases.items():
        suite = _suite({"name": "awkward_nets:bn_net", "weights": str(tmp_path / name), "preprocess": "none"})
        with pytest.raises(CheckpointError, match=what) as info:
            faithbench.run(suite, out_dir=tmp_path / "out", cache=Cache(tmp_path / "c"), progress=False,
                           log=lambda m: None, report=False)
        assert isinstance(info.value, SuiteError), name  # still the suite's error, naming the key
        assert "models[0].weights" in str(info.value), name
    path = tmp_path / "suite.yaml"  # the CLI: one line, exit 2
    path.write_text(f"name: own\ndatasets: [phantom_cxr]\nmodels: [{{name: 'awkward_nets:bn_net', weights: "
                    f"{tmp_path / 'dp.pt'}}}]\nexplainers: [saliency]\nmetrics: [pointing_game]\n")
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_a_tuple_from_a_forward_the_meta_device_cannot_run_is_refused_by_the_run(nets, tmp_path, capsys):
    """F3: validate said ok (the meta device cannot run .item()), then the run failed with the framework's
    TypeError (a recipe) or AttributeError (a weights file), exit 1."""
    from faithbench.datasets import PhantomCXR

    expected = ("model 'awkward_nets:item_net': expected the network to return one logits tensor of shape "
                "(batch, 2), got a tuple of 2 items (wrap it in a module whose forward returns the logits)")
    torch.save(nets.item_net(1, 2).state_dict(), tmp_path / "w.pt")
    splits = [PhantomCXR(split=s, n=16, size=32) for s in ("train", "val", "test")]
    for source in ({"recipe": {"epochs": 1}}, {"weights": str(tmp_path / "w.pt")}):
        spec = ModelSpec(name="awkward_nets:item_net", **source)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(spec, *splits, seed=0, cache=Cache(tmp_path / "c"))
        assert str(info.value) == expected
    # the same network returning its logits trains and loads as before, in the mode it was given
    ckpt = load_checkpoint(ModelSpec(name="awkward_nets:item_net", params={"out": "tensor"},
                                     recipe={"epochs": 1}), *splits, seed=0, cache=Cache(tmp_path / "c"))
    assert ckpt.origin == "trained" and not ckpt.model.training
    path = tmp_path / "suite.yaml"  # validate passes; the run exits 2 with that line
    path.write_text(textwrap.dedent(f"""
        name: own
        samples: 4
        datasets: [{{name: phantom_cxr, params: {{n: 16, size: 32}}}}]
        models: [{{name: 'awkward_nets:item_net', weights: {tmp_path / 'w.pt'}}}]
        explainers: [saliency]
        metrics: [pointing_game]
    """))
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"faithbench: error: {expected}"


def test_the_forward_check_leaves_training_as_it_was(tmp_path):
    """The check's forward runs in eval mode on a copy of the random state: a recipe trains the weights it
    trained before (the cache key is unchanged, so a changed model would mix with cached ones)."""
    from faithbench.datasets import PhantomCXR
    from faithbench.models.training import check_logits

    model = build_model("small_cnn", 1, 2, (32, 32), width=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    check_logits(model, PhantomCXR(split="test", n=4, size=32).tensors()[0], 2, "small_cnn")
    assert model.training and torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # BatchNorm's stats unchanged


def test_a_training_checkpoint_with_pickled_hyper_parameters_says_to_save_its_state_dict(nets, tmp_path):
    """F4: a Lightning or timm checkpoint whose hyper-parameters hold a Path, a numpy scalar or an
    argparse.Namespace was blamed on "a whole model saved with torch.save(model)?"."""
    import numpy as np

    state = nets.bn_net(1, 2).state_dict()
    objects = {"path": Path("/data/run1"), "numpy": np.float64(0.1), "namespace": argparse.Namespace(lr=0.1)}
    for kind, value in objects.items():
        torch.save({"state_dict": state, "hyper_parameters": {"value": value}, "epoch": 3}, tmp_path / f"{kind}.ckpt")
        with pytest.raises(CheckpointError) as info:
            load_weights_file(nets.bn_net(1, 2), tmp_path / f"{kind}.ckpt")
        message = str(info.value)
        assert "a training checkpoint whose 'state_dict' sits beside pickled objects" in message, kind
        assert message.endswith("save the state dict alone: torch.save(ckpt['state_dict'], 'weights.pt')"), kind
        assert "whole model" not in message and "\n" not in message
    torch.save(nets.bn_net(1, 2), tmp_path / "whole.pt")  # a whole model keeps its own line
    with pytest.raises(CheckpointError, match=r"\(a whole model saved with torch.save\(model\)\?\)"):
        load_weights_file(nets.bn_net(1, 2), tmp_path / "whole.pt")


def test_the_prefix_hint_names_the_prefixes_that_occur_and_a_tensor_that_is_missing():
    """F5: 'model.' and 'ema_model.' names were said to carry 'ema_model.' in every name; 'net.' names with
    one tensor missing got no hint."""
    expected = {f"{m}.{t}": (2,) for m in ("conv1", "bn1", "head") for t in ("weight", "bias")}
    both = {**{f"model.{k}": v for k, v in expected.items()}, **{f"ema_model.{k}": v for k, v in expected.items()}}
    text = weights_mismatch(expected, both)
    assert "every name" not in text
    assert "(the names carry the prefixes 'ema_model.' (6 names), 'model.' (6 names); stripping 'ema_model.' " \
           "or 'model.' matches the model's names: 2 whole copies of the network (an EMA or a teacher copy?), " \
           "pick one; as with DataParallel's 'module.'" in text
    net = {f"net.{k}": v for k, v in expected.items() if k != "head.bias"}
    assert "(every name carries the prefix 'net.' (stripped, they match the model's names but for head.bias, " \
           "which the file lacks), as DataParallel's 'module.'" in weights_mismatch(expected, net)
    lightning = {**{f"model.{k}": v for k, v in expected.items()}, "criterion.weight": (2,)}
    assert "(the names carry the prefixes 'model.' (6 names), 'criterion.' (1 name); stripping 'model.' " \
           "matches the model's names; as with" in weights_mismatch(expected, lightning)
    # a prefix that would match few of the model's names is no hint
    assert "prefix" not in weights_mismatch(expected, {"net.conv1.weight": (2,), "extra.bias": (2,)})


def test_a_builder_that_wraps_the_saved_network_is_named_as_the_likely_cause():
    """A held-out review: the docs' single-logit fix done as a wrapper (``self.net = net``) met the inner
    network's own file with a bare list of missing ``net.*`` and unexpected ``conv1.*`` names."""
    saved = {f"{m}.{t}": (2,) for m in ("conv1", "conv2", "head") for t in ("weight", "bias")}
    wrapped = {f"net.{k}": v for k, v in saved.items()}
    assert "(the model's names carry the prefix 'net.' that the file's lack: your builder wraps the saved network " \
           "in 'net'; subclass the network instead of wrapping it, or save the wrapper's own state dict" \
           in weights_mismatch(wrapped, saved)
    assert "prefix" not in weights_mismatch(saved, {"conv1.weight": (2,), "other.bias": (2,)})  # no wrapper here
    part = {**wrapped, "classifier.weight": (2,)}  # a diff review: vgg's features.* file for the whole vgg
    assert "(the file's names are those of the model's 'net' part without the prefix 'net.': a state dict saved " \
           "from that part; save the whole model's state_dict())" in weights_mismatch(part, saved)
    half = {**{f"net.{k}": v for k, v in saved.items() if k.startswith("conv")}, "head.weight": (2,), "head.bias": (2,)}
    assert "prefix" not in weights_mismatch(half, {"conv1.weight": (2,), "x.bias": (2,)})  # too few names fit


def test_a_builder_that_ignores_num_classes_is_named_as_the_likely_cause(nets, tmp_path, capsys):
    """F6: "expected logits of shape (batch, 2), got (1, 5)" did not say why."""
    from faithbench.models.errors import logits_problem

    assert logits_problem(torch.zeros(1, 5), 2) == (
        "expected logits of shape (batch, 2), got (1, 5) for a batch of 1 (its head has 5 outputs for the dataset's "
        "2 classes: does the builder ignore its num_classes argument?)")
    assert logits_problem(torch.zeros(1, 3), 3) is None
    path = tmp_path / "suite.yaml"
    path.write_text("name: own\ndatasets: [phantom_cxr]\nmodels: [{name: 'awkward_nets:bn_net', params: "
                    "{classes: 5}, recipe: default}]\nexplainers: [saliency]\nmetrics: [pointing_game]\n")
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "got (1, 5) for a batch of 1 (its head has 5 outputs for the dataset's 2 classes: does the builder ignore "
        "its num_classes argument?)")
