import pickle

import pytest
import torch

from faithbench.datasets import PhantomCXR
from faithbench.models import CheckpointError, ModelSpec, build_model, load_checkpoint
from faithbench.models.checkpoint import load_weights_file
from faithbench.store import Cache, save_tensors, tensors_digest


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
    with pytest.raises(CheckpointError, match=r"three.safetensors does not fit the model built for this dataset "
                                              r"\(check the classes and channels\): shape mismatch: head.weight "
                                              r"\(3, 16\) where the model has \(2, 16\), head.bias \(3,\) where"):
        load_weights_file(small(), tmp_path / "three.safetensors")
    with pytest.raises(CheckpointError, match="weights file not found"):
        load_weights_file(small(), tmp_path / "missing.safetensors")
    (tmp_path / "folder.safetensors").mkdir()  # was "unreadable safetensors file (No such device (os error 19))"
    with pytest.raises(CheckpointError, match=r"folder.safetensors is a folder: expected a weights file"):
        load_weights_file(small(), tmp_path / "folder.safetensors")


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
    assert set(first.metrics) == {"accuracy", "f1", "f1_classes", "auc", "auc_ci_low", "auc_ci_high", "loss",
                                  "majority", "predicted_classes", "auc_ci_min_class_n"}
    assert first.metrics["auc_ci_low"] <= first.metrics["auc"] <= first.metrics["auc_ci_high"]
    x = test.tensors()[0][:4]
    assert torch.equal(first.model(x), again.model(x))


def test_a_pickled_whole_model_is_refused_in_one_line(tmp_path):
    torch.save(small(), tmp_path / "whole.pt")  # the model, not its state_dict
    with pytest.raises(CheckpointError) as info:
        load_weights_file(small(), tmp_path / "whole.pt")
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message  # torch's advice spans lines, with ANSI bold
    assert "refused to load" in message and "torch.nn.modules.container.Sequential" in message
    assert "expected a state_dict (torch.save(model.state_dict(), path)) or a safetensors file" in message
    assert "Re-running" not in message and "add_safe_globals" not in message


