import pytest
import torch

from faithbench.datasets import PhantomCXR
from faithbench.registry import datasets


@pytest.mark.parametrize("name, kw", [("phantom_cxr", {"n": 40, "shortcut": 0.9}),
                                      ("phantom_organ3d", {"n": 40, "shortcut": 0.9})])
def test_counterfactual_removes_only_the_named_evidence(name, kw):
    ds = datasets.get(name)("train", **kw)
    i = next(i for i in range(len(ds)) if ds[i].label == 1 and ds[i].masks["marker"].any())
    full = ds[i]
    assert torch.equal(ds.counterfactual(i, []).image, full.image)
    no_lesion = ds.counterfactual(i, ["lesion"]).image
    no_marker = ds.counterfactual(i, ["marker"]).image
    lesion, marker = full.masks["lesion"], full.masks["marker"]
    # the lesion's intensity is gone inside its mask; far from it nothing changed
    assert (full.image[0][lesion] - no_lesion[0][lesion]).mean() > 0.15
    changed = (full.image != no_lesion)[0]
    assert not (changed & marker).any()
    assert (no_marker[0][marker] < 0.2).all() and (full.image[0][marker] > 0.9).all()  # noise is added last
    assert torch.equal(no_marker[0][~marker], full.image[0][~marker])
    with pytest.raises(ValueError, match="can only remove"):
        ds.counterfactual(i, ["heart"])


def test_counterfactual_of_a_negative_is_itself():
    ds = PhantomCXR("test", n=20)
    i = next(i for i in range(len(ds)) if ds[i].label == 0)
    assert torch.equal(ds.counterfactual(i, ["lesion"]).image, ds[i].image)
