import os
import shutil
import urllib.error

import numpy as np
import pytest
import torch

from faithbench.datasets import DataError, MedMNIST
from faithbench.registry import datasets


@pytest.mark.parametrize("split,n,counts", [("test", 624, [234, 390]), ("val", 524, [135, 389])])
def test_pneumoniamnist_official_splits(real_data, split, n, counts):
    real_data("medmnist/pneumoniamnist.npz")
    ds = datasets.get("medmnist")(split, flag="pneumoniamnist")
    assert len(ds) == n and ds.spatial_dims == 2 and not ds.multilabel
    assert ds.classes == ("normal", "pneumonia")
    x, y = ds.tensors()
    assert x.shape == (n, 1, 28, 28) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    assert torch.bincount(y).tolist() == counts
    s = ds[5]
    assert torch.equal(s.image, x[5]) and s.label == int(y[5]) and s.masks == {}


def test_local_subset_is_accepted_without_official_md5(real_data):
    real_data("medmnist/pneumoniamnist.npz")
    ds = MedMNIST("train", flag="pneumoniamnist")
    assert len(ds) == 3882  # a subset of the official 4,708
    assert ds.spec()["file"]["name"] == "pneumoniamnist.npz" and "files" not in ds.spec()


def test_adrenalmnist3d_volumes(real_data):
    real_data("medmnist/adrenalmnist3d.npz", "medmnist/adrenalmnist3d_64.npz")
    ds = MedMNIST("test", flag="adrenalmnist3d")
    assert len(ds) == 298 and ds.spatial_dims == 3 and ds.classes == ("normal", "hyperplasia")
    x, y = ds.tensors()
    assert x.shape == (298, 1, 28, 28, 28)
    assert torch.bincount(y).tolist() == [229, 69]
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}  # binary shapes, 0/255
    big = MedMNIST("val", flag="adrenalmnist3d", size=64, n=3)
    assert len(big) == 3 and big[0].image.shape == (1, 64, 64, 64)
    assert big.fingerprint() != MedMNIST("val", flag="adrenalmnist3d", n=3).fingerprint()


def test_missing_file_offline_gives_one_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("medmnist")
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(tv_utils, "download_url", offline)  # never touch the network
    monkeypatch.delenv("FAITHBENCH_OFFLINE", raising=False)  # the download is attempted, and fails
    with pytest.raises(DataError, match=r"organmnist3d\.npz is not in .*medmnist and the download failed \(offline\?\)"):
        MedMNIST("test", flag="organmnist3d", root=str(tmp_path))


@pytest.mark.parametrize("value", ["1", "true", "YES", "on", "ON", " On "])  # on/ON downloaded (a review)
def test_with_downloads_off_a_missing_file_is_an_error_without_a_download(tmp_path, monkeypatch, value):
    pytest.importorskip("medmnist")
    import torchvision.datasets.utils as tv_utils

    def called(*args, **kwargs):
        raise AssertionError("a download was attempted with FAITHBENCH_OFFLINE set")

    monkeypatch.setattr(tv_utils, "download_url", called)
    monkeypatch.setenv("FAITHBENCH_OFFLINE", value)
    with pytest.raises(DataError, match=r"breastmnist\.npz is not in .*downloads are off \(\$FAITHBENCH_OFFLINE is set\)"):
        MedMNIST("train", flag="breastmnist", root=str(tmp_path))


def test_bad_flag_and_size(tmp_path):
    pytest.importorskip("medmnist")
    with pytest.raises(ValueError, match="did you mean 'pneumoniamnist'"):
        MedMNIST("test", flag="pneumonimnist", root=str(tmp_path))
    with pytest.raises(ValueError, match="sizes 28 and 64"):
        MedMNIST("test", flag="adrenalmnist3d", size=128, root=str(tmp_path))


def _write_chestmnist(folder):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.zeros((6, 14), dtype=np.uint8)
    labels[0, [2, 5]] = 1
    labels[1, 13] = 1
    arrays = {f"{s}_images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8) for s in ("train", "val", "test")}
    arrays.update({f"{s}_labels": labels for s in ("train", "val", "test")})
    np.savez(folder / "chestmnist.npz", **arrays)


def test_multilabel_keeps_the_vector(tmp_path):
    pytest.importorskip("medmnist")
    _write_chestmnist(tmp_path / "medmnist")
    ds = MedMNIST("test", flag="chestmnist", root=str(tmp_path))
    assert ds.multilabel and len(ds.classes) == 14 and ds.classes[2] == "effusion"
    assert ds[0].meta["labels"][2] == 1 and ds[0].meta["labels"][5] == 1 and ds[0].label == 2
    assert ds[1].label == 13 and ds[2].meta["no_finding"] and ds[2].label == 0
    binary = MedMNIST("test", flag="chestmnist", root=str(tmp_path), finding="hernia")
    assert not binary.multilabel and binary.classes == ("no hernia", "hernia")
    assert binary.tensors()[1].tolist() == [0, 1, 0, 0, 0, 0]


def test_a_file_of_the_same_name_and_size_with_other_images_gets_other_keys(tmp_path):
    # helper 113: the key held the file's name and size only, so an edited copy of the same size (np.savez
    # of the same shapes) reused every cached checkpoint and score, and touching it did not help
    pytest.importorskip("medmnist")
    _write_chestmnist(tmp_path / "a" / "medmnist")
    first = MedMNIST("test", flag="chestmnist", root=str(tmp_path / "a")).fingerprint()
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the same file elsewhere, with a new time: same key
    os.utime(tmp_path / "b" / "medmnist" / "chestmnist.npz", (1, 1))
    assert MedMNIST("test", flag="chestmnist", root=str(tmp_path / "b")).fingerprint() == first
    path = tmp_path / "b" / "medmnist" / "chestmnist.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["test_images"] = 255 - arrays["test_images"]
    np.savez(path, **arrays)
    assert os.path.getsize(path) == os.path.getsize(tmp_path / "a" / "medmnist" / "chestmnist.npz")
    assert MedMNIST("test", flag="chestmnist", root=str(tmp_path / "b")).fingerprint() != first


@pytest.mark.parametrize("value, off", [("1", True), ("on", True), ("ON", True), ("True", True), (" yes ", True),
                                        ("0", False), ("off", False), ("no", False), ("", False)])
def test_one_reading_of_faithbench_offline(monkeypatch, value, off):
    """A held-out review: MedMNIST read FAITHBENCH_OFFLINE as 1/true/yes and the hub weights as 1/true/yes/on."""
    from faithbench.datasets.paths import downloads_allowed
    from faithbench.models.hub import offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("FAITHBENCH_OFFLINE", value)
    assert (downloads_allowed(), offline()) == (not off, off)
    monkeypatch.setenv("FAITHBENCH_OFFLINE", "2")  # neither word: refused (a review: it silently meant online)
    for read in (downloads_allowed, offline):
        with pytest.raises(ValueError, match=r"FAITHBENCH_OFFLINE: expected 1, true, yes or on"):
            read()
