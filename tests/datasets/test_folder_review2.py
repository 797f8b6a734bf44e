"""A second held-out review of ``folder``: masks of several values lost the regions at or below
half range (R1), a coloured JPEG mask kept its halo (R2), fractions leaving a class no training
patient passed silently (R3), ``mask_suffix`` without ``masks`` made masks training images (R4),
an evaluation-only folder of one class's images was refused (G1), and some errors said too little."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from faithbench.datasets import DataError, DataWarning, FolderDataset
from faithbench.datasets.images import binarise_mask, read_image

YY, XX = np.mgrid[:64, :64]
DISC = (YY - 32) ** 2 + (XX - 30) ** 2 <= 15**2


def _read(path):
    return binarise_mask(read_image(path), lossy=path.suffix.lower() in (".jpg", ".jpeg"))


def test_lossless_masks_keep_every_region(tmp_path):
    inst = np.zeros((64, 64), np.uint8)  # 150 lesions labelled 1..150, 2x2 px each
    for k in range(150):
        r, c = divmod(k, 15)
        inst[4 * r:4 * r + 2, 4 * c:4 * c + 2] = k + 1
    Image.fromarray(inst).save(tmp_path / "inst.png")
    assert _read(tmp_path / "inst.png").sum() == 600  # was 92: instances 1..127 gone
    levels = np.zeros((64, 64), np.uint8)
    levels[:15, :15], levels[20:35, 20:35], levels[40:55, 40:55] = 85, 170, 255
    for suffix in (".png", ".tif", ".bmp"):
        Image.fromarray(levels).save(tmp_path / f"levels{suffix}")
        assert _read(tmp_path / f"levels{suffix}").sum() == 675  # was 450: the 85 region gone
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:15, :15, 0], rgb[30:50, 30:50, 1] = 255, 255  # red (luma 76) and green (luma 150)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert _read(tmp_path / "rgb.png").sum() == 625  # was 400: the red region gone


@pytest.mark.parametrize("colour", [(255, 255, 255), (255, 0, 0)])
def test_a_jpeg_mask_loses_its_halo_whatever_its_colour(tmp_path, colour):
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[DISC] = colour
    Image.fromarray(rgb).save(tmp_path / "m.jpg", quality=90)
    raw = np.asarray(Image.open(tmp_path / "m.jpg").convert("L"))
    assert ((raw > 0) & ~DISC).sum() > 50  # the JPEG's halo
    mask = _read(tmp_path / "m.jpg")
    assert (mask & ~DISC).sum() <= 5 and (DISC & ~mask).sum() <= 5  # red was +49 % of area (all the halo)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "black.jpg", quality=90)
    assert not _read(tmp_path / "black.jpg").any()


def test_label_map_through_the_dataset(tmp_path):
    levels = np.zeros((64, 64), np.uint8)
    levels[:16, :16], levels[32:48, 32:48] = 100, 255
    for label in ("neg", "pos"):
        for folder in ("img", "mask"):
            (tmp_path / folder / label).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((64, 64), 90, np.uint8)).save(tmp_path / "img" / label / f"{k}.png")
            Image.fromarray(levels).save(tmp_path / "mask" / label / f"{k}.png")
    ds = FolderDataset("test", path="img", masks="mask", size=64, fit="squash", root=str(tmp_path))
    assert int(ds[0].masks["lesion"].sum()) == 512  # was 256: the 100 region gone
    assert int(ds.version) >= 4  # cached masks of version 3 are not reused


def test_mask_suffix_without_masks_is_refused(tmp_path):
    for k in range(3):
        for label in ("benign", "malignant"):
            (tmp_path / "img" / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16), 90, np.uint8)).save(tmp_path / "img" / label / f"{label} ({k}).png")
            Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "img" / label / f"{label} ({k})_mask.png")
    with pytest.raises(ValueError, match=r"^folder: mask_suffix '_mask' needs masks"):
        FolderDataset("test", path="img", mask_suffix="_mask", root=str(tmp_path))  # was 12 images, 6 of them masks


def _classes(root, counts):
    for label, k in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(k):
            Image.fromarray(np.full((8, 8), 10 * i % 256, np.uint8)).save(root / label / f"{label}{i:02d}.png")


def test_fractions_leaving_a_class_no_training_patient_are_refused(tmp_path):
    _classes(tmp_path / "img", {"a": 20, "b": 20, "c": 4})
    kw = dict(path="img", size=8, fractions=[0.1, 0.45, 0.45], root=str(tmp_path))
    with pytest.raises(DataError, match=r"fractions \[0.1, 0.45, 0.45\] leave class 'c' no training patient "
                                        r"\(4 patients: 0 train, 2 val, 2 test\): raise the train fraction"):
        FolderDataset("train", **kw)  # was train {a: 2, b: 2}, silently
    assert len(FolderDataset("test", **kw)) > 0  # evaluation alone builds no train split
    assert len(FolderDataset("train", **{**kw, "fractions": [0.5, 0.25, 0.25]})) > 0


def test_one_class_of_images_is_enough_to_explain_fixed_weights(tmp_path):
    _classes(tmp_path / "img", {"pos": 6})
    kw = dict(path="img", size=8, classes=["neg", "pos"], root=str(tmp_path))
    with pytest.warns(DataWarning, match=r"images of one class only \('pos': 6 images\); no image of 'neg'"):
        ds = FolderDataset("test", **kw)  # was refused
    assert ds.classes == ("neg", "pos") and len(ds) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(DataError, match=r"the train split holds one class only \('pos': \d+\)"):
            FolderDataset("train", **kw)  # training stays refused
    with pytest.raises(DataError, match=r"images of one class only \('pos': 6 images\).*classes naming 2 or more"):
        FolderDataset("test", path="img", size=8, root=str(tmp_path))  # one class in all: a one-output model


@pytest.mark.parametrize("fractions,split,which", [([0.8, 0, 0.2], "val", "second"), ([0.8, 0.2, 0], "test", "third")])
def test_an_empty_split_says_which_fraction_to_raise(tmp_path, fractions, split, which):
    _classes(tmp_path / "img", {"neg": 5, "pos": 5})
    with pytest.raises(ValueError, match=rf"split '{split}' is empty \(fractions \[.*\] give it 0; 10 images, 10 "
                                         rf"patients\): raise its fraction \(the {which}\) above 0; a trained model "
                                         r"needs a val split, every run a test split$"):
        FolderDataset(split, path="img", size=8, fractions=fractions, root=str(tmp_path))


def test_label_errors_name_the_csv_line_and_grammar(tmp_path):
    _classes(tmp_path / "img", {"a": 3, "b": 3})
    rows = [f"{c}/{c}{i:02d}.png,{c}" for c in ("a", "b") for i in range(3)]
    rows[4] = "b/b01.png,c"
    (tmp_path / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"labels.csv: line 6: label 'c' is not one of the classes \('a', 'b'\)"):
        FolderDataset("test", path="img", labels="labels.csv", classes=["a", "b"], root=str(tmp_path))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "img" / "loose.png")
    with pytest.warns(DataWarning, match=r"1 image in the folder itself \(e.g. 'loose.png'\) is left out"):
        FolderDataset("test", path="img", size=8, root=str(tmp_path))


def test_no_numpy_warning_when_a_class_has_no_sample():
    from faithbench.models.training import classification_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was "RuntimeWarning: Mean of empty slice"
        out = classification_metrics(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))
    assert np.isnan(out["auc"])
