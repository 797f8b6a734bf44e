import pytest
import torch

from faithbench.datasets import PhantomCXR
from faithbench.registry import datasets


def test_registered_and_deterministic():
    cls = datasets.get("phantom_cxr")
    a, b = cls("test", n=8)[3], cls("test", n=8)[3]
    assert torch.equal(a.image, b.image) and a.label == b.label
    assert not torch.equal(cls("train", n=8)[3].image, a.image)  # splits differ
    assert not torch.equal(cls("test", n=8, seed=1)[3].image, a.image)


def test_shapes_masks_and_lesion_placement():
    ds = PhantomCXR("test", n=60, channels=3)
    names = {"lesion", "lung_left", "lung_right", "heart", "spine", "body", "lung_lesion_side", "lung_contralateral"}
    n_pos = 0
    for i in range(len(ds)):
        s = ds[i]
        assert s.image.shape == (3, 64, 64) and 0 <= s.image.min() and s.image.max() <= 1
        assert set(s.masks) == names
        assert all(m.shape == (64, 64) and m.dtype == torch.bool for m in s.masks.values())
        lesion = s.masks["lesion"]
        if s.label == 1:
            n_pos += 1
            lung = s.masks["lung_left"] | s.masks["lung_right"]
            assert lesion.sum() >= 15
            assert (lesion & lung).sum() / lesion.sum() > 0.9  # inside a lung
            # the lesion is brighter than the rest of the lung
            assert s.image[0][lesion].mean() > s.image[0][lung & ~lesion].mean() + 0.15
        else:
            assert not lesion.any()
    assert 15 < n_pos < 45


def test_shortcut_marker_correlates_in_train_only():
    tr = PhantomCXR("train", n=400, shortcut=0.9)
    te = PhantomCXR("test", n=400, shortcut=0.9)

    def agreement(ds):
        return sum(int(ds[i].masks["marker"].any()) == ds[i].label for i in range(len(ds))) / len(ds)

    assert agreement(tr) > 0.9  # P(marker == label) = (1 + 0.9) / 2 = 0.95
    assert 0.4 < agreement(te) < 0.6
    s = next(tr[i] for i in range(20) if tr[i].masks["marker"].any())
    assert (s.image[0][s.masks["marker"]] > 0.9).all()
    assert "marker" not in PhantomCXR("test", n=2)[0].masks


@pytest.mark.parametrize("bad", [{"shortcut": 1.5}, {"n": 0}, {"size": 8}])
def test_bad_params(bad):
    with pytest.raises(ValueError, match="phantom_cxr: expected"):
        PhantomCXR("test", **bad)


def test_lesion_side_and_contralateral_lungs():
    """The lesion's lung holds the lesion; a normal image gets a reference side, left or right
    about equally often, and the two lungs by role are the two anatomical lungs."""
    ds = PhantomCXR("test", n=120, size=32)
    sides = {0: [], 1: []}
    for i in range(len(ds)):
        s = ds[i]
        m = s.masks
        left = torch.equal(m["lung_lesion_side"], m["lung_left"])
        assert left != torch.equal(m["lung_lesion_side"], m["lung_right"])
        assert torch.equal(m["lung_contralateral"], m["lung_right"] if left else m["lung_left"])
        sides[s.label].append(left)
        if s.label == 1:
            assert s.meta["lesion_side"] == ("left" if left else "right")
            assert (m["lesion"] & m["lung_lesion_side"]).sum() > 0.9 * m["lesion"].sum()
            assert not (m["lesion"] & m["lung_contralateral"]).any()
    for label in (0, 1):
        assert 0.3 < sum(sides[label]) / len(sides[label]) < 0.7
    assert torch.equal(ds[7].masks["lung_lesion_side"], PhantomCXR("test", n=120, size=32)[7].masks["lung_lesion_side"])