def test_a_corrupt_torch_file_is_refused_in_one_line(tmp_path):
    torch.save(small().state_dict(), tmp_path / "w.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "w.pt").read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"refused to load: .*\(PytorchStreamReader failed reading zip "
                                              r"archive: failed finding central directory\); expected a state_dict"):
        load_weights_file(small(), tmp_path / "cut.pt")


def test_mismatched_key_lists_say_how_many_were_left_out(tmp_path):
    state = {k: v for k, v in small().state_dict().items() if not k.startswith("head.")}
    state.update({f"extra{i}": torch.zeros(1) for i in range(7)})
    save_tensors(tmp_path / "w.safetensors", state)
    with pytest.raises(CheckpointError) as info:
        load_weights_file(small(), tmp_path / "w.safetensors")
    assert str(info.value).endswith("missing: head.bias, head.weight; unexpected: extra0, extra1, extra2, extra3, "
                                    "extra4 and 2 more")


def test_an_entry_that_is_not_a_tensor_is_unexpected_not_a_crash(tmp_path):
    torch.save({**small().state_dict(), "epoch": 5}, tmp_path / "w.pt")  # loads under weights_only
    with pytest.raises(CheckpointError, match=r"w.pt does not fit the model .*: unexpected: epoch$"):
        load_weights_file(small(), tmp_path / "w.pt")  # was AttributeError: 'int' object has no attribute 'shape'


def test_weights_holding_nan_are_refused_naming_the_first_bad_tensor(tmp_path):
    """A fuzzing review (clifuzz5 F5): NaN weights loaded, and the run reported accuracy 0.45."""
    state = small().state_dict()
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    save_tensors(tmp_path / "nan.safetensors", nan)
    first = min(state)  # safetensors keeps its tensors in sorted order
    with pytest.raises(CheckpointError, match=rf"nan.safetensors: tensor '{first}' holds {state[first].numel()} of "
                                              rf"{state[first].numel()} values that are NaN or infinite"):
        load_weights_file(small(), tmp_path / "nan.safetensors")
    ints = {**state, "features.0.1.num_batches_tracked": torch.tensor(7)}  # integer tensors are never NaN
    save_tensors(tmp_path / "ok.safetensors", ints)
    load_weights_file(small(), tmp_path / "ok.safetensors")


def test_a_mismatch_says_what_it_most_likely_means(tmp_path):
    """A held-out review: a state dict nested under 'model' was blamed on 'the classes and channels',
    and a 1-channel file for a 3-channel build gave no hint of in_chans."""
    from faithbench.models.checkpoint import load_weights_file
    from faithbench.models.errors import weights_mismatch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    model(torch.zeros(1, 3, 8, 8))
    path = tmp_path / "nested.pt"
    torch.save({"model": model.state_dict(), "epoch": 30}, path)
    with pytest.raises(CheckpointError, match=r"missing: 0.bias, 0.weight, 2.bias, 2.weight; unexpected: epoch, "
                                              r"model \(the tensors may be nested under model: save that state dict "
                                              r"itself; only 'state_dict' is unwrapped\)"):
        load_weights_file(model, path)
    text = weights_mismatch({"0.weight": (4, 3, 3, 3), "0.bias": (4,)}, {"0.weight": (4, 1, 3, 3), "0.bias": (4,)})
    assert text == ("shape mismatch: 0.weight (4, 1, 3, 3) where the model has (4, 3, 3, 3) (the file's 0.weight "
                    "takes 1 input channel, the model built here 3: build it for 1 (a timm model: params: "
                    "{in_chans: 1}), give the dataset 1 channel where it has that parameter, or pick 1 of the "
                    "image's channels with preprocess: {channels: [...]})")
    # another output size is not a channel problem: no hint
    assert weights_mismatch({"2.weight": (2, 8)}, {"2.weight": (3, 8)}) == \
        "shape mismatch: 2.weight (3, 8) where the model has (2, 8)"


def test_a_safetensors_file_under_another_name_is_read_as_one(tmp_path):
    """A held-out review: model.pt holding safetensors was refused as 'not a weights-only torch
    file, or a corrupt one (Unsupported operand 216)': the format is read from the first bytes."""
    from faithbench.config_checks import _tensor_shapes
    from faithbench.store import is_safetensors

    torch.manual_seed(0)
    source = build_model("small_cnn", 1, 2, (16, 16), width=4)
    path = tmp_path / "model.pt"
    save_tensors(path, source.state_dict())
    torch.save(source.state_dict(), tmp_path / "torch.pt")
    assert is_safetensors(path) and not is_safetensors(tmp_path / "torch.pt")
    model = build_model("small_cnn", 1, 2, (16, 16), width=4)
    load_weights_file(model, path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    assert _tensor_shapes(path) == {k: tuple(v.shape) for k, v in source.state_dict().items()}


def test_small_messages_say_what_was_expected(tmp_path, monkeypatch):
    from faithbench.models.factory import check_model_spec
    from faithbench.models.preprocess import InputConfig

    with pytest.raises(ValueError, match=r"^mean: expected 1 value, got 3$"):
        InputConfig(in_chans=1, size=None, mean=(0.5, 0.5, 0.5), std=None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"^nowhere: no such folder \(a relative local-dir: path is read from the "
                                         rf"working directory, {tmp_path}\)$"):
        check_model_spec(ModelSpec.model_validate({"name": "local-dir:nowhere"}))


def test_a_weights_file_is_keyed_by_its_content(tmp_path):
    """A held-out review: the key was the path and modification time, so other weights copied in
    with cp -p (same path, size and time) reused every map and score of the old model. Now the
    content: other bytes, another key; the same bytes at another path or time, the same key."""
    import os
    import shutil

    kw = dict(n=16, size=32)
    train, val, test = (PhantomCXR(s, **kw) for s in ("train", "val", "test"))
    torch.manual_seed(0)
    save_tensors(tmp_path / "a.safetensors", small().state_dict())
    save_tensors(tmp_path / "b.safetensors", small().state_dict())  # other weights, the same size
    path = tmp_path / "w.safetensors"
    shutil.copy2(tmp_path / "a.safetensors", path)
    spec = ModelSpec.model_validate({"name": "small_cnn", "params": {"width": 4}, "weights": str(path)})

    def key():
        return load_checkpoint(spec, train, val, test, seed=0, cache=Cache(tmp_path / "cache")).key

    first, stat = key(), path.stat()
    shutil.copy2(tmp_path / "b.safetensors", path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # cp -p: the old time
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert key() != first
    shutil.copy(tmp_path / "a.safetensors", path)  # the first weights again, a new time
    assert key() == first
    moved = tmp_path / "moved.safetensors"
    path.rename(moved)
    assert load_checkpoint(spec.model_copy(update={"weights": str(moved)}), train, val, test, seed=0,
                           cache=Cache(tmp_path / "cache")).key == first


def test_a_wrapper_prefix_and_a_torchscript_file_are_named(tmp_path, recwarn):
    """A held-out review: a DataParallel file ('module.' before every name) got only the two name
    lists, and a TorchScript file torch's multi-line warning before a generic refusal."""
    model = small()
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dp.pt")
    with pytest.raises(CheckpointError, match=r"\(every name carries the prefix 'module\.', as DataParallel's"):
        load_weights_file(small(), tmp_path / "dp.pt")
    torch.jit.save(torch.jit.script(model), tmp_path / "ts.pt")
    with pytest.raises(CheckpointError) as info:
        load_weights_file(small(), tmp_path / "ts.pt")
    assert "\n" not in str(info.value) and "a TorchScript archive (torch.jit.save)" in str(info.value)
    assert not [w for w in recwarn if "TorchScript" in str(w.message)]


def test_a_model_returning_probabilities_is_warned_of(caplog):
    """A held-out review: a model ending in softmax ran with exit 0 and squashed every
    probability-based score (softmax applied twice)."""
    from faithbench.models.training import evaluate_model, looks_like_probabilities

    torch.manual_seed(0)
    logits = torch.randn(20, 3)
    assert looks_like_probabilities(logits.softmax(1)) == "softmax" and looks_like_probabilities(logits) is None
    assert looks_like_probabilities(logits.abs() / logits.abs().sum(1, keepdim=True) * 1.01) != "softmax"
    # a per-class sigmoid head (a review: no warning); an untrained net's small positive outputs are not one
    assert looks_like_probabilities((3 * logits).sigmoid()) == "sigmoid"
    assert looks_like_probabilities(0.5 + 0.45 * logits.tanh()) is None  # never near 0 or 1: not said to be
    assert looks_like_probabilities((3 * logits[:5]).sigmoid()) is None  # too few rows to tell
    x, y = torch.rand(20, 1, 8, 8), torch.arange(20) % 3
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    notes: list[str] = []
    with caplog.at_level("WARNING"):
        evaluate_model(torch.nn.Sequential(net, torch.nn.Softmax(1)), x, y, label="soft", notes=notes)
        evaluate_model(net, x, y, label="plain", notes=notes)
    warned = [r.getMessage() for r in caplog.records if "returns probabilities" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("model 'soft' returns probabilities, not logits")
    assert notes == warned  # kept for the run folder (manifest.json's data_warnings, the report)
    # multi-label (a review: a sigmoid-ended net on multi-label data got no warning, accuracy 0.493 vs 0.964)
    y2 = torch.stack([torch.arange(20) % 2, torch.arange(20) // 10], 1)
    net2 = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    with torch.no_grad():
        net2[1].weight.mul_(40)
    caplog.clear()
    with caplog.at_level("WARNING"):
        evaluate_model(torch.nn.Sequential(net2, torch.nn.Sigmoid()), x, y2, label="sig", notes=notes)
        evaluate_model(net2, x, y2, label="plain2", notes=notes)
    warned = [r.getMessage() for r in caplog.records if "returns probabilities" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("model 'sig' returns probabilities, not logits")
    assert "the metrics apply a sigmoid per class" in warned[0]


def test_edited_tensors_with_the_caches_old_checksum_say_what_the_mismatch_means(tmp_path):
    """A held-out review: a cache file's tensors edited and saved with its metadata (its sha256) were
    refused as a bare 'checksum mismatch', which read like a damaged file."""
    from safetensors.torch import save_file

    model = torch.nn.Linear(3, 2)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    digest = tensors_digest(state)
    state["weight"] += 1.0
    save_file(state, str(tmp_path / "w.safetensors"), metadata={"sha256": digest})
    with pytest.raises(CheckpointError, match=r"w.safetensors: checksum mismatch: the sha256 in the file's metadata "
                                              r".* changed and saved with the old metadata \(save them without it\)"):
        load_weights_file(model, tmp_path / "w.safetensors")
    save_file(state, str(tmp_path / "plain.safetensors"))
    load_weights_file(model, tmp_path / "plain.safetensors")
    assert torch.equal(model.weight, state["weight"])


def test_predicted_classes_counts_the_classes_a_checkpoint_predicts(tmp_path):
    """A held-out review: a checkpoint predicting class 0 for every test sample (accuracy 0.514, AUC CI above
    0.5) went unnoticed. models.csv's predicted_classes says so, also for a checkpoint cached before it."""
    from faithbench.models.training import classification_metrics

    y = torch.tensor([0, 1, 0, 1])
    one = classification_metrics(torch.tensor([[2.0, 0.0], [1.0, 0.5], [3.0, 1.0], [0.9, 0.8]]), y, ci=False)
    both = classification_metrics(torch.tensor([[2.0, 0.0], [0.0, 0.5], [3.0, 1.0], [0.9, 0.8]]), y, ci=False)
    assert (one["predicted_classes"], both["predicted_classes"]) == (1, 2)
    kw = dict(n=64, size=32)
    train, val, test = (PhantomCXR(s, **kw) for s in ("train", "val", "test"))
    spec = ModelSpec.model_validate({"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}})
    cache = Cache(tmp_path)
    first = load_checkpoint(spec, train, val, test, seed=0, cache=cache)
    meta = cache.get_json("checkpoints", first.key)
    assert meta["metrics_version"] == 5
    meta = {k: v for k, v in meta.items() if k != "metrics_version"}  # as an earlier version wrote it
    old = {k: v for k, v in meta["metrics"].items() if k != "predicted_classes"}
    cache.put_json("checkpoints", first.key, {**meta, "metrics": old})  # cached before the column
    again = load_checkpoint(spec, train, val, test, seed=0, cache=cache)
    assert again.origin == "cache" and again.metrics["predicted_classes"] == first.metrics["predicted_classes"]
    assert cache.get_json("checkpoints", first.key)["metrics"] == again.metrics  # written back: computed once
    # a checkpoint cached before f1_classes had the macro F1 over every output (helper 126): recomputed
    stale = {k: v for k, v in again.metrics.items() if k != "f1_classes"} | {"f1": 0.123}
    cache.put_json("checkpoints", first.key, {**meta, "metrics": stale})
    fixed = load_checkpoint(spec, train, val, test, seed=0, cache=cache).metrics
    assert fixed["f1"] == first.metrics["f1"] and fixed["f1_classes"] == first.metrics["f1_classes"]
    # ... and before majority (helper 130): filled in on its next load
    older = {k: v for k, v in fixed.items() if k != "majority"}
    cache.put_json("checkpoints", first.key, {**meta, "metrics": older})
    assert load_checkpoint(spec, train, val, test, seed=0, cache=cache).metrics["majority"] == first.metrics["majority"]
    # ... and an AUC from float32 probabilities (a review: 0.511 for 0.5595): evaluated again, once
    cache.put_json("checkpoints", first.key, {**meta, "metrics": {**fixed, "auc": 0.123}})
    assert load_checkpoint(spec, train, val, test, seed=0, cache=cache).metrics["auc"] == first.metrics["auc"]
    assert cache.get_json("checkpoints", first.key)["metrics_version"] == 5
    # ... and before auc_ci_min_class_n (a fuzzing review: a CI from 1 test image per class): filled in
    cache.put_json("checkpoints", first.key, {**meta, "metrics_version": 2,
                                              "metrics": {k: v for k, v in fixed.items() if k != "auc_ci_min_class_n"}})
    again = load_checkpoint(spec, train, val, test, seed=0, cache=cache).metrics
    assert again["auc_ci_min_class_n"] == first.metrics["auc_ci_min_class_n"] > 0
    current = cache.get_json("checkpoints", first.key)
    cache.put_json("checkpoints", first.key, {**current, "metrics": {**current["metrics"], "auc": 0.123}})
    assert load_checkpoint(spec, train, val, test, seed=0, cache=cache).metrics["auc"] == 0.123  # current: read


def test_macro_f1_averages_the_classes_present_as_scikit_learn():
    """A held-out review (helper 126): a class of the head with no test sample and no prediction counted as F1
    0 (4 classes of a 10-output head: 0.141 against scikit-learn's 0.352)."""
    from sklearn.metrics import f1_score

    from faithbench.models.training import classification_metrics

    y = torch.tensor([2, 5, 7, 9, 2, 5, 7, 9, 2, 5])
    logits = torch.nn.functional.one_hot(torch.tensor([2, 5, 7, 2, 2, 9, 7, 9, 5, 5]), 10).float()
    out = classification_metrics(logits, y, ci=False)
    expected = f1_score(y.numpy(), logits.argmax(-1).numpy(), average="macro")
    assert out["f1"] == pytest.approx(expected) and out["f1_classes"] == 4 and expected > 0.5


def test_a_preprocess_mapping_that_keeps_the_librarys_convention_is_warned_of(caplog, tmp_path):
    """A held-out review: `preprocess: {channels: [0, 0, 0]}` on a weights file, which the channel error
    suggests, kept torchvision's 224-px resize and ImageNet mean and std, silently (accuracy 0.966 -> 0.514)."""
    from faithbench.models import checkpoint
    from faithbench.models.preprocess import InputConfig

    library = InputConfig(in_chans=3, size=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                          source="torchvision ResNet18_Weights.IMAGENET1K_V1")
    (tmp_path / "w.pt").write_bytes(b"")

    def warned(preprocess, label):
        spec = ModelSpec.model_validate({"name": "torchvision:resnet18", "alias": label, "preprocess": preprocess,
                                         "weights": str(tmp_path / "w.pt")})
        caplog.clear()
        with caplog.at_level("WARNING"):
            checkpoint._warn_library_transform(spec, checkpoint.resolve_input_config(library, spec.preprocess, 3),
                                               (64, 64))
        return [r.getMessage() for r in caplog.records]

    [message] = warned({"channels": [0, 0, 0]}, "a")
    assert message.startswith("model 'a': its preprocess mapping leaves size (224, 224), mean (0.485, 0.456, 0.406), "
                              "std (0.229, 0.224, 0.225) to torchvision ResNet18_Weights.IMAGENET1K_V1's input "
                              "convention")
    assert "set them too (size: [64, 64], mean: 0, std: 1 per channel)" in message
    [message] = warned({"channels": [0, 0, 0], "size": [64, 64]}, "b")
    assert "leaves mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225) to" in message
    assert warned({"channels": [0, 0, 0], "size": [64, 64], "mean": [0.0], "std": [1.0]}, "c") == []
    assert warned("none", "d") == []
    [message] = warned("auto", "e")
    assert message.startswith("model 'e': preprocess auto puts torchvision ResNet18_Weights.IMAGENET1K_V1's input "
                              "convention in front of the weights file (size (224, 224), mean")


def test_a_recipe_whose_training_diverges_is_refused_and_not_cached(tmp_path):
    """A fuzzing review: lr 1e12 trained NaN weights that were cached and used; every cell then failed
    with messages pointing at a one-class test split or an empty mask."""
    kw = dict(n=96, size=32)
    train, val, test = (PhantomCXR(s, **kw) for s in ("train", "val", "test"))
    spec = ModelSpec.model_validate({"name": "small_cnn", "params": {"width": 8, "depth": 2},
                                     "recipe": {"epochs": 3, "lr": 1e12, "batch_size": 32}})
    cache = Cache(tmp_path)
    with pytest.raises(CheckpointError, match=r"training diverged \(loss nan in epoch \d\).*lower the recipe's "
                                              r"lr \(1e\+12\)"):
        load_checkpoint(spec, train, val, test, seed=0, cache=cache)
    assert not any(tmp_path.rglob("*.safetensors"))


def test_a_nan_validation_loss_stops_training_too():
    """A diff review: max(train, val) hid a NaN validation loss (max(0.7, nan) is 0.7)."""
    from faithbench.models.errors import check_converging

    check_converging("train m", (0.7, 0.69), 1, 0.001)
    for losses in ((0.7, float("nan")), (float("nan"), 0.7), (float("inf"), 0.7)):
        with pytest.raises(CheckpointError, match=r"train m: training diverged \(loss (nan|inf) in epoch 3\)"):
            check_converging("train m", losses, 3, 1e6)


def test_the_permuted_label_twin_starts_from_its_own_init(tmp_path, monkeypatch):
    """Review random4 F1: the twin was built and trained under the model's seed, so both started from the
    same weights (correlated 0.84-0.996 after a short recipe). Adebayo et al. 2018 train a separate network."""
    import numpy as np

    import faithbench.models.checkpoint as checkpoint
    from faithbench.store import make_key

    started: dict[bool, tuple[torch.Tensor, int]] = {}

    def record(model, x_train, y_train, x_val, y_val, recipe, seed, *, desc="", keep_best=True):
        weights = [v.flatten() for k, v in model.state_dict().items() if k.endswith("weight") and v.ndim > 1]
        started[not keep_best] = (torch.cat(weights).clone(), seed)  # keep_best is off for the twin only
        return {"train_loss": [0.0], "val_loss": [0.0], "val_accuracy": [0.5]}

    monkeypatch.setattr(checkpoint, "train_model", record)
    train, val, test = (PhantomCXR(s, n=32, size=32) for s in ("train", "val", "test"))
    spec = ModelSpec.model_validate({"name": "small_cnn", "params": {"width": 16}, "recipe": {"epochs": 1}})
    cache = Cache(tmp_path)
    model = load_checkpoint(spec, train, val, test, seed=0, cache=cache)
    twin = load_checkpoint(spec, train, val, test, seed=0, cache=cache, permute_labels=True)
    (w_model, seed_model), (w_twin, seed_twin) = started[False], started[True]
    assert w_model.numel() > 5000
    assert abs(np.corrcoef(w_model.numpy(), w_twin.numpy())[0, 1]) < 0.1  # the old twin: 1.0, the same draw
    assert seed_model == 0 and seed_twin == checkpoint.TWIN_SEED_OFFSET != 0  # its own training shuffles too
    assert twin.seed == model.seed == 0  # the run's seed, as models.csv reports it
    # a twin cached by the old rule (trained from the model's init) is never read for the new one
    parts = ["checkpoint", checkpoint.CHECKPOINT_FORMAT, spec.name, spec.params, train.spec(),
             spec.recipe.model_dump(), 1, 2, [32, 32], 0,
             {"threads": torch.get_num_threads(), "torch": torch.__version__}, *spec.key_extras()]
    assert make_key(*parts) == model.key  # the old rule, rebuilt here, gives the model's key
    assert twin.key != make_key(*parts, "permuted-labels") and twin.key != model.key
