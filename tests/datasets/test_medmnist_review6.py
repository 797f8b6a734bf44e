"""MedMNIST loader, review medmnist5: `n` with `finding` stratified on the finding (D1), `finding` of the
wrong type (D2), and files whose arrays do not fit the request (D3). Small .npz files written in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest

from faithbench.cli import main
from faithbench.configurable import ParameterError
from faithbench.datasets import MedMNIST

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
