"""The real ChestMNIST through the loader, as a multi-label dataset (skips when the file is absent)."""

import torch

from faithbench.datasets import MedMNIST
from faithbench.runner.targets import expand_targets
from faithbench.types import Batch


def test_chestmnist_label_vectors(real_data):
    root = real_data("medmnist/chestmnist.npz")
    ds = MedMNIST("test", flag="chestmnist", root=str(root), n=64)
    assert ds.multilabel and len(ds.classes) == 14 and ds.classes[0] == "atelectasis"
    x, y = ds.tensors()
    assert x.shape == (64, 1, 28, 28) and y.shape == (64, 14) and set(y.unique().tolist()) <= {0, 1}
    for i in range(64):
        s = ds[i]
        assert s.labels.tolist() == s.meta["labels"] == y[i].tolist()
        assert s.meta["no_finding"] == (not bool(y[i].any()))
    batch = Batch.collate([ds[i] for i in range(8)])
    assert torch.equal(batch.labels, y[:8])
    units = expand_targets([ds[i] for i in range(64)], "each_positive", ds.classes)
    assert len(units) == int(y.sum())  # one unit per positive (image, class)
