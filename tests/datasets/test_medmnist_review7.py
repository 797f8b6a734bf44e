"""MedMNIST loader, review medmnist6: images that are not uint8 (D1: divided by 255 all the same, a float copy in
[0, 1] loaded as [0, 0.0039]) and an ``n`` above the split's size (D2: capped without a word)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from faithbench.cli import main
from faithbench.datasets import DataError, DataWarning, MedMNIST

pytest.importorskip("medmnist")  # the class names and tasks come from medmnist.INFO


def _write(root, dtype=np.uint8, scale=255, n=12):
    folder = root / "medmnist"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = (rng.random((n, 28, 28)) * scale).astype(dtype)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8)[:, None]
    np.savez(folder / "pneumoniamnist.npz", **arrays)
    return folder / "pneumoniamnist.npz"


@pytest.mark.parametrize("dtype,scale", [(np.float32, 1.0), (np.float64, 255.0), (np.int64, 1020), (np.uint16, 1020)])
def test_images_other_than_uint8_are_refused_naming_the_file(tmp_path, dtype, scale):
    path = _write(tmp_path, dtype, scale)
    want = (f"medmnist: {path} holds test images of dtype {np.dtype(dtype)}, expected uint8 (the official files' "
            f"0-255 pixels, which the dataset divides by 255): a re-saved copy?")
    with pytest.raises(DataError) as err:
        MedMNIST("test", flag="pneumoniamnist", root=str(tmp_path))
    assert str(err.value) == want
    with pytest.raises(DataError) as err:  # validate's split of labels reads the dtype from the header
        MedMNIST.labels_split("train", flag="pneumoniamnist", root=str(tmp_path))
    assert str(err.value) == want.replace("test images", "train images")


def test_uint8_images_load_divided_by_255(tmp_path):
    path = _write(tmp_path)
    with np.load(path) as npz:
        raw = npz["test_images"]
    ds = MedMNIST("test", flag="pneumoniamnist", root=str(tmp_path))
    assert np.allclose(ds[3].image[0].numpy(), raw[3] / 255.0, atol=1e-7)


def test_an_n_above_the_split_is_warned_of_and_the_whole_split_used(tmp_path):
    _write(tmp_path, n=12)
    with pytest.warns(DataWarning, match=r"medmnist: n = 50 is more than the 12 images of pneumoniamnist's test "
                                         r"split; all 12 are used"):
        ds = MedMNIST("test", flag="pneumoniamnist", root=str(tmp_path), n=50)
    assert len(ds) == 12 and len(ds.data_warnings) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # n within the split: nothing said
        assert len(MedMNIST("test", flag="pneumoniamnist", root=str(tmp_path), n=12)) == 12


def test_validate_refuses_a_float_copy_in_one_line(tmp_path, capsys, monkeypatch):
    _write(tmp_path, np.float32, 1.0)
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\ndatasets: [{{name: medmnist, params: {{flag: pneumoniamnist, root: {tmp_path}}}}}]\n"
                     "models: [{name: small_cnn, recipe: default}]\nexplainers: [saliency]\nmetrics: [deletion_auc]\n")
    monkeypatch.setenv("FAITHBENCH_OFFLINE", "1")
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "images of dtype float32, expected uint8" in err
