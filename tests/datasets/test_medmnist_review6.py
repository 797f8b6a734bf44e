"""MedMNIST loader, review medmnist5: `n` with `finding` stratified on the finding (D1), `finding` of the
wrong type (D2), and files whose arrays do not fit the request (D3). Small .npz files written in tmp_path."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from faithbench.cli import main
from faithbench.configurable import ParameterError
from faithbench.datasets import DataError, MedMNIST
from faithbench.datasets.base import stratified_order

pytest.importorskip("medmnist")  # the class names and tasks come from medmnist.INFO


def _write(root, name, labels, image_shape=(28, 28), n_images=None, seed=0):
    """``<root>/medmnist/<name>`` with the same ``labels`` (N, columns) in every split."""
    folder = root / "medmnist"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = len(labels) if n_images is None else n_images
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *image_shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.asarray(labels, dtype=np.uint8)
    np.savez(folder / name, **arrays)
    return folder / name


def _chest_labels():
    return (np.random.default_rng(5).random((30, 14)) < 0.3).astype(np.uint8)  # the review's fake ChestMNIST


# D1 --------------------------------------------------------------------------------------------------------

def test_finding_subset_is_stratified_on_the_finding(tmp_path):
    labels = _chest_labels()
    _write(tmp_path, "chestmnist.npz", labels)
    for k in range(14):
        p = labels[:, k].mean()
        for n in range(1, 31):
            ds = MedMNIST("test", flag="chestmnist", root=str(tmp_path), finding=k, n=n)
            index = [int(ds[i].id.rsplit("-", 1)[1]) for i in range(len(ds))]
            assert index == stratified_order(labels[:, k].tolist(), 0)[:n]  # the binary label's order
            assert ds.labels() == labels[index, k].tolist()
            assert abs(sum(ds.labels()) - n * p) < 1, (k, n)  # the finding's share within one image


def test_finding_subset_gets_new_cache_keys_and_other_subsets_keep_theirs(tmp_path):
    _write(tmp_path, "chestmnist.npz", _chest_labels())
    root = str(tmp_path)
    spec = MedMNIST("test", flag="chestmnist", root=root, finding="nodule", n=10).spec()
    assert spec["strata"] == "finding" and spec["version"] == "1"
    without = {k: v for k, v in spec.items() if k != "strata"}  # the key the old code computed
    old_key = hashlib.sha256(json.dumps(without, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert MedMNIST("test", flag="chestmnist", root=root, finding="nodule", n=10).fingerprint() != old_key
    for params in ({"finding": "nodule"}, {"n": 10}, {}):  # no n, or no finding: the samples did not change
        assert "strata" not in MedMNIST("test", flag="chestmnist", root=root, **params).spec()


def test_plain_multilabel_subset_is_unchanged(tmp_path):
    labels = _chest_labels()
    _write(tmp_path, "chestmnist.npz", labels)
    ds = MedMNIST("test", flag="chestmnist", root=str(tmp_path), n=12)
    index = [int(ds[i].id.rsplit("-", 1)[1]) for i in range(len(ds))]
    assert index == [6, 14, 20, 5, 27, 1, 16, 17, 29, 24, 8, 9]  # the code before the fix gave these
    first = np.where(labels.any(1), labels.argmax(1), 0)  # as documented: first positive class, none -> 0
    assert index == stratified_order(first.tolist(), 0)[:12]
    assert ds.multilabel and [s.labels.tolist() for s in ds] == labels[index].tolist()


def test_single_label_subsets_are_bit_for_bit_unchanged(tmp_path):
    rng = np.random.default_rng(7)  # the arrays the old code was run on
    folder = tmp_path / "medmnist"
    folder.mkdir()
    arrays = {}
    for split, n in (("train", 40), ("val", 12), ("test", 30)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 7, (n, 1)).astype(np.uint8)
    np.savez(folder / "dermamnist.npz", **arrays)
    ds = MedMNIST("train", flag="dermamnist", root=str(tmp_path), n=11, seed=3)
    index = [int(ds[i].id.rsplit("-", 1)[1]) for i in range(len(ds))]
    assert index == [27, 3, 12, 19, 0, 5, 16, 4, 13, 20, 34]  # the code before the fix gave these
    x, y = ds.tensors()
    assert np.array_equal(x.numpy(), np.moveaxis(arrays["train_images"][index], -1, 1) / np.float32(255))
    assert y.tolist() == arrays["train_labels"][index, 0].tolist()
    assert "strata" not in ds.spec() and ds.spec()["version"] == "1"


def test_real_pneumoniamnist_subset_is_unchanged(real_data):
    real_data("medmnist/pneumoniamnist.npz")
    ds = MedMNIST("test", flag="pneumoniamnist", n=10)
    assert [int(ds[i].id.rsplit("-", 1)[1]) for i in range(10)] == [106, 557, 275, 433, 87, 211, 93, 74, 623, 435]
    assert "strata" not in ds.spec()


# D2 --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("finding", [True, False, 1.0, ["nodule"]])
def test_finding_of_the_wrong_type_is_a_parameter_error(tmp_path, finding):
    _write(tmp_path, "chestmnist.npz", _chest_labels())
    with pytest.raises(ParameterError, match=r"^medmnist: expected finding to be a class name \(str\) or index "
                                             rf"\(int\), got {type(finding).__name__} "):
        MedMNIST("test", flag="chestmnist", root=str(tmp_path), finding=finding)


def test_finding_as_a_numpy_integer_is_an_index(tmp_path):
    labels = _chest_labels()
    _write(tmp_path, "chestmnist.npz", labels)
    ds = MedMNIST("test", flag="chestmnist", root=str(tmp_path), finding=np.int64(13))
    assert ds.classes == ("no hernia", "hernia") and ds.labels() == labels[:, 13].tolist()


def _validate(tmp_path, capsys, params: str) -> str:
    """``faithbench validate`` of a one-dataset suite of medmnist ``params`` under ``tmp_path``: exit 2, its stderr."""
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: t\ndatasets: [{{name: medmnist, params: {{{params}, root: '{tmp_path}'}}}}]\n"
                     "models: [{name: small_cnn, recipe: default}]\nexplainers: [random]\nmetrics: [deletion_auc]\n")
    assert main(["validate", str(suite)]) == 2
    return capsys.readouterr().err


def test_validate_refuses_finding_true_naming_it(tmp_path, capsys):
    _write(tmp_path, "chestmnist.npz", _chest_labels())
    err = _validate(tmp_path, capsys, "flag: chestmnist, finding: true")
    assert "expected finding to be a class name (str) or index (int), got bool True" in err
    assert "cannot be read" not in err and len(err.strip().splitlines()) == 1


# D3 --------------------------------------------------------------------------------------------------------

def _binary(n=30, high=2):
    return np.arange(n).reshape(n, 1) % high


@pytest.mark.parametrize("name, kwargs, write, message", [
    ("pneumoniamnist_64.npz", {"flag": "pneumoniamnist", "size": 64}, {"labels": _binary()},
     r"pneumoniamnist_64\.npz holds test images of shape \(28, 28\), expected 64x64 \(grey, or with 3 channels "
     r"last\) for size 64"),
    ("nodulemnist3d_64.npz", {"flag": "nodulemnist3d", "size": 64}, {"labels": _binary(), "image_shape": (28,) * 3},
     r"nodulemnist3d_64\.npz holds test images of shape \(28, 28, 28\), expected 64x64x64 for size 64"),
    ("bloodmnist.npz", {"flag": "bloodmnist"}, {"labels": _binary(high=8), "image_shape": (28, 28, 4)},
     r"bloodmnist\.npz holds test images of shape \(28, 28, 4\), expected 28x28"),
    ("breastmnist.npz", {"flag": "breastmnist"}, {"labels": _binary(high=5)},
     r"breastmnist\.npz has test label 2 at index 2, expected 0\.\.1 \(the subset's 2 classes\)"),
    ("dermamnist.npz", {"flag": "dermamnist"}, {"labels": _binary(high=8), "image_shape": (28, 28, 3)},
     r"dermamnist\.npz has test label 7 at index 7, expected 0\.\.6 \(the subset's 7 classes\)"),
    ("dermamnist.npz", {"flag": "dermamnist"}, {"labels": _binary(n=5, high=7), "n_images": 30},
     r"dermamnist\.npz has 30 test_images but 5 test_labels; expected one label row per image"),
    ("chestmnist.npz", {"flag": "chestmnist"}, {"labels": _chest_labels()[:, :13]},
     r"chestmnist\.npz has test_labels of 13 columns, expected 14 \(one 0/1 per class\)"),
    ("chestmnist.npz", {"flag": "chestmnist", "finding": "hernia"}, {"labels": _chest_labels() * 2},
     r"chestmnist\.npz has test label \[.*\] at index 0, expected 0 or 1 per class"),
    ("breastmnist.npz", {"flag": "breastmnist"}, {"labels": np.zeros((30, 2))},
     r"breastmnist\.npz has test_labels of 2 columns, expected 1 \(one class index per image\)"),
])
def test_a_file_that_does_not_fit_is_refused_naming_it(tmp_path, name, kwargs, write, message):
    _write(tmp_path, name, **write)
    with pytest.raises(DataError, match=r"^medmnist: .*" + message):
        MedMNIST("test", root=str(tmp_path), **kwargs)
    with pytest.raises(DataError, match=message.replace("test", "train")):  # validate's labels-only split too
        MedMNIST.labels_split("train", root=str(tmp_path), **kwargs)


def test_files_that_fit_are_accepted(tmp_path):
    _write(tmp_path, "bloodmnist_64.npz", _binary(high=8), image_shape=(64, 64, 3))
    _write(tmp_path, "breastmnist.npz", _binary(), image_shape=(28, 28, 1))
    _write(tmp_path, "organmnist3d.npz", _binary(high=11), image_shape=(28,) * 3)
    assert MedMNIST("test", flag="bloodmnist", size=64, root=str(tmp_path))[0].image.shape == (3, 64, 64)
    assert MedMNIST("test", flag="breastmnist", root=str(tmp_path))[1].image.shape == (1, 28, 28)
    assert MedMNIST("val", flag="organmnist3d", root=str(tmp_path), n=5)[0].image.shape == (1, 28, 28, 28)


def test_the_checks_read_each_array_once(tmp_path, monkeypatch):
    _write(tmp_path, "breastmnist.npz", _binary())
    reads = []
    getitem = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, key: reads.append(key) or getitem(self, key))
    MedMNIST("test", flag="breastmnist", root=str(tmp_path), n=7)
    assert sorted(reads) == ["test_images", "test_labels"]


def test_validate_refuses_a_file_of_another_size(tmp_path, capsys):
    _write(tmp_path, "pneumoniamnist_64.npz", _binary())
    err = _validate(tmp_path, capsys, "flag: pneumoniamnist, size: 64")
    assert "pneumoniamnist_64.npz holds test images of shape (28, 28), expected 64x64" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("missing", ["val_images", "train_labels"])
def test_validate_refuses_a_file_without_a_split_a_trained_model_needs(tmp_path, capsys, missing):
    """Review data5: a file without its val arrays passed validate ("ok") for a suite that trains a model,
    then the run stopped on it; validate reads the train and val splits' labels (no images) as the run will."""
    path = _write(tmp_path, "pneumoniamnist.npz", _binary())
    arrays = dict(np.load(path))
    del arrays[missing]
    np.savez(path, **arrays)
    err = _validate(tmp_path, capsys, "flag: pneumoniamnist")
    split = missing.split("_")[0]
    assert f"a model is trained here (a recipe, or the permuted-label twin), which needs its {split} split: " \
           f"medmnist: {path} has no arrays '{split}_images'/'{split}_labels'" in err
    assert len(err.strip().splitlines()) == 1
