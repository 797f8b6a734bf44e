import pickle

import pytest
import torch

from faithbench.datasets import PhantomCXR
from faithbench.models import CheckpointError, ModelSpec, build_model, load_checkpoint
from faithbench.models.checkpoint import load_weights_file
from faithbench.store import Cache, save_tensors


def small(in_chans=1, num_classes=2):
    return build_model("small_cnn", in_chans, num_classes, (32, 32), width=4)


def test_safetensors_and_weights_only_roundtrip(tmp_path):
    src = small()
    save_tensors(tmp_path / "w.safetensors", src.state_dict())
    torch.save(src.state_dict(), tmp_path / "w.pt")
    for name in ["w.safetensors", "w.pt"]:
        dst = small()
        load_weights_file(dst, tmp_path / name)
        assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"w": _Evil(str(marker))}, f)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_weights_file(small(), tmp_path / "evil.pt")
    assert not marker.exists()  # the payload never ran


def test_class_and_channel_mismatch(tmp_path):
    save_tensors(tmp_path / "three.safetensors", small(num_classes=3).state_dict())
    with pytest.raises(CheckpointError, match=r"'head.*has shape \(3.*expects \(2.*check the classes and channels"):
        load_weights_file(small(), tmp_path / "three.safetensors")
    with pytest.raises(CheckpointError, match="weights file not found"):
        load_weights_file(small(), tmp_path / "missing.safetensors")


def test_recipe_checkpoint_cached_by_hash(tmp_path):
    kw = dict(n=64, size=32)
    train, val, test = (PhantomCXR(s, **kw) for s in ("train", "val", "test"))
    spec = ModelSpec.model_validate({"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}})
    cache = Cache(tmp_path)
    first = load_checkpoint(spec, train, val, test, seed=0, cache=cache)
    again = load_checkpoint(spec, train, val, test, seed=0, cache=cache)
    other = load_checkpoint(spec, train, val, test, seed=1, cache=cache)
    assert first.origin == "trained" and again.origin == "cache" and other.origin == "trained"
    assert first.key == again.key != other.key
    assert first.metrics == again.metrics
    assert set(first.metrics) == {"accuracy", "f1", "auc", "auc_ci_low", "auc_ci_high", "loss"}
    assert first.metrics["auc_ci_low"] <= first.metrics["auc"] <= first.metrics["auc_ci_high"]
    x = test.tensors()[0][:4]
    assert torch.equal(first.model(x), again.model(x))
