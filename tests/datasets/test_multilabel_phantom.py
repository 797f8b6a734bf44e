"""phantom_cxr_multilabel: two independent findings, each wholly in a lung with its exact mask."""

import pytest
import torch
from scipy.stats import binomtest, chi2_contingency

from faithbench.datasets import PhantomCXR, PhantomCXRMultiLabel
from faithbench.registry import datasets


@pytest.fixture(scope="module")
def train():
    return PhantomCXRMultiLabel("train", n=240, size=48)


def test_deterministic_and_split_dependent(train):
    again = PhantomCXRMultiLabel("train", n=240, size=48)
    for i in (0, 7, 123):
        a, b = train[i], again[i]
        assert torch.equal(a.image, b.image) and torch.equal(a.labels, b.labels)
        assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert not torch.equal(PhantomCXRMultiLabel("val", n=10, size=48)[0].image, train[0].image)
    assert train.fingerprint() != PhantomCXRMultiLabel("train", n=240, size=48, prevalence=0.3).fingerprint()


def test_anatomy_is_phantom_cxrs_without_a_lesion(train):
    anatomy = PhantomCXR.anatomy("train", n=240, size=48, seed=0, noise=0.03)[3]
    assert anatomy.label == 0 and not anatomy.masks["lesion"].any()
    # the organs are drawn before the label's lesion: phantom_cxr's, whatever its prevalence
    assert torch.equal(PhantomCXR("train", n=240, size=48)[3].masks["heart"], anatomy.masks["heart"])
    sample = train[3]
    for name in ("lung_left", "lung_right", "heart", "spine", "body"):
        assert torch.equal(sample.masks[name], anatomy.masks[name])
    assert sample.labels.tolist() == [1, 1]
    # outside the findings' discs the image is the anatomy plus the tail of the nodule's Gaussian
    outside = ~(sample.masks["nodule"] | sample.masks["cavity"])
    rows, cols = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    (r, c), radius = sample.meta["nodule_centre"], sample.meta["nodule_radius"]
    tail = 0.35 * torch.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * (radius / 1.5) ** 2))
    assert torch.allclose(sample.image[0][outside], (anatomy.image[0] + tail)[outside], atol=1e-6)


def test_labels_masks_and_independence(train):
    x, y = train.tensors()
    assert x.shape == (240, 1, 48, 48) and y.shape == (240, 2) and y.dtype == torch.long
    assert train.multilabel and train.classes == ("nodule", "cavity")
    counts = torch.zeros(2, 2)
    for i in range(len(train)):
        s = train[i]
        assert torch.equal(s.labels, y[i]) and torch.equal(s.image, x[i])
        lungs = s.masks["lung_left"] | s.masks["lung_right"]
        for c, name in enumerate(train.classes):
            mask = s.masks[name]
            assert bool(mask.any()) == bool(s.labels[c])  # a mask exactly when the class is present
            assert not (mask & ~lungs).any()  # wholly inside a lung
        assert not (s.masks["nodule"] & s.masks["cavity"]).any()
        assert s.label == (int(s.labels.argmax()) if s.labels.any() else 0)
        counts[int(y[i, 0]), int(y[i, 1])] += 1
    for c in range(2):  # prevalence 0.5 each
        assert binomtest(int(y[:, c].sum()), 240, 0.5).pvalue > 0.01
    assert chi2_contingency(counts.numpy()).pvalue > 0.01  # no dependence between the classes


def test_the_findings_look_different(train):
    """The nodule is brightest at its centre; the cavity's centre (lumen) is darker than its wall."""
    for i in range(40):
        s = train[i]
        img = s.image[0]
        for name in ("nodule", "cavity"):
            if s.labels[train.classes.index(name)]:
                r, c = s.meta[f"{name}_centre"]
                wall = img[s.masks[name]].mean()
                assert (img[r, c] > wall) if name == "nodule" else (img[r, c] < 0.1 < wall)


def test_registered_and_parameter_errors():
    assert datasets.get("phantom_cxr_multilabel") is PhantomCXRMultiLabel
    with pytest.raises(ValueError, match=r"expected prevalence in \(0, 1\) \(.*\), got 1.5"):
        PhantomCXRMultiLabel(prevalence=1.5)
    with pytest.raises(ValueError, match="expected cavity_radius \\[min, max\\] with 0 < min <= max"):
        PhantomCXRMultiLabel(cavity_radius=(5.0, 3.0))
    with pytest.raises(IndexError, match="out of range"):
        PhantomCXRMultiLabel(n=3)[3]
    assert PhantomCXRMultiLabel(n=2, channels=3)[0].image.shape == (3, 64, 64)


def test_masks_are_the_findings_and_the_anatomy_without_phantom_cxrs_lesion_side(train):
    """A held-out review: lung_lesion_side / lung_contralateral came over from phantom_cxr's anatomy, a lung
    drawn at random holding neither finding (sample 3 of the test split: the cavity outside it), and
    `faithbench validate` listed them as regions to test."""
    expected = {"nodule", "cavity", "lung_left", "lung_right", "heart", "spine", "body"}
    assert all(set(train[i].masks) == expected for i in (0, 3, 7))
    assert PhantomCXRMultiLabel.version == "3"  # (2) the samples' masks changed: cached maps and scores are not reused


def test_background_is_exactly_zero_without_subnormal_values():
    """A held-out review: the nodule's Gaussian tail reached every pixel, leaving values down to 1.4e-45 where
    the background is 0, and relative_input_stability with zeros: skip was about 1e-41 for every explainer."""
    ds = PhantomCXRMultiLabel("test", n=40, size=32)
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    nodules = 0
    for i in range(len(ds)):
        sample = ds[i]
        x = sample.image
        assert not ((x > 0) & (x < 1e-6)).any(), sample.id
        if not sample.labels[0]:
            continue
        nodules += 1
        anatomy = ds._anatomy[i].image[0]
        (r, c), radius = sample.meta["nodule_centre"], sample.meta["nodule_radius"]
        far = ((rows - r) ** 2 + (cols - c) ** 2).sqrt() > 5.3 * radius / 1.5  # the Gaussian below 1e-6
        far &= ~sample.masks["cavity"]
        assert (x[0][far & (anatomy == 0)] == 0).all(), sample.id  # the anatomy's background stays 0
        assert torch.equal(x[0][far], torch.where(anatomy[far] < 1e-6, 0.0, anatomy[far]))
    assert nodules >= 10
