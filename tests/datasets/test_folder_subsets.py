"""A held-out review: ``n`` and the runner's first ``samples`` took the first N of a class-sorted list
(one class), and a model was trained on one class with exit 0. Now a seeded, class-stratified order."""

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from faithbench.datasets import DataError, FolderDataset, MedMNIST
from faithbench.datasets.base import stratified_order


def _classes(root, counts):
    for label, k in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(k):
            Image.fromarray(np.full((8, 8), 10 * i % 256, np.uint8)).save(root / label / f"{label}{i:02d}.png")


def _labels(ds):
    return Counter(ds.classes[e[1]] for e in ds.entries)


def test_stratified_order_keeps_each_class_share_in_every_prefix():
    labels = [0] * 30 + [1] * 10  # sorted by class, as a folder's files are
    order = stratified_order(labels, seed=0)
    assert sorted(order) == list(range(40))
    assert Counter(labels[i] for i in order[:8]) == {0: 6, 1: 2}  # 3:1, as the whole
    assert Counter(labels[i] for i in order[:2]) == {0: 1, 1: 1}  # one of each from 2 on
    assert Counter(labels[i] for i in order[:20]) == {0: 15, 1: 5}
    assert order == stratified_order(labels, seed=0) and order != stratified_order(labels, seed=1)


def test_n_is_a_seeded_stratified_subset(tmp_path):
    _classes(tmp_path / "img", {"neg": 30, "pos": 10})
    kw = dict(path="img", size=8, fractions=[1.0, 0.0, 0.0], root=str(tmp_path))
    ds = FolderDataset("train", n=8, **kw)
    assert _labels(ds) == {"neg": 6, "pos": 2}  # was {'neg': 8}: the first 8 files
    again = FolderDataset("train", n=8, **kw)
    other = FolderDataset("train", n=8, seed=1, **kw)
    assert [e[0] for e in again.entries] == [e[0] for e in ds.entries]
    assert {e[0] for e in other.entries} != {e[0] for e in ds.entries}
    names = [e[0].name for e in ds.entries]
    assert names != sorted(names)  # not the first files of each class either


def test_test_split_order_mixes_classes_for_the_runners_first_samples(tmp_path):
    _classes(tmp_path / "img", {"a": 20, "b": 20})
    test = FolderDataset("test", path="img", size=8, root=str(tmp_path))
    labels = [e[1] for e in test.entries]
    assert Counter(labels) == {0: 4, 1: 4}
    assert Counter(labels[:2]) == {0: 1, 1: 1} and Counter(labels[:4]) == {0: 2, 1: 2}  # was [0, 0, 0, 0]


def test_a_train_split_of_one_class_is_refused(tmp_path):
    _classes(tmp_path / "img", {"neg": 6, "pos": 6})
    kw = dict(path="img", size=8, root=str(tmp_path))
    with pytest.raises(DataError, match=r"the train split holds one class only \('(neg|pos)': 1\).*\(n keeps each "
                                        r"class's share"):
        FolderDataset("train", n=1, **kw)
    assert len(FolderDataset("test", n=1, **kw)) == 1  # a test split may hold one class


def test_training_on_one_class_is_refused_whatever_the_dataset(tmp_path):
    from faithbench.datasets import PhantomCXR
    from faithbench.models import ModelSpec, load_checkpoint
    from faithbench.store import Cache

    one = PhantomCXR("train", n=2, size=32, seed=1)
    assert {one[i].label for i in range(2)} == {0}
    val, test = PhantomCXR("val", n=4, size=32), PhantomCXR("test", n=4, size=32)
    spec = ModelSpec.model_validate({"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}})
    with pytest.raises(DataError, match=r"model 'small_cnn': the train split holds one class only \('normal': 2\)"):
        load_checkpoint(spec, one, val, test, 0, Cache(tmp_path))
    two = PhantomCXR("train", n=8, size=32)
    first = two[0].label
    capped = ModelSpec.model_validate({"name": "small_cnn", "params": {"width": 4},
                                       "recipe": {"epochs": 1, "n_train": 1}})
    with pytest.raises(DataError, match=rf"holds one class only \('{two.classes[first]}': 1\).*\(the recipe's "
                                        rf"n_train 1 takes the first 1 of the split"):
        load_checkpoint(capped, two, val, test, 0, Cache(tmp_path))


def _fake_medmnist(root):
    (root / "medmnist").mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.array([1] * 90 + [0] * 10, dtype=np.uint8)[:, None]  # sorted by class, as the shared file's train
    arrays = {f"{s}_images": rng.integers(0, 256, (100, 28, 28), dtype=np.uint8) for s in ("train", "val", "test")}
    arrays.update({f"{s}_labels": labels for s in ("train", "val", "test")})
    np.savez(root / "medmnist" / "pneumoniamnist.npz", **arrays)
    return arrays


def test_medmnist_n_is_stratified_and_ids_keep_the_file_index(tmp_path):
    arrays = _fake_medmnist(tmp_path)
    ds = MedMNIST("train", flag="pneumoniamnist", n=20, root=str(tmp_path))
    _x, y = ds.tensors()
    assert Counter(y.tolist()) == {1: 18, 0: 2}  # was {1: 20}
    for i in range(len(ds)):
        s = ds[i]
        k = int(s.id.rsplit("-", 1)[1])
        assert s.label == int(arrays["train_labels"][k, 0])
        assert np.array_equal((s.image[0] * 255).round().byte().numpy(), arrays["train_images"][k])
    other = MedMNIST("train", flag="pneumoniamnist", n=20, root=str(tmp_path), seed=1)
    assert {other[i].id for i in range(20)} != {ds[i].id for i in range(20)}
    assert "seed" in ds.spec()["params"] and ds.fingerprint() != other.fingerprint()
    whole = MedMNIST("train", flag="pneumoniamnist", root=str(tmp_path))
    assert "seed" not in whole.spec()["params"]  # without n the cache keys are those of before
    assert [whole[i].id for i in (0, 99)] == ["pneumoniamnist_28-train-00000", "pneumoniamnist_28-train-00099"]
