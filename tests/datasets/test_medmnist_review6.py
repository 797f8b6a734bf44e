"""MedMNIST loader, review medmnist5: `n` with `finding` stratified on the finding (D1), `finding` of the
wrong type (D2), and files whose arrays do not fit the request (D3). Small .npz files written in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest

from faithbench.cli import main
from faithbench.configurable import ParameterError
from faithbench.datasets import DataError, MedMNIST

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


def test_validate_refuses_finding_true_naming_it(tmp_path, capsys):
    _write(tmp_path, "chestmnist.npz", _chest_labels())
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: t\ndatasets: [{{name: medmnist, params: {{flag: chestmnist, finding: true, "
                     f"root: '{tmp_path}'}}}}]\nmodels: [{{name: small_cnn, recipe: default}}]\n"
                     "explainers: [random]\nmetrics: [deletion_auc]\n")
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
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
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: t\ndatasets: [{{name: medmnist, params: {{flag: pneumoniamnist, size: 64, "
                     f"root: '{tmp_path}'}}}}]\nmodels: [{{name: small_cnn, recipe: default}}]\n"
                     "explainers: [random]\nmetrics: [deletion_auc]\n")
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "pneumoniamnist_64.npz holds test images of shape (28, 28), expected 64x64" in err
    assert len(err.strip().splitlines()) == 1
