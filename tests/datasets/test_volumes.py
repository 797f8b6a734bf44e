import pytest
import torch

pytest.importorskip("nibabel")

from faithbench.datasets import DataError, VolumeDataset  # noqa: E402
from faithbench.registry import datasets  # noqa: E402

CT = {"image": "totalsegmentator/example_ct.nii.gz", "label_map": "totalsegmentator/example_seg.nii.gz"}
MR = {"image": "totalsegmentator/example_mr_sm.nii.gz", "label_map": "totalsegmentator/example_seg_mr.nii.gz"}
NAMES = "totalsegmentator/class_map_total.json"


def _centre(mask):
    return torch.nonzero(mask).float().mean(0)


def test_nifti_ras_and_lps_share_one_orientation(real_data):
    real_data(CT["image"], CT["label_map"], MR["image"], MR["label_map"], NAMES)
    ds = datasets.get("volume")("test", items=[CT, MR], names=NAMES, regions=["liver", "spleen", "stomach"])
    ct, mr = ds[0], ds[1]
    # CT is 122 x 101 x 112 (x, y, z) RAS; its label map covers 30 slices and is resampled onto it.
    assert ct.image.shape == (1, 112, 101, 122) and mr.image.shape == (1, 20, 91, 117)
    for s in (ct, mr):  # (D, H, W) = (S->I, A->P, R->L): the liver (patient's right) is image left
        assert set(s.masks) == {"liver", "spleen", "stomach"}
        assert all(m.shape == s.image.shape[1:] for m in s.masks.values())
        assert _centre(s.masks["liver"])[2] < _centre(s.masks["spleen"])[2] - 20
        assert 0 <= s.image.min() and s.image.max() <= 1


def test_window_resample_and_region_intensity(real_data):
    real_data(CT["image"], CT["label_map"], NAMES)
    ds = VolumeDataset("test", items=[CT], names=NAMES, window=[-160, 240], size=[48, 48, 48],
                       regions=["liver", "heart"])
    s = ds[0]
    assert s.image.shape == (1, 48, 48, 48) and s.masks["liver"].sum() > 1000
    assert not s.masks["heart"].any()  # asked for, absent from this scan
    # soft tissue (~50 HU) inside the window [-160, 240] -> about (50 + 160) / 400 = 0.52
    assert 0.35 < s.image[0][s.masks["liver"]].mean() < 0.7
    assert (s.image == 0).float().mean() > 0.2  # air below the window clips to 0


def test_nrrd_tumour_label_and_splits(real_data):
    real_data("pyradiomics/brain1_image.nrrd", "pyradiomics/brain1_label.nrrd", "pyradiomics/breast1_image.nrrd")
    items = [{"image": "pyradiomics/brain1_image.nrrd", "label_map": "pyradiomics/brain1_label.nrrd", "label": 1,
              "split": "train"},
             {"image": "pyradiomics/breast1_image.nrrd", "label_map": "pyradiomics/breast1_label.nrrd"}]
    train = VolumeDataset("train", items=items, classes=["no_tumour", "tumour"])
    s = train[0]
    assert s.image.shape == (1, 25, 256, 256) and s.label == 1
    assert int(s.masks["label_1"].sum()) == 4137  # data/README.md
    test = VolumeDataset("test", items=items)
    assert len(test) == 1 and int(test[0].masks["label_1"].sum()) == 143
    with pytest.raises(ValueError, match="no items in split 'val'"):
        VolumeDataset("val", items=items)


def test_missing_file_and_bad_params(real_data, tmp_path):
    with pytest.raises(DataError, match="volume image not found: .*nope.nii.gz"):
        VolumeDataset("test", items=[{"image": "nope.nii.gz"}], root=str(tmp_path))
    with pytest.raises(ValueError, match="exactly one of 'items'"):
        VolumeDataset("test", root=str(tmp_path))
    with pytest.raises(ValueError, match="unknown keys"):
        VolumeDataset("test", items=[{"image": "a.nii", "mask": "b.nii"}], root=str(tmp_path))
