import pytest
import torch

from faithbench.datasets import PhantomOrgan3D
from faithbench.registry import datasets


def test_registered_deterministic_and_3d():
    cls = datasets.get("phantom_organ3d")
    a, b = cls("test", n=4)[2], cls("test", n=4)[2]
    assert torch.equal(a.image, b.image) and a.label == b.label
    assert not torch.equal(cls("train", n=4)[2].image, a.image)
    assert not torch.equal(cls("test", n=4, seed=1)[2].image, a.image)
    assert cls.spatial_dims == 3 and a.image.shape == (1, 32, 32, 32)


def test_lesion_inside_an_organ_decides_the_label():
    ds = PhantomOrgan3D("test", n=40)
    names = {"lesion", "liver", "spleen", "kidney_left", "kidney_right", "spine", "body"}
    n_pos = 0
    for i in range(len(ds)):
        s = ds[i]
        assert set(s.masks) == names and 0 <= s.image.min() and s.image.max() <= 1
        assert all(m.shape == (32, 32, 32) and m.dtype == torch.bool for m in s.masks.values())
        lesion = s.masks["lesion"]
        if s.label == 1:
            n_pos += 1
            organ = s.masks[s.meta["lesion_organ"]]
            assert lesion.sum() >= 20 and (lesion & organ).sum() == lesion.sum()  # wholly inside
            assert s.image[0][lesion].mean() > s.image[0][organ & ~lesion].mean() + 0.08
        else:
            assert not lesion.any()
    assert 10 < n_pos < 30


def test_shortcut_marker_and_bad_params():
    tr = PhantomOrgan3D("train", n=60, shortcut=1.0)
    assert all(int(tr[i].masks["marker"].any()) == tr[i].label for i in range(len(tr)))
    with pytest.raises(ValueError, match="phantom_organ3d: expected size"):
        PhantomOrgan3D("test", size=16)
