import numpy as np
import pytest
import torch

pytest.importorskip("nilearn")

from faithbench.datasets import MNILesion  # noqa: E402
from faithbench.registry import datasets  # noqa: E402

TISSUES = ("grey_matter", "white_matter", "csf_background")


@pytest.mark.parametrize("dims,shape", [(2, (1, 64, 64)), (3, (1, 32, 32, 32))])
def test_lesion_in_white_matter_decides_the_label(dims, shape):
    ds = datasets.get("mni_lesion")("test", dims=dims, n=24)
    assert ds.spatial_dims == dims
    n_pos = 0
    for i in range(len(ds)):
        s = ds[i]
        assert s.image.shape == shape and 0 <= s.image.min() and s.image.max() <= 1
        assert all(m.shape == shape[1:] and m.dtype == torch.bool for m in s.masks.values())
        # the tissue classes partition the image
        assert torch.equal(sum(s.masks[t].int() for t in TISSUES), torch.ones(shape[1:], dtype=torch.int))
        assert s.image[0][s.masks["white_matter"]].mean() > s.image[0][s.masks["grey_matter"]].mean()
        lesion = s.masks["lesion"]
        if s.label == 1:
            n_pos += 1
            wm = s.masks["white_matter"]
            assert lesion.sum() >= 5 and (lesion & wm).sum() == lesion.sum()  # wholly in white matter
            assert s.image[0][lesion].mean() < s.image[0][wm & ~lesion].mean() - 0.05  # dark lesion
        else:
            assert not lesion.any()
    assert 6 < n_pos < 18


def test_deterministic_and_varied():
    a, b = MNILesion("test", n=4)[1], MNILesion("test", n=4)[1]
    assert torch.equal(a.image, b.image)
    assert not torch.equal(MNILesion("train", n=4)[1].image, a.image)
    imgs = [MNILesion("test", n=4)[i].image for i in range(3)]
    assert not torch.equal(imgs[0], imgs[1]) and not torch.equal(imgs[1], imgs[2])


def test_bright_polarity_and_bad_params():
    ds = MNILesion("test", dims=3, n=12, polarity="bright")
    s = next(ds[i] for i in range(12) if ds[i].label)
    assert s.meta["lesion_polarity"] == "bright"
    with pytest.raises(ValueError, match="mni_lesion: expected dims"):
        MNILesion("test", dims=4)


def test_the_key_holds_nilearns_version():
    """The MNI152 template ships in nilearn's wheel: another release may hold other images."""
    from importlib.metadata import version

    assert MNILesion("test", n=2).spec()["nilearn"] == version("nilearn")


@pytest.mark.parametrize("dims", [2, 3])
def test_a_bright_lesion_keeps_its_contrast_over_the_bright_white_matter(dims):
    """A held-out review: the image was clipped at 1 after a bright lesion was added, and the white matter is
    0.91-0.99 bright, so about half of the lesion mask was flat at 1.0 and as little as 0.11 of the 0.3 planted
    survived. The same seed with a vanishing contrast draws the same numbers: the difference is the lesion."""
    kw = {"dims": dims, "n": 16, "size": 32, "polarity": "bright"}
    with_lesion, without = MNILesion("test", **kw), MNILesion("test", lesion_contrast=1e-9, **kw)
    positives = [i for i in range(16) if with_lesion[i].label == 1]
    assert positives
    for i in positives:
        s, base = with_lesion[i], without[i]
        diff = (s.image - base.image)[0]
        centre = tuple(s.meta["lesion_centre"])
        assert diff[centre] == pytest.approx(0.3, abs=1e-6)  # the contrast planted, at the centre
        assert (diff[s.masks["lesion"]] > 0.3 * np.exp(-(1.5 ** 2) / 2) - 1e-6).all()  # >= the Gaussian at r
    assert max(float(with_lesion[i].image.max()) for i in positives) > 1.0  # above the clip
    dark = MNILesion("test", dims=dims, n=4, size=32)
    assert all(0.0 <= float(dark[i].image.min()) and float(dark[i].image.max()) <= 1.0 for i in range(4))
